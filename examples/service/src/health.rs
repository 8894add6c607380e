//! `GET /healthz`: is the database answering, and is each memcached server?
//!
//! The answer is `200` whenever the database answers, even with every memcached server
//! down: the service still serves every request then, only slower, and says so with
//! `"status": "degraded"`. It is `503` when the database does not answer.
//!
//! ```json
//! {
//!   "status": "degraded",
//!   "database": { "ok": true },
//!   "cache": {
//!     "ok": false,
//!     "servers": [
//!       { "server": "127.0.0.1:11211", "state": "failing", "failures": 2,
//!         "retry_in_ms": 180, "error": "127.0.0.1:11211: server down: ..." }
//!     ]
//!   }
//! }
//! ```

use memcache_typed::memcache_core::{ServerInfo, ServerState};
use serde::{Deserialize, Serialize};

use crate::cache::Caches;
use crate::db::Db;

/// The answer of `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, `degraded` (the database answers, some memcached server does not) or
    /// `failing` (the database does not answer).
    pub status: String,
    /// The database's health.
    pub database: DatabaseHealth,
    /// The cache's health.
    pub cache: CacheHealth,
}

/// The database's part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseHealth {
    /// It answered `SELECT 1`.
    pub ok: bool,
    /// Its error, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The cache's part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHealth {
    /// Every server answered.
    pub ok: bool,
    /// Each server, in the order of the configuration.
    pub servers: Vec<ServerHealth>,
}

/// One memcached server's part of [`CacheHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    /// Its address.
    pub server: String,
    /// The client's view of it after the probe: `up`, `failing` or `dead`.
    pub state: String,
    /// Failed attempts in a row (0 when up).
    pub failures: u32,
    /// Milliseconds until the client tries it again (0 when up).
    pub retry_in_ms: u64,
    /// Its `version`, when it answered the probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why the probe failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Health {
    /// Whether the service can answer requests (the database answers).
    pub fn is_serving(&self) -> bool {
        self.database.ok
    }
}

/// Probes the database (`SELECT 1`) and every memcached server (`version`, bounded by the
/// client's timeout; a server in backoff fails at once), then reads the client's view of
/// each server.
pub async fn check(db: &Db, caches: &Caches) -> Health {
    let database = match db.ping().await {
        Ok(()) => DatabaseHealth {
            ok: true,
            error: None,
        },
        Err(error) => DatabaseHealth {
            ok: false,
            error: Some(error.to_string()),
        },
    };
    let probe = caches.client().version().await;
    let servers: Vec<ServerHealth> = caches
        .client()
        .servers()
        .iter()
        .map(|info| {
            let answer = match &probe {
                Ok(answers) => answers
                    .iter()
                    .find(|(addr, _)| **addr == info.addr)
                    .map(|(_, answer)| answer.as_ref().map_err(ToString::to_string)),
                Err(error) => Some(Err(error.to_string())),
            };
            server_health(info, answer)
        })
        .collect();
    let cache_ok = servers.iter().all(|server| server.error.is_none());
    let status = match (database.ok, cache_ok) {
        (false, _) => "failing",
        (true, false) => "degraded",
        (true, true) => "ok",
    };
    Health {
        status: status.into(),
        database,
        cache: CacheHealth {
            ok: cache_ok,
            servers,
        },
    }
}

/// One server's health from the client's view of it and its answer to the probe.
fn server_health(info: &ServerInfo, answer: Option<Result<&String, String>>) -> ServerHealth {
    let (state, failures, retry_in) = match &info.state {
        ServerState::Up => ("up", 0, Default::default()),
        ServerState::Failing { failures, retry_in } => ("failing", *failures, *retry_in),
        ServerState::Dead { failures, retry_in } => ("dead", *failures, *retry_in),
        _ => ("unknown", 0, Default::default()),
    };
    let (version, error) = match answer {
        Some(Ok(version)) => (Some(version.clone()), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, Some("no answer to the probe".into())),
    };
    ServerHealth {
        server: info.addr.to_string(),
        state: state.into(),
        failures,
        retry_in_ms: u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        version,
        error,
    }
}
