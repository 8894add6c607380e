//! The one implementation behind both typed caches: [`Engine`], what its clones share, the
//! [`KeySpace`] its keys live in, how keys are built and values encoded and decoded, and the
//! plain reads (`get`, `gets`, `get_many`).
//!
//! [`Cache`](crate::Cache) (the key is part of the value) and
//! [`KeyedCache`](crate::KeyedCache) (the key is given beside the value) are thin fronts on
//! an `Engine`: they differ only in where a write finds its key. Everything else, key
//! encoding and hashing, flags, the counters, the write builders (`commands.rs`), and
//! read-through with single-flight and leases (`read_through.rs`), is written once, here and
//! in the files that add methods to `Engine`.
//!
//! A new command is added once for both forms: an `Engine` method that takes the key as a
//! `&Q where Q: CacheKey` (and builds the memcached key with [`Engine::key_of`]), a builder
//! in `commands.rs` if it takes options, and on each front a one-line method whose only
//! difference is its key bound (`T::Key: Borrow<Q>` on `Cache`, `K: Borrow<Q>` on
//! `KeyedCache`). Issue 12's `invalidate(&key)` (meta `md <key> I T<secs>`) is such a command:
//! it needs the key and the client, nothing of the value.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use memcache_core::{CasToken, Client, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, Decoded, Encoded};
use crate::error::Error;
use crate::key::{full_key, CacheKey, MAX_KEY_LEN};
use crate::single_flight::Flights;
use crate::stats::{CacheStats, Counters};

/// Where the values of one cache live and how they are written: the key prefix, the default
/// TTL, and the schema fingerprint that goes into the flags.
///
/// A derived type's key space comes from its constants; a [`KeyedCache`](crate::KeyedCache)
/// of a plain serde type gets it at construction. It belongs to a handle (cheap to clone: the
/// prefix is shared), not to what the clones share.
#[derive(Clone)]
pub(crate) struct KeySpace {
    /// `"{prefix}:{encoded key}"`; checked by [`full_key`] on every use.
    pub(crate) prefix: Arc<str>,
    /// Default time to live of every write, in seconds; `None`: no expiry.
    pub(crate) ttl: Option<u32>,
    /// The schema fingerprint; codecs that follow the flags layout store its low 24 bits.
    pub(crate) schema: u32,
    /// The refresh-ahead window of `get_or_load`, in seconds (`None`: off).
    pub(crate) refresh: Option<u32>,
}

/// What the clones of one cache share.
pub(crate) struct Shared<C> {
    pub(crate) client: Client,
    pub(crate) codec: C,
    pub(crate) counters: Counters,
    /// Loads in flight, for `get_or_load`.
    pub(crate) flights: Flights,
}

/// Typed access to values of type `V` in one [`KeySpace`]; keys are passed in, already
/// borrowed as [`CacheKey`]s: the fronts decide which key types they accept.
pub(crate) struct Engine<V, C> {
    pub(crate) shared: Arc<Shared<C>>,
    pub(crate) space: KeySpace,
    _values: PhantomData<fn() -> V>,
}

impl<V, C> Clone for Engine<V, C> {
    fn clone(&self) -> Self {
        Engine {
            shared: Arc::clone(&self.shared),
            space: self.space.clone(),
            _values: PhantomData,
        }
    }
}

impl<V, C: fmt::Debug> Engine<V, C> {
    /// The `Debug` form of a front named `name`.
    pub(crate) fn debug_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("prefix", &&*self.space.prefix)
            .field("ttl", &self.space.ttl)
            .field("schema", &self.space.schema)
            .field("codec", &self.shared.codec)
            .field("client", &self.shared.client)
            .finish_non_exhaustive()
    }
}

