//! Reads: `get`, `gets`, `gat`, `gats`, `get_many`, `gets_many`.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tracing::{Instrument, Span};

use super::multi::{join_all, Partial, Partially};
use super::one::{poll_one, OneRequest, OneState};
use super::span;
use super::Plan;
use crate::address::ServerAddr;
use crate::client::{mismatched, Client, Inner};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Expect, Item, Kind, Opaque, Response, BUSY, STALE, WON};
use crate::value::{CasToken, Value};

/// The [`OneRequest`] of a single-key retrieval (`get`, `gets`, `gat`, `gats`): whether it
/// asks for the CAS unique, the ttl it sets, and what it makes of the hit.
macro_rules! retrieval {
    ($name:ident => $out:ty, cas: $cas:expr, touch: |$cmd:ident| $touch:expr, hit: $hit:expr) => {
        impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for $name<'a, K> {
            type Output = $out;

            const LEARNS_PROTOCOL: bool = true;

            fn inner(&self) -> &'a Inner {
                &self.client.inner
            }

            fn command(&self) -> Command {
                Command::$name
            }

            fn key(&self) -> &[u8] {
                self.key.as_ref()
            }

            fn plan(&self, connection: &Connection) -> Result<Plan> {
                self.inner().config.keys.check(self.key.as_ref())?;
                let meta = connection.meta();
                Ok(Plan::reply(meta, one_kind(meta)))
            }

            fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
                let $cmd = self;
                let encode = self
                    .inner()
                    .one_encoder(self.key.as_ref(), plan.meta, $cas, $touch);
                encode(buf, opaque);
            }

            fn finish(self, plan: &Plan, reply: Option<Result<Response>>) -> Result<$out> {
                let reply = reply.unwrap_or_else(|| Err(Error::UnexpectedClose));
                let hit = self.inner().one_hit(plan.meta, reply)?;
                hit.map($hit).transpose()
            }
        }
    };
}

impl Inner {
    /// `get`/`gets` of one key on `connection` (the key's server's), for the commands
    /// built on it.
    pub(super) async fn fetch_one(
        &self,
        connection: &Connection,
        key: &[u8],
        cas: bool,
    ) -> Result<Option<Item>> {
        self.config.keys.check(key)?;
        let meta = connection.meta();
        let encode = self.one_encoder(key, meta, cas, None);
        let command = if cas { Command::Gets } else { Command::Get };
        let result = connection
            .request(command, Expect::one(one_kind(meta)), encode)
            .await;
        self.one_hit(meta, result)
    }

