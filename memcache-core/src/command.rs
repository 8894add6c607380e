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

/// A command that sends one request and reads at most one reply, described once: its
/// future ([`poll_one`]) and its general path ([`run_one`]) are built from this.
trait OneRequest<'a>: Sized + Send + Sync + 'a {
    type Output: Send + 'a;

    fn inner(&self) -> &'a Inner;

    /// Checks the input (nothing is sent when it fails) and decides how the request goes.
    fn plan(&self) -> Result<Plan>;

    /// Writes the request (under the connection's lock).
    fn encode(&self, plan: &Plan, buf: &mut BytesMut);

    /// The outcome, from the reply (server errors already as `Err`), or from nothing for a
    /// noreply request that was handed over.
    fn finish(self, plan: &Plan, reply: Option<Result<Response>>) -> Result<Self::Output>;
}

/// The general path of a [`OneRequest`], as an `async fn` (boxed where it is used): for
/// the rare cases, a connection still being opened or a full write queue.
async fn run_one<'a, C: OneRequest<'a>>(command: C) -> Result<C::Output> {
    let plan = command.plan()?;
    let inner = command.inner();
    let encode = |buf: &mut BytesMut| command.encode(&plan, buf);
    let reply = match plan.expect {
        None => {
            inner.send_noreply(plan.quiet, encode).await?;
            None
        }
        Some(expect) => Some(inner.request(expect, encode).await),
    };
    command.finish(&plan, reply)
}

/// Where the future of a [`OneRequest`] is.
enum OneState<'a, C, T> {
    /// Not polled yet.
    Start(C),
    /// The request is with a connected connection: waiting for the reply.
    Wait {
        command: C,
        plan: Plan,
        reply: Reply,
    },
    /// A rare path (see [`run_one`]), boxed.
    Slow(CommandFuture<'a, T>),
    /// Finished.
    Done,
}

/// Polls the future of a [`OneRequest`]. On a connected connection it hands the request
/// over and waits for the reply itself: no allocation, no `async` layers.
fn poll_one<'a, C: OneRequest<'a>>(
    state: &mut OneState<'a, C, C::Output>,
    cx: &mut Context<'_>,
) -> Poll<Result<C::Output>> {
    loop {
        match std::mem::replace(state, OneState::Done) {
            OneState::Start(command) => {
                let plan = match command.plan() {
                    Ok(plan) => plan,
                    Err(error) => return Poll::Ready(Err(error)),
                };
                let inner = command.inner();
                let encode = |buf: &mut BytesMut| command.encode(&plan, buf);
                let (sent, since) = inner.start(plan.expect, plan.quiet, encode);
                *state = match sent.forget_encoder() {
                    Sent::Ready(Some(reply)) => OneState::Wait {
                        command,
                        plan,
                        reply,
                    },
                    // A noreply request handed over.
                    Sent::Ready(None) | Sent::Connecting(None) if plan.expect.is_none() => {
                        return Poll::Ready(command.finish(&plan, None));
                    }
                    // Cannot happen: a request that expects a reply gets a way to it.
                    Sent::Ready(None) | Sent::Connecting(None) => {
                        let lost = Some(Err(Error::UnexpectedClose));
                        return Poll::Ready(command.finish(&plan, lost));
                    }
                    // Queued while the connection opens: its reply is awaited within the
                    // deadline.
                    Sent::Connecting(Some(reply)) => OneState::Slow(Box::pin(async move {
                        let reply = command.inner().within(since, reply).await;
                        command.finish(&plan, Some(failed_as_err(reply)))
                    })),
                    // Nothing was sent: the general path, from the start.
                    Sent::Full(_) => OneState::Slow(Box::pin(run_one(command))),
                };
            }
            OneState::Wait {
                command,
                plan,
                mut reply,
            } => {
                let Poll::Ready(reply) = Pin::new(&mut reply).poll(cx) else {
                    *state = OneState::Wait {
                        command,
                        plan,
                        reply,
                    };
                    return Poll::Pending;
                };
                return Poll::Ready(command.finish(&plan, Some(failed_as_err(reply))));
            }
            OneState::Slow(mut slow) => {
                let poll = slow.as_mut().poll(cx);
                if poll.is_pending() {
                    *state = OneState::Slow(slow);
                }
                return poll;
            }
            OneState::Done => panic!("a command future polled after it completed"),
        }
    }
}