impl<V, C> Engine<V, C> {
    /// An engine with fresh counters and no loads in flight. Does no I/O.
    pub(crate) fn new(client: Client, codec: C, space: KeySpace) -> Self {
        Engine {
            shared: Arc::new(Shared {
                client,
                codec,
                counters: Counters::new(&space.prefix),
                flights: Flights::default(),
            }),
            space,
            _values: PhantomData,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.shared.client
    }

    pub(crate) fn codec(&self) -> &C {
        &self.shared.codec
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.shared.counters.snapshot()
    }

    /// The memcached key of `key` in this key space, without the client's key prefix.
    pub(crate) fn key_of<Q: CacheKey + ?Sized>(&self, key: &Q) -> Result<String, Error> {
        let budget = MAX_KEY_LEN.saturating_sub(self.shared.client.key_prefix().len());
        full_key(&self.space.prefix, key, budget)
    }

    /// The TTL of a write that does not set its own.
    pub(crate) fn default_ttl(&self) -> u32 {
        self.space.ttl.unwrap_or(0)
    }

    /// A call's noreply setting, or else the client's default.
    pub(crate) fn noreply(&self, call: Option<bool>) -> bool {
        call.unwrap_or_else(|| self.shared.client.default_noreply())
    }

    /// The memcached keys of `keys`; the first key that cannot be built fails them all.
    pub(crate) fn keys_of<K, I>(&self, keys: I) -> Result<Vec<String>, Error>
    where
        K: CacheKey + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<K>,
    {
        keys.into_iter()
            .map(|key| self.key_of(key.borrow()))
            .collect()
    }

    /// The keys (deduplicated, in order) and their memcached keys.
    pub(crate) fn prepare_keys<K, I>(&self, keys: I) -> Result<(Vec<K>, Vec<String>), Error>
    where
        K: CacheKey + Clone + Eq + Hash,
        I: IntoIterator,
        I::Item: Borrow<K>,
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
}

impl<V: Serialize, C: Codec> Engine<V, C> {
    pub(crate) fn encode(&self, value: &V) -> Result<Encoded, Error> {
        Ok(self.shared.codec.encode(value, self.space.schema)?)
    }

    /// The memcached key of `key` and the encoded form of `value`.
    pub(crate) fn prepare<Q: CacheKey + ?Sized>(
        &self,
        key: &Q,
        value: &V,
    ) -> Result<(String, Encoded), Error> {
        Ok((self.key_of(key)?, self.encode(value)?))
    }
}

impl<V: DeserializeOwned, C: Codec> Engine<V, C> {
    /// Decodes a value read under `key`: a mismatch is a miss, counted and logged.
    pub(crate) fn decode(&self, key: &str, value: Option<Value>) -> Result<Option<V>, Error> {
        let counters = &self.shared.counters;
        let Some(value) = value else {
            counters.misses.bump();
            return Ok(None);
        };
        match self
            .shared
            .codec
            .decode::<V>(&value.data, value.flags, self.space.schema)
        {
            Ok(Decoded::Value(decoded)) => {
                counters.hits.bump();
                Ok(Some(decoded))
            }
            // An empty value with flags 0 is another client's lease placeholder (see
            // `Client::lease`) when this codec does not use flags 0: a plain miss.
            Ok(Decoded::Mismatch { found_flags: 0, .. }) if value.data.is_empty() => {
                counters.misses.bump();
                Ok(None)
            }
            Ok(Decoded::Mismatch {
                expected_flags,
                found_flags,
            }) => {
                counters.mismatches.bump();
                counters.misses.bump();
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

    /// Reads and decodes the value under the memcached key `key`.
    pub(crate) async fn fetch(&self, key: &str) -> Result<Option<V>, Error> {
        let value = self.shared.client.get(key).await?;
        self.decode(key, value)
    }

    /// Reads and decodes the value under the memcached key `key`, with its CAS token.
    pub(crate) async fn fetch_with_token(&self, key: &str) -> Result<Option<(V, CasToken)>, Error> {
        match self.shared.client.gets(key).await? {
            None => self.decode(key, None).map(|_| None),
            Some((value, token)) => Ok(self.decode(key, Some(value))?.map(|v| (v, token))),
        }
    }

    /// Reads many keys (prepared by [`prepare_keys`](Engine::prepare_keys)) in one round trip:
    /// the hits, decoded, by key.
    pub(crate) async fn fetch_many<K>(
        &self,
        keys: Vec<K>,
        full: &[String],
    ) -> Result<HashMap<K, V>, Error>
    where
        K: Eq + Hash,
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
                self.shared.codec.decode::<V>(b"", 0, self.space.schema),
                Ok(Decoded::Mismatch { .. })
            )
    }
}
