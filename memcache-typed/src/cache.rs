//! [`Cache`]: typed reads and writes of one [`Cacheable`] type, and read-through with
//! single-flight loading.

use std::any::{Any, TypeId};
use std::borrow::Borrow;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use memcache_core::{CasOutcome, CasToken, Client, Lease, Value};
use tokio::sync::watch;

use crate::codec::{Codec, Decoded, Encoded, MessagePack};
use crate::error::{Error, LoadError};
use crate::key::{encode_key, full_key, CacheKey, MAX_KEY_LEN};
use crate::Cacheable;

/// A won lease (its placeholder's token), held until a value is stored under the key.
///
/// Only [`stored`](LeaseGuard::stored) lets go of it without giving it back: on every other
/// way out (the loader failed, the value did not encode, the store failed, the call was
/// dropped mid-load) the lease is released, so that other processes stop waiting for a value
/// that is not coming.
struct LeaseGuard<'a> {
    client: &'a Client,
    key: &'a str,
    token: Option<CasToken>,
}

impl LeaseGuard<'_> {
    /// The value was stored: the store ended the lease.
    fn stored(mut self) {
        self.token = None;
    }

    /// Nothing was stored: gives the lease back before returning, so that the release is
    /// on the connection ahead of anything the caller sends next.
    async fn release(mut self) {
        if let Some(token) = self.token.take() {
            Self::send_release(self.client, self.key, token).await;
        }
    }

    async fn send_release(client: &Client, key: &str, token: CasToken) {
        // Conditional on the placeholder's CAS unique: a value stored meanwhile stays.
        if let Err(error) = client.release_lease(key, token).await {
            tracing::debug!(key, %error, "could not release the lease");
        }
    }
}

impl Drop for LeaseGuard<'_> {
    /// Dropped still holding the lease (the call was cancelled): releases it from a task.
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, key) = (self.client.clone(), self.key.to_owned());
        runtime.spawn(async move { Self::send_release(&client, &key, token).await });
    }
}

/// How long a [`Cache::get_or_load`] lease lasts (seconds): other processes wait for the
/// winner's value at most this long, should the winner die without storing it.
pub const LEASE_TTL: u32 = 30;
/// First pause before asking again while another process holds the lease.
const LEASE_POLL_FIRST: Duration = Duration::from_millis(2);
/// Longest pause between two asks.
const LEASE_POLL_MAX: Duration = Duration::from_millis(50);

/// How many `gets` + `cas` rounds [`Cache::update`] tries before it gives up with
/// [`Error::UpdateConflict`], unless [`Update::max_attempts`] says otherwise.
pub const DEFAULT_UPDATE_ATTEMPTS: u32 = 16;

/// The longest pause [`Cache::update`] makes between two conflicting attempts.
const MAX_UPDATE_BACKOFF: Duration = Duration::from_millis(10);

/// The future the typed command builders ([`Store`], [`SetMany`], [`Cas`], [`Delete`],
/// [`DeleteMany`], [`Touch`], [`Update`]) turn into when awaited.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Typed access to the values of one [`Cacheable`] type, through a memcached [`Client`].
///
/// Every method takes the type's own key (`&T::Key`, or a borrowed form of it such as `&str`
/// for a `String` key) or `&T`, so asking for a user with an order id does not compile. Keys
/// become `"{T::PREFIX}:{encoded key}"` (see [`crate::key`]); values are encoded by the codec
/// `C` ([`MessagePack`] by default) with flags that record the codec and `T::SCHEMA` (see
/// [`crate::codec`]).
///
/// A `Cache` is cheap to clone: clones share the client, the [`stats`](Cache::stats)
/// counters, and the table of loads in flight that makes
/// [`get_or_load`](Cache::get_or_load) single-flight. Create one per type and clone it into
/// your tasks.
///
/// Reads: [`get`](Cache::get), [`get_many`](Cache::get_many), [`gets`](Cache::gets).
/// Writes, builders you `.await` with per-call `.ttl()` / `.noreply()`:
/// [`set`](Cache::set), [`add`](Cache::add), [`replace`](Cache::replace),
/// [`set_many`](Cache::set_many), [`cas`](Cache::cas), [`delete`](Cache::delete),
/// [`delete_many`](Cache::delete_many), [`touch`](Cache::touch), [`update`](Cache::update).
/// Read-through: [`get_or_load`](Cache::get_or_load),
/// [`get_many_or_load`](Cache::get_many_or_load).
///
/// ```no_run
/// use memcache_typed::{Cache, Cacheable, Client};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, Cacheable)]
/// #[cacheable(prefix = "user", ttl = 300)]
/// struct User {
///     #[cacheable(key)]
///     id: u64,
///     name: String,
/// }
///
/// # async fn demo() -> Result<(), memcache_typed::Error> {
/// let client = Client::builder().server("127.0.0.1:11211").build()?;
/// let users: Cache<User> = Cache::new(client);
/// users.set(&User { id: 42, name: "Ann".into() }).await?;
/// let ann: Option<User> = users.get(&42).await?;
/// # let _ = ann;
/// # Ok(()) }
/// ```
pub struct Cache<T: Cacheable, C: Codec = MessagePack> {
    shared: Arc<Shared<C>>,
    _values: PhantomData<fn() -> T>,
}

