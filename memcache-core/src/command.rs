//! The command builders. Each is created by a [`Client`] method, takes per-call options
//! (`.ttl()`, `.flags()`, `.noreply()`, ...) and runs when awaited (it implements
//! [`IntoFuture`]). Nothing is checked or sent before the `.await`.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::client::{failed_as_err, mismatched, Client, Inner};
use crate::connection::{Reply, Sent};
use crate::error::{Error, IllegalInput, Result};
use crate::protocol::request::{self, StoreCommand};
use crate::protocol::response::{Expect, Item, Kind, Response, Status, BUSY, STALE, WON};
use crate::value::{CasOutcome, CasToken, Lease, Stats, Value};

/// The future a command builder turns into.
pub type CommandFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

macro_rules! command_future {
    ($name:ident<$($g:ident),*> => $out:ty $(, where $($bound:tt)*)?) => {
        impl<'a, $($g),*> IntoFuture for $name<'a, $($g),*> $(where $($bound)*)? {
            type Output = Result<$out>;
            type IntoFuture = CommandFuture<'a, $out>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.run())
            }
        }
    };
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

impl Inner {
    /// `get`/`gets`/`gat`/`gats` of one key. The hit, if any, is checked to be for this key.
    async fn fetch_one(&self, key: &[u8], cas: bool, touch: Option<u32>) -> Result<Option<Item>> {
        self.config.keys.check(key)?;
        let meta = self.meta();
        let encode = self.one_encoder(key, meta, cas, touch);
        let result = self.request(Expect::one(one_kind(meta)), encode).await;
        self.one_hit(meta, key, result)
    }

    /// The encoder of a single-key retrieval (`mg`, or classic `get`/`gets`/`gat`/`gats`).
    fn one_encoder<'k>(
        &'k self,
        key: &'k [u8],
        meta: bool,
        cas: bool,
        touch: Option<u32>,
    ) -> impl FnOnce(&mut BytesMut) + 'k {
        let prefix = self.config.keys.prefix();
        move |buf: &mut BytesMut| {
            if meta {
                request::meta_get(buf, prefix, key, true, cas, touch, None);
            } else {
                request::retrieve(buf, cas, touch, prefix, [key]);
            }
        }
    }

    /// The hit of a single-key retrieval, from its reply. Classic replies name the key: it
    /// is checked (`mg` replies do not carry it).
    fn one_hit(&self, meta: bool, key: &[u8], reply: Result<Response>) -> Result<Option<Item>> {
        let result = match reply {
            Ok(Response::Value(hit)) => match hit {
                Some(item) if !meta && !is_key(self.config.keys.prefix(), key, &item.key) => {
                    Err(Error::UnknownResponse("a value for another key".into()))
                }
                hit => Ok(hit),
            },
            Ok(other) => Err(mismatched(&other)),
            Err(error) => Err(error),
        };
        self.miss_on_error(result)
    }

    /// One multi-key `get`/`gets`: every key checked first, one request, the hits lined up
    /// with the keys they answer.
    async fn fetch_many<K: AsRef<[u8]>>(&self, keys: &[K], cas: bool) -> Result<Vec<Option<Item>>> {
        let rules = &self.config.keys;
        let mut len = 8;
        for key in keys {
            rules.check(key.as_ref())?;
            len += 1 + rules.wire_len(key.as_ref());
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let encode = |buf: &mut BytesMut| {
            buf.reserve(len);
            let keys = keys.iter().map(AsRef::as_ref);
            request::retrieve(buf, cas, None, rules.prefix(), keys);
        };
        let result = match self.request(Expect::one(Kind::Values), encode).await {
            Ok(Response::Values(items)) => line_up(rules.prefix(), keys, items),
            Ok(Response::Value(hit)) => line_up(rules.prefix(), keys, hit.into_iter().collect()),
            Ok(other) => Err(mismatched(&other)),
            Err(error) => Err(error),
        };
        self.miss_on_error(result)
    }
}

/// The encoder of the storage commands in the protocol in use.
type StoreEncoder = fn(&mut BytesMut, StoreCommand, &[u8], &[u8], u32, u32, &[u8], bool);

