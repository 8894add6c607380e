//! [`KeyedCache`]: typed access to values that do not carry their key, the key given beside
//! the value. A thin front on the shared [`Engine`], as [`Cache`](crate::Cache) is: only the
//! construction (a prefix at run time, or a [`CacheValue`] type's constants) and the writes'
//! signatures differ.

use std::any::type_name;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use memcache_core::{CasToken, Client};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache_value::CacheValue;
use crate::codec::{Codec, MessagePack};
use crate::commands::{
    Cas, Delete, DeleteMany, Invalidate, SetMany, Store, StoreKind, Touch, Update,
};
use crate::engine::{Engine, KeySpace};
use crate::error::{Error, LoadError};
use crate::key::{check_prefix, CacheKey};
use crate::stats::CacheStats;

/// The longest default TTL [`KeyedCache::with_ttl`] accepts: 30 days. memcached reads larger
/// values as a unix timestamp.
const MAX_RELATIVE_TTL: u32 = 60 * 60 * 24 * 30;

/// Domain separation tag of [`KeyedCache::new`]'s default schema.
const TYPE_NAME_TAG: &[u8] = b"memcache-typed type name v1\0";

/// Typed access to values of type `V` stored under keys of type `K` that are given beside the
/// value: `friends.set(&user_id, &ids)`, `friends.get(&user_id)`.
///
/// The same commands, guarantees and settings as [`Cache`](crate::Cache), which keeps its
/// keys inside its values: keys `"{prefix}:{encoded key}"` (hashed when too long), flags that
/// record the codec `C` and the schema (a value written by another type or codec is a miss,
/// counted), the client's timeouts, noreply and ignore_exc, single-flight and leases in
/// [`get_or_load`](KeyedCache::get_or_load). Both are fronts on one implementation.
///
/// Two ways to make one:
///
/// - **A plain serde type**, no derive and no impl:
///   [`KeyedCache::new(client, "friends")`](KeyedCache::new) for MessagePack,
///   [`with_codec`](KeyedCache::with_codec) for another codec. The prefix is checked then
///   (an [`Error::InvalidPrefix`] if it breaks the rules); there is no default TTL unless
///   [`with_ttl`](KeyedCache::with_ttl) sets one; the schema is derived from `V`'s type name
///   unless [`with_schema`](KeyedCache::with_schema) sets it.
/// - **A [`CacheValue`] type** (derived with `#[cacheable(key_type = ...)]`, or written by
///   hand): [`KeyedCache::typed(client)`](KeyedCache::typed). Prefix, TTL and schema come
///   from the type, and `K` must be its key type.
///
/// ```no_run
/// use memcache_typed::{Cacheable, Client, KeyedCache, Pymemcache};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, Cacheable)]
/// #[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
/// struct Friends(Vec<u64>);
///
/// # async fn demo() -> Result<(), memcache_typed::Error> {
/// let client = Client::builder().server("127.0.0.1:11211").build()?;
///
/// // A derived type: prefix, TTL and schema from the type, key type u64.
/// let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client.clone());
/// friends.set(&42, &Friends(vec![7, 9])).await?; // "friends:42", ttl 600
/// let hit: Option<Friends> = friends.get(&42).await?;
///
/// // A plain type, no derive: the prefix at run time.
/// let counts = KeyedCache::<(String, u32), u64>::new(client.clone(), "visits")?.with_ttl(3600)?;
/// counts.set(&("/about".to_owned(), 2024), &17).await?; // "visits:/about:2024"
///
/// // Strings shared with a Python service that uses pymemcache.
/// let pages = KeyedCache::<String, String, Pymemcache>::with_codec(client, "page", Pymemcache::new())?;
/// let html: Option<String> = pages.get("home").await?;
/// # let _ = (hit, html);
/// # Ok(()) }
/// ```
pub struct KeyedCache<K, V, C: Codec = MessagePack> {
    engine: Engine<V, C>,
    _keys: PhantomData<fn(&K)>,
}

impl<K, V, C: Codec> Clone for KeyedCache<K, V, C> {
    fn clone(&self) -> Self {
        KeyedCache {
            engine: self.engine.clone(),
            _keys: PhantomData,
        }
    }
}