/// What the clones of one [`Cache`] share.
struct Shared<C> {
    client: Client,
    codec: C,
    counters: Counters,
    /// Loads in flight, by memcached key and loader error type.
    flights: Mutex<HashMap<FlightKey, Flight>>,
    next_flight: AtomicU64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    mismatches: AtomicU64,
    loads: AtomicU64,
    coalesced: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters of one [`Cache`] and its clones, since it was created: see [`Cache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Values read and decoded (by `get`, `get_many`, `gets`, `update` and the
    /// read-through methods).
    pub hits: u64,
    /// Keys read and not found, including [`mismatches`](CacheStats::mismatches) and
    /// reads that [`ignore_exc`](memcache_core::ClientBuilder::ignore_exc) turned into misses.
    pub misses: u64,
    /// Values found under the right key but with flags of another codec or another schema
    /// (or written by someone else): read as misses.
    pub mismatches: u64,
    /// Loader runs of [`get_or_load`](Cache::get_or_load) and
    /// [`get_many_or_load`](Cache::get_many_or_load).
    pub loads: u64,
    /// [`get_or_load`](Cache::get_or_load) calls answered by another call's read or load of
    /// the same key, already in flight (single-flight), instead of their own. They are not
    /// counted in `hits`, `misses` or `loads`.
    pub coalesced: u64,
}

impl<T: Cacheable, C: Codec> Clone for Cache<T, C> {
    fn clone(&self) -> Self {
        Cache {
            shared: Arc::clone(&self.shared),
            _values: PhantomData,
        }
    }
}

impl<T: Cacheable, C: Codec + fmt::Debug> fmt::Debug for Cache<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &T::PREFIX)
            .field("codec", &self.shared.codec)
            .field("client", &self.shared.client)
            .finish_non_exhaustive()
    }
}

impl<T: Cacheable> Cache<T> {
    /// A cache of `T` values through `client`, with the default [`MessagePack`] codec.
    /// Does no I/O.
    pub fn new(client: Client) -> Self {
        Cache::with_codec(client, MessagePack)
    }
}

impl<T: Cacheable, C: Codec> Cache<T, C> {
    /// A cache of `T` values through `client`, encoded by `codec` (for example
    /// [`Json`](crate::codec) with the `json` feature, or [`Pymemcache`](crate::Pymemcache)).
    /// Does no I/O.
    pub fn with_codec(client: Client, codec: C) -> Self {
        Cache {
            shared: Arc::new(Shared {
                client,
                codec,
                counters: Counters::default(),
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
            }),
            _values: PhantomData,
        }
    }

    /// The client this cache talks through.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The codec values are encoded with.
    pub fn codec(&self) -> &C {
        &self.shared.codec
    }

    /// The counters of this cache and its clones.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            mismatches: c.mismatches.load(Ordering::Relaxed),
            loads: c.loads.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
        }
    }

    /// How many values were read as misses because their flags did not match (another codec,
    /// another schema, a value written by someone else): `stats().mismatches`.
    pub fn mismatches(&self) -> u64 {
        self.shared.counters.mismatches.load(Ordering::Relaxed)
    }

    /// The memcached key `key` is stored under, without the client's
    /// [`key_prefix`](memcache_core::ClientBuilder::key_prefix): `"{T::PREFIX}:{encoded key}"`,
    /// hashed when longer than the 250 bytes memcached allows minus the client's prefix (see
    /// [`full_key`](crate::full_key)).
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`] or [`Error::KeyTooLong`] (only possible with a hand-written
    /// [`Cacheable`] impl, or a client key prefix that leaves no room).
    pub fn memcached_key<Q>(&self, key: &Q) -> Result<String, Error>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        self.key_of(key)
    }

    fn key_of<Q: CacheKey + ?Sized>(&self, key: &Q) -> Result<String, Error> {
        let budget = MAX_KEY_LEN.saturating_sub(self.shared.client.key_prefix().len());
        full_key(T::PREFIX, key, budget)
    }

    fn encode(&self, value: &T) -> Result<Encoded, Error> {
        Ok(self.shared.codec.encode(value, T::SCHEMA)?)
    }

    /// The memcached key of `value` and its encoded form.
    fn prepare(&self, value: &T) -> Result<(String, Encoded), Error> {
        Ok((self.key_of(&value.cache_key())?, self.encode(value)?))
    }

    fn default_ttl() -> u32 {
        T::TTL.unwrap_or(0)
    }

    /// A call's noreply setting, or else the client's default.
    fn noreply(&self, call: Option<bool>) -> bool {
        call.unwrap_or_else(|| self.shared.client.default_noreply())
    }

    /// Decodes a value read under `key`: a mismatch is a miss, counted and logged.
    fn decode(&self, key: &str, value: Option<Value>) -> Result<Option<T>, Error> {
        let counters = &self.shared.counters;
        let Some(value) = value else {
            Counters::bump(&counters.misses);
            return Ok(None);
        };
        match self
            .shared
            .codec
            .decode::<T>(&value.data, value.flags, T::SCHEMA)
        {
            Ok(Decoded::Value(decoded)) => {
                Counters::bump(&counters.hits);
                Ok(Some(decoded))
            }
            // An empty value with flags 0 is another client's lease placeholder (see
            // `Client::lease`) when this codec does not use flags 0: a plain miss.
            Ok(Decoded::Mismatch { found_flags: 0, .. }) if value.data.is_empty() => {
                Counters::bump(&counters.misses);
                Ok(None)
            }
            Ok(Decoded::Mismatch {
                expected_flags,
                found_flags,
            }) => {
                Counters::bump(&counters.mismatches);
                Counters::bump(&counters.misses);
                tracing::debug!(
                    key,
                    codec = C::NAME,
                    found_flags,
                    ?expected_flags,
                    "value written with other flags (another codec or schema): read as a miss"
                );
                Ok(None)
            }
            Err(error) => {
                tracing::debug!(key, codec = C::NAME, %error, "value could not be decoded");
                Err(error.into())
            }
        }
    }