fn store_encoder(meta: bool) -> StoreEncoder {
    if meta {
        request::meta_store
    } else {
        request::store
    }
}

impl Inner {
    /// One storage command (`set`/`add`/`replace`/`append`/`prepend`/`cas`): the server's
    /// status, or `None` when sent noreply.
    async fn store_one(
        &self,
        command: StoreCommand,
        key: &[u8],
        data: &[u8],
        flags: u32,
        ttl: u32,
        noreply: bool,
    ) -> Result<Option<Status>> {
        let keys = &self.config.keys;
        keys.check(key)?;
        let meta = self.meta();
        let encode = |buf: &mut BytesMut| {
            let store = store_encoder(meta);
            store(buf, command, keys.prefix(), key, flags, ttl, data, noreply);
        };
        if noreply {
            self.send_noreply(meta, encode).await?;
            return Ok(None);
        }
        let kind = if meta { Kind::MetaStore } else { Kind::Store };
        match self.request(Expect::one(kind), encode).await? {
            Response::Status(status) => Ok(Some(status)),
            other => Err(mismatched(&other)),
        }
    }
}

/// The reply kind of a single-key retrieval.
fn one_kind(meta: bool) -> Kind {
    if meta {
        Kind::MetaGet
    } else {
        Kind::Values
    }
}

fn is_key(prefix: &[u8], key: &[u8], wire: &[u8]) -> bool {
    wire.len() == prefix.len() + key.len() && wire.starts_with(prefix) && wire.ends_with(key)
}

/// Puts each hit at the index of the key it answers. memcached answers in request order, so
/// a cursor finds each key in one pass; a hit for a key that was not asked for is an error.
fn line_up<K: AsRef<[u8]>>(
    prefix: &[u8],
    keys: &[K],
    items: Vec<Item>,
) -> Result<Vec<Option<Item>>> {
    let mut found: Vec<Option<Item>> = keys.iter().map(|_| None).collect();
    let mut cursor = 0;
    for item in items {
        let index = (cursor..keys.len())
            .chain(0..cursor)
            .find(|&i| is_key(prefix, keys[i].as_ref(), &item.key))
            .ok_or_else(|| {
                Error::UnknownResponse("a value for a key that was not requested".into())
            })?;
        cursor = index + 1;
        found[index] = Some(item);
    }
    Ok(found)
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

fn batch_size(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::IllegalInput(IllegalInput::Argument(format!(
            "a batch of {n} commands is too large"
        )))
    })
}

// ---------------------------------------------------------------------------------------
// Retrieval

/// `get <key>`: see [`Client::get`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Get<'a, K> {
    client: &'a Client,
    key: K,
}

impl<'a, K: AsRef<[u8]>> Get<'a, K> {
    async fn run(self) -> Result<Option<Value>> {
        let item = self
            .client
            .inner
            .fetch_one(self.key.as_ref(), false, None)
            .await?;
        Ok(item.map(Item::value))
    }
}

impl<'a, K: AsRef<[u8]> + Send + 'a> IntoFuture for Get<'a, K> {
    type Output = Result<Option<Value>>;
    type IntoFuture = GetFuture<'a, K>;

    fn into_future(self) -> Self::IntoFuture {
        GetFuture {
            state: GetState::Start(self),
        }
    }
}

/// The future of [`Get`]: the most frequent command has its future written out, so that
/// on a connected connection it allocates nothing (other commands' futures are boxed).
#[must_use = "futures do nothing unless polled"]
pub struct GetFuture<'a, K> {
    state: GetState<'a, K>,
}

enum GetState<'a, K> {
    /// Not polled yet.
    Start(Get<'a, K>),
    /// The request is with a connected connection: waiting for the reply.
    Wait {
        get: Get<'a, K>,
        meta: bool,
        reply: Reply,
    },
    /// The rare paths (the connection is being opened, or its queue is full): the general
    /// code, boxed.
    Slow(CommandFuture<'a, Option<Value>>),
    /// Finished.
    Done,
}

// `K` is never pinned: the state machine moves it freely.
impl<K> Unpin for GetFuture<'_, K> {}

impl<K> std::fmt::Debug for GetFuture<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetFuture").finish_non_exhaustive()
    }
}

