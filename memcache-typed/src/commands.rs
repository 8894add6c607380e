//! The write commands of both typed caches (`set`, `add`, `replace`, `set_many`, `cas`,
//! `delete`, `delete_many`, `touch`, and the `gets` + `cas` loop `update`): the builders they
//! return, which take per-call options and are then awaited, and the [`Engine`] methods that
//! make them. [`Cache`](crate::Cache) and [`KeyedCache`](crate::KeyedCache) only find the key
//! (in the value, or beside it) and call these.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::BuildHasher;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use memcache_core::{CasOutcome, CasToken};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, Encoded};
use crate::engine::Engine;
use crate::error::Error;
use crate::key::CacheKey;
#[cfg(doc)]
use crate::{Cache, KeyedCache};

/// How many `gets` + `cas` rounds `update` ([`Cache::update`], [`KeyedCache::update`])
/// tries before it gives up with [`Error::UpdateConflict`], unless [`Update::max_attempts`] says otherwise.
pub const DEFAULT_UPDATE_ATTEMPTS: u32 = 16;

/// The longest pause `update` makes between two conflicting attempts.
const MAX_UPDATE_BACKOFF: Duration = Duration::from_millis(10);

/// The future the typed command builders ([`Store`], [`SetMany`], [`Cas`], [`Delete`],
/// [`DeleteMany`], [`Touch`], [`Update`]) turn into when awaited.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The builders' constructors, shared by both fronts: each takes the memcached key (or what
/// builds it) and the value as the front found them.
impl<V: Serialize, C: Codec> Engine<V, C> {
    pub(crate) fn store<Q: CacheKey + ?Sized>(
        &self,
        kind: StoreKind,
        key: &Q,
        value: &V,
    ) -> Store<'_, V, C> {
        Store {
            engine: self,
            kind,
            prepared: self.prepare(key, value),
            ttl: None,
            noreply: None,
        }
    }

    /// `entries` are (key, value) pairs; every value is encoded before anything is sent.
    pub(crate) fn set_many<K, B, I>(&self, entries: I) -> SetMany<'_, V, C, K>
    where
        K: CacheKey,
        B: Borrow<V>,
        I: IntoIterator<Item = (K, B)>,
    {
        let prepared = entries
            .into_iter()
            .map(|(key, value)| {
                let (full, encoded) = self.prepare(&key, value.borrow())?;
                Ok((key, full, encoded))
            })
            .collect();
        SetMany {
            engine: self,
            prepared,
            ttl: None,
            noreply: None,
        }
    }

    pub(crate) fn cas<Q: CacheKey + ?Sized>(
        &self,
        key: &Q,
        value: &V,
        token: CasToken,
    ) -> Cas<'_, V, C> {
        Cas {
            engine: self,
            prepared: self.prepare(key, value),
            token,
            ttl: None,
            noreply: false,
        }
    }

    pub(crate) fn delete<Q: CacheKey + ?Sized>(&self, key: &Q) -> Delete<'_, V, C> {
        Delete {
            engine: self,
            key: self.key_of(key),
            noreply: None,
        }
    }

    pub(crate) fn invalidate<Q: CacheKey + ?Sized>(&self, key: &Q) -> Invalidate<'_, V, C> {
        Invalidate {
            engine: self,
            key: self.key_of(key),
            ttl: None,
            noreply: None,
        }
    }

    /// `keys` from [`keys_of`](Engine::keys_of).
    pub(crate) fn delete_many(&self, keys: Result<Vec<String>, Error>) -> DeleteMany<'_, V, C> {
        DeleteMany {
            engine: self,
            keys,
            noreply: None,
        }
    }

    pub(crate) fn touch<Q: CacheKey + ?Sized>(&self, key: &Q) -> Touch<'_, V, C> {
        Touch {
            engine: self,
            key: self.key_of(key),
            ttl: None,
            noreply: None,
        }
    }

    pub(crate) fn update<Q, F>(&self, key: &Q, f: F) -> Update<'_, V, C, F>
    where
        Q: CacheKey + ?Sized,
        F: FnMut(V) -> V,
    {
        Update {
            engine: self,
            key: self.key_of(key),
            f,
            ttl: None,
            attempts: DEFAULT_UPDATE_ATTEMPTS,
        }
    }
}