    async fn fetch(&self, key: &str) -> Result<Option<T>, Error> {
        let value = self.shared.client.get(key).await?;
        self.decode(key, value)
    }

    async fn fetch_with_token(&self, key: &str) -> Result<Option<(T, CasToken)>, Error> {
        match self.shared.client.gets(key).await? {
            None => self.decode(key, None).map(|_| None),
            Some((value, token)) => Ok(self.decode(key, Some(value))?.map(|v| (v, token))),
        }
    }

    // -----------------------------------------------------------------------------------
    // Reads

    /// Reads the value stored under `key`. A miss is `Ok(None)`, and so is a value whose
    /// flags belong to another codec or schema (counted in [`stats`](Cache::stats) and
    /// logged at debug level).
    ///
    /// # Errors
    /// [`Error::Decode`] when the flags match but the bytes do not decode; the client's
    /// connection, timeout and server errors (misses instead with
    /// [`ignore_exc`](memcache_core::ClientBuilder::ignore_exc)).
    pub fn get<'a, Q>(
        &'a self,
        key: &Q,
    ) -> impl Future<Output = Result<Option<T>, Error>> + Send + 'a
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        let key = self.key_of(key);
        async move { self.fetch(&key?).await }
    }

    /// Reads the value stored under `key` with its CAS token, for a later
    /// [`cas`](Cache::cas). Misses and mismatches are `Ok(None)`.
    ///
    /// # Errors
    /// As [`get`](Cache::get).
    pub fn gets<'a, Q>(
        &'a self,
        key: &Q,
    ) -> impl Future<Output = Result<Option<(T, CasToken)>, Error>> + Send + 'a
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        let key = self.key_of(key);
        async move { self.fetch_with_token(&key?).await }
    }

    /// Reads many values in one round trip. The map holds the hits only (mismatches are
    /// misses), keyed by the keys as given.
    ///
    /// The request is one classic multi-key `get` per server, even over the meta protocol,
    /// and a classic reply cannot tell another process's [lease](Cache::get_or_load)
    /// placeholder (an empty value with flags 0) from a stored empty value with flags 0. For
    /// codecs that read flags 0 as data ([`Pymemcache`](crate::Pymemcache): an empty
    /// `bytes`, or an empty `str` written without a serializer), each such value is read
    /// again with a single-key `get`, which over the meta protocol reads a placeholder as the
    /// miss it is: one more round trip per empty value. [`MessagePack`] and `Json` never
    /// write flags 0, so for them such a value is a plain miss at once. Without the meta
    /// protocol nothing can tell the two apart, and an empty value is read as one.
    ///
    /// # Errors
    /// As [`get`](Cache::get); one value that does not decode fails the whole call.
    pub fn get_many<'a, I>(
        &'a self,
        keys: I,
    ) -> impl Future<Output = Result<HashMap<T::Key, T>, Error>> + Send + 'a
    where
        I: IntoIterator,
        I::Item: Borrow<T::Key>,
        T::Key: Clone + Eq + Hash + Send + 'a,
    {
        let prepared = self.prepare_keys(keys);
        async move {
            let (keys, full) = prepared?;
            self.fetch_many(keys, &full).await
        }
    }

    /// The keys (deduplicated, in order) and their memcached keys.
    fn prepare_keys<I>(&self, keys: I) -> Result<(Vec<T::Key>, Vec<String>), Error>
    where
        I: IntoIterator,
        I::Item: Borrow<T::Key>,
        T::Key: Clone + Eq + Hash,
    {
        let mut seen = HashSet::new();
        let mut owned = Vec::new();
        let mut full = Vec::new();
        for key in keys {
            let key = key.borrow();
            if seen.insert(key.clone()) {
                full.push(self.key_of(key)?);
                owned.push(key.clone());
            }
        }
        Ok((owned, full))
    }

    async fn fetch_many(
        &self,
        keys: Vec<T::Key>,
        full: &[String],
    ) -> Result<HashMap<T::Key, T>, Error>
    where
        T::Key: Eq + Hash,
    {
        let mut found = self
            .shared
            .client
            .get_many(full.iter().map(String::as_str))
            .await?;
        // The multi-key reply is classic and cannot tell another client's lease placeholder
        // from a stored empty value; a single-key read can (over meta).
        for full in full {
            let key = full.as_str();
            if found
                .get(key)
                .is_some_and(|value| self.may_be_placeholder(value))
            {
                match self.shared.client.get(key).await? {
                    Some(value) => found.insert(key, value),
                    None => found.remove(key),
                };
            }
        }
        let mut hits = HashMap::with_capacity(found.len());
        for (key, full) in keys.into_iter().zip(full) {
            if let Some(value) = self.decode(full, found.remove(full.as_str()))? {
                hits.insert(key, value);
            }
        }
        Ok(hits)
    }

    /// Whether `value`, read by a classic `get`, could be another client's lease placeholder
    /// (empty, flags 0) that this codec would not simply read as a mismatch: a codec that
    /// gives flags 0 a meaning, as [`Pymemcache`](crate::Pymemcache) does for `bytes`, would
    /// take it for data.
    fn may_be_placeholder(&self, value: &Value) -> bool {
        value.data.is_empty()
            && value.flags == 0
            && !matches!(
                self.shared.codec.decode::<T>(b"", 0, T::SCHEMA),
                Ok(Decoded::Mismatch { .. })
            )
    }

    // -----------------------------------------------------------------------------------
    // Writes

    fn store(&self, kind: StoreKind, value: &T) -> Store<'_, T, C> {
        Store {
            cache: self,
            kind,
            prepared: self.prepare(value),
            ttl: None,
            noreply: None,
        }
    }

    /// Stores `value` under its key ([`Cacheable::cache_key`]) with the type's
    /// [`TTL`](Cacheable::TTL) (override with [`Store::ttl`]). Returns `true` when stored.
    ///
    /// Follows the client's [`default_noreply`](memcache_core::ClientBuilder::default_noreply)
    /// (on by default): the call then returns `true` as soon as the request is handed to the
    /// connection and a failure is never reported; [`Store::noreply`]`(false)` waits for the
    /// outcome.
    ///
    /// # Errors
    /// [`Error::Encode`] (nothing sent); the client's connection and timeout errors, and
    /// server errors when not noreply.
    pub fn set(&self, value: &T) -> Store<'_, T, C> {
        self.store(StoreKind::Set, value)
    }

    /// Stores `value` only if its key is absent: `false` when it exists. noreply as
    /// [`set`](Cache::set) (then always `true`).
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn add(&self, value: &T) -> Store<'_, T, C> {
        self.store(StoreKind::Add, value)
    }

    /// Stores `value` only if its key exists: `false` when it does not. noreply as
    /// [`set`](Cache::set) (then always `true`).
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn replace(&self, value: &T) -> Store<'_, T, C> {
        self.store(StoreKind::Replace, value)
    }

    /// Stores many values, each under its own key, in one round trip per distinct flags
    /// value (one for [`MessagePack`] and `Json`, whose flags depend on the type only).
    /// Returns the keys that were not stored (none with noreply, the client's default).
    /// Every value is encoded before anything is sent.
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn set_many<'v, I>(&self, values: I) -> SetMany<'_, T, C>
    where
        I: IntoIterator<Item = &'v T>,
        T: 'v,
    {
        let prepared = values
            .into_iter()
            .map(|value| {
                let key = value.cache_key();
                let (full, encoded) = self.prepare(value)?;
                Ok((key, full, encoded))
            })
            .collect();
        SetMany {
            cache: self,
            prepared,
            ttl: None,
            noreply: None,
        }
    }

    /// Stores `value` only if it has not changed since `token` was read by
    /// [`gets`](Cache::gets), with the type's TTL. Waits for the outcome unless
    /// [`Cas::noreply`]`(true)`.
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn cas(&self, value: &T, token: CasToken) -> Cas<'_, T, C> {
        Cas {
            cache: self,
            prepared: self.prepare(value),
            token,
            ttl: None,
            noreply: false,
        }
    }

    /// Deletes the value under `key`: `true` when it existed. noreply as the client's
    /// default (then always `true`).
    ///
    /// # Errors
    /// Key errors; the client's connection, timeout and server errors.
    pub fn delete<Q>(&self, key: &Q) -> Delete<'_, T, C>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        Delete {
            cache: self,
            key: self.key_of(key),
            noreply: None,
        }
    }

    /// Deletes many keys in one round trip. noreply as the client's default.
    ///
    /// # Errors
    /// As [`delete`](Cache::delete).
    pub fn delete_many<I>(&self, keys: I) -> DeleteMany<'_, T, C>
    where
        I: IntoIterator,
        I::Item: Borrow<T::Key>,
    {
        DeleteMany {
            cache: self,
            keys: keys
                .into_iter()
                .map(|key| self.key_of(key.borrow()))
                .collect(),
            noreply: None,
        }
    }

    /// Resets the time to live of the value under `key` to the type's
    /// [`TTL`](Cacheable::TTL) (override with [`Touch::ttl`]): `false` when the key is
    /// missing. noreply as the client's default (then always `true`).
    ///
    /// # Errors
    /// As [`delete`](Cache::delete).
    pub fn touch<Q>(&self, key: &Q) -> Touch<'_, T, C>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        Touch {
            cache: self,
            key: self.key_of(key),
            ttl: None,
            noreply: None,
        }
    }

    /// Changes the value under `key` atomically: reads it with `gets`, applies `f`, and
    /// writes the result with `cas`; when another writer changed the value in between, it
    /// waits a few random milliseconds at most and starts over, up to
    /// [`DEFAULT_UPDATE_ATTEMPTS`] (16) rounds ([`Update::max_attempts`] changes the bound).
    /// `f` may therefore run several times, each time on the latest value.
    ///
    /// Returns the stored value, or `Ok(None)` without calling `f` when the key is missing
    /// (a mismatch counts as missing; so does a value deleted between the read and the
    /// write). The new value gets the type's TTL ([`Update::ttl`] overrides it). The `cas`
    /// always waits for its outcome, whatever the noreply default.
    ///
    /// # Errors
    /// [`Error::UpdateConflict`] when every attempt lost the race; otherwise as
    /// [`get`](Cache::get) and [`set`](Cache::set).
    pub fn update<Q, F>(&self, key: &Q, f: F) -> Update<'_, T, C, F>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
        F: FnMut(T) -> T,
    {
        Update {
            cache: self,
            key: self.key_of(key),
            f,
            ttl: None,
            attempts: DEFAULT_UPDATE_ATTEMPTS,
        }
    }

    // -----------------------------------------------------------------------------------
    // Read-through

    /// Reads the value under `key`; on a miss, runs `loader(key)`, stores its value with the
    /// type's TTL, and returns it.
    ///
    /// **Single-flight.** However many tasks of this process ask for the same key at once
    /// (through this cache or its clones), one runs: one `get`, and on a miss one loader
    /// call. The others wait for its outcome and receive a clone of the value (hence
    /// `T: Clone`) or of the error. If the task doing the work is cancelled (its future
    /// dropped) before it finishes, one of the waiting tasks takes over with its own
    /// loader; nobody waits forever for a task that is gone. Loads are shared between
    /// callers whose loaders have the same error type `E` (in practice: the same loader).
    ///
    /// **Errors of the loader** go to every waiting task, shared in an [`Arc`]
    /// ([`LoadError::Loader`]), so `E` need not be `Clone`. Nothing is stored, and the next
    /// call tries again.
    ///
    /// **Failures of the cache.** A read error fails the call without running the loader
    /// ([`LoadError::Cache`]), unless the client has
    /// [`ignore_exc`](memcache_core::ClientBuilder::ignore_exc): then the read is a miss and
    /// the loader's value is returned even when memcached is down. Failing to store the
    /// loaded value never fails the call: it is logged at warn level and the value returned.
    /// A value with other flags is a miss, so the loader's value replaces it.
    ///
    /// The value is stored under the key that was asked for, whatever the loaded value's
    /// own [`cache_key`](Cacheable::cache_key) says, with the client's noreply default.
    ///
    /// # Errors
    /// [`LoadError::Cache`] as [`get`](Cache::get), or when the loaded value cannot be
    /// encoded; [`LoadError::Loader`] with the loader's error.
    ///
    /// ```no_run
    /// # use memcache_typed::{Cache, Cacheable};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Serialize, Deserialize, Cacheable)]
    /// # struct User { #[cacheable(key)] id: u64, name: String }
    /// # async fn load_user_from_db(id: u64) -> Result<User, std::io::Error> {
    /// #     Ok(User { id, name: String::new() })
    /// # }
    /// # async fn demo(users: Cache<User>) -> Result<(), memcache_typed::LoadError<std::io::Error>> {
    /// let user = users.get_or_load(&42, |id| load_user_from_db(*id)).await?;
    /// # let _ = user;
    /// # Ok(()) }
    /// ```
    pub async fn get_or_load<Q, F, Fut, E>(&self, key: &Q, loader: F) -> Result<T, LoadError<E>>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
        T: Clone + Send + Sync + 'static,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Send + Sync + 'static,
    {
        let full = self.key_of(key)?;
        let flight_key = FlightKey {
            key: full,
            error_type: TypeId::of::<E>(),
        };
        loop {
            match self.join_flight::<Outcome<T, E>>(&flight_key) {
                Role::Lead(lead) => {
                    let outcome = self.read_or_load(&flight_key.key, key, loader).await;
                    lead.finish(&outcome);
                    return outcome;
                }
                Role::Follow(mut done) => {
                    let outcome = match done.wait_for(Option::is_some).await {
                        Ok(outcome) => outcome.clone(),
                        // The leader was cancelled: try again, as leader or follower.
                        Err(_) => None,
                    };
                    if let Some(outcome) = outcome {
                        Counters::bump(&self.shared.counters.coalesced);
                        return outcome;
                    }
                }
                Role::Alone => return self.read_or_load(&flight_key.key, key, loader).await,
            }
        }
    }

    /// Leads the load of `flight_key` when none is in flight, else follows the one that is.
    fn join_flight<V>(&self, flight_key: &FlightKey) -> Role<'_, V, C>
    where
        V: Send + Sync + 'static,
    {
        let mut flights = self.shared.lock_flights();
        match flights.entry(flight_key.clone()) {
            Entry::Occupied(entry) => {
                match entry
                    .get()
                    .done
                    .downcast_ref::<watch::Receiver<Option<V>>>()
                {
                    Some(done) => Role::Follow(done.clone()),
                    // Cannot happen: the key includes the error type, which fixes `V`.
                    None => Role::Alone,
                }
            }
            Entry::Vacant(entry) => {
                let id = self.shared.next_flight.fetch_add(1, Ordering::Relaxed);
                let (sender, done) = watch::channel(None);
                entry.insert(Flight {
                    id,
                    done: Box::new(done),
                });
                Role::Lead(Lead {
                    shared: &self.shared,
                    key: flight_key.clone(),
                    id,
                    sender,
                })
            }
        }
    }

    /// The leader's work: read, and on a miss load and store.
    ///
    /// The read is a [`lease`](memcache_core::Client::lease), so that across processes too
    /// only one caller loads a missing key: the one that wins the lease loads and stores
    /// (releasing the lease whenever it stores nothing); the others serve the stale value if the
    /// entry was invalidated, or poll until the value appears, for at most the client's
    /// timeout, after which they load it themselves.
    async fn read_or_load<Q, F, Fut, E>(
        &self,
        full: &str,
        key: &Q,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        Q: ?Sized,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let client = &self.shared.client;
        let give_up = tokio::time::Instant::now() + client.timeout();
        let mut pause = LEASE_POLL_FIRST;
        let placeholder = loop {
            match client.lease(full, LEASE_TTL).await.map_err(Error::from)? {
                Lease::Hit(value) => match self.decode(full, Some(value))? {
                    Some(hit) => return Ok(hit),
                    None => break None, // another codec or schema: replace it
                },
                Lease::Won { stale, token } => {
                    self.decode(full, None)?;
                    // An invalidated value stays until the new one replaces it.
                    break token.filter(|_| stale.is_none());
                }
                Lease::Busy { stale: Some(value) } => {
                    if let Some(stale) = self.decode(full, Some(value))? {
                        return Ok(stale);
                    }
                }
                Lease::Busy { stale: None } => {}
                _ => {}
            }
            if tokio::time::Instant::now() + pause > give_up {
                break None; // the lease holder is slow or gone: load anyway
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LEASE_POLL_MAX);
        };
        Counters::bump(&self.shared.counters.loads);
        let lease = LeaseGuard {
            client,
            key: full,
            token: placeholder,
        };
        let (outcome, stored) = self.load_and_store(full, key, loader).await;
        if stored {
            lease.stored();
        } else {
            lease.release().await;
        }
        outcome
    }

    /// Runs the loader and stores its value under `full`: the call's outcome, and whether a
    /// value was stored. A failed store is logged and does not fail the call.
    async fn load_and_store<Q, F, Fut, E>(
        &self,
        full: &str,
        key: &Q,
        loader: F,
    ) -> (Result<T, LoadError<E>>, bool)
    where
        Q: ?Sized,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let value = match loader(key).await {
            Ok(value) => value,
            Err(error) => return (Err(LoadError::Loader(Arc::new(error))), false),
        };
        let encoded = match self.encode(&value) {
            Ok(encoded) => encoded,
            Err(error) => return (Err(error.into()), false),
        };
        let stored = self
            .shared
            .client
            .set(full, encoded.data)
            .flags(encoded.flags)
            .ttl(Self::default_ttl())
            .await;
        match stored {
            Ok(_) => (Ok(value), true),
            Err(error) => {
                tracing::warn!(key = full, %error, "could not store the loaded value");
                (Ok(value), false)
            }
        }
    }

    /// Reads many keys in one round trip; calls `loader` once with the keys that missed
    /// (deduplicated, in the order given; not at all when every key hit), stores the values
    /// it returns with [`set_many`](Cache::set_many) and the type's TTL, and returns the
    /// hits and the loaded values together.
    ///
    /// The loader returns the values it found; a key it returns nothing for is absent from
    /// the result (and nothing is stored for it). Each value is matched to a key by its
    /// [`cache_key`](Cacheable::cache_key); values for keys that were not asked for are
    /// ignored. The keys are read as [`get_many`](Cache::get_many) reads them (another
    /// process's lease placeholder is a miss, so its key is loaded). Unlike
    /// [`get_or_load`](Cache::get_or_load), batch loads are not shared between concurrent
    /// callers. Errors and `ignore_exc` behave as there; a store failure is logged and does
    /// not fail the call.
    ///
    /// # Errors
    /// [`LoadError::Cache`] as [`get_many`](Cache::get_many), or when a loaded value cannot
    /// be encoded; [`LoadError::Loader`] with the loader's error.
    pub async fn get_many_or_load<I, F, Fut, E>(
        &self,
        keys: I,
        loader: F,
    ) -> Result<HashMap<T::Key, T>, LoadError<E>>
    where
        I: IntoIterator,
        I::Item: Borrow<T::Key>,
        T::Key: Clone + Eq + Hash,
        F: FnOnce(Vec<T::Key>) -> Fut,
        Fut: Future<Output = Result<Vec<T>, E>>,
    {
        let (keys, full) = self.prepare_keys(keys)?;
        let mut found = self.fetch_many(keys.clone(), &full).await?;
        let missing: Vec<T::Key> = keys
            .into_iter()
            .filter(|key| !found.contains_key(key))
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        Counters::bump(&self.shared.counters.loads);
        let wanted: HashSet<T::Key> = missing.iter().cloned().collect();
        let loaded = loader(missing)
            .await
            .map_err(|error| LoadError::Loader(Arc::new(error)))?;
        let mut fresh = Vec::with_capacity(loaded.len());
        for value in loaded {
            let key = value.cache_key();
            if wanted.contains(&key) && !found.contains_key(&key) {
                fresh.push((key, value));
            } else {
                tracing::debug!(
                    prefix = T::PREFIX,
                    key = %encode_key(&key),
                    "the loader returned a value for a key that was not missing: ignored"
                );
            }
        }
        let stored = self
            .set_many(fresh.iter().map(|(_, value)| value))
            .run()
            .await;
        if let Err(error) = stored {
            if error.is_encode() || error.is_key() {
                return Err(error.into());
            }
            tracing::warn!(prefix = T::PREFIX, %error, "could not store the loaded values");
        }
        found.extend(fresh);
        Ok(found)
    }
}