impl<'a, K: AsRef<[u8]> + Send + 'a> Future for GetFuture<'a, K> {
    type Output = Result<Option<Value>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, GetState::Done) {
                GetState::Start(get) => {
                    let inner = &get.client.inner;
                    let key = get.key.as_ref();
                    if let Err(error) = inner.config.keys.check(key) {
                        return Poll::Ready(Err(error));
                    }
                    let meta = inner.meta();
                    let encode = inner.one_encoder(key, meta, false, None);
                    let (sent, since) = inner.start(Expect::one(one_kind(meta)), encode);
                    this.state = match sent.forget_encoder() {
                        Sent::Ready(Some(reply)) => GetState::Wait { get, meta, reply },
                        Sent::Ready(None) | Sent::Connecting(None) => {
                            let hit = inner.one_hit(meta, key, Err(Error::UnexpectedClose));
                            return Poll::Ready(hit.map(|hit| hit.map(Item::value)));
                        }
                        Sent::Connecting(Some(reply)) => GetState::Slow(Box::pin(async move {
                            let inner = &get.client.inner;
                            let reply = inner.within(since, reply).await;
                            let hit = inner.one_hit(meta, get.key.as_ref(), failed_as_err(reply));
                            Ok(hit?.map(Item::value))
                        })),
                        // Nothing was sent: the general path, from the start.
                        Sent::Full(_) => GetState::Slow(Box::pin(get.run())),
                    };
                }
                GetState::Wait {
                    get,
                    meta,
                    mut reply,
                } => {
                    let Poll::Ready(reply) = Pin::new(&mut reply).poll(cx) else {
                        this.state = GetState::Wait { get, meta, reply };
                        return Poll::Pending;
                    };
                    let inner = &get.client.inner;
                    let hit = inner.one_hit(meta, get.key.as_ref(), failed_as_err(reply));
                    return Poll::Ready(hit.map(|hit| hit.map(Item::value)));
                }
                GetState::Slow(mut slow) => {
                    let poll = slow.as_mut().poll(cx);
                    if poll.is_pending() {
                        this.state = GetState::Slow(slow);
                    }
                    return poll;
                }
                GetState::Done => panic!("GetFuture polled after it completed"),
            }
        }
    }
}

/// `gets <key>`: see [`Client::gets`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gets<'a, K> {
    client: &'a Client,
    key: K,
}

impl<'a, K: AsRef<[u8]>> Gets<'a, K> {
    async fn run(self) -> Result<Option<(Value, CasToken)>> {
        let item = self
            .client
            .inner
            .fetch_one(self.key.as_ref(), true, None)
            .await?;
        item.map(Item::value_and_token).transpose()
    }
}
command_future!(Gets<K> => Option<(Value, CasToken)>, where K: AsRef<[u8]> + Send + 'a);

/// `gat <exptime> <key>`: see [`Client::gat`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gat<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
}

impl<'a, K: AsRef<[u8]>> Gat<'a, K> {
    async fn run(self) -> Result<Option<Value>> {
        let item = self
            .client
            .inner
            .fetch_one(self.key.as_ref(), false, Some(self.ttl))
            .await?;
        Ok(item.map(Item::value))
    }
}
command_future!(Gat<K> => Option<Value>, where K: AsRef<[u8]> + Send + 'a);

/// `gats <exptime> <key>`: see [`Client::gats`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Gats<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
}

impl<'a, K: AsRef<[u8]>> Gats<'a, K> {
    async fn run(self) -> Result<Option<(Value, CasToken)>> {
        let item = self
            .client
            .inner
            .fetch_one(self.key.as_ref(), true, Some(self.ttl))
            .await?;
        item.map(Item::value_and_token).transpose()
    }
}
command_future!(Gats<K> => Option<(Value, CasToken)>, where K: AsRef<[u8]> + Send + 'a);

/// `get <key>*`: see [`Client::get_many`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct GetMany<'a, K> {
    client: &'a Client,
    keys: Vec<K>,
}