/// Which of the three store commands a [`Store`] sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreKind {
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
        impl<$($g),*> fmt::Debug for $name<'_, $($g),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("prefix", &&*self.engine.space.prefix)
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `set` / `add` / `replace` of a typed value: see [`Cache::set`] and
/// [`KeyedCache::set`]. Set options, then
/// `.await` it.
#[must_use = "a command does nothing until it is awaited"]
pub struct Store<'a, T, C> {
    engine: &'a Engine<T, C>,
    kind: StoreKind,
    prepared: Result<(String, Encoded), Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(Store<T, C> { kind, ttl, noreply });

impl<'a, T, C: Codec> Store<'a, T, C> {
    /// Time to live in seconds for this write, instead of the cache's
    /// default TTL (0: no expiry).
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
        let client = &self.engine.shared.client;
        let command = match self.kind {
            StoreKind::Set => client.set(key, encoded.data),
            StoreKind::Add => client.add(key, encoded.data),
            StoreKind::Replace => client.replace(key, encoded.data),
        };
        let command = command
            .flags(encoded.flags)
            .ttl(self.ttl.unwrap_or_else(|| self.engine.default_ttl()))
            .noreply(self.engine.noreply(self.noreply));
        Ok(command.await?)
    }
}

cache_future!(Store<T, C> => bool, where C: Codec);

/// Many typed `set`s: see [`Cache::set_many`] and
/// [`KeyedCache::set_many`].
#[must_use = "a command does nothing until it is awaited"]
///
/// `K` is the key type: the values' own key type for a [`Cache`](crate::Cache), the cache's
/// key type for a [`KeyedCache`](crate::KeyedCache).
pub struct SetMany<'a, T, C, K = <T as crate::Cacheable>::Key> {
    engine: &'a Engine<T, C>,
    prepared: Result<Vec<(K, String, Encoded)>, Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(SetMany<T, C, K> { ttl, noreply });

/// A memcached key that remembers which value of a batch it belongs to.
struct Indexed(usize, String);

impl AsRef<[u8]> for Indexed {
    fn as_ref(&self) -> &[u8] {
        self.1.as_bytes()
    }
}

impl<'a, T, C: Codec, K> SetMany<'a, T, C, K> {
    /// Time to live in seconds for these writes, instead of the cache's
    /// default TTL (0: no expiry).
    pub fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    pub(crate) async fn run(self) -> Result<Vec<K>, Error> {
        let prepared = self.prepared?;
        let ttl = self.ttl.unwrap_or_else(|| self.engine.default_ttl());
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
                .engine
                .shared
                .client
                .set_many(items)
                .flags(flags)
                .ttl(ttl)
                .noreply(self.engine.noreply(self.noreply));
            for Indexed(index, _) in command.await? {
                not_stored.extend(keys[index].take());
            }
        }
        Ok(not_stored)
    }
}

cache_future!(SetMany<T, C, K> => Vec<K>, where K: Send + 'a, C: Codec);

/// A typed `cas`: see [`Cache::cas`] and
/// [`KeyedCache::cas`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Cas<'a, T, C> {
    engine: &'a Engine<T, C>,
    prepared: Result<(String, Encoded), Error>,
    token: CasToken,
    ttl: Option<u32>,
    noreply: bool,
}
debug_builder!(Cas<T, C> { token, ttl, noreply });

impl<'a, T, C: Codec> Cas<'a, T, C> {
    /// Time to live in seconds for this write, instead of the cache's
    /// default TTL (0: no expiry).
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
            .engine
            .shared
            .client
            .cas(key, encoded.data, self.token)
            .flags(encoded.flags)
            .ttl(self.ttl.unwrap_or_else(|| self.engine.default_ttl()))
            .noreply(self.noreply)
            .await?;
        Ok(outcome)
    }
}

cache_future!(Cas<T, C> => CasOutcome, where C: Codec);

/// A typed `delete`: see [`Cache::delete`] and
/// [`KeyedCache::delete`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Delete<'a, T, C> {
    engine: &'a Engine<T, C>,
    key: Result<String, Error>,
    noreply: Option<bool>,
}
debug_builder!(Delete<T, C> { key, noreply });