// ---------------------------------------------------------------------------------------
// Single-flight machinery

type Outcome<T, E> = Result<T, LoadError<E>>;

/// A load in flight is identified by its memcached key and the loader's error type (which
/// fixes the type of the outcome the waiting tasks receive).
#[derive(Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    key: String,
    error_type: TypeId,
}

struct Flight {
    /// Which lead this is, so that a finished lead never removes its successor.
    id: u64,
    /// A `watch::Receiver<Option<Outcome<T, E>>>`: `None` until the leader is done.
    done: Box<dyn Any + Send + Sync>,
}

enum Role<'a, V, C> {
    Lead(Lead<'a, V, C>),
    Follow(watch::Receiver<Option<V>>),
    Alone,
}

/// The leader's hold on a flight. Dropping it (finished or cancelled) removes the flight,
/// and waiting tasks that got no outcome start over.
struct Lead<'a, V, C> {
    shared: &'a Shared<C>,
    key: FlightKey,
    id: u64,
    sender: watch::Sender<Option<V>>,
}

impl<V: Clone, C> Lead<'_, V, C> {
    /// Ends the flight and hands `outcome` to every task waiting on it.
    fn finish(self, outcome: &V) {
        self.remove();
        // Nobody can join any more: the receivers counted now are all the waiters.
        if self.sender.receiver_count() > 0 {
            self.sender.send_replace(Some(outcome.clone()));
        }
    }
}