    /// The encoder of a single-key retrieval (`mg`, or classic `get`/`gets`/`gat`/`gats`).
    fn one_encoder<'k>(
        &'k self,
        key: &'k [u8],
        meta: bool,
        cas: bool,
        touch: Option<u32>,
    ) -> impl FnOnce(&mut BytesMut, Opaque) + 'k {
        let prefix = self.config.keys.prefix();
        move |buf: &mut BytesMut, opaque| {
            if meta {
                request::meta_get(buf, prefix, key, true, cas, touch, None, opaque);
            } else {
                request::retrieve(buf, cas, touch, prefix, [key]);
            }
        }
    }

    /// The hit of a single-key retrieval, from its reply (the connection has checked that
    /// the reply is this request's: its key, over classic, or its opaque token, over meta).
    fn one_hit(&self, meta: bool, reply: Result<Response>) -> Result<Option<Item>> {
        let result = match reply {
            Ok(Response::Value(hit)) => match hit {
                // Another client's lease placeholder (`W`/`Z` without `X`): the value is
                // being recomputed and does not exist yet.
                Some(item) if meta && is_placeholder(&item) => Ok(None),
                hit => Ok(hit),
            },
            Ok(other) => Err(mismatched(&other)),
            Err(error) => Err(error),
        };
        self.miss_on_error(result)
    }

    /// A multi-key `get`/`gets`: every key checked first; then one request per server,
    /// all handed over before any reply is awaited; the hits lined up with the keys they
    /// answer (by each connection, which checks that each hit answers a key asked for),
    /// with the errors of the servers that failed.
    async fn fetch_many<K: AsRef<[u8]>>(&self, keys: &[K], cas: bool) -> Result<Fetched> {
        for key in keys {
            self.config.keys.check(key.as_ref())?;
        }
        let mut fetched = Fetched {
            found: Vec::new(),
            errors: Vec::new(),
        };
        if keys.is_empty() {
            return Ok(fetched);
        }
        let groups = self.cluster.split(keys, AsRef::as_ref, AsRef::as_ref);
        let connections = self.cluster.connections();
        span::spread(false, groups.iter().map(|group| &connections[group.server]));
        if let [group] = &groups[..] {
            // One server (its members are every key, in order): nothing to merge.
            let connection = &connections[group.server];
            match self.fetch_group(connection, &group.items, cas).await {
                Ok(found) => fetched.found = found,
                Err(error) => {
                    fetched.found = keys.iter().map(|_| None).collect();
                    fetched.errors.push((connection.addr().clone(), error));
                }
            }
            return Ok(fetched);
        }
        let calls = groups
            .iter()
            .map(|group| self.fetch_group(&connections[group.server], &group.items, cas))
            .collect();
        let results = join_all(calls).await;
        fetched.found = keys.iter().map(|_| None).collect();
        for (group, result) in groups.into_iter().zip(results) {
            match result {
                Ok(hits) => {
                    for (at, hit) in group.members.into_iter().zip(hits) {
                        fetched.found[at] = hit;
                    }
                }
                Err(error) => {
                    let server = connections[group.server].addr().clone();
                    fetched.errors.push((server, error));
                }
            }
        }
        Ok(fetched)
    }

    /// One server's part of a multi-key read: one classic `get`/`gets` of `keys`.
    async fn fetch_group<K: AsRef<[u8]>>(
        &self,
        connection: &Connection,
        keys: &[K],
        cas: bool,
    ) -> Result<Vec<Option<Item>>> {
        let rules = &self.config.keys;
        let len: usize = keys
            .iter()
            .map(|key| 1 + rules.wire_len(key.as_ref()))
            .sum();
        let encode = |buf: &mut BytesMut, _| {
            buf.reserve(8 + len);
            let keys = keys.iter().map(AsRef::as_ref);
            request::retrieve(buf, cas, None, rules.prefix(), keys);
        };
        let command = if cas {
            Command::GetsMany
        } else {
            Command::GetMany
        };
        match connection
            .request(command, Expect::one(Kind::Values), encode)
            .await?
        {
            Response::Found(found) if found.len() == keys.len() => Ok(found),
            Response::Value(hit) if keys.len() == 1 => Ok(vec![hit]),
            other => Err(connection.name(mismatched(&other))),
        }
    }

    /// The hits of a multi-key read, when no server failed or `ignore_exc` makes the
    /// failed servers' keys misses; else the first failed server's error.
    fn hits(&self, fetched: Fetched) -> Result<Vec<Option<Item>>> {
        let Some((_, first)) = fetched.errors.first() else {
            return Ok(fetched.found);
        };
        if !self.config.ignore_exc {
            return Err(first.clone());
        }
        for (server, error) in &fetched.errors {
            tracing::debug!(%server, %error, "ignore_exc: the server's keys are misses");
        }
        Ok(fetched.found)
    }
}

/// What a multi-key read got: a hit or a miss for each key, in the order asked (a miss
/// for each key of a failed server), and the failed servers' errors.
struct Fetched {
    found: Vec<Option<Item>>,
    errors: Vec<(ServerAddr, Error)>,
}

/// The reply kind of a single-key retrieval.
fn one_kind(meta: bool) -> Kind {
    if meta {
        Kind::MetaGet
    } else {
        Kind::Values
    }
}

