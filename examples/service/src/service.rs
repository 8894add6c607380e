//! Starting and stopping the service: [`Service::bind`] opens the database, builds the
//! memcached client and binds the listener; [`Service::run`] serves until a shutdown signal
//! and then drains the requests in flight; [`Service::spawn`] runs it on a task, for tests
//! and for programs that embed it.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cache::Caches;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::{Metrics, UPKEEP_INTERVAL};
use crate::routes;

/// What the request handlers share: the database, the caches and the metrics.
#[derive(Debug)]
pub struct App {
    pub(crate) db: Db,
    pub(crate) caches: Caches,
    pub(crate) metrics: Metrics,
}

impl App {
    /// The database (its [`queries`](Db::queries) count is the tests' view of what the
    /// cache saves).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The caches.
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Publishes what is read rather than counted: each cache's counters and the health of
    /// the memcached servers. `/metrics` calls it before rendering.
    pub fn publish_cache_metrics(&self) {
        for (prefix, stats) in self.caches.stats() {
            self.metrics.cache_stats(prefix, stats);
        }
        self.metrics.cache_servers(&self.caches.client().servers());
    }
}

/// Why the service could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be opened, created or seeded.
    Database(sqlx::Error),
    /// `MEMCACHE_URL` does not configure a client.
    Cache(memcache_typed::memcache_core::Error),
    /// The address could not be bound, or the address file written.
    Listen(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Database(error) => write!(f, "database: {error}"),
            StartError::Cache(error) => write!(f, "MEMCACHE_URL: {error}"),
            StartError::Listen(error) => write!(f, "listen: {error}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Database(error) => Some(error),
            StartError::Cache(error) => Some(error),
            StartError::Listen(error) => Some(error),
        }
    }
}

/// A service ready to serve: its database open and seeded, its listener bound.
#[derive(Debug)]
pub struct Service {
    app: Arc<App>,
    listener: TcpListener,
    addr_file: Option<PathBuf>,
}

impl Service {
    /// Opens the database (creating and seeding it), builds the memcached client (no I/O:
    /// the first request connects, so the service starts while memcached is down) and binds
    /// `config.listen`. Records into `metrics`.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn bind(config: &Config, metrics: Metrics) -> Result<Service, StartError> {
        let caches =
            Caches::connect(&config.memcache_url, metrics.clone()).map_err(StartError::Cache)?;
        let db = Db::open(
            &config.database,
            config.seed_users,
            config.seed_products,
            config.db_latency,
            metrics.clone(),
        )
        .await
        .map_err(StartError::Database)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Listen)?;
        Ok(Service {
            app: Arc::new(App {
                db,
                caches,
                metrics,
            }),
            listener,
            addr_file: config.addr_file.clone(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// What its handlers share.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in flight
    /// finish (idle keep-alive connections are closed), and closes the database. Writes the
    /// address into the configured address file first.
    ///
    /// # Errors
    /// Writing the address file, or accepting connections, failed.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let addr = self.local_addr();
        if let Some(file) = &self.addr_file {
            std::fs::write(file, format!("{addr}\n"))?;
        }
        let metrics = self.app.metrics.clone();
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                every.tick().await;
                metrics.run_upkeep();
            }
        });
        let served = axum::serve(self.listener, routes::router(Arc::clone(&self.app)))
            .with_graceful_shutdown(shutdown)
            .await;
        upkeep.abort();
        self.app.db.close().await;
        served
    }

    /// Runs the service on a new task until [`RunningService::shutdown`] (or the handle is
    /// dropped).
    pub fn spawn(self) -> RunningService {
        let addr = self.local_addr();
        let app = Arc::clone(&self.app);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            // A dropped sender stops the service too.
            let _ = stopped.await;
        }));
        RunningService {
            addr,
            app,
            stop: Some(stop),
            task,
        }
    }
}

/// A service running on a task ([`Service::spawn`]). Dropping it stops the service without
/// waiting; [`shutdown`](RunningService::shutdown) waits.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl RunningService {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What its handlers share: the test hook (database queries, cache stats).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stops accepting, waits for the requests in flight, closes the database.
    ///
    /// # Errors
    /// The service's error, or a panic of its task as an I/O error.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(served) => served,
            Err(error) => Err(io::Error::other(error)),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the binary's shutdown signal.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
