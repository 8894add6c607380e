//! Read-through, for both typed caches: `get_or_load`, single-flight within the process and,
//! over the meta protocol, one load across processes through a memcached lease; and
//! `get_many_or_load`. The fronts ([`Cache::get_or_load`], [`KeyedCache::get_or_load`], ...)
//! call the [`Engine`] methods here.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use memcache_core::{CasToken, Client, Lease};
use tracing::Instrument;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Codec;
use crate::engine::Engine;
use crate::error::{Error, LoadError};
use crate::key::{encode_key, CacheKey};
use crate::single_flight::{FlightKey, Role};
#[cfg(doc)]
use crate::{Cache, KeyedCache};

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

/// How long a `get_or_load` lease ([`Cache::get_or_load`], [`KeyedCache::get_or_load`])
/// lasts (seconds): other processes wait for the winner's value at most this long, should
/// the winner die without storing it.
pub const LEASE_TTL: u32 = 30;
/// First pause before asking again while another process holds the lease.
const LEASE_POLL_FIRST: Duration = Duration::from_millis(2);
/// Longest pause between two asks.
const LEASE_POLL_MAX: Duration = Duration::from_millis(50);

/// What a load hands to the tasks waiting on it.
type Outcome<T, E> = Result<T, LoadError<E>>;

impl<V, C> Engine<V, C>
where
    V: Serialize + DeserializeOwned,
    C: Codec,
{
    /// Reads the value under `key`; on a miss, runs `loader(key)`, stores its value with the
    /// default TTL under `key`, and returns it: single-flight within the process, one load
    /// across processes through a lease. The fronts document the contract.
    pub(crate) async fn get_or_load<Q, F, Fut, E>(
        &self,
        key: &Q,
        loader: F,
    ) -> Result<V, LoadError<E>>
    where
        Q: CacheKey + ?Sized,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let flight_key = FlightKey::new::<E>(self.key_of(key)?);
        let span = self.span("get_or_load", 1);
        async move {
            loop {
                match self.shared.flights.join::<Outcome<V, E>>(&flight_key) {
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
                            self.shared.counters.coalesced.bump();
                            return outcome;
                        }
                    }
                    Role::Alone => return self.read_or_load(flight_key.key(), key, loader).await,
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The span of a read-through call (see [Tracing](crate#tracing)).
    fn span(&self, op: &'static str, keys: usize) -> tracing::Span {
        tracing::debug_span!(
            target: "memcache_typed",
            "memcache_typed",
            op,
            prefix = &*self.space.prefix,
            keys = keys as u64,
        )
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
    ) -> Result<V, LoadError<E>>
    where
        Q: ?Sized,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let client = &self.shared.client;
        let counters = &self.shared.counters;
        let give_up = tokio::time::Instant::now() + client.timeout();
        let mut pause = LEASE_POLL_FIRST;
        let mut waited = false;
        let placeholder = loop {
            let mut lease = client.lease(full, LEASE_TTL);
            if let Some(window) = self.space.refresh {
                lease = lease.refresh_ahead(window);
            }
            match lease.await.map_err(Error::from)? {
                Lease::Hit(value) => match self.decode(full, Some(value))? {
                    Some(hit) => {
                        if waited {
                            counters.leased.bump();
                        }
                        return Ok(hit);
                    }
                    None => break None, // another codec or schema: replace it
                },
                Lease::Won { stale: None, token } => {
                    self.decode(full, None)?; // a miss
                    break token;
                }
                // An invalidated value (not a miss): it stays until the new one replaces
                // it, and this caller reloads it.
                Lease::Won { stale: Some(_), .. } => break None,
                Lease::Refresh { value, .. } => {
                    // Still good, and this caller alone is asked to refresh it before it
                    // expires: it reloads now; should that fail, the value it has is served.
                    let Some(current) = self.decode(full, Some(value))? else {
                        break None;
                    };
                    tracing::debug!(key = full, "refresh-ahead: reloading before expiry");
                    return Ok(match self.load_and_store(full, key, loader).await.0 {
                        Ok(fresh) => fresh,
                        // Counted in `load_errors`; the value is still good until it
                        // expires, and the next reader in the window tries again.
                        Err(_) => {
                            tracing::debug!(
                                key = full,
                                "refresh-ahead: the load failed, the current value is served"
                            );
                            current
                        }
                    });
                }
                Lease::Busy { stale: Some(value) } => {
                    if let Some(stale) = self.decode(full, Some(value))? {
                        counters.leased.bump();
                        return Ok(stale);
                    }
                }
                Lease::Busy { stale: None } => {}
                _ => {}
            }
            waited = true;
            if tokio::time::Instant::now() + pause > give_up {
                break None; // the lease holder is slow or gone: load anyway
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LEASE_POLL_MAX);
        };
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
    ) -> (Result<V, LoadError<E>>, bool)
    where
        Q: ?Sized,
        F: FnOnce(&Q) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let counters = &self.shared.counters;
        counters.loads.bump();
        let started = std::time::Instant::now();
        let loaded = loader(key).await;
        counters.loaded(started.elapsed());
        let value = match loaded {
            Ok(value) => value,
            Err(error) => {
                counters.load_errors.bump();
                return (Err(LoadError::Loader(Arc::new(error))), false);
            }
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
            .ttl(self.default_ttl())
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
    /// (deduplicated, in the order given; not at all when every key hit), stores the
    /// (key, value) pairs it returns for keys that missed with one `set_many` and the default
    /// TTL, and returns the hits and the loaded values together.
    pub(crate) async fn get_many_or_load<K, I, F, Fut, L, E>(
        &self,
        keys: I,
        loader: F,
    ) -> Result<HashMap<K, V>, LoadError<E>>
    where
        K: CacheKey + Clone + Eq + Hash,
        I: IntoIterator,
        I::Item: Borrow<K>,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<L, E>>,
        L: IntoIterator<Item = (K, V)>,
    {
        let (keys, full) = self.prepare_keys(keys)?;
        let span = self.span("get_many_or_load", keys.len());
        async move {
        let mut found = self.fetch_many(keys.clone(), &full).await?;
        let missing: Vec<K> = keys
            .into_iter()
            .filter(|key| !found.contains_key(key))
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let counters = &self.shared.counters;
        counters.loads.bump();
        let wanted: HashSet<K> = missing.iter().cloned().collect();
        let started = std::time::Instant::now();
        let loaded = loader(missing).await;
        counters.loaded(started.elapsed());
        let loaded = loaded.map_err(|error| {
            counters.load_errors.bump();
            LoadError::Loader(Arc::new(error))
        })?;
        let mut fresh = HashMap::new();
        for (key, value) in loaded {
            if wanted.contains(&key) && !found.contains_key(&key) {
                fresh.insert(key, value);
            } else {
                tracing::debug!(
                    prefix = &*self.space.prefix,
                    key = %encode_key(&key),
                    "the loader returned a value for a key that was not missing: ignored"
                );
            }
        }
        let stored = self
            .set_many(fresh.iter().map(|(key, value)| (key.clone(), value)))
            .run()
            .await;
        if let Err(error) = stored {
            if error.is_encode() || error.is_key() {
                return Err(error.into());
            }
            tracing::warn!(prefix = &*self.space.prefix, %error, "could not store the loaded values");
        }
        found.extend(fresh);
        Ok(found)
        }
        .instrument(span)
        .await
    }
}