/// The future type of a [`OneRequest`] command, written out so that on a connected
/// connection awaiting the command allocates nothing (other commands' futures are boxed).
macro_rules! one_request_future {
    ($(#[$doc:meta])* $future:ident for $name:ident<$($g:ident),*> => $out:ty) => {
        $(#[$doc])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $future<'a, $($g),*> {
            state: OneState<'a, $name<'a, $($g),*>, $out>,
        }

        // The command is never pinned: the state machine moves it freely.
        impl<$($g),*> Unpin for $future<'_, $($g),*> {}

        impl<$($g),*> std::fmt::Debug for $future<'_, $($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($future)).finish_non_exhaustive()
            }
        }

        impl<'a, $($g: AsRef<[u8]> + Send + Sync + 'a),*> IntoFuture for $name<'a, $($g),*> {
            type Output = Result<$out>;
            type IntoFuture = $future<'a, $($g),*>;

            fn into_future(self) -> Self::IntoFuture {
                $future {
                    state: OneState::Start(self),
                }
            }
        }

        impl<'a, $($g: AsRef<[u8]> + Send + Sync + 'a),*> Future for $future<'a, $($g),*> {
            type Output = Result<$out>;

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                poll_one(&mut self.get_mut().state, cx)
            }
        }
    };
}

/// The [`OneRequest`] of a single-key retrieval (`get`, `gets`, `gat`, `gats`): whether it
/// asks for the CAS unique, the ttl it sets, and what it makes of the hit.
macro_rules! retrieval {
    ($name:ident => $out:ty, cas: $cas:expr, touch: |$cmd:ident| $touch:expr, hit: $hit:expr) => {
        impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for $name<'a, K> {
            type Output = $out;

            fn inner(&self) -> &'a Inner {
                &self.client.inner
            }

            fn plan(&self) -> Result<Plan> {
                let inner = self.inner();
                inner.config.keys.check(self.key.as_ref())?;
                let meta = inner.meta();
                Ok(Plan::reply(meta, one_kind(meta)))
            }

            fn encode(&self, plan: &Plan, buf: &mut BytesMut) {
                let $cmd = self;
                let encode = self
                    .inner()
                    .one_encoder(self.key.as_ref(), plan.meta, $cas, $touch);
                encode(buf);
            }

            fn finish(self, plan: &Plan, reply: Option<Result<Response>>) -> Result<$out> {
                let reply = reply.unwrap_or_else(|| Err(Error::UnexpectedClose));
                let hit = self.inner().one_hit(plan.meta, self.key.as_ref(), reply)?;
                hit.map($hit).transpose()
            }
        }
    };
}

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

            fn plan(&self) -> Result<Plan> {
                let $n = self;
                self.inner().store_plan(self.key.as_ref(), $noreply)
            }

            fn encode(&self, plan: &Plan, buf: &mut BytesMut) {
                let $c = self;
                let item = (self.key.as_ref(), self.value.as_ref(), self.flags, self.ttl);
                self.inner().encode_store(plan, $command, item, buf);
            }

            fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<$out> {
                let $status = store_status(reply)?;
                $outcome
            }
        }
    };
}

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
    /// Writes a storage command as `plan` says; `item` is its key, data, flags and ttl.
    fn encode_store(
        &self,
        plan: &Plan,
        command: StoreCommand,
        item: (&[u8], &[u8], u32, u32),
        buf: &mut BytesMut,
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
        );
    }

    /// How a storage command (`set`/`add`/`replace`/`append`/`prepend`/`cas`) goes out.
    fn store_plan(&self, key: &[u8], noreply: bool) -> Result<Plan> {
        self.config.keys.check(key)?;
        let meta = self.meta();
        Ok(match noreply {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaStore } else { Kind::Store }),
        })
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

