//! The service's metrics, on the `metrics` facade, rendered in the Prometheus text format by
//! `metrics-exporter-prometheus` at `GET /metrics`.
//!
//! # One recorder per service, and the global one
//!
//! Each [`Metrics`] owns its own Prometheus recorder, and the service records into it
//! through the facade's macros inside [`metrics::with_local_recorder`]: so several services
//! can run in one process (the tests start one per test, in parallel) without sharing or
//! fighting over the process's one global recorder. The binary also installs that same
//! recorder as the global one ([`Metrics::install_global`]), so that whatever a library
//! records through the facade (the memcache client's own metrics, once it records any) lands
//! in the same registry and appears on `/metrics` beside the service's.
//!
//! # The metrics
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `service_http_requests_total` | counter | `method`, `route`, `status` | HTTP requests answered; `route` is the matched route (`/users/{id}`), `unmatched` for none |
//! | `service_http_request_duration_seconds` | histogram | `method`, `route` | time to answer a request |
//! | `service_db_queries_total` | counter | `query` | database queries, by query (`user`, `users`, `product`, `products`, `product_page`, `update_user`, `update_product`) |
//! | `service_db_query_duration_seconds` | histogram | `query` | time of a database query, `DB_LATENCY` included |
//! | `service_cache_hits_total` | counter | `cache` | values read from memcached ([`CacheStats::hits`]) |
//! | `service_cache_misses_total` | counter | `cache` | keys not found, and reads failed while memcached is down ([`CacheStats::misses`]) |
//! | `service_cache_mismatches_total` | counter | `cache` | values of another schema or codec, read as misses ([`CacheStats::mismatches`]) |
//! | `service_cache_loads_total` | counter | `cache` | loader runs ([`CacheStats::loads`]) |
//! | `service_cache_coalesced_total` | counter | `cache` | reads answered by another request's read or load in flight ([`CacheStats::coalesced`]) |
//! | `service_cache_errors_total` | counter | `cache`, `op` | cache commands that failed and were handled (`op`: `read`, `set`, `delete`) |
//! | `service_cache_server_up` | gauge | `server` | 1 while a memcached server is answering, 0 while it is failing or dead |
//! | `service_cache_degraded` | gauge | | 1 while any memcached server is not answering: reads then go to the database |
//!
//! `cache` is the typed prefix: `user`, `product`, `product_page`. The `service_cache_*`
//! counters other than `errors` are [`Cache::stats`](memcache_typed::Cache::stats), and the
//! two gauges the client's view of its servers
//! ([`Client::servers`](memcache_typed::Client::servers)), both read when `/metrics` is
//! rendered.

use std::sync::Arc;
use std::time::Duration;

use memcache_typed::memcache_core::{ServerInfo, ServerState};
use memcache_typed::CacheStats;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// `service_http_requests_total`.
pub const HTTP_REQUESTS: &str = "service_http_requests_total";
/// `service_http_request_duration_seconds`.
pub const HTTP_DURATION: &str = "service_http_request_duration_seconds";
/// `service_db_queries_total`.
pub const DB_QUERIES: &str = "service_db_queries_total";
/// `service_db_query_duration_seconds`.
pub const DB_DURATION: &str = "service_db_query_duration_seconds";
/// `service_cache_hits_total`.
pub const CACHE_HITS: &str = "service_cache_hits_total";
/// `service_cache_misses_total`.
pub const CACHE_MISSES: &str = "service_cache_misses_total";
/// `service_cache_mismatches_total`.
pub const CACHE_MISMATCHES: &str = "service_cache_mismatches_total";
/// `service_cache_loads_total`.
pub const CACHE_LOADS: &str = "service_cache_loads_total";
/// `service_cache_coalesced_total`.
pub const CACHE_COALESCED: &str = "service_cache_coalesced_total";
/// `service_cache_errors_total`.
pub const CACHE_ERRORS: &str = "service_cache_errors_total";
/// `service_cache_server_up`.
pub const CACHE_SERVER_UP: &str = "service_cache_server_up";
/// `service_cache_degraded`.
pub const CACHE_DEGRADED: &str = "service_cache_degraded";

/// Histogram buckets (seconds) for every metric whose name ends in `_seconds`: 50 µs to 2.5 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

