//! [`Cache`]: the typed handle on the values of one [`Cacheable`] type, whose key is part of
//! the value. A thin front on the shared [`Engine`]: it finds a write's key with
//! [`Cacheable::cache_key`] and hands everything else to the engine.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use memcache_core::{CasToken, Client};

use crate::cacheable::Cacheable;
use crate::codec::{Codec, MessagePack};
use crate::commands::{
    Cas, Delete, DeleteMany, Invalidate, SetMany, Store, StoreKind, Touch, Update,
};
use crate::engine::{Engine, KeySpace};
use crate::error::{Error, LoadError};
use crate::key::CacheKey;
use crate::stats::CacheStats;

/// Typed access to the values of one [`Cacheable`] type, through a memcached [`Client`].
///
/// Every method takes the type's own key (`&T::Key`, or a borrowed form of it such as `&str`
/// for a `String` key) or `&T`, so asking for a user with an order id does not compile. Keys
/// become `"{T::PREFIX}:{encoded key}"` (see [`crate::key`]); values are encoded by the codec
/// `C` ([`MessagePack`] by default) with flags that record the codec and `T::SCHEMA` (see
/// [`crate::codec`]). For values that do not carry their key, see
/// [`KeyedCache`](crate::KeyedCache): the same methods, with the key passed beside the value.
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
    engine: Engine<T, C>,
}

impl<T: Cacheable, C: Codec> Clone for Cache<T, C> {
    fn clone(&self) -> Self {
        Cache {
            engine: self.engine.clone(),
        }
    }
}

impl<T: Cacheable, C: Codec + fmt::Debug> fmt::Debug for Cache<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.debug_as("Cache", f)
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
        let space = KeySpace {
            prefix: Arc::from(T::PREFIX),
            ttl: T::TTL,
            schema: T::SCHEMA,
            refresh: None,
        };
        Cache {
            engine: Engine::new(client, codec, space),
        }
    }

    /// Refresh-ahead for [`get_or_load`](Cache::get_or_load): when a value has less than
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

    /// The client this cache talks through.
    pub fn client(&self) -> &Client {
        self.engine.client()
    }

    /// The codec values are encoded with.
    pub fn codec(&self) -> &C {
        self.engine.codec()
    }

    /// The counters of this cache and its clones.
    pub fn stats(&self) -> CacheStats {
        self.engine.stats()
    }

    /// How many values were read as misses because their flags did not match (another codec,
    /// another schema, a value written by someone else): `stats().mismatches`.
    pub fn mismatches(&self) -> u64 {
        self.stats().mismatches
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
        self.engine.key_of(key)
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
        let key = self.engine.key_of(key);
        async move { self.engine.fetch(&key?).await }
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
        let key = self.engine.key_of(key);
        async move { self.engine.fetch_with_token(&key?).await }
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
        let prepared = self.engine.prepare_keys(keys);
        async move {
            let (keys, full) = prepared?;
            self.engine.fetch_many(keys, &full).await
        }
    }

    // -----------------------------------------------------------------------------------
    // Writes

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
        self.engine.store(StoreKind::Set, &value.cache_key(), value)
    }

    /// Stores `value` only if its key is absent: `false` when it exists. noreply as
    /// [`set`](Cache::set) (then always `true`).
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn add(&self, value: &T) -> Store<'_, T, C> {
        self.engine.store(StoreKind::Add, &value.cache_key(), value)
    }

    /// Stores `value` only if its key exists: `false` when it does not. noreply as
    /// [`set`](Cache::set) (then always `true`).
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn replace(&self, value: &T) -> Store<'_, T, C> {
        self.engine
            .store(StoreKind::Replace, &value.cache_key(), value)
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
        self.engine
            .set_many(values.into_iter().map(|value| (value.cache_key(), value)))
    }

    /// Stores `value` only if it has not changed since `token` was read by
    /// [`gets`](Cache::gets), with the type's TTL. Waits for the outcome unless
    /// [`Cas::noreply`]`(true)`.
    ///
    /// # Errors
    /// As [`set`](Cache::set).
    pub fn cas(&self, value: &T, token: CasToken) -> Cas<'_, T, C> {
        self.engine.cas(&value.cache_key(), value, token)
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
        self.engine.delete(key)
    }

    /// Marks the value under `key` stale instead of deleting it, after a write to what it
    /// was loaded from: the next [`get_or_load`](Cache::get_or_load) caller (of every
    /// process) reloads it, once, while every other reader keeps getting the stale value
    /// until the new one is stored: no miss storm (memcached's meta `md <key> I`; `.ttl(s)`
    /// bounds how long the stale value is served). `true` when the key existed; noreply as
    /// the client's default. Plain reads ([`get`](Cache::get)) return the stale value.
    ///
    /// Over the classic protocol (older servers, proxies) it is a
    /// [`delete`](Cache::delete).
    ///
    /// # Errors
    /// As [`delete`](Cache::delete).
    pub fn invalidate<Q>(&self, key: &Q) -> Invalidate<'_, T, C>
    where
        Q: CacheKey + ?Sized,
        T::Key: Borrow<Q>,
    {
        self.engine.invalidate(key)
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
        self.engine
            .delete_many(self.engine.keys_of::<T::Key, _>(keys))
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
        self.engine.touch(key)
    }

    /// Changes the value under `key` atomically: reads it with `gets`, applies `f`, and
    /// writes the result with `cas`; when another writer changed the value in between, it
    /// waits a few random milliseconds at most and starts over, up to
    /// [`DEFAULT_UPDATE_ATTEMPTS`](crate::DEFAULT_UPDATE_ATTEMPTS) (16) rounds
    /// ([`Update::max_attempts`] changes the bound). `f` may therefore run several times,
    /// each time on the latest value.
    ///
    /// Returns the stored value, or `Ok(None)` without calling `f` when the key is missing
    /// (a mismatch counts as missing; so does a value deleted between the read and the
    /// write). The new value gets the type's TTL ([`Update::ttl`] overrides it) and stays
    /// under `key`, whatever its own [`cache_key`](Cacheable::cache_key) says. The `cas`
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
        self.engine.update(key, f)
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
    /// **Across processes**, on servers with the meta protocol, the leading call reads with
    /// a [lease](memcache_core::Client::lease) ([`LEASE_TTL`](crate::LEASE_TTL) seconds):
    /// the process whose lease wins loads; the others serve the old value of an invalidated
    /// entry, or wait for the winner's value (at most the client's timeout) and then load
    /// themselves. A winner that stores nothing releases the lease.
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
        self.engine.get_or_load(key, loader).await
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
        let keyed_loader = |missing| {
            let loaded = loader(missing);
            async move {
                let values = loaded.await?;
                Ok(values.into_iter().map(|value| (value.cache_key(), value)))
            }
        };
        self.engine.get_many_or_load(keys, keyed_loader).await
    }
}