impl<'a, K: AsRef<[u8]> + Eq + Hash> GetMany<'a, K> {
    async fn run(self) -> Result<HashMap<K, Value>> {
        let found = self.client.inner.fetch_many(&self.keys, false).await?;
        into_map(self.keys, found, |item| Ok(item.value()))
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
    async fn run(self) -> Result<HashMap<K, (Value, CasToken)>> {
        let found = self.client.inner.fetch_many(&self.keys, true).await?;
        into_map(self.keys, found, Item::value_and_token)
    }
}
command_future!(GetsMany<K> => HashMap<K, (Value, CasToken)>, where K: AsRef<[u8]> + Eq + Hash + Send + Sync + 'a);

// ---------------------------------------------------------------------------------------
// Storage

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

    async fn run(self) -> Result<bool> {
        let inner = &self.client.inner;
        let noreply = inner.noreply(self.noreply);
        let (key, data) = (self.key.as_ref(), self.value.as_ref());
        let status = inner
            .store_one(self.command, key, data, self.flags, self.ttl, noreply)
            .await?;
        Ok(matches!(status, None | Some(Status::Stored)))
    }
}
command_future!(Store<K, V> => bool, where K: AsRef<[u8]> + Send + 'a, V: AsRef<[u8]> + Send + 'a);

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

    async fn run(self) -> Result<CasOutcome> {
        let (key, data) = (self.key.as_ref(), self.value.as_ref());
        let command = StoreCommand::Cas(self.token.0);
        let status = self
            .client
            .inner
            .store_one(command, key, data, self.flags, self.ttl, self.noreply)
            .await?;
        match status {
            None | Some(Status::Stored) => Ok(CasOutcome::Stored),
            Some(Status::Exists) => Ok(CasOutcome::Exists),
            Some(Status::NotFound) => Ok(CasOutcome::NotFound),
            Some(other) => Err(mismatched(&Response::Status(other))),
        }
    }
}
command_future!(Cas<K, V> => CasOutcome, where K: AsRef<[u8]> + Send + 'a, V: AsRef<[u8]> + Send + 'a);

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

    async fn run(self) -> Result<Vec<K>> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let mut len = 0;
        for (key, value) in &self.items {
            keys.check(key.as_ref())?;
            len += request::store_len(keys.wire_len(key.as_ref()), value.as_ref().len());
        }
        let count = batch_size(self.items.len())?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let noreply = inner.noreply(self.noreply);
        let meta = inner.meta();
        let (set, prefix, flags, ttl) = (StoreCommand::Set, keys.prefix(), self.flags, self.ttl);
        let items = &self.items;
        let encode = |buf: &mut BytesMut| {
            buf.reserve(len);
            let store = store_encoder(meta);
            for (key, value) in items {
                let (key, data) = (key.as_ref(), value.as_ref());
                store(buf, set, prefix, key, flags, ttl, data, noreply);
            }
        };
        if noreply {
            inner.send_noreply(meta, encode).await?;
            return Ok(Vec::new());
        }
        let expect = Expect {
            kind: if meta { Kind::MetaStore } else { Kind::Store },
            count,
        };
        let replies = many(inner.request(expect, encode).await?, count)?;
        let mut failed = Vec::new();
        for ((key, _), reply) in self.items.into_iter().zip(replies) {
            match reply {
                Response::Status(Status::Stored) => {}
                Response::Status(_) => failed.push(key),
                Response::Failed(error) => return Err(error),
                other => return Err(mismatched(&other)),
            }
        }
        Ok(failed)
    }
}
command_future!(SetMany<K, V> => Vec<K>, where K: AsRef<[u8]> + Send + Sync + 'a, V: AsRef<[u8]> + Send + Sync + 'a);

/// The replies of a batched request, checked to be as many as were sent.
fn many(response: Response, count: u32) -> Result<Vec<Response>> {
    match response {
        Response::Many(replies) if replies.len() == count as usize => Ok(replies),
        one if count == 1 => Ok(vec![one]),
        other => Err(mismatched(&other)),
    }
}