/// How often [`Metrics::run_upkeep`] should run: the recorder's histograms keep their samples
/// until then.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A Prometheus recorder owned by one service, and what the service records into it. Cheap
/// to clone (clones share the recorder).
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A new recorder, with every metric described (its `# HELP` line) and buckets for the
    /// latency histograms. Not installed globally: see [`install_global`](Metrics::install_global).
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let metrics = Metrics {
            handle: recorder.handle(),
            recorder: Arc::new(recorder),
        };
        metrics.record(describe);
        metrics
    }

    /// Makes this recorder the process's global one, so that what any library records
    /// through the `metrics` facade appears on this service's `/metrics` too. Call it once,
    /// at the start of `main`.
    ///
    /// # Errors
    /// Another global recorder is installed already.
    pub fn install_global(&self) -> Result<(), String> {
        metrics::set_global_recorder(Arc::clone(&self.recorder))
            .map_err(|_| "a global metrics recorder is installed already".to_string())
    }

    /// Runs `f` with this service's recorder as the current one: the facade's macros in `f`
    /// record here.
    pub fn record<R>(&self, f: impl FnOnce() -> R) -> R {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// Counts an HTTP request answered with `status` after `elapsed`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        self.record(|| {
            counter!(HTTP_REQUESTS, &labels).increment(1);
            histogram!(HTTP_DURATION, &labels[..2]).record(elapsed.as_secs_f64());
        });
    }

    /// Counts a database query named `query` that took `elapsed`.
    pub fn db_query(&self, query: &'static str, elapsed: Duration) {
        self.record(|| {
            counter!(DB_QUERIES, "query" => query).increment(1);
            histogram!(DB_DURATION, "query" => query).record(elapsed.as_secs_f64());
        });
    }

    /// Counts a failed cache command `op` on the cache of prefix `cache`, which the service
    /// handled (by reading the database, or answering without the cache).
    pub fn cache_error(&self, cache: &'static str, op: &'static str) {
        self.record(|| counter!(CACHE_ERRORS, "cache" => cache, "op" => op).increment(1));
    }

    /// Publishes the counters of the cache of prefix `cache`.
    pub fn cache_stats(&self, cache: &'static str, stats: CacheStats) {
        self.record(|| {
            counter!(CACHE_HITS, "cache" => cache).absolute(stats.hits);
            counter!(CACHE_MISSES, "cache" => cache).absolute(stats.misses);
            counter!(CACHE_MISMATCHES, "cache" => cache).absolute(stats.mismatches);
            counter!(CACHE_LOADS, "cache" => cache).absolute(stats.loads);
            counter!(CACHE_COALESCED, "cache" => cache).absolute(stats.coalesced);
        });
    }

    /// Publishes the health of the client's servers: one `service_cache_server_up` gauge
    /// each, and `service_cache_degraded`.
    pub fn cache_servers(&self, servers: &[ServerInfo]) {
        self.record(|| {
            let mut degraded = false;
            for server in servers {
                let up = matches!(server.state, ServerState::Up);
                degraded |= !up;
                gauge!(CACHE_SERVER_UP, "server" => server.addr.to_string()).set(if up {
                    1.0
                } else {
                    0.0
                });
            }
            gauge!(CACHE_DEGRADED).set(if degraded { 1.0 } else { 0.0 });
        });
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains the histograms' recent samples into their buckets. Run it every
    /// [`UPKEEP_INTERVAL`] (the service does); rendering does it too.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Describes every metric of the module docs.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(DB_QUERIES, "Database queries, by query");
    describe_histogram!(
        DB_DURATION,
        metrics::Unit::Seconds,
        "Time of a database query, by query"
    );
    describe_counter!(CACHE_HITS, "Values read from memcached, by typed prefix");
    describe_counter!(
        CACHE_MISSES,
        "Keys not found in memcached (or not readable), by typed prefix"
    );
    describe_counter!(
        CACHE_MISMATCHES,
        "Values of another schema or codec, read as misses, by typed prefix"
    );
    describe_counter!(CACHE_LOADS, "Loader runs on a miss, by typed prefix");
    describe_counter!(
        CACHE_COALESCED,
        "Reads answered by another request's read or load in flight, by typed prefix"
    );
    describe_counter!(
        CACHE_ERRORS,
        "Cache commands that failed and were handled, by typed prefix and operation"
    );
    describe_gauge!(
        CACHE_SERVER_UP,
        "1 while the memcached server answers, 0 while it is failing or dead"
    );
    describe_gauge!(
        CACHE_DEGRADED,
        "1 while any memcached server is not answering (reads go to the database)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_services_keep_their_metrics_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.db_query("user", Duration::from_millis(1));
        a.db_query("user", Duration::from_millis(1));
        b.db_query("user", Duration::from_millis(1));
        assert!(a
            .render()
            .contains("service_db_queries_total{query=\"user\"} 2"));
        assert!(b
            .render()
            .contains("service_db_queries_total{query=\"user\"} 1"));
    }

    #[test]
    fn latency_histograms_have_buckets() {
        let metrics = Metrics::new();
        metrics.http_request("GET", "/users/{id}", 200, Duration::from_micros(300));
        let text = metrics.render();
        assert!(
            text.contains(
                "service_http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/{id}\",le=\"0.0005\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "service_http_requests_total{method=\"GET\",route=\"/users/{id}\",status=\"200\"} 1"
        ));
        assert!(text.contains("# HELP service_http_requests_total"));
    }
}
