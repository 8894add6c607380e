//! [`CacheStats`]: what a cache and its clones have counted, and the counters behind it;
//! with the cargo feature `metrics`, each count is also a counter of the
//! [`metrics`](https://docs.rs/metrics) facade, labelled with the cache's prefix (the crate
//! documentation lists them: [Metrics](crate#metrics)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One count: an atomic for [`CacheStats`], and the facade's counter.
pub(crate) struct Count {
    n: AtomicU64,
    #[cfg(feature = "metrics")]
    counter: metrics::Counter,
}

impl Count {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(name: &'static str, prefix: &str, via: Option<&'static str>) -> Self {
        Count {
            n: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            counter: match via {
                Some(via) => {
                    metrics::counter!(name, "prefix" => prefix.to_owned(), "via" => via)
                }
                None => metrics::counter!(name, "prefix" => prefix.to_owned()),
            },
        }
    }

    /// Counts one.
    pub(crate) fn bump(&self) {
        self.n.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.counter.increment(1);
    }

    fn get(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }
}

/// What [`CacheStats`] reports, as it is counted.
pub(crate) struct Counters {
    pub(crate) hits: Count,
    pub(crate) misses: Count,
    pub(crate) mismatches: Count,
    pub(crate) loads: Count,
    pub(crate) load_errors: Count,
    pub(crate) coalesced: Count,
    pub(crate) leased: Count,
    #[cfg(feature = "metrics")]
    load_latency: metrics::Histogram,
}

impl Counters {
    /// Fresh counters of the cache whose keys start with `prefix` (registered with the
    /// recorder installed now, under the feature `metrics`).
    pub(crate) fn new(prefix: &str) -> Self {
        Counters {
            hits: Count::new("memcache_typed_hits_total", prefix, None),
            misses: Count::new("memcache_typed_misses_total", prefix, None),
            mismatches: Count::new("memcache_typed_schema_mismatches_total", prefix, None),
            loads: Count::new("memcache_typed_loads_total", prefix, None),
            load_errors: Count::new("memcache_typed_load_errors_total", prefix, None),
            coalesced: Count::new(
                "memcache_typed_coalesced_total",
                prefix,
                Some("single_flight"),
            ),
            leased: Count::new("memcache_typed_coalesced_total", prefix, Some("lease")),
            #[cfg(feature = "metrics")]
            load_latency: metrics::histogram!(
                "memcache_typed_load_duration_seconds",
                "prefix" => prefix.to_owned()
            ),
        }
    }

    /// A loader ran for `took`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn loaded(&self, took: Duration) {
        #[cfg(feature = "metrics")]
        self.load_latency.record(took.as_secs_f64());
    }

    /// A snapshot of every counter.
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            mismatches: self.mismatches.get(),
            loads: self.loads.get(),
            load_errors: self.load_errors.get(),
            coalesced: self.coalesced.get(),
            leased: self.leased.get(),
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
    /// Loader runs of the read-through methods (`get_or_load`, `get_many_or_load`),
    /// refresh-ahead reloads included.
    pub loads: u64,
    /// Loader runs that failed (counted in `loads` too).
    pub load_errors: u64,
    /// `get_or_load` calls answered by another call's read or load of the same key, already
    /// in flight (single-flight), instead of their own. They are not counted in `hits`,
    /// `misses` or `loads`.
    pub coalesced: u64,
    /// `get_or_load` calls that did not load because another client (any process) held the
    /// key's lease: they served the stale value of an invalidated entry, or waited for the
    /// lease holder's value.
    pub leased: u64,
}