impl<V, C> Lead<'_, V, C> {
    fn remove(&self) {
        let mut flights = self.shared.lock_flights();
        if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.remove(&self.key);
        }
    }
}

impl<V, C> Drop for Lead<'_, V, C> {
    fn drop(&mut self) {
        self.remove();
    }
}

impl<C> Shared<C> {
    fn lock_flights(&self) -> MutexGuard<'_, HashMap<FlightKey, Flight>> {
        // The map is consistent whenever the lock is released: a panic elsewhere while it
        // was held leaves nothing half-done.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------------------------------
// Builders

#[derive(Debug, Clone, Copy)]
enum StoreKind {
    Set,
    Add,
    Replace,
}

/// `IntoFuture` for a typed command builder: its `run`, boxed.
macro_rules! cache_future {
    ($name:ident<$($g:ident),*> => $out:ty, where $($bound:tt)*) => {
        impl<'a, $($g),*> IntoFuture for $name<'a, $($g),*>
        where
            $($bound)*
        {
            type Output = Result<$out, Error>;
            type IntoFuture = CacheFuture<'a, $out>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.run())
            }
        }
    };
}

macro_rules! debug_builder {
    ($name:ident<$($g:ident),*> { $($field:ident),* }) => {
        impl<$($g),*> fmt::Debug for $name<'_, $($g),*>
        where
            T: Cacheable,
            C: Codec,
        {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("prefix", &T::PREFIX)
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `set` / `add` / `replace` of a typed value: see [`Cache::set`]. Set options, then
/// `.await` it.
#[must_use = "a command does nothing until it is awaited"]
pub struct Store<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    kind: StoreKind,
    prepared: Result<(String, Encoded), Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(Store<T, C> { kind, ttl, noreply });

impl<'a, T: Cacheable, C: Codec> Store<'a, T, C> {
    /// Time to live in seconds for this write, instead of the type's
    /// [`TTL`](Cacheable::TTL) (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<bool, Error> {
        let (key, encoded) = self.prepared?;
        let client = &self.cache.shared.client;
        let command = match self.kind {
            StoreKind::Set => client.set(key, encoded.data),
            StoreKind::Add => client.add(key, encoded.data),
            StoreKind::Replace => client.replace(key, encoded.data),
        };
        let command = command
            .flags(encoded.flags)
            .ttl(self.ttl.unwrap_or_else(Cache::<T, C>::default_ttl))
            .noreply(self.cache.noreply(self.noreply));
        Ok(command.await?)
    }
}

cache_future!(Store<T, C> => bool, where T: Cacheable, C: Codec);

/// Many typed `set`s: see [`Cache::set_many`].
#[must_use = "a command does nothing until it is awaited"]
pub struct SetMany<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    prepared: Result<Vec<(T::Key, String, Encoded)>, Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(SetMany<T, C> { ttl, noreply });

/// A memcached key that remembers which value of a batch it belongs to.
struct Indexed(usize, String);

impl AsRef<[u8]> for Indexed {
    fn as_ref(&self) -> &[u8] {
        self.1.as_bytes()
    }
}

impl<'a, T: Cacheable, C: Codec> SetMany<'a, T, C> {
    /// Time to live in seconds for these writes, instead of the type's
    /// [`TTL`](Cacheable::TTL) (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<Vec<T::Key>, Error> {
        let prepared = self.prepared?;
        let ttl = self.ttl.unwrap_or_else(Cache::<T, C>::default_ttl);
        // One batch per flags value, in order of first appearance.
        let mut batches: Vec<(u32, Vec<(Indexed, Bytes)>)> = Vec::new();
        let mut keys = Vec::with_capacity(prepared.len());
        for (index, (key, full, encoded)) in prepared.into_iter().enumerate() {
            keys.push(Some(key));
            let item = (Indexed(index, full), encoded.data);
            match batches
                .iter_mut()
                .find(|(flags, _)| *flags == encoded.flags)
            {
                Some((_, items)) => items.push(item),
                None => batches.push((encoded.flags, vec![item])),
            }
        }
        let mut not_stored = Vec::new();
        for (flags, items) in batches {
            let command = self
                .cache
                .shared
                .client
                .set_many(items)
                .flags(flags)
                .ttl(ttl)
                .noreply(self.cache.noreply(self.noreply));
            for Indexed(index, _) in command.await? {
                not_stored.extend(keys[index].take());
            }
        }
        Ok(not_stored)
    }
}

cache_future!(SetMany<T, C> => Vec<T::Key>, where T: Cacheable, T::Key: Send, C: Codec);

/// A typed `cas`: see [`Cache::cas`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Cas<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    prepared: Result<(String, Encoded), Error>,
    token: CasToken,
    ttl: Option<u32>,
    noreply: bool,
}
debug_builder!(Cas<T, C> { token, ttl, noreply });