// ---------------------------------------------------------------------------------------
// Deletion, arithmetic, touch

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

    async fn run(self) -> Result<bool> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let key = self.key.as_ref();
        keys.check(key)?;
        let noreply = inner.noreply(self.noreply);
        let meta = inner.meta();
        let encode = |buf: &mut BytesMut| {
            let delete = if meta {
                request::meta_delete
            } else {
                request::delete
            };
            delete(buf, keys.prefix(), key, noreply);
        };
        if noreply {
            inner.send_noreply(meta, encode).await?;
            return Ok(true);
        }
        let kind = if meta { Kind::MetaDelete } else { Kind::Delete };
        match inner.request(Expect::one(kind), encode).await? {
            Response::Status(Status::Deleted) => Ok(true),
            Response::Status(Status::NotFound) => Ok(false),
            other => Err(mismatched(&other)),
        }
    }
}
command_future!(Delete<K> => bool, where K: AsRef<[u8]> + Send + 'a);

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

    async fn run(self) -> Result<()> {
        let inner = &self.client.inner;
        let rules = &inner.config.keys;
        let mut len = 0;
        for key in &self.keys {
            rules.check(key.as_ref())?;
            len += 20 + rules.wire_len(key.as_ref());
        }
        let count = batch_size(self.keys.len())?;
        if count == 0 {
            return Ok(());
        }
        let noreply = inner.noreply(self.noreply);
        let meta = inner.meta();
        let keys = &self.keys;
        let encode = |buf: &mut BytesMut| {
            buf.reserve(len);
            let delete = if meta {
                request::meta_delete
            } else {
                request::delete
            };
            for key in keys {
                delete(buf, rules.prefix(), key.as_ref(), noreply);
            }
        };
        if noreply {
            return inner.send_noreply(meta, encode).await;
        }
        let expect = Expect {
            kind: if meta { Kind::MetaDelete } else { Kind::Delete },
            count,
        };
        for reply in many(inner.request(expect, encode).await?, count)? {
            match reply {
                Response::Status(Status::Deleted | Status::NotFound) => {}
                Response::Failed(error) => return Err(error),
                other => return Err(mismatched(&other)),
            }
        }
        Ok(())
    }
}
command_future!(DeleteMany<K> => (), where K: AsRef<[u8]> + Send + Sync + 'a);

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

    async fn run(self) -> Result<Option<u64>> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let key = self.key.as_ref();
        keys.check(key)?;
        let meta = inner.meta();
        let (incr, prefix, noreply, delta) = (self.incr, keys.prefix(), self.noreply, self.delta);
        let encode = |buf: &mut BytesMut| {
            let arith = if meta {
                request::meta_arith
            } else {
                request::arith
            };
            arith(buf, incr, prefix, key, delta, noreply);
        };
        if noreply {
            inner.send_noreply(meta, encode).await?;
            return Ok(None);
        }
        let kind = if meta { Kind::MetaArith } else { Kind::Arith };
        match inner.request(Expect::one(kind), encode).await? {
            Response::Number(n) => Ok(Some(n)),
            Response::Status(Status::NotFound) => Ok(None),
            other => Err(mismatched(&other)),
        }
    }
}
command_future!(Arith<K> => Option<u64>, where K: AsRef<[u8]> + Send + 'a);

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

    async fn run(self) -> Result<bool> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let key = self.key.as_ref();
        keys.check(key)?;
        let noreply = inner.noreply(self.noreply);
        // Quiet `mg` answers HD for a hit on memcached 1.6.18, so a noreply touch is always
        // the classic `touch ... noreply`; an acknowledged one is `mg <key> T<ttl>` on meta.
        let meta = !noreply && inner.meta();
        let (prefix, ttl) = (keys.prefix(), self.ttl);
        let encode = |buf: &mut BytesMut| {
            if meta {
                request::meta_get(buf, prefix, key, false, false, Some(ttl), None);
            } else {
                request::touch(buf, prefix, key, ttl, noreply);
            }
        };
        if noreply {
            inner.send_noreply(false, encode).await?;
            return Ok(true);
        }
        let kind = if meta { Kind::MetaTouch } else { Kind::Touch };
        match inner.request(Expect::one(kind), encode).await? {
            Response::Status(Status::Touched) => Ok(true),
            Response::Status(Status::NotFound) => Ok(false),
            other => Err(mismatched(&other)),
        }
    }
}
command_future!(Touch<K> => bool, where K: AsRef<[u8]> + Send + 'a);

/// `mg <key> v f c N<ttl>`: see [`Client::lease`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct LeaseGet<'a, K> {
    client: &'a Client,
    key: K,
    ttl: u32,
}