impl<'a, T, C: Codec> Delete<'a, T, C> {
    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<bool, Error> {
        let command = self.engine.shared.client.delete(self.key?);
        Ok(command.noreply(self.engine.noreply(self.noreply)).await?)
    }
}

cache_future!(Delete<T, C> => bool, where C: Codec);

/// A typed invalidation (memcached's `md <key> I`): see [`Cache::invalidate`] and
/// [`KeyedCache::invalidate`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Invalidate<'a, T, C> {
    engine: &'a Engine<T, C>,
    key: Result<String, Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(Invalidate<T, C> { key, ttl, noreply });

impl<'a, T, C: Codec> Invalidate<'a, T, C> {
    /// How many more seconds the stale value is served while one reader reloads it (by
    /// default: the time it had left).
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
        let mut command = self.engine.shared.client.invalidate(self.key?);
        if let Some(ttl) = self.ttl {
            command = command.ttl(ttl);
        }
        Ok(command.noreply(self.engine.noreply(self.noreply)).await?)
    }
}

cache_future!(Invalidate<T, C> => bool, where C: Codec);

/// Many typed `delete`s: see [`Cache::delete_many`] and
/// [`KeyedCache::delete_many`].
#[must_use = "a command does nothing until it is awaited"]
pub struct DeleteMany<'a, T, C> {
    engine: &'a Engine<T, C>,
    keys: Result<Vec<String>, Error>,
    noreply: Option<bool>,
}
debug_builder!(DeleteMany<T, C> { keys, noreply });

impl<'a, T, C: Codec> DeleteMany<'a, T, C> {
    /// Overrides the client's noreply default for this call.
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = Some(on);
        self
    }

    async fn run(self) -> Result<(), Error> {
        let command = self.engine.shared.client.delete_many(self.keys?);
        Ok(command.noreply(self.engine.noreply(self.noreply)).await?)
    }
}

cache_future!(DeleteMany<T, C> => (), where C: Codec);

/// A typed `touch`: see [`Cache::touch`] and
/// [`KeyedCache::touch`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Touch<'a, T, C> {
    engine: &'a Engine<T, C>,
    key: Result<String, Error>,
    ttl: Option<u32>,
    noreply: Option<bool>,
}
debug_builder!(Touch<T, C> { key, ttl, noreply });

impl<'a, T, C: Codec> Touch<'a, T, C> {
    /// The new time to live in seconds, instead of the cache's default
    /// TTL (0: no expiry).
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
        let ttl = self.ttl.unwrap_or_else(|| self.engine.default_ttl());
        let command = self.engine.shared.client.touch(self.key?, ttl);
        Ok(command.noreply(self.engine.noreply(self.noreply)).await?)
    }
}

cache_future!(Touch<T, C> => bool, where C: Codec);

/// A compare-and-swap loop: see [`Cache::update`] and
/// [`KeyedCache::update`].
#[must_use = "a command does nothing until it is awaited"]
pub struct Update<'a, T, C, F> {
    engine: &'a Engine<T, C>,
    key: Result<String, Error>,
    f: F,
    ttl: Option<u32>,
    attempts: u32,
}

impl<T, C, F> fmt::Debug for Update<'_, T, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("prefix", &&*self.engine.space.prefix)
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl<'a, T, C, F> Update<'a, T, C, F>
where
    T: Serialize + DeserializeOwned,
    C: Codec,
    F: FnMut(T) -> T,
{
    /// Time to live in seconds for the new value, instead of the cache's
    /// default TTL (0: no expiry).
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
        let ttl = self.ttl.unwrap_or_else(|| self.engine.default_ttl());
        let engine = self.engine;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let Some((current, token)) = engine.fetch_with_token(&key).await? else {
                return Ok(None);
            };
            let next = (self.f)(current);
            let encoded = engine.encode(&next)?;
            let outcome = engine
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

cache_future!(Update<T, C, F> => Option<T>, where T: Serialize + DeserializeOwned + Send, C: Codec, F: FnMut(T) -> T + Send + 'a);

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
