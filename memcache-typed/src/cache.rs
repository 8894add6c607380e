//! [`Cache`]: the typed handle on the values of one [`Cacheable`] type, what its clones
//! share, its counters, and the plain reads (`get`, `gets`, `get_many`).
//!
//! The write commands are in `commands.rs`, read-through in `read_through.rs`: both add
//! methods to `Cache`.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memcache_core::{CasToken, Client, Value};

use crate::cacheable::Cacheable;
use crate::codec::{Codec, Decoded, Encoded, MessagePack};
use crate::error::Error;
use crate::key::{full_key, CacheKey, MAX_KEY_LEN};
use crate::single_flight::Flights;

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
    pub(crate) shared: Arc<Shared<C>>,
    _values: PhantomData<fn() -> T>,
}

/// What the clones of one [`Cache`] share.
pub(crate) struct Shared<C> {
    pub(crate) client: Client,
    pub(crate) codec: C,
    pub(crate) counters: Counters,
    /// Loads in flight, for [`get_or_load`](Cache::get_or_load).
    pub(crate) flights: Flights,
}

/// What [`CacheStats`] reports, as it is counted.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) mismatches: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) coalesced: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
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
                flights: Flights::default(),
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

    pub(crate) fn key_of<Q: CacheKey + ?Sized>(&self, key: &Q) -> Result<String, Error> {
        let budget = MAX_KEY_LEN.saturating_sub(self.shared.client.key_prefix().len());
        full_key(T::PREFIX, key, budget)
    }

    pub(crate) fn encode(&self, value: &T) -> Result<Encoded, Error> {
        Ok(self.shared.codec.encode(value, T::SCHEMA)?)
    }

    /// The memcached key of `value` and its encoded form.
    pub(crate) fn prepare(&self, value: &T) -> Result<(String, Encoded), Error> {
        Ok((self.key_of(&value.cache_key())?, self.encode(value)?))
    }

    pub(crate) fn default_ttl() -> u32 {
        T::TTL.unwrap_or(0)
    }

    /// A call's noreply setting, or else the client's default.
    pub(crate) fn noreply(&self, call: Option<bool>) -> bool {
        call.unwrap_or_else(|| self.shared.client.default_noreply())
    }

    /// Decodes a value read under `key`: a mismatch is a miss, counted and logged.
    pub(crate) fn decode(&self, key: &str, value: Option<Value>) -> Result<Option<T>, Error> {
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

    pub(crate) async fn fetch(&self, key: &str) -> Result<Option<T>, Error> {
        let value = self.shared.client.get(key).await?;
        self.decode(key, value)
    }

    pub(crate) async fn fetch_with_token(&self, key: &str) -> Result<Option<(T, CasToken)>, Error> {
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
    pub(crate) fn prepare_keys<I>(&self, keys: I) -> Result<(Vec<T::Key>, Vec<String>), Error>
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

    pub(crate) async fn fetch_many(
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
}
