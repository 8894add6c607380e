//! The write commands of a [`Cache`] (`set`, `add`, `replace`, `set_many`, `cas`, `delete`,
//! `delete_many`, `touch`, and the `gets` + `cas` loop `update`): each method returns a
//! builder that takes per-call options and is then awaited.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::hash::BuildHasher;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use memcache_core::{CasOutcome, CasToken};

use crate::cache::Cache;
use crate::cacheable::Cacheable;
use crate::codec::{Codec, Encoded};
use crate::error::Error;
use crate::key::CacheKey;

/// How many `gets` + `cas` rounds [`Cache::update`] tries before it gives up with
/// [`Error::UpdateConflict`], unless [`Update::max_attempts`] says otherwise.
pub const DEFAULT_UPDATE_ATTEMPTS: u32 = 16;

/// The longest pause [`Cache::update`] makes between two conflicting attempts.
const MAX_UPDATE_BACKOFF: Duration = Duration::from_millis(10);

/// The future the typed command builders ([`Store`], [`SetMany`], [`Cas`], [`Delete`],
/// [`DeleteMany`], [`Touch`], [`Update`]) turn into when awaited.
pub type CacheFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

impl<T: Cacheable, C: Codec> Cache<T, C> {
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
    /// value (one for [`MessagePack`](crate::MessagePack) and `Json`, whose flags depend on
    /// the type only). Returns the keys that were not stored (none with noreply, the
    /// client's default). Every value is encoded before anything is sent.
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
}

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

    pub(crate) async fn run(self) -> Result<Vec<T::Key>, Error> {
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
