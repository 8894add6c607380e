//! What one server's connections share with each other and with the client: the
//! protocol the server speaks, the noreply failures it reported, its health, and the
//! callers waiting for room in a full write queue.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::address::ServerAddr;
use crate::config::{Config, Protocol};
use crate::metrics::ServerMetrics;

use super::health::{Health, Retry};

const UNKNOWN: u8 = 0;
const CLASSIC: u8 = 1;
const META: u8 = 2;

/// One server's shared state (see the module docs).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    /// Where the server listens.
    pub(crate) addr: ServerAddr,
    /// [`UNKNOWN`], [`CLASSIC`] or [`META`]: what the last probe found.
    mode: AtomicU8,
    /// Failed quiet (noreply) meta requests.
    noreply_errors: AtomicU64,
    pub(crate) health: Health,
    /// Woken when a full write queue drains.
    pub(crate) room: Notify,
    /// The client has gone: no new connection is opened.
    pub(crate) gone: AtomicBool,
    /// The server's address, for logs.
    pub(crate) server: String,
    /// The server's metrics (nothing without the `metrics` feature).
    pub(crate) metrics: Arc<ServerMetrics>,
}

impl Shared {
    pub(crate) fn new(config: Arc<Config>, addr: ServerAddr, retry: Retry) -> Self {
        let server = addr.to_string();
        let metrics = Arc::new(ServerMetrics::new(&addr));
        Shared {
            health: Health::new(server.clone(), retry),
            metrics,
            config,
            addr,
            mode: AtomicU8::new(UNKNOWN),
            noreply_errors: AtomicU64::new(0),
            room: Notify::new(),
            gone: AtomicBool::new(false),
            server,
        }
    }

    /// Whether requests should be encoded in the meta protocol now. Under
    /// [`Protocol::Auto`] that is known once a connection's probe has been answered; until
    /// then requests are classic, which every server understands, and both kinds mix on one
    /// connection.
    pub(crate) fn meta(&self) -> bool {
        match self.config.protocol {
            Protocol::Meta => true,
            Protocol::Classic => false,
            Protocol::Auto => self.mode.load(Ordering::Relaxed) == META,
        }
    }

    /// `true` under [`Protocol::Auto`] until a probe has been answered.
    pub(crate) fn protocol_unknown(&self) -> bool {
        self.config.protocol == Protocol::Auto && self.mode.load(Ordering::Relaxed) == UNKNOWN
    }

    /// The server is known to speak only the classic protocol (no probe needed).
    pub(crate) fn known_classic(&self) -> bool {
        self.mode.load(Ordering::Relaxed) == CLASSIC
    }

    /// Records a probe's answer.
    pub(crate) fn set_meta(&self, meta: bool) {
        self.mode
            .store(if meta { META } else { CLASSIC }, Ordering::Relaxed);
    }

    /// How many quiet (noreply) meta requests the server reported as failed.
    pub(crate) fn noreply_errors(&self) -> u64 {
        self.noreply_errors.load(Ordering::Relaxed)
    }

    pub(crate) fn count_noreply_error(&self) {
        self.noreply_errors.fetch_add(1, Ordering::Relaxed);
        self.metrics.noreply_failed();
    }
}