/// An empty value that a lease created on a miss (`mg ... N`): memcached marks it `W` (to
/// the client that won the lease) or `Z` (to everyone after), and not `X` (a stale value
/// that was invalidated, which holds real data); it has no flags. (A real value inside its
/// refresh-ahead window is marked `W`/`Z` too; only an empty one without flags is taken
/// for a placeholder.)
pub(super) fn is_placeholder(item: &Item) -> bool {
    item.lease & (WON | BUSY) != 0
        && item.lease & STALE == 0
        && item.data.is_empty()
        && item.flags == 0
}

fn into_map<K: Eq + Hash, T>(
    keys: Vec<K>,
    found: Vec<Option<Item>>,
    mut convert: impl FnMut(Item) -> Result<T>,
) -> Result<HashMap<K, T>> {
    let mut map = HashMap::with_capacity(found.iter().flatten().count());
    for (key, item) in keys.into_iter().zip(found) {
        if let Some(item) = item {
            map.insert(key, convert(item)?);
        }
    }
    Ok(map)
}

/// `get <key>`: see [`Client::get`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Get<'a, K> {
    client: &'a Client,
    key: K,
}

retrieval!(Get => Option<Value>, cas: false, touch: |_get| None, hit: |item| Ok(item.value()));
one_request_future!(
    /// The future of [`Get`].
    GetFuture for Get<K> => Option<Value>
);

/// `gets <key>`: see [`Client::gets`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gets<'a, K> {
    client: &'a Client,
    key: K,
}

retrieval!(Gets => Option<(Value, CasToken)>, cas: true, touch: |_gets| None, hit: Item::value_and_token);
one_request_future!(
    /// The future of [`Gets`].
    GetsFuture for Gets<K> => Option<(Value, CasToken)>
);

/// `gat <exptime> <key>`: see [`Client::gat`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gat<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
}

retrieval!(Gat => Option<Value>, cas: false, touch: |gat| Some(gat.ttl), hit: |item| Ok(item.value()));
one_request_future!(
    /// The future of [`Gat`].
    GatFuture for Gat<K> => Option<Value>
);

/// `gats <exptime> <key>`: see [`Client::gats`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gats<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
}

retrieval!(Gats => Option<(Value, CasToken)>, cas: true, touch: |gats| Some(gats.ttl), hit: Item::value_and_token);
one_request_future!(
    /// The future of [`Gats`].
    GatsFuture for Gats<K> => Option<(Value, CasToken)>
);

/// `get <key>*`: see [`Client::get_many`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct GetMany<'a, K> {
    client: &'a Client,
    keys: Vec<K>,
}

impl<'a, K: AsRef<[u8]> + Eq + Hash> GetMany<'a, K> {
    /// The hits together with the errors of the servers that failed, instead of failing
    /// the call (or, with `ignore_exc`, hiding them): see [`Partial`].
    pub fn partial(self) -> Partially<Self> {
        Partially(self)
    }

    fn span(&self) -> Span {
        span::many(Command::GetMany, self.keys.len())
    }

    async fn run(self) -> Result<HashMap<K, Value>> {
        let inner = &self.client.inner;
        let found = inner.hits(inner.fetch_many(&self.keys, false).await?)?;
        into_map(self.keys, found, |item| Ok(item.value()))
    }

    pub(super) async fn run_partial(self) -> Result<Partial<HashMap<K, Value>>> {
        let fetched = self.client.inner.fetch_many(&self.keys, false).await?;
        Ok(Partial {
            hits: into_map(self.keys, fetched.found, |item| Ok(item.value()))?,
            errors: fetched.errors,
        })
    }
}
command_future!(GetMany<K> => HashMap<K, Value>, where K: AsRef<[u8]> + Eq + Hash + Send + Sync + 'a);

/// `gets <key>*`: see [`Client::gets_many`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct GetsMany<'a, K> {
    client: &'a Client,
    keys: Vec<K>,
}

impl<'a, K: AsRef<[u8]> + Eq + Hash> GetsMany<'a, K> {
    /// The hits together with the errors of the servers that failed: see
    /// [`GetMany::partial`].
    pub fn partial(self) -> Partially<Self> {
        Partially(self)
    }

    fn span(&self) -> Span {
        span::many(Command::GetsMany, self.keys.len())
    }

