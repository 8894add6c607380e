//! Writes: `set`, `add`, `replace`, `append`, `prepend`, `cas`, `set_many`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tracing::Span;

use super::multi::join_all;
use super::one::{poll_one, OneRequest, OneState};
use super::span;
use super::{batch_size, many, store_status, Plan};
use crate::client::{mismatched, Client, Inner};
use crate::cluster::Group;
use crate::connection::Connection;
use crate::error::Result;
use crate::metrics::Command;
use crate::protocol::request::{self, StoreCommand};
use crate::protocol::response::{Expect, Kind, Opaque, Response, Status};
use crate::value::{CasOutcome, CasToken};

/// The [`OneRequest`] of a storage command (`Store`: `set` and its siblings; `Cas`): its
/// command, whether it goes noreply, and what it makes of the server's status (`None`
/// when sent noreply).
macro_rules! store_request {
    ($name:ident => $out:ty,
     command: |$c:ident| $command:expr,
     noreply: |$n:ident| $noreply:expr,
     outcome: |$status:ident| $outcome:expr) => {
        impl<'a, K, V> OneRequest<'a> for $name<'a, K, V>
        where
            K: AsRef<[u8]> + Send + Sync + 'a,
            V: AsRef<[u8]> + Send + Sync + 'a,
        {
            type Output = $out;

            fn inner(&self) -> &'a Inner {
                &self.client.inner
            }

            fn command(&self) -> Command {
                let $c = self;
                command_of($command)
            }

            fn key(&self) -> &[u8] {
                self.key.as_ref()
            }

            fn plan(&self, connection: &Connection) -> Result<Plan> {
                let $n = self;
                self.inner()
                    .store_plan(connection, self.key.as_ref(), $noreply)
            }

            fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque) {
                let $c = self;
                let item = (self.key.as_ref(), self.value.as_ref(), self.flags, self.ttl);
                self.inner().encode_store(plan, $command, item, buf, opaque);
            }

            fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<$out> {
                let $status = store_status(reply)?;
                $outcome
            }
        }
    };
}

/// The command a storage request is, for its span and metrics.
fn command_of(command: StoreCommand) -> Command {
    match command {
        StoreCommand::Set => Command::Set,
        StoreCommand::Add => Command::Add,
        StoreCommand::Replace => Command::Replace,
        StoreCommand::Append => Command::Append,
        StoreCommand::Prepend => Command::Prepend,
        StoreCommand::Cas(_) => Command::Cas,
    }
}

/// The encoder of the storage commands in the protocol in use (the last argument is the
/// opaque token, which classic commands do not carry).
type StoreEncoder = fn(&mut BytesMut, StoreCommand, &[u8], &[u8], u32, u32, &[u8], bool, Opaque);

fn store_encoder(meta: bool) -> StoreEncoder {
    #[allow(clippy::too_many_arguments)]
    fn classic(
        buf: &mut BytesMut,
        command: StoreCommand,
        prefix: &[u8],
        key: &[u8],
        flags: u32,
        ttl: u32,
        data: &[u8],
        noreply: bool,
        _opaque: Opaque,
    ) {
        request::store(buf, command, prefix, key, flags, ttl, data, noreply);
    }
    if meta {
        request::meta_store
    } else {
        classic
    }
}

impl Inner {
    /// Writes a storage command as `plan` says; `item` is its key, data, flags and ttl.
    fn encode_store(
        &self,
        plan: &Plan,
        command: StoreCommand,
        item: (&[u8], &[u8], u32, u32),
        buf: &mut BytesMut,
        opaque: Opaque,
    ) {
        let (key, data, flags, ttl) = item;
        let prefix = self.config.keys.prefix();
        let store = store_encoder(plan.meta);
        store(
            buf,
            command,
            prefix,
            key,
            flags,
            ttl,
            data,
            plan.noreply_flag(),
            opaque,
        );
    }

    /// How a storage command (`set`/`add`/`replace`/`append`/`prepend`/`cas`) goes out on
    /// `connection` (its key's server's).
    fn store_plan(&self, connection: &Connection, key: &[u8], noreply: bool) -> Result<Plan> {
        self.config.keys.check(key)?;
        let meta = connection.meta();
        Ok(match noreply {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaStore } else { Kind::Store }),
        })
    }
}

/// `set` / `add` / `replace` / `append` / `prepend`: see [`Client::set`] and its siblings.
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Store<'a, K, V> {
    client: &'a Client,
    command: StoreCommand,
    key: K,
    value: V,
    flags: u32,
    ttl: u32,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>, V: AsRef<[u8]>> Store<'a, K, V> {
    /// The client flags stored with the value (default 0). `append`/`prepend` ignore them.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Time to live in seconds (default 0: no expiry). Over 30 days (2,592,000 s) memcached
    /// reads it as an absolute unix time. `append`/`prepend` ignore it.
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = seconds;
        self
    }

    /// Overrides the client's [`default_noreply`](crate::ClientBuilder::default_noreply) for
    /// this call. With noreply the call returns `true` once the request is handed to the
    /// connection, without waiting, and a failure is never reported.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }
}