impl<K, V, C: Codec + fmt::Debug> fmt::Debug for KeyedCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.debug_as("KeyedCache", f)
    }
}

/// The default schema of a [`KeyedCache`] of `V`: the first four bytes (big-endian) of
/// SHA-256 over a tag and [`std::any::type_name::<V>()`](std::any::type_name).
fn type_name_schema<V: ?Sized>() -> u32 {
    let digest = Sha256::new()
        .chain_update(TYPE_NAME_TAG)
        .chain_update(type_name::<V>().as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl<K, V> KeyedCache<K, V>
where
    K: CacheKey,
    V: Serialize + DeserializeOwned,
{
    /// A cache of `V` values under `"{prefix}:{encoded key}"`, through `client`, encoded as
    /// [`MessagePack`]. No default TTL (see [`with_ttl`](KeyedCache::with_ttl)). Does no I/O.
    ///
    /// **The schema** (the fingerprint in the flags that makes a value written by another
    /// type a miss) is derived from [`std::any::type_name::<V>()`](std::any::type_name): so a
    /// `KeyedCache<u64, Vec<u64>>` and a `KeyedCache<u64, String>` on one prefix never read
    /// each other's values. Rust does not promise that a type's name stays the same from one
    /// compiler release to the next; when it changes, the schema changes with it, and the
    /// values written before read as misses (counted, never garbage) until they are written
    /// again. The same happens when `V` is renamed or moved to another module. This is the
    /// safe direction, but when several services, or builds by different compilers, share
    /// the entries, give the schema yourself with [`with_schema`](KeyedCache::with_schema)
    /// (and change it when `V`'s stored form changes). The [`Pymemcache`](crate::Pymemcache)
    /// codec ignores the schema: Python stores none.
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`] when `prefix` breaks the rules that
    /// [`check_prefix`](crate::key::check_prefix) and the derive apply (non-empty printable
    /// ASCII without spaces or `:`, at most 200 bytes).
    pub fn new(client: Client, prefix: &str) -> Result<Self, Error> {
        KeyedCache::with_codec(client, prefix, MessagePack)
    }
}

impl<K, V, C> KeyedCache<K, V, C>
where
    K: CacheKey,
    V: Serialize + DeserializeOwned,
    C: Codec,
{
    /// As [`new`](KeyedCache::new), with the values encoded by `codec` (for example
    /// [`Pymemcache`](crate::Pymemcache), to share `str`, `int` and `bytes` values with
    /// Python services).
    ///
    /// # Errors
    /// As [`new`](KeyedCache::new).
    pub fn with_codec(client: Client, prefix: &str, codec: C) -> Result<Self, Error> {
        check_prefix(prefix)?;
        let space = KeySpace {
            prefix: Arc::from(prefix),
            ttl: None,
            schema: type_name_schema::<V>(),
            refresh: None,
        };
        Ok(KeyedCache::from_space(client, codec, space))
    }

    fn from_space(client: Client, codec: C, space: KeySpace) -> Self {
        KeyedCache {
            engine: Engine::new(client, codec, space),
            _keys: PhantomData,
        }
    }

    /// Gives every write that does not set its own `.ttl()` a time to live of `seconds`
    /// (by default entries do not expire). Applies to this handle and to the clones made
    /// from it afterwards.
    ///
    /// # Errors
    /// [`Error::InvalidTtl`] unless `seconds` is from 1 to 2592000 (30 days), the derive's
    /// rule for `ttl`: memcached reads larger values as a unix timestamp.
    pub fn with_ttl(mut self, seconds: u32) -> Result<Self, Error> {
        if seconds == 0 || seconds > MAX_RELATIVE_TTL {
            return Err(Error::InvalidTtl { seconds });
        }
        self.engine.space.ttl = Some(seconds);
        Ok(self)
    }

    /// Sets the schema fingerprint instead of the one derived from `V`'s type name (see
    /// [`new`](KeyedCache::new)): any number, changed whenever the stored form of `V` changes.
    /// Codecs that follow the [flags layout](crate::codec#flags-layout) store its low 24 bits.
    /// Applies to this handle and to the clones made from it afterwards.
    pub fn with_schema(mut self, schema: u32) -> Self {
        self.engine.space.schema = schema;
        self
    }

    /// Refresh-ahead for [`get_or_load`](KeyedCache::get_or_load): when a value has less than
    /// `window` seconds left to live, one caller (of every process: memcached's meta
    /// `mg ... R<window>`) reloads and stores it before it expires, while every other reader
    /// keeps hitting; the reloading caller returns the new value (or, should the load fail,
    /// the current one). A hot key is then never missed at its expiry. Applies to this handle
    /// and the clones made from it afterwards; needs the meta protocol (ignored otherwise)
    /// and a TTL.
    pub fn refresh_ahead(mut self, window: u32) -> Self {
        self.engine.space.refresh = Some(window);
        self
    }

    /// The key prefix: values are stored under `"{prefix}:{encoded key}"`.
    pub fn prefix(&self) -> &str {
        &self.engine.space.prefix
    }

    /// The default time to live of writes, in seconds; `None`: entries do not expire.
    pub fn ttl(&self) -> Option<u32> {
        self.engine.space.ttl
    }

    /// The schema fingerprint this cache writes and expects.
    pub fn schema(&self) -> u32 {
        self.engine.space.schema
    }

    /// The client this cache talks through.
    pub fn client(&self) -> &Client {
        self.engine.client()
    }

    /// The codec values are encoded with.
    pub fn codec(&self) -> &C {
        self.engine.codec()
    }

    /// The counters of this cache and its clones (see [`CacheStats`]).
    pub fn stats(&self) -> CacheStats {
        self.engine.stats()
    }

    /// How many values were read as misses because their flags did not match (another codec,
    /// another schema or value type, a value written by someone else): `stats().mismatches`.
    pub fn mismatches(&self) -> u64 {
        self.stats().mismatches
    }

    /// The memcached key `key` is stored under, without the client's
    /// [`key_prefix`](memcache_core::ClientBuilder::key_prefix): `"{prefix}:{encoded key}"`,
    /// hashed when too long, as for [`Cache::memcached_key`](crate::Cache::memcached_key).
    ///
    /// # Errors
    /// [`Error::InvalidPrefix`] (only with a hand-written [`CacheValue`] impl) or
    /// [`Error::KeyTooLong`] (a client key prefix that leaves no room).
    pub fn memcached_key<Q>(&self, key: &Q) -> Result<String, Error>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.key_of(key)
    }

    // -----------------------------------------------------------------------------------
    // Reads

    /// Reads the value stored under `key`. A miss is `Ok(None)`, and so is a value whose
    /// flags belong to another codec, schema or value type (counted in
    /// [`stats`](KeyedCache::stats)).
    ///
    /// # Errors
    /// As [`Cache::get`](crate::Cache::get).
    pub fn get<'a, Q>(
        &'a self,
        key: &Q,
    ) -> impl Future<Output = Result<Option<V>, Error>> + Send + 'a
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        let key = self.engine.key_of(key);
        async move { self.engine.fetch(&key?).await }
    }

    /// Reads the value stored under `key` with its CAS token, for a later
    /// [`cas`](KeyedCache::cas). Misses and mismatches are `Ok(None)`.
    ///
    /// # Errors
    /// As [`get`](KeyedCache::get).
    pub fn gets<'a, Q>(
        &'a self,
        key: &Q,
    ) -> impl Future<Output = Result<Option<(V, CasToken)>, Error>> + Send + 'a
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        let key = self.engine.key_of(key);
        async move { self.engine.fetch_with_token(&key?).await }
    }

    /// Reads many values in one round trip: the hits, keyed by the keys as given. Empty
    /// flags-0 values are read as [`Cache::get_many`](crate::Cache::get_many) reads them.
    ///
    /// # Errors
    /// As [`get`](KeyedCache::get); one value that does not decode fails the whole call.
    pub fn get_many<'a, I>(
        &'a self,
        keys: I,
    ) -> impl Future<Output = Result<HashMap<K, V>, Error>> + Send + 'a
    where
        I: IntoIterator,
        I::Item: Borrow<K>,
        K: Clone + Eq + Hash + Send + 'a,
    {
        let prepared = self.engine.prepare_keys(keys);
        async move {
            let (keys, full) = prepared?;
            self.engine.fetch_many(keys, &full).await
        }
    }

    // -----------------------------------------------------------------------------------
    // Writes

    /// Stores `value` under `key` with the cache's default TTL (override with
    /// [`Store::ttl`]). Returns `true` when stored; noreply as
    /// [`Cache::set`](crate::Cache::set) (the client's default, then always `true`).
    ///
    /// # Errors
    /// Key errors and [`Error::Encode`] (nothing sent); the client's connection and timeout
    /// errors, and server errors when not noreply.
    pub fn set<Q>(&self, key: &Q, value: &V) -> Store<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.store(StoreKind::Set, key, value)
    }

    /// Stores `value` under `key` only if the key is absent: `false` when it exists.
    ///
    /// # Errors
    /// As [`set`](KeyedCache::set).
    pub fn add<Q>(&self, key: &Q, value: &V) -> Store<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.store(StoreKind::Add, key, value)
    }

    /// Stores `value` under `key` only if the key exists: `false` when it does not.
    ///
    /// # Errors
    /// As [`set`](KeyedCache::set).
    pub fn replace<Q>(&self, key: &Q, value: &V) -> Store<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.store(StoreKind::Replace, key, value)
    }

    /// Stores many (key, value) pairs in one round trip per distinct flags value: a
    /// `&HashMap<K, V>`, a `Vec<(K, V)>`, `[(&key, &value), ...]`. Returns the keys that were
    /// not stored (none with noreply, the client's default). Every value is encoded before
    /// anything is sent.
    ///
    /// # Errors
    /// As [`set`](KeyedCache::set).
    pub fn set_many<I, KB, VB>(&self, entries: I) -> SetMany<'_, V, C, K>
    where
        I: IntoIterator<Item = (KB, VB)>,
        KB: Borrow<K>,
        VB: Borrow<V>,
        K: Clone,
    {
        self.engine.set_many(
            entries
                .into_iter()
                .map(|(key, value)| (key.borrow().clone(), value)),
        )
    }

    /// Stores `value` under `key` only if it has not changed since `token` was read by
    /// [`gets`](KeyedCache::gets), with the default TTL. Waits for the outcome unless
    /// [`Cas::noreply`]`(true)`.
    ///
    /// # Errors
    /// As [`set`](KeyedCache::set).
    pub fn cas<Q>(&self, key: &Q, value: &V, token: CasToken) -> Cas<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.cas(key, value, token)
    }

    /// Deletes the value under `key`: `true` when it existed. noreply as the client's
    /// default (then always `true`).
    ///
    /// # Errors
    /// Key errors; the client's connection, timeout and server errors.
    pub fn delete<Q>(&self, key: &Q) -> Delete<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.delete(key)
    }

    /// Marks the value under `key` stale instead of deleting it, after a write to what it
    /// was loaded from: the next [`get_or_load`](KeyedCache::get_or_load) caller (of every
    /// process) reloads it, once, while every other reader keeps getting the stale value
    /// until the new one is stored: no miss storm (memcached's meta `md <key> I`; `.ttl(s)`
    /// bounds how long the stale value is served). `true` when the key existed; noreply as
    /// the client's default. Plain reads ([`get`](KeyedCache::get)) return the stale value.
    ///
    /// Over the classic protocol (older servers, proxies) it is a
    /// [`delete`](KeyedCache::delete).
    ///
    /// # Errors
    /// As [`delete`](KeyedCache::delete).
    pub fn invalidate<Q>(&self, key: &Q) -> Invalidate<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.invalidate(key)
    }

    /// Deletes many keys in one round trip. noreply as the client's default.
    ///
    /// # Errors
    /// As [`delete`](KeyedCache::delete).
    pub fn delete_many<I>(&self, keys: I) -> DeleteMany<'_, V, C>
    where
        I: IntoIterator,
        I::Item: Borrow<K>,
    {
        self.engine.delete_many(self.engine.keys_of::<K, _>(keys))
    }

    /// Resets the time to live of the value under `key` to the default TTL (override with
    /// [`Touch::ttl`]; without a default, the entry no longer expires): `false` when the key
    /// is missing.
    ///
    /// # Errors
    /// As [`delete`](KeyedCache::delete).
    pub fn touch<Q>(&self, key: &Q) -> Touch<'_, V, C>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
    {
        self.engine.touch(key)
    }

    /// Changes the value under `key` atomically with `gets` + `cas`, retrying on conflict:
    /// exactly as [`Cache::update`](crate::Cache::update). `Ok(None)` without calling `f`
    /// when the key is missing.
    ///
    /// # Errors
    /// [`Error::UpdateConflict`] when every attempt lost the race; otherwise as
    /// [`get`](KeyedCache::get) and [`set`](KeyedCache::set).
    pub fn update<Q, F>(&self, key: &Q, f: F) -> Update<'_, V, C, F>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
        F: FnMut(V) -> V,
    {
        self.engine.update(key, f)
    }

    // -----------------------------------------------------------------------------------
    // Read-through

    /// Reads the value under `key`; on a miss, runs `loader(key)`, stores its value under
    /// `key` with the default TTL, and returns it. Single-flight within the process, one
    /// load across processes through a lease, loader and cache errors, `ignore_exc` and
    /// cancellation: exactly as [`Cache::get_or_load`](crate::Cache::get_or_load).
    ///
    /// # Errors
    /// [`LoadError::Cache`] as [`get`](KeyedCache::get), or when the loaded value cannot be
    /// encoded; [`LoadError::Loader`] with the loader's error.
    pub async fn get_or_load<Q, F, Fut, E>(&self, key: &Q, loader: F) -> Result<V, LoadError<E>>
    where
        Q: CacheKey + ?Sized,
        K: Borrow<Q>,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.engine.get_or_load(key, loader).await
    }

    /// Reads many keys in one round trip; calls `loader` once with the keys that missed
    /// (deduplicated, in the order given; not at all when every key hit), stores the
    /// (key, value) pairs it returns (a `HashMap<K, V>`, a `Vec<(K, V)>`, ...) with one
    /// [`set_many`](KeyedCache::set_many), and returns the hits and the loaded values
    /// together. Pairs for keys that were not missing are ignored; a missing key the loader
    /// returns nothing for is absent from the result. Otherwise as
    /// [`Cache::get_many_or_load`](crate::Cache::get_many_or_load).
    ///
    /// # Errors
    /// [`LoadError::Cache`] as [`get_many`](KeyedCache::get_many), or when a loaded value
    /// cannot be encoded; [`LoadError::Loader`] with the loader's error.
    pub async fn get_many_or_load<I, F, Fut, L, E>(
        &self,
        keys: I,
        loader: F,
    ) -> Result<HashMap<K, V>, LoadError<E>>
    where
        I: IntoIterator,
        I::Item: Borrow<K>,
        K: Clone + Eq + Hash,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<L, E>>,
        L: IntoIterator<Item = (K, V)>,
    {
        self.engine.get_many_or_load(keys, loader).await
    }
}

impl<V: CacheValue> KeyedCache<V::Key, V> {
    /// A cache of the [`CacheValue`] type `V`, through `client`, with the default
    /// [`MessagePack`] codec: prefix, default TTL and schema from `V`, keys of `V::Key`.
    /// Does no I/O.
    pub fn typed(client: Client) -> Self {
        KeyedCache::typed_with_codec(client, MessagePack)
    }
}

impl<V: CacheValue, C: Codec> KeyedCache<V::Key, V, C> {
    /// As [`typed`](KeyedCache::typed), with the values encoded by `codec`.
    pub fn typed_with_codec(client: Client, codec: C) -> Self {
        let space = KeySpace {
            prefix: Arc::from(V::PREFIX),
            ttl: V::TTL,
            schema: V::SCHEMA,
            refresh: None,
        };
        KeyedCache::from_space(client, codec, space)
    }
}

#[cfg(test)]
mod tests {
    use super::type_name_schema;

    #[test]
    fn type_name_schemas_tell_value_types_apart() {
        let schemas = [
            type_name_schema::<String>(),
            type_name_schema::<Vec<u64>>(),
            type_name_schema::<Vec<u32>>(),
            type_name_schema::<u64>(),
            type_name_schema::<(u64, String)>(),
        ];
        for (i, a) in schemas.iter().enumerate() {
            for b in &schemas[i + 1..] {
                assert_ne!(a & 0xFF_FFFF, b & 0xFF_FFFF, "the stored 24 bits differ");
            }
        }
        assert_eq!(type_name_schema::<String>(), type_name_schema::<String>());
    }
}
