//! Read-through: [`Cache::get_or_load`], single-flight within the process and, over the
//! meta protocol, one load across processes through a memcached lease; and
//! [`Cache::get_many_or_load`].

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use memcache_core::{CasToken, Client, Lease};

use crate::cache::{Cache, Counters};
use crate::cacheable::Cacheable;
use crate::codec::Codec;
use crate::error::{Error, LoadError};
use crate::key::{encode_key, CacheKey};
use crate::single_flight::{FlightKey, Role};

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

/// What a load hands to the tasks waiting on it.
type Outcome<T, E> = Result<T, LoadError<E>>;

impl<T: Cacheable, C: Codec> Cache<T, C> {
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
        let flight_key = FlightKey::new::<E>(self.key_of(key)?);
        loop {
            match self.shared.flights.join::<Outcome<T, E>>(&flight_key) {
                Role::Lead(lead) => {
                    let outcome = self.read_or_load(flight_key.key(), key, loader).await;
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
                Role::Alone => return self.read_or_load(flight_key.key(), key, loader).await,
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
