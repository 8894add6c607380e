//! `incr` and `decr`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;

use super::one::{poll_one, OneRequest, OneState};
use super::Plan;
use crate::client::{mismatched, Client, Inner};
use crate::connection::Connection;
use crate::error::Result;
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Kind, Opaque, Response, Status};

/// `incr` / `decr`: see [`Client::incr`] and [`Client::decr`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Arith<'a, K> {
    client: &'a Client,
    incr: bool,
    key: K,
    delta: u64,
    noreply: bool,
}

impl<'a, K: AsRef<[u8]>> Arith<'a, K> {
    /// Sends with `noreply` (default off): the call then returns `None` without waiting,
    /// as pymemcache.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = on;
        self
    }
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Arith<'a, K> {
    type Output = Option<u64>;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn command(&self) -> Command {
        if self.incr {
            Command::Incr
        } else {
            Command::Decr
        }
    }

    fn key(&self) -> &[u8] {
        self.key.as_ref()
    }

    fn plan(&self, connection: &Connection) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        let meta = connection.meta();
        Ok(match self.noreply {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaArith } else { Kind::Arith }),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
        let (prefix, key) = (self.inner().config.keys.prefix(), self.key.as_ref());
        let (incr, delta, noreply) = (self.incr, self.delta, plan.noreply_flag());
        if plan.meta {
            request::meta_arith(buf, incr, prefix, key, delta, noreply, opaque);
        } else {
            request::arith(buf, incr, prefix, key, delta, noreply);
        }
    }

    fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<Option<u64>> {
        let Some(reply) = reply else {
            return Ok(None);
        };
        match reply? {
            Response::Number(n) => Ok(Some(n)),
            Response::Status(Status::NotFound) => Ok(None),
            other => Err(mismatched(&other)),
        }
    }
}
one_request_future!(
    /// The future of [`Arith`] (`incr`, `decr`).
    ArithFuture for Arith<K> => Option<u64>
);

impl Client {
    /// Adds `delta` to a decimal value (wrapping at 2^64). `None` when the key is missing.
    /// Waits for the reply by default.
    ///
    /// # Errors
    /// [`Error::Client`](crate::Error::Client) when the value is not a number; connection or timeout errors.
    pub fn incr<K: AsRef<[u8]>>(&self, key: K, delta: u64) -> Arith<'_, K> {
        Arith {
            client: self,
            incr: true,
            key,
            delta,
            noreply: false,
        }
    }

    /// Subtracts `delta` from a decimal value (stopping at 0). `None` when the key is
    /// missing. Waits for the reply by default.
    ///
    /// # Errors
    /// As [`incr`](Self::incr).
    pub fn decr<K: AsRef<[u8]>>(&self, key: K, delta: u64) -> Arith<'_, K> {
        Arith {
            client: self,
            incr: false,
            key,
            delta,
            noreply: false,
        }
    }
}