impl<'a, K: AsRef<[u8]>> LeaseGet<'a, K> {
    async fn run(self) -> Result<Lease> {
        let inner = &self.client.inner;
        let keys = &inner.config.keys;
        let key = self.key.as_ref();
        keys.check(key)?;
        if inner.protocol_unknown() {
            // Under Protocol::Auto the first connection's probe has not been answered yet. A
            // classic read would take another client's lease placeholder for a hit, so wait
            // for the answer: any request queued behind the probe will do.
            let _ = self.client.version().await;
        }
        if !inner.meta() {
            // Without the meta protocol clients cannot coordinate: a miss means "load".
            return Ok(match inner.fetch_one(key, true, None).await? {
                Some(item) => Lease::Hit(item.value()),
                None => Lease::Won {
                    stale: None,
                    token: None,
                },
            });
        }
        let (prefix, ttl) = (keys.prefix(), self.ttl);
        let encode = |buf: &mut BytesMut| {
            request::meta_get(buf, prefix, key, true, true, None, Some(ttl));
        };
        let result = match inner.request(Expect::one(Kind::MetaGet), encode).await {
            Ok(Response::Value(Some(item))) => Ok(lease_of(item)),
            Ok(Response::Value(None)) => Ok(Lease::Won {
                stale: None,
                token: None,
            }),
            Ok(other) => Err(mismatched(&other)),
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

/// What an `mg ... N` reply means for the caller.
fn lease_of(item: Item) -> Lease {
    let (state, token) = (item.lease, item.cas.map(CasToken));
    let stale = state & STALE != 0;
    let value = item.value();
    if state & WON != 0 {
        Lease::Won {
            stale: stale.then_some(value),
            token,
        }
    } else if state & BUSY != 0 || stale {
        Lease::Busy {
            stale: stale.then_some(value),
        }
    } else {
        Lease::Hit(value)
    }
}

// ---------------------------------------------------------------------------------------
// Server commands

/// `stats [args]`: see [`Client::stats`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct FetchStats<'a> {
    client: &'a Client,
    args: Vec<String>,
}

impl FetchStats<'_> {
    /// Adds an argument (`"slabs"`, `"items"`, `"settings"`, `"conns"`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    async fn run(self) -> Result<Stats> {
        let inner = &self.client.inner;
        for arg in &self.args {
            if arg.is_empty() || arg.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Error::IllegalInput(IllegalInput::Argument(format!(
                    "stats argument {arg:?} is empty or contains whitespace or control bytes"
                ))));
            }
        }
        let args = &self.args;
        let encode = |buf: &mut BytesMut| request::stats(buf, args.iter().map(String::as_bytes));
        let result = match inner.request(Expect::one(Kind::Stats), encode).await {
            Ok(Response::Stats(entries)) => Ok(Stats::new(entries)),
            Ok(other) => Err(mismatched(&other)),
            Err(error) => Err(error),
        };
        inner.miss_on_error(result)
    }
}

impl<'a> IntoFuture for FetchStats<'a> {
    type Output = Result<Stats>;
    type IntoFuture = CommandFuture<'a, Stats>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A command without a key that answers `OK` (`flush_all`, `verbosity`, `cache_memlimit`)
/// or `VERSION`: see [`Client::flush_all`], [`Client::verbosity`],
/// [`Client::cache_memlimit`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Admin<'a> {
    client: &'a Client,
    name: &'static str,
    arg: Option<u64>,
    noreply: bool,
}

impl Admin<'_> {
    /// Sends with or without `noreply` (the default depends on the command: see the
    /// method that made this builder).
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = on;
        self
    }

    /// For `flush_all`: invalidate items after this many seconds instead of now.
    pub fn delay(mut self, seconds: u32) -> Self {
        self.arg = Some(u64::from(seconds));
        self
    }

    async fn run(self) -> Result<()> {
        let inner = &self.client.inner;
        let args: &[u64] = match &self.arg {
            Some(arg) => std::slice::from_ref(arg),
            None => &[],
        };
        let (name, noreply) = (self.name, self.noreply);
        let encode = |buf: &mut BytesMut| request::simple(buf, name, args, noreply);
        if noreply {
            return inner.send_noreply(false, encode).await;
        }
        match inner.request(Expect::one(Kind::Ok), encode).await? {
            Response::Status(Status::Ok) => Ok(()),
            other => Err(mismatched(&other)),
        }
    }
}