impl<'a, T: Cacheable, C: Codec> Cas<'a, T, C> {
    /// Time to live in seconds for this write, instead of the type's
    /// [`TTL`](Cacheable::TTL) (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Sends with `noreply` (default off): the call then returns [`CasOutcome::Stored`]
    /// without knowing.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = on;
        self
    }

    async fn run(self) -> Result<CasOutcome, Error> {
        let (key, encoded) = self.prepared?;
        let outcome = self
            .cache
            .shared
            .client
            .cas(key, encoded.data, self.token)
            .flags(encoded.flags)
            .ttl(self.ttl.unwrap_or_else(Cache::<T, C>::default_ttl))
            .noreply(self.noreply)
            .await?;
        Ok(outcome)
    }
}

cache_future!(Cas<T, C> => CasOutcome, where T: Cacheable, C: Codec);

/// A typed `delete`: see [`Cache::delete`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Delete<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    key: Result<String, Error>,
    noreply: Option<bool>,
}
debug_builder!(Delete<T, C> { key, noreply });

impl<'a, T: Cacheable, C: Codec> Delete<'a, T, C> {
    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<bool, Error> {
        let command = self.cache.shared.client.delete(self.key?);
        Ok(command.noreply(self.cache.noreply(self.noreply)).await?)
    }
}