/// An empty value that a lease created on a miss (`mg ... N`): memcached marks it `W` (to
/// the client that won the lease) or `Z` (to everyone after), and not `X` (a stale value
/// that was invalidated, which holds real data).
fn is_placeholder(item: &Item) -> bool {
    item.lease & (WON | BUSY) != 0 && item.lease & STALE == 0 && item.data.is_empty()
}

fn is_key(prefix: &[u8], key: &[u8], wire: &[u8]) -> bool {
    wire.len() == prefix.len() + key.len() && wire.starts_with(prefix) && wire.ends_with(key)
}

/// Puts each hit at the index of the key it answers. memcached answers in request order, so
/// a cursor finds each key in one pass; a hit for a key that was not asked for is an error.
pub(crate) fn line_up<K: AsRef<[u8]>>(
    prefix: &[u8],
    keys: &[K],
    items: Vec<Item>,
) -> Result<Vec<Option<Item>>> {
    let mut found: Vec<Option<Item>> = keys.iter().map(|_| None).collect();
    let mut cursor = 0;
    for item in items {
        let answers = |i: &usize| is_key(prefix, keys[*i].as_ref(), &item.key);
        // the next key in order, then the others (a key asked for twice, or a proxy that
        // reorders)
        let index = Some(cursor)
            .filter(|i| *i < keys.len() && answers(i))
            .or_else(|| (cursor..keys.len()).chain(0..cursor).find(answers))
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
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Delete<'a, K> {
    type Output = bool;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn plan(&self) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        let meta = inner.meta();
        Ok(match inner.noreply(self.noreply) {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaDelete } else { Kind::Delete }),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut) {
        let delete = if plan.meta {
            request::meta_delete
        } else {
            request::delete
        };
        let prefix = self.inner().config.keys.prefix();
        delete(buf, prefix, self.key.as_ref(), plan.noreply_flag());
    }

    fn finish(self, _: &Plan, reply: Option<Result<Response>>) -> Result<bool> {
        found(reply, Status::Deleted)
    }
}
one_request_future!(
    /// The future of [`Delete`].
    DeleteFuture for Delete<K> => bool
);

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
}

impl<'a, K: AsRef<[u8]> + Send + Sync + 'a> OneRequest<'a> for Arith<'a, K> {
    type Output = Option<u64>;

    fn inner(&self) -> &'a Inner {
        &self.client.inner
    }

    fn plan(&self) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        let meta = inner.meta();
        Ok(match self.noreply {
            true => Plan::noreply(meta),
            false => Plan::reply(meta, if meta { Kind::MetaArith } else { Kind::Arith }),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut) {
        let arith = if plan.meta {
            request::meta_arith
        } else {
            request::arith
        };
        let (prefix, key) = (self.inner().config.keys.prefix(), self.key.as_ref());
        arith(buf, self.incr, prefix, key, self.delta, plan.noreply_flag());
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

    fn plan(&self) -> Result<Plan> {
        let inner = self.inner();
        inner.config.keys.check(self.key.as_ref())?;
        // Quiet `mg` answers HD for a hit on memcached 1.6.18, so a noreply touch is always
        // the classic `touch ... noreply`; an acknowledged one is `mg <key> T<ttl>` on meta.
        Ok(match (inner.noreply(self.noreply), inner.meta()) {
            (true, _) => Plan::noreply(false),
            (false, true) => Plan::reply(true, Kind::MetaTouch),
            (false, false) => Plan::reply(false, Kind::Touch),
        })
    }

    fn encode(&self, plan: &Plan, buf: &mut BytesMut) {
        let (prefix, key, ttl) = (
            self.inner().config.keys.prefix(),
            self.key.as_ref(),
            self.ttl,
        );
        if plan.meta {
            request::meta_get(buf, prefix, key, false, false, Some(ttl), None);
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