store_request!(Store => bool,
    command: |store| store.command,
    noreply: |store| store.inner().noreply(store.noreply),
    outcome: |status| Ok(matches!(status, None | Some(Status::Stored))));
one_request_future!(
    /// The future of [`Store`] (`set`, `add`, `replace`, `append`, `prepend`).
    StoreFuture for Store<K, V> => bool
);

/// `cas`: see [`Client::cas`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Cas<'a, K, V> {
    client: &'a Client,
    key: K,
    value: V,
    token: CasToken,
    flags: u32,
    ttl: u32,
    noreply: bool,
}

impl<'a, K: AsRef<[u8]>, V: AsRef<[u8]>> Cas<'a, K, V> {
    /// The client flags stored with the value (default 0).
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Time to live in seconds (default 0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = seconds;
        self
    }

    /// Sends with `noreply` (default off): the call then returns
    /// [`CasOutcome::Stored`] without knowing, as pymemcache returns `True`.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = on;
        self
    }
}

store_request!(Cas => CasOutcome,
command: |cas| StoreCommand::Cas(cas.token.0),
noreply: |cas| cas.noreply,
outcome: |status| match status {
    None | Some(Status::Stored) => Ok(CasOutcome::Stored),
    Some(Status::Exists) => Ok(CasOutcome::Exists),
    Some(Status::NotFound) => Ok(CasOutcome::NotFound),
    Some(other) => Err(mismatched(&Response::Status(other))),
});
one_request_future!(
    /// The future of [`Cas`].
    CasFuture for Cas<K, V> => CasOutcome
);

/// Many `set`s in one write: see [`Client::set_many`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct SetMany<'a, K, V> {
    client: &'a Client,
    items: Vec<(K, V)>,
    flags: u32,
    ttl: u32,
    noreply: Option<bool>,
}

impl<'a, K: AsRef<[u8]>, V: AsRef<[u8]>> SetMany<'a, K, V> {
    /// The client flags stored with every value (default 0).
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Time to live in seconds for every value (default 0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = seconds;
        self
    }

    /// Overrides the client's default noreply for this call. With noreply the call returns
    /// an empty list (nothing known to have failed) without waiting.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    fn span(&self) -> Span {
        span::many(Command::SetMany, self.items.len())
    }

    async fn run(self) -> Result<Vec<K>> {
        let inner = &self.client.inner;
        for (key, _) in &self.items {
            inner.config.keys.check(key.as_ref())?;
        }
        batch_size(self.items.len())?;
        if self.items.is_empty() {
            return Ok(Vec::new());
        }
        let groups = inner.cluster.split(
            &self.items,
            |(key, _)| key.as_ref(),
            |(key, value)| (key.as_ref(), value.as_ref()),
        );
        let connections = inner.cluster.connections();
        span::spread(true, groups.iter().map(|group| &connections[group.server]));
        let not_stored = if let [group] = &groups[..] {
            // One server (its members are every item, in order): nothing to merge.
            match self
                .store_group(&connections[group.server], &group.items)
                .await
            {
                Ok(failed) => failed,
                Err(error) if inner.config.ignore_exc && inner.cluster.several() => {
                    tracing::debug!(%error, "ignore_exc: the server's keys were not stored");
                    group.members.clone()
                }
                Err(error) => return Err(error),
            }
        } else {
            self.store_groups(&groups).await?
        };
        drop(groups);
        let mut next = not_stored.into_iter().peekable();
        let mut failed = Vec::new();
        for (at, (key, _)) in self.items.into_iter().enumerate() {
            if next.next_if_eq(&at).is_some() {
                failed.push(key);
            }
        }
        Ok(failed)
    }

    /// The groups of several servers stored together: the positions not stored, in
    /// order.
    async fn store_groups(&self, groups: &[Group<(&[u8], &[u8])>]) -> Result<Vec<usize>> {
        let inner = &self.client.inner;
        let connections = inner.cluster.connections();
        let calls = groups
            .iter()
            .map(|group| self.store_group(&connections[group.server], &group.items))
            .collect();
        let results = join_all(calls).await;
        let mut not_stored = Vec::new();
        for (group, result) in groups.iter().zip(results) {
            match result {
                Ok(failed) => not_stored.extend(failed.into_iter().map(|at| group.members[at])),
                // As pymemcache's HashClient: with several servers, ignore_exc reports a
                // failed server's keys as not stored.
                Err(error) if inner.config.ignore_exc => {
                    tracing::debug!(%error, "ignore_exc: the server's keys were not stored");
                    not_stored.extend_from_slice(&group.members);
                }
                Err(error) => return Err(error),
            }
        }
        not_stored.sort_unstable();
        Ok(not_stored)
    }

    /// One server's part: its `items` in one write; the positions of those not stored.
    async fn store_group(
        &self,
        connection: &Connection,
        items: &[(&[u8], &[u8])],
    ) -> Result<Vec<usize>> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let len = items
            .iter()
            .map(|(key, value)| request::store_len(keys.wire_len(key), value.len()))
            .sum();
        let count = batch_size(items.len())?;
        let noreply = inner.noreply(self.noreply);
        let meta = connection.meta();
        let (set, prefix, flags, ttl) = (StoreCommand::Set, keys.prefix(), self.flags, self.ttl);
        let encode = |buf: &mut BytesMut, first: Opaque| {
            buf.reserve(len);
            let store = store_encoder(meta);
            for (opaque, (key, data)) in (0..).map(|i| first.wrapping_add(i)).zip(items) {
                store(buf, set, prefix, key, flags, ttl, data, noreply, opaque);
            }
        };
        if noreply {
            connection
                .send_noreply(Command::SetMany, meta, count, encode)
                .await?;
            return Ok(Vec::new());
        }
        let expect = Expect {
            kind: if meta { Kind::MetaStore } else { Kind::Store },
            count,
            opaque: None,
            items: 1,
        };
        let replies = many(
            connection.request(Command::SetMany, expect, encode).await?,
            count,
        );
        let mut failed = Vec::new();
        for (at, reply) in replies
            .map_err(|error| connection.name(error))?
            .into_iter()
            .enumerate()
        {
            match reply {
                Response::Status(Status::Stored) => {}
                Response::Status(_) => failed.push(at),
                Response::Failed(error) => return Err(connection.name(error)),
                other => return Err(connection.name(mismatched(&other))),
            }
        }
        Ok(failed)
    }
}
command_future!(SetMany<K, V> => Vec<K>, where K: AsRef<[u8]> + Send + Sync + 'a, V: AsRef<[u8]> + Send + Sync + 'a);