impl<'a> IntoFuture for Admin<'a> {
    type Output = Result<()>;
    type IntoFuture = CommandFuture<'a, ()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

// ---------------------------------------------------------------------------------------
// The Client methods that make the builders.

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
        if !inner.meta() {
            return Ok(());
        }
        let encode = |buf: &mut BytesMut| {
            request::meta_delete_if(buf, keys.prefix(), key, token.0);
        };
        inner.send_noreply(true, encode).await
    }

    /// Reads many values in one request. The map holds the hits only, keyed by the keys as
    /// given (without the client's prefix). Every key is checked before anything is sent:
    /// one bad key fails the call and sends nothing.
    ///
    /// # Errors
    /// As [`get`](Self::get).
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

    /// Stores many values in one write. Returns the keys that were not stored (none with
    /// noreply, the default). Every key is checked before anything is sent.
    ///
    /// # Errors
    /// As [`set`](Self::set); the first server error among the replies.
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

    /// Adds `delta` to a decimal value (wrapping at 2^64). `None` when the key is missing.
    /// Waits for the reply by default.
    ///
    /// # Errors
    /// [`Error::Client`] when the value is not a number; connection or timeout errors.
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

    /// The server's statistics; add arguments with [`FetchStats::arg`].
    ///
    /// # Errors
    /// Connection, timeout or server errors (an empty [`Stats`] with `ignore_exc`).
    pub fn stats(&self) -> FetchStats<'_> {
        FetchStats {
            client: self,
            args: Vec::new(),
        }
    }

    /// The server's version string.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub async fn version(&self) -> Result<String> {
        let encode = |buf: &mut BytesMut| request::simple(buf, "version", &[], false);
        match self
            .inner
            .request(Expect::one(Kind::Version), encode)
            .await?
        {
            Response::Version(version) => Ok(version),
            other => Err(mismatched(&other)),
        }
    }

    /// Invalidates every item, now or after [`Admin::delay`] seconds. noreply by default,
    /// following the client's `default_noreply`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn flush_all(&self) -> Admin<'_> {
        Admin {
            client: self,
            name: "flush_all",
            arg: None,
            noreply: self.inner.config.default_noreply,
        }
    }

    /// Sets the server's logging verbosity. Waits for `OK` unless `.noreply(true)`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn verbosity(&self, level: u32) -> Admin<'_> {
        Admin {
            client: self,
            name: "verbosity",
            arg: Some(u64::from(level)),
            noreply: false,
        }
    }

    /// Changes the server's memory limit to `megabytes` at run time. Waits for `OK`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn cache_memlimit(&self, megabytes: u64) -> Admin<'_> {
        Admin {
            client: self,
            name: "cache_memlimit",
            arg: Some(megabytes),
            noreply: false,
        }
    }

    /// Asks the server to close the connection after answering what is already queued on
    /// it. The next command opens a new connection.
    ///
    /// # Errors
    /// None in practice; the signature leaves room for transports that report one.
    pub async fn quit(&self) -> Result<()> {
        self.inner.quit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn item(key: &str) -> Item {
        Item {
            key: Bytes::copy_from_slice(key.as_bytes()),
            flags: 0,
            cas: None,
            data: Bytes::new(),
            lease: 0,
        }
    }

    #[test]
    fn hits_line_up_with_keys() {
        let keys = ["a", "b", "a", "c"];
        let found = line_up(b"p:", &keys, vec![item("p:a"), item("p:a"), item("p:c")]).unwrap();
        let present: Vec<bool> = found.iter().map(Option::is_some).collect();
        assert_eq!(present, [true, false, true, true]);
        // out of order still lines up
        let found = line_up(b"", &keys, vec![item("c"), item("b")]).unwrap();
        assert!(found[1].is_some() && found[3].is_some());
        // a key nobody asked for is an error
        assert!(line_up(b"", &keys, vec![item("zzz")]).is_err());
        assert!(line_up(b"p:", &keys, vec![item("a")]).is_err());
    }
}