cache_future!(Delete<T, C> => bool, where T: Cacheable, C: Codec);

/// Many typed `delete`s: see [`Cache::delete_many`].
#[must_use = "a command does nothing until it is awaited"]
pub struct DeleteMany<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    keys: Result<Vec<String>, Error>,
    noreply: Option<bool>,
}
debug_builder!(DeleteMany<T, C> { keys, noreply });

impl<'a, T: Cacheable, C: Codec> DeleteMany<'a, T, C> {
    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<(), Error> {
        let command = self.cache.shared.client.delete_many(self.keys?);
        Ok(command.noreply(self.cache.noreply(self.noreply)).await?)
    }
}

cache_future!(DeleteMany<T, C> => (), where T: Cacheable, C: Codec);

/// A typed `touch`: see [`Cache::touch`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Touch<'a, T: Cacheable, C: Codec> {
    cache: &'a Cache<T, C>,
    key: Result<String, Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(Touch<T, C> { key, ttl, noreply });

impl<'a, T: Cacheable, C: Codec> Touch<'a, T, C> {
    /// The new time to live in seconds, instead of the type's [`TTL`](Cacheable::TTL)
    /// (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<bool, Error> {
        let ttl = self.ttl.unwrap_or_else(Cache::<T, C>::default_ttl);
        let command = self.cache.shared.client.touch(self.key?, ttl);
        Ok(command.noreply(self.cache.noreply(self.noreply)).await?)
    }
}