impl Client {
    fn store<K, V>(&self, command: StoreCommand, key: K, value: V) -> Store<'_, K, V> {
        Store {
            client: self,
            command,
            key,
            value,
            flags: 0,
            ttl: 0,
            noreply: None,
        }
    }

    /// Stores a value. Returns `true` when stored. noreply by default: the call then returns
    /// `true` once the request is handed to the connection, and a failure (for example a
    /// value over the server's item size) is silently lost, as in pymemcache; use
    /// `.noreply(false)` to learn the outcome.
    ///
    /// # Errors
    /// Illegal key; connection or timeout errors; server errors when not noreply.
    pub fn set<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: K, value: V) -> Store<'_, K, V> {
        self.store(StoreCommand::Set, key, value)
    }

    /// Stores a value only if the key is absent: `false` (`NOT_STORED`) when it exists.
    /// noreply by default, as [`set`](Self::set).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn add<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: K, value: V) -> Store<'_, K, V> {
        self.store(StoreCommand::Add, key, value)
    }

    /// Stores a value only if the key exists: `false` when it does not. noreply by default.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn replace<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: K, value: V) -> Store<'_, K, V> {
        self.store(StoreCommand::Replace, key, value)
    }

    /// Appends bytes to an existing value: `false` when the key does not exist. noreply by
    /// default.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn append<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: K, value: V) -> Store<'_, K, V> {
        self.store(StoreCommand::Append, key, value)
    }

    /// Prepends bytes to an existing value: `false` when the key does not exist. noreply by
    /// default.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn prepend<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, key: K, value: V) -> Store<'_, K, V> {
        self.store(StoreCommand::Prepend, key, value)
    }

    /// Stores a value only if it has not changed since `token` was read by
    /// [`gets`](Self::gets). Waits for the reply by default.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn cas<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        key: K,
        value: V,
        token: CasToken,
    ) -> Cas<'_, K, V> {
        Cas {
            client: self,
            key,
            value,
            token,
            flags: 0,
            ttl: 0,
            noreply: false,
        }
    }

    /// Stores many values in one write per server (every server's written before any
    /// reply is awaited). Returns the keys that were not stored (none with noreply, the
    /// default). Every key is checked before anything is sent.
    ///
    /// # Errors
    /// As [`set`](Self::set); the first server error among the replies (naming the server,
    /// with several). With several servers and
    /// [`ignore_exc`](crate::ClientBuilder::ignore_exc), a server that fails has its keys
    /// returned as not stored instead (noreply included), as pymemcache's `HashClient`
    /// does; the others' keys are stored.
    pub fn set_many<K, V, I>(&self, items: I) -> SetMany<'_, K, V>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        SetMany {
            client: self,
            items: items.into_iter().collect(),
            flags: 0,
            ttl: 0,
            noreply: None,
        }
    }
}
