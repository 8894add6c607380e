//! Leases: `mg ... N`, so that one client of many recomputes a missing value.

use std::future::IntoFuture;

use bytes::BytesMut;
use tracing::Span;

use super::retrieval::is_placeholder;
use super::span;
use crate::client::{mismatched, Client};
use crate::error::Result;
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Expect, Item, Kind, Response, BUSY, STALE, WON};
use crate::value::{CasToken, Lease};

/// `mg <key> v f c N<ttl>`: see [`Client::lease`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct LeaseGet<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
    refresh: Option<u32>,
}

impl<'a, K: AsRef<[u8]>> LeaseGet<'a, K> {
    /// Refresh-ahead (memcached's `R` flag): when the value is still there but has less
    /// than `window` seconds left to live, one reader (of all the clients that read it)
    /// gets [`Lease::Refresh`]: the value, and the task of recomputing it before it
    /// expires; everyone else keeps reading it as a [`Lease::Hit`]. Ignored without the
    /// meta protocol.
    pub fn refresh_ahead(mut self, window: u32) -> Self {
        self.refresh = Some(window);
        self
    }

    fn span(&self) -> Span {
        span::many(Command::Lease, 1)
    }

    async fn run(self) -> Result<Lease> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let key = self.key.as_ref();
        keys.check(key)?;
        let connection = inner.route(key);
        span::spread(true, std::iter::once(connection));
        // A classic read would take another client's lease placeholder for a hit.
        if let Err(error) = connection.learn_protocol().await {
            return match inner.miss_on_error(Err(error)) {
                Ok(()) => Ok(Lease::Won {
                    stale: None,
                    token: None,
                }),
                Err(error) => Err(error),
            };
        }
        if !connection.meta() {
            // Without the meta protocol clients cannot coordinate: a miss means "load".
            return Ok(match inner.fetch_one(connection, key, true).await? {
                Some(item) => Lease::Hit(item.value()),
                None => Lease::Won {
                    stale: None,
                    token: None,
                },
            });
        }
        let (prefix, ttl, refresh) = (keys.prefix(), self.ttl, self.refresh);
        let encode = |buf: &mut BytesMut, opaque| {
            request::meta_lease_get(buf, prefix, key, ttl, refresh, opaque);
        };
        let result = match connection
            .request(Command::Lease, Expect::one(Kind::MetaGet), encode)
            .await
        {
            Ok(Response::Value(Some(item))) => Ok(lease_of(item)),
            Ok(Response::Value(None)) => Ok(Lease::Won {
                stale: None,
                token: None,
            }),
            Ok(other) => Err(connection.name(mismatched(&other))),
            Err(error) => Err(error),
        };
        match inner.miss_on_error(result.map(Some))? {
            Some(lease) => Ok(lease),
            // ignore_exc turned an error into a miss: the caller loads.
            None => Ok(Lease::Won {
                stale: None,
                token: None,
            }),
        }
    }
}
command_future!(LeaseGet<K> => Lease, where K: AsRef<[u8]> + Send + 'a);

/// What an `mg ... N [R]` reply means for the caller.
///
/// memcached marks an empty placeholder it created on a miss `W` (to the reader that won
/// the lease) or `Z` (to everyone after); a value invalidated by `md ... I` is `X`, with `W`
/// to its first reader and `Z` after; a value inside its refresh-ahead window is `W` to one
/// reader and `Z` after, without `X`: still good.
fn lease_of(item: Item) -> Lease {
    let placeholder = is_placeholder(&item);
    let (state, token) = (item.lease, item.cas.map(CasToken));
    let (won, busy, stale) = (state & WON != 0, state & BUSY != 0, state & STALE != 0);
    let value = item.value();
    match () {
        () if won && placeholder => Lease::Won { stale: None, token },
        () if won && stale => Lease::Won {
            stale: Some(value),
            token,
        },
        () if won => Lease::Refresh { value, token },
        () if busy && placeholder => Lease::Busy { stale: None },
        () if stale => Lease::Busy { stale: Some(value) },
        // A fresh value, perhaps being refreshed by another client (`Z` without `X`).
        () => Lease::Hit(value),
    }
}

impl Client {
    /// Reads one value, or on a miss takes a *lease* on the key for `ttl` seconds, so that
    /// of all the clients (in every process) that miss at once, one recomputes the value
    /// and the others wait or serve a stale copy: memcached's anti-stampede `mg ... N`.
    ///
    /// - [`Lease::Hit`]: a fresh value.
    /// - [`Lease::Won`]: this caller recomputes and stores the value (any store command
    ///   ends the lease). On a miss memcached creates an empty placeholder (flags 0) that
    ///   other clients' plain `get` sees until then; if recomputing fails, call
    ///   [`release_lease`](Self::release_lease) with the token to remove it.
    /// - [`Lease::Busy`]: another client holds the lease; retry shortly, or use `stale`.
    ///
    /// Without the meta protocol (classic servers, proxies) clients cannot coordinate: a
    /// miss is always `Won`. With `ignore_exc`, an error is a miss: `Won`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn lease<K: AsRef<[u8]>>(&self, key: K, ttl: u32) -> LeaseGet<'_, K> {
        LeaseGet {
            client: self,
            key,
            ttl,
            refresh: None,
        }
    }

    /// Removes the empty placeholder a [`Lease::Won`] created, if it is still there (its
    /// CAS unique still `token`), so that other clients stop waiting for a value that will
    /// not come. Quiet and fire-and-forget; does nothing without the meta protocol.
    ///
    /// # Errors
    /// Illegal key; connection or timeout errors.
    pub async fn release_lease<K: AsRef<[u8]>>(&self, key: K, token: CasToken) -> Result<()> {
        let inner = &self.inner;
        let keys = &inner.config.keys;
        let key = key.as_ref();
        keys.check(key)?;
        let connection = inner.route(key);
        if !connection.meta() {
            return Ok(());
        }
        let encode = |buf: &mut BytesMut, opaque| {
            request::meta_delete_if(buf, keys.prefix(), key, token.0, opaque);
        };
        connection
            .send_noreply(Command::ReleaseLease, true, 1, encode)
            .await
    }
}
