//! [`CacheStats`]: what a cache and its clones have counted, and the atomic counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

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

    /// A snapshot of every counter.
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            mismatches: self.mismatches.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }
}

/// Counters of one cache ([`Cache`](crate::Cache) or [`KeyedCache`](crate::KeyedCache)) and
/// its clones, since it was created: see [`Cache::stats`](crate::Cache::stats).
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
    /// Loader runs of the read-through methods (`get_or_load`, `get_many_or_load`).
    pub loads: u64,
    /// `get_or_load` calls answered by another call's read or load of the same key, already
    /// in flight (single-flight), instead of their own. They are not counted in `hits`,
    /// `misses` or `loads`.
    pub coalesced: u64,
}