    async fn run(self) -> Result<HashMap<K, (Value, CasToken)>> {
        let inner = &self.client.inner;
        let found = inner.hits(inner.fetch_many(&self.keys, true).await?)?;
        into_map(self.keys, found, Item::value_and_token)
    }

    pub(super) async fn run_partial(self) -> Result<Partial<HashMap<K, (Value, CasToken)>>> {
        let fetched = self.client.inner.fetch_many(&self.keys, true).await?;
        Ok(Partial {
            hits: into_map(self.keys, fetched.found, Item::value_and_token)?,
            errors: fetched.errors,
        })
    }
}
command_future!(GetsMany<K> => HashMap<K, (Value, CasToken)>, where K: AsRef<[u8]> + Eq + Hash + Send + Sync + 'a);

/// Implements `IntoFuture` for the `Partially` form of a multi-key read whose `run_partial`
/// returns `Partial<$out>`.
macro_rules! partial_future {
    ($name:ident<$($g:ident),*> => $out:ty, where $($bound:tt)*) => {
        impl<'a, $($g),*> IntoFuture for Partially<$name<'a, $($g),*>> where $($bound)* {
            type Output = Result<Partial<$out>>;
            type IntoFuture = super::CommandFuture<'a, Partial<$out>>;

            fn into_future(self) -> Self::IntoFuture {
                let span = self.0.span();
                Box::pin(self.0.run_partial().instrument(span))
            }
        }
    };
}

partial_future!(GetMany<K> => HashMap<K, Value>, where K: AsRef<[u8]> + Eq + Hash + Send + Sync + 'a);
partial_future!(GetsMany<K> => HashMap<K, (Value, CasToken)>, where K: AsRef<[u8]> + Eq + Hash + Send + Sync + 'a);

impl Client {
    /// Reads one value. A miss is `Ok(None)`.
    ///
    /// # Errors
    /// Illegal key; connection, timeout or server errors (misses with
    /// [`ignore_exc`](crate::ClientBuilder::ignore_exc)).
    pub fn get<K: AsRef<[u8]>>(&self, key: K) -> Get<'_, K> {
        Get { client: self, key }
    }

    /// Reads one value with its CAS token, for a later [`cas`](Self::cas).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn gets<K: AsRef<[u8]>>(&self, key: K) -> Gets<'_, K> {
        Gets { client: self, key }
    }

    /// Reads one value and sets its time to live to `ttl` seconds (0: no expiry) in one step.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn gat<K: AsRef<[u8]>>(&self, key: K, ttl: u32) -> Gat<'_, K> {
        Gat {
            client: self,
            key,
            ttl,
        }
    }

    /// [`gat`](Self::gat) that also returns the CAS token.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn gats<K: AsRef<[u8]>>(&self, key: K, ttl: u32) -> Gats<'_, K> {
        Gats {
            client: self,
            key,
            ttl,
        }
    }

    /// Reads many values in one request per server. The map holds the hits only, keyed by
    /// the keys as given (without the client's prefix). Every key is checked before
    /// anything is sent: one bad key fails the call and sends nothing. With several
    /// servers, every server's request is sent before any reply is awaited (one round trip
    /// in all); [`GetMany::partial`] keeps the hits of the servers that answered when
    /// another fails.
    ///
    /// # Errors
    /// As [`get`](Self::get); with several servers, the first failed server's error
    /// ([`Error::AtServer`](crate::Error::AtServer)); with `ignore_exc`, a failed
    /// server's keys are misses instead.
    pub fn get_many<K, I>(&self, keys: I) -> GetMany<'_, K>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]> + Eq + Hash,
    {
        GetMany {
            client: self,
            keys: keys.into_iter().collect(),
        }
    }

    /// [`get_many`](Self::get_many) with CAS tokens.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn gets_many<K, I>(&self, keys: I) -> GetsMany<'_, K>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]> + Eq + Hash,
    {
        GetsMany {
            client: self,
            keys: keys.into_iter().collect(),
        }
    }
}