cache_future!(Touch<T, C> => bool, where T: Cacheable, C: Codec);

/// A compare-and-swap loop: see [`Cache::update`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Update<'a, T: Cacheable, C: Codec, F> {
    cache: &'a Cache<T, C>,
    key: Result<String, Error>,
    f: F,
    ttl: Option<u32>,
    attempts: u32,
}

impl<T: Cacheable, C: Codec, F> fmt::Debug for Update<'_, T, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("prefix", &T::PREFIX)
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Cacheable, C: Codec, F: FnMut(T) -> T> Update<'a, T, C, F> {
    /// Time to live in seconds for the new value, instead of the type's
    /// [`TTL`](Cacheable::TTL) (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// How many `gets` + `cas` rounds to try before giving up with
    /// [`Error::UpdateConflict`] (default [`DEFAULT_UPDATE_ATTEMPTS`]; 0 is read as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    async fn run(mut self) -> Result<Option<T>, Error> {
        let key = self.key?;
        let ttl = self.ttl.unwrap_or_else(Cache::<T, C>::default_ttl);
        let cache = self.cache;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let Some((current, token)) = cache.fetch_with_token(&key).await? else {
                return Ok(None);
            };
            let next = (self.f)(current);
            let encoded = cache.encode(&next)?;
            let outcome = cache
                .shared
                .client
                .cas(key.as_str(), encoded.data, token)
                .flags(encoded.flags)
                .ttl(ttl)
                .noreply(false)
                .await?;
            match outcome {
                CasOutcome::Stored => return Ok(Some(next)),
                CasOutcome::NotFound => return Ok(None),
                _ => tracing::debug!(key = %key, attempt, "update lost a cas race: trying again"),
            }
        }
        Err(Error::UpdateConflict {
            key,
            attempts: self.attempts,
        })
    }
}

/// A random pause before attempt `attempt` (1, 2, ...) of an update: up to 0.1 ms, 0.2 ms,
/// 0.4 ms, ... capped at [`MAX_UPDATE_BACKOFF`], so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_micros(100u64 << attempt.min(10)).min(MAX_UPDATE_BACKOFF);
    // A fresh RandomState is seeded randomly; this is jitter, not cryptography.
    let random = RandomState::new().hash_one(attempt);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(random % (micros + 1))
}

cache_future!(Update<T, C, F> => Option<T>, where T: Cacheable + Send, C: Codec, F: FnMut(T) -> T + Send + 'a);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_ceiling() {
        for attempt in 1..40 {
            let pause = backoff(attempt);
            assert!(pause <= MAX_UPDATE_BACKOFF, "attempt {attempt}: {pause:?}");
            assert!(pause <= Duration::from_micros(100u64 << attempt.min(10)));
        }
    }
}
