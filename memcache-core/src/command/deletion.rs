//! `delete`, `delete_many` and `touch`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tracing::Span;

use super::multi::join_all;
use super::one::{poll_one, OneRequest, OneState};
use super::span;
use super::{batch_size, found, many, Plan};
use crate::client::{mismatched, Client, Inner};
use crate::connection::Connection;
use crate::error::Result;
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Expect, Kind, Opaque, Response, Status};

/// `delete <key>`: see [`Client::delete`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Delete<'a, K> {
    client: &'a Client,
    key: K,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>> Delete<'a, K> {
    /// Overrides the client's default noreply for this call (noreply returns `true`
    /// without waiting).
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Delete<'a, K> {
    type Output = bool;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn command(&self) -> Command {
        Command::Delete
    }

    fn key(&self) -> &[u8] {
        self.key.as_ref()
    }

    fn plan(&self, connection: &Connection) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        let meta = connection.meta();
        Ok(match inner.noreply(self.noreply) {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaDelete } else { Kind::Delete }),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
        let prefix = self.inner().config.keys.prefix();
        let key = self.key.as_ref();
        encode_delete(buf, plan.meta, prefix, key, plan.noreply_flag(), opaque);
    }

    fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<bool> {
        found(reply, Status::Deleted)
    }
}
one_request_future!(
    /// The future of [`Delete`].
    DeleteFuture for Delete<K> => bool
);

/// `md <key> I [T<ttl>]`: see [`Client::invalidate`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Invalidate<'a, K> {
    client: &'a Client,
    key: K,
    ttl: Option<u32>,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>> Invalidate<'a, K> {
    /// How many more seconds the stale value is kept (to be served while one reader
    /// recomputes it); by default it keeps the time it had left.
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Overrides the client's default noreply for this call (noreply returns `true`
    /// without waiting; over meta it is quiet, so a failure is still reported).
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Invalidate<'a, K> {
    type Output = bool;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn command(&self) -> Command {
        Command::Invalidate
    }

    fn key(&self) -> &[u8] {
        self.key.as_ref()
    }

    fn plan(&self, connection: &Connection) -> Result<Plan> {
        Delete {
            client: self.client,
            key: self.key.as_ref(),
            noreply: self.noreply,
        }
        .plan(connection)
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
        let prefix = self.inner().config.keys.prefix();
        let (key, noreply) = (self.key.as_ref(), plan.noreply_flag());
        if plan.meta {
            request::meta_invalidate(buf, prefix, key, self.ttl, noreply, opaque);
        } else {
            request::delete(buf, prefix, key, noreply);
        }
    }

    fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<bool> {
        found(reply, Status::Deleted)
    }
}
one_request_future!(
    /// The future of [`Invalidate`].
    InvalidateFuture for Invalidate<K> => bool
);

/// `md <key> [q] O<opaque>` or `delete <key> [noreply]`.
fn encode_delete(
    buf: &mut BytesMut,
    meta: bool,
    prefix: &[u8],
    key: &[u8],
    noreply: bool,
    opaque: Opaque,
) {
    if meta {
        request::meta_delete(buf, prefix, key, noreply, opaque);
    } else {
        request::delete(buf, prefix, key, noreply);
    }
}

