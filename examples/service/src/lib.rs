//! An HTTP service over a real database that reads through memcached: the example a service
//! author copies, with a load generator to watch what the cache does.
//!
//! - [`Service`]: axum on tokio, over SQLite (through `sqlx`, an embedded database: nothing
//!   to install) with a `users` and a `products` table seeded at start. Reads go through
//!   [`Cache::get_or_load`](memcache_typed::Cache::get_or_load) and
//!   [`Cache::get_many_or_load`](memcache_typed::Cache::get_many_or_load); writes update
//!   the database, then the cache, and invalidate the entries derived from the row
//!   ([`cache`]). The routes are in [`routes`]; `/healthz` ([`health`]) and `/metrics`
//!   ([`metrics`], Prometheus) say how the cache is doing. Configuration comes from the
//!   environment ([`config`]), the memcached servers in memcache-core's URL form.
//! - [`loadgen`]: a mix of reads and writes from many tasks, a progress line every second,
//!   and a summary: requests/s, latency percentiles, the cache hit rate and the database
//!   queries the cache saved (read from the service's `/metrics`).
//!
//! ```text
//! MEMCACHE_URL=memcache://127.0.0.1:11211 LISTEN=127.0.0.1:8080 DB_LATENCY=2ms \
//!     cargo run -p memcache-service --bin memcache-service
//! cargo run -p memcache-service --bin memcache-loadgen -- --target http://127.0.0.1:8080 \
//!     --duration 5s --concurrency 32 --write-ratio 0.05 --keys 1000
//! ```
//!
//! `scripts/demo.sh` runs both against a memcached it starts, and the integration tests
//! (`tests/tests/service.rs`) start the service in-process.
//!
//! # Embedding and testing
//!
//! ```no_run
//! use memcache_service::{Config, Metrics, Service};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::new("memcache://127.0.0.1:11211", "/tmp/service.db");
//! let running = Service::bind(&config, Metrics::new()).await?.spawn();
//! println!("serving on {}", running.url("/"));
//! let queries = running.app().db().queries(); // the test hook
//! running.shutdown().await?;
//! # let _ = queries;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod loadgen;
pub mod metrics;
pub mod model;
pub mod routes;
pub mod service;

pub use cache::Caches;
pub use config::Config;
pub use db::Db;
pub use error::ApiError;
pub use health::Health;
pub use metrics::Metrics;
pub use model::{Product, ProductChange, ProductPage, User, UserChange};
pub use service::{shutdown_signal, App, RunningService, Service, StartError};
