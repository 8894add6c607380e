//! The command builders. Each is created by a [`Client`](crate::Client) method, takes per-call options
//! (`.ttl()`, `.flags()`, `.noreply()`, ...) and runs when awaited (it implements
//! [`IntoFuture`](std::future::IntoFuture)). Nothing is checked or sent before the `.await`.

use std::future::Future;
use std::pin::Pin;

use crate::client::mismatched;
use crate::error::{Error, IllegalInput, Result};
use crate::protocol::response::{Expect, Item, Kind, Response, Status};
use crate::value::{CasToken, Value};

/// The future a command builder turns into.
pub type CommandFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

macro_rules! command_future {
    ($name:ident<$($g:ident),*> => $out:ty $(, where $($bound:tt)*)?) => {
        impl<'a, $($g),*> IntoFuture for $name<'a, $($g),*> $(where $($bound)*)? {
            type Output = Result<$out>;
            type IntoFuture = $crate::command::CommandFuture<'a, $out>;

            fn into_future(self) -> Self::IntoFuture {
                let span = self.span();
                Box::pin(tracing::Instrument::instrument(self.run(), span))
            }
        }
    };
}

/// How a single-request command goes out.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Encoded in the meta protocol.
    meta: bool,
    /// The reply's shape; `None` for a noreply request.
    expect: Option<Expect>,
    /// A noreply meta request, in quiet mode.
    quiet: bool,
}

impl Plan {
    /// A request answered by a reply of `kind`.
    fn reply(meta: bool, kind: Kind) -> Self {
        Plan {
            meta,
            expect: Some(Expect::one(kind)),
            quiet: false,
        }
    }

    /// A noreply request: quiet when sent over meta, so that a failure is still reported.
    fn noreply(meta: bool) -> Self {
        Plan {
            meta,
            expect: None,
            quiet: meta,
        }
    }

    fn noreply_flag(&self) -> bool {
        self.expect.is_none()
    }
}

#[macro_use]
mod one;
mod admin;
mod arith;
mod deletion;
mod lease;
mod multi;
mod retrieval;
mod span;
mod storage;

pub use admin::{Admin, FetchStats};
pub use arith::{Arith, ArithFuture};
pub use deletion::{
    Delete, DeleteFuture, DeleteMany, Invalidate, InvalidateFuture, Touch, TouchFuture,
};
pub use lease::LeaseGet;
pub use multi::{Partial, Partially};
pub use retrieval::{
    Gat, GatFuture, Gats, GatsFuture, Get, GetFuture, GetMany, Gets, GetsFuture, GetsMany,
};
pub use storage::{Cas, CasFuture, SetMany, Store, StoreFuture};

/// `true` for the status `done` (or no reply, for noreply: as pymemcache, which returns
/// `True`), `false` for `NOT_FOUND`.
fn found(reply: Option<Result<Response>>, done: Status) -> Result<bool> {
    match store_status(reply)? {
        None => Ok(true),
        Some(status) if status == done => Ok(true),
        Some(Status::NotFound) => Ok(false),
        Some(other) => Err(mismatched(&Response::Status(other))),
    }
}

/// A store-like reply (or none, for noreply) as a status.
fn store_status(reply: Option<Result<Response>>) -> Result<Option<Status>> {
    match reply {
        None => Ok(None),
        Some(reply) => match reply? {
            Response::Status(status) => Ok(Some(status)),
            other => Err(mismatched(&other)),
        },
    }
}

impl Item {
    fn value(self) -> Value {
        Value {
            data: self.data,
            flags: self.flags,
        }
    }

    fn value_and_token(self) -> Result<(Value, CasToken)> {
        let token = self
            .cas
            .ok_or_else(|| Error::UnknownResponse("gets reply without a CAS unique".into()))?;
        Ok((self.value(), CasToken(token)))
    }
}

fn batch_size(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::IllegalInput(IllegalInput::Argument(format!(
            "a batch of {n} commands is too large"
        )))
    })
}

/// The replies of a batched request, checked to be as many as were sent.
fn many(response: Response, count: u32) -> Result<Vec<Response>> {
    match response {
        Response::Many(replies) if replies.len() == count as usize => Ok(replies),
        one if count == 1 => Ok(vec![one]),
        other => Err(mismatched(&other)),
    }
}