/// Many `delete`s in one write: see [`Client::delete_many`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct DeleteMany<'a, K> {
    client: &'a Client,
    keys: Vec<K>,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>> DeleteMany<'a, K> {
    /// Overrides the client's default noreply for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    fn span(&self) -> Span {
        span::many(Command::DeleteMany, self.keys.len())
    }

    async fn run(self) -> Result<()> {
        let inner = &self.client.inner;
        for key in &self.keys {
            inner.config.keys.check(key.as_ref())?;
        }
        batch_size(self.keys.len())?;
        if self.keys.is_empty() {
            return Ok(());
        }
        let groups = inner
            .cluster
            .split(&self.keys, AsRef::as_ref, AsRef::as_ref);
        let connections = inner.cluster.connections();
        span::spread(true, groups.iter().map(|group| &connections[group.server]));
        if let [group] = &groups[..] {
            return self
                .delete_group(&connections[group.server], &group.items)
                .await;
        }
        let calls = groups
            .iter()
            .map(|group| self.delete_group(&connections[group.server], &group.items))
            .collect();
        join_all(calls).await.into_iter().collect()
    }

    /// One server's part: its `keys` in one write.
    async fn delete_group(&self, connection: &Connection, keys: &[&[u8]]) -> Result<()> {
        let inner = &self.client.inner;
        let rules = &inner.config.keys;
        let len: usize = keys.iter().map(|key| 20 + rules.wire_len(key)).sum();
        let count = batch_size(keys.len())?;
        let noreply = inner.noreply(self.noreply);
        let meta = connection.meta();
        let encode = |buf: &mut BytesMut, first: Opaque| {
            buf.reserve(len);
            for (opaque, key) in (0..).map(|i| first.wrapping_add(i)).zip(keys) {
                encode_delete(buf, meta, rules.prefix(), key, noreply, opaque);
            }
        };
        if noreply {
            return connection
                .send_noreply(Command::DeleteMany, meta, count, encode)
                .await;
        }
        let expect = Expect {
            kind: if meta { Kind::MetaDelete } else { Kind::Delete },
            count,
            opaque: None,
            items: 1,
        };
        let replies = many(
            connection
                .request(Command::DeleteMany, expect, encode)
                .await?,
            count,
        );
        for reply in replies.map_err(|error| connection.name(error))? {
            match reply {
                Response::Status(Status::Deleted | Status::NotFound) => {}
                Response::Failed(error) => return Err(connection.name(error)),
                other => return Err(connection.name(mismatched(&other))),
            }
        }
        Ok(())
    }
}
command_future!(DeleteMany<K> => (), where K: AsRef<[u8]> + Send + Sync + 'a);

/// `touch <key> <exptime>`: see [`Client::touch`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Touch<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>> Touch<'a, K> {
    /// Overrides the client's default noreply for this call (noreply returns `true`
    /// without waiting).
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Touch<'a, K> {
    type Output = bool;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn command(&self) -> Command {
        Command::Touch
    }

    fn key(&self) -> &[u8] {
        self.key.as_ref()
    }

    fn plan(&self, connection: &Connection) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        // Quiet `mg` answers HD for a hit on memcached 1.6.18, so a noreply touch is always
        // the classic `touch ... noreply`; an acknowledged one is `mg <key> T<ttl>` on meta.
        Ok(match (inner.noreply(self.noreply), connection.meta()) {
            (true, _) => Plan::noreply(false),
            (false, true) => Plan::reply(true, Kind::MetaTouch),
            (false, false) => Plan::reply(false, Kind::Touch),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
        let (prefix, key, ttl) = (
            self.inner().config.keys.prefix(),
            self.key.as_ref(),
            self.ttl,
        );
        if plan.meta {
            request::meta_get(buf, prefix, key, false, false, Some(ttl), None, opaque);
        } else {
            request::touch(buf, prefix, key, ttl, plan.noreply_flag());
        }
    }

    fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<bool> {
        found(reply, Status::Touched)
    }
}
one_request_future!(
    /// The future of [`Touch`].
    TouchFuture for Touch<K> => bool
);

impl Client {
    /// Deletes a key: `true` when it existed. noreply by default (then `true`).
    ///
    /// # Errors
    /// Illegal key; connection, timeout or server errors.
    pub fn delete<K: AsRef<[u8]>>(&self, key: K) -> Delete<'_, K> {
        Delete {
            client: self,
            key,
            noreply: None,
        }
    }

    /// Marks a value stale instead of deleting it (memcached's `md <key> I`), so that a
    /// write does not start a stampede: the next [`lease`](Self::lease) reader (of all
    /// clients) is told to recompute it ([`Lease::Won`](crate::Lease::Won) with the stale
    /// value), and the others read the stale value meanwhile
    /// ([`Lease::Busy`](crate::Lease::Busy) with it; a plain [`get`](Self::get) returns it
    /// as a hit) until the new one is stored. `true` when the key existed. noreply by
    /// default, as [`delete`](Self::delete).
    ///
    /// Without the meta protocol (classic servers, proxies) it is a `delete`.
    ///
    /// # Errors
    /// As [`delete`](Self::delete).
    pub fn invalidate<K: AsRef<[u8]>>(&self, key: K) -> Invalidate<'_, K> {
        Invalidate {
            client: self,
            key,
            ttl: None,
            noreply: None,
        }
    }

    /// Deletes many keys in one write. `Ok` when every reply is `DELETED` or `NOT_FOUND`
    /// (always, with noreply, the default).
    ///
    /// # Errors
    /// As [`delete`](Self::delete).
    pub fn delete_many<K, I>(&self, keys: I) -> DeleteMany<'_, K>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        DeleteMany {
            client: self,
            keys: keys.into_iter().collect(),
            noreply: None,
        }
    }

    /// Sets a key's time to live to `ttl` seconds (0: no expiry): `false` when the key is
    /// missing. noreply by default (then `true`).
    ///
    /// # Errors
    /// Illegal key; connection, timeout or server errors.
    pub fn touch<K: AsRef<[u8]>>(&self, key: K, ttl: u32) -> Touch<'_, K> {
        Touch {
            client: self,
            key,
            ttl,
            noreply: None,
        }
    }
}
