//! The service: `memcache-service`, configured from the environment (see
//! `memcache_service::config`). Stops cleanly on SIGINT or SIGTERM.

use std::process::ExitCode;

use memcache_service::{shutdown_signal, Config, Metrics, Service};
use tracing::level_filters::LevelFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("memcache-service: {error}");
            return ExitCode::FAILURE;
        }
    };
    let level: LevelFilter = config.log.parse().unwrap_or(LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();

    // The service's own recorder, made global too: whatever the memcache client records
    // through the `metrics` facade lands on /metrics beside the service's metrics.
    let metrics = Metrics::new();
    if let Err(error) = metrics.install_global() {
        tracing::warn!(%error, "the client's own metrics will not appear on /metrics");
    }
    let service = match Service::bind(&config, metrics).await {
        Ok(service) => service,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    // The servers, not MEMCACHE_URL itself: the URL may carry a password.
    let servers: Vec<String> = service
        .app()
        .caches()
        .client()
        .servers()
        .iter()
        .map(|server| server.addr.to_string())
        .collect();
    tracing::info!(
        addr = %service.local_addr(),
        memcached = %servers.join(","),
        database = %config.database,
        "serving"
    );
    let app = std::sync::Arc::clone(service.app());
    match service.run(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!(db_queries = app.db().queries(), "stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "stopped");
            ExitCode::FAILURE
        }
    }
}
