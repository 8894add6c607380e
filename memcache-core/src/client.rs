//! [`Client`] and the shared machinery its commands use.

use std::fmt;
use std::sync::Arc;

use crate::address::ServerAddr;
use crate::cluster::{Cluster, ServerInfo};
use crate::config::{ClientBuilder, Config};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::protocol::response::Response;

/// A memcached client: cheap to clone, safe to share between tasks.
///
/// Every clone talks through the same connections (one per server), which pipeline the
/// requests of all callers (see the crate docs, *Pipelining*). Each command is a builder:
/// set its options, then `.await` it.
///
/// ```no_run
/// # async fn demo() -> Result<(), memcache_core::Error> {
/// let client = memcache_core::Client::builder().server("127.0.0.1:11211").build()?;
/// client.set("greeting", "hello").ttl(60).await?;
/// let hit = client.get("greeting").await?;
/// assert_eq!(hit.map(|v| v.data), Some("hello".into()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    pub(crate) cluster: Cluster,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<&ServerAddr> = self.inner.config.servers.iter().map(|s| &s.addr).collect();
        f.debug_struct("Client")
            .field("servers", &servers)
            .field("timeout", &self.inner.config.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with every setting at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let config = Arc::new(config);
        Client {
            inner: Arc::new(Inner {
                cluster: Cluster::new(&config),
                config,
            }),
        }
    }

    /// The prefix put in front of every key (empty when none is set).
    pub fn key_prefix(&self) -> &[u8] {
        self.inner.config.keys.prefix()
    }

    /// Whether errors on the read path become misses (see [`ClientBuilder::ignore_exc`]).
    pub fn ignore_exc(&self) -> bool {
        self.inner.config.ignore_exc
    }

    /// Whether the store commands use `noreply` unless told otherwise
    /// (see [`ClientBuilder::default_noreply`]).
    pub fn default_noreply(&self) -> bool {
        self.inner.config.default_noreply
    }

    /// How many noreply writes the server reported as failed. Only the meta protocol's quiet
    /// mode reports them (each is also logged with `tracing` at warn level, with the keys of
    /// its batch); with the classic protocol memcached answers nothing to a noreply request,
    /// failures included.
    pub fn noreply_errors(&self) -> u64 {
        let connections = self.inner.cluster.connections();
        connections.iter().map(Connection::noreply_errors).sum()
    }

    /// The server `key` lives on (checked like any key; no I/O). With
    /// [`failover`](ClientBuilder::failover), a dead server's keys are where they went.
    ///
    /// # Errors
    /// An illegal key.
    pub fn server_for<K: AsRef<[u8]>>(&self, key: K) -> Result<ServerAddr> {
        let key = key.as_ref();
        self.inner.config.keys.check(key)?;
        let cluster = &self.inner.cluster;
        let index = cluster.placement(false).index(key);
        Ok(cluster.connections()[index].addr().clone())
    }

    /// The servers, in the order configured, with their weights, node names and health.
    pub fn servers(&self) -> Vec<ServerInfo> {
        self.inner.cluster.infos()
    }

    /// The per-command timeout (see [`ClientBuilder::timeout`]).
    pub fn timeout(&self) -> std::time::Duration {
        self.inner.config.timeout
    }
}

impl ClientBuilder {
    /// Builds the client. No I/O happens here.
    ///
    /// # Errors
    /// [`Error::Address`] when a server's address does not parse; [`Error::IllegalInput`]
    /// when a setting is out of its range: no server, a server listed twice, a weight of 0,
    /// a bad or duplicate node name, a zero timeout or `dead_timeout`, a `max_value_size`
    /// over 1 GiB, a keepalive outside 1 s..=32767 s, a backoff whose maximum is below its
    /// start, credentials memcached's login cannot carry, or a key prefix that breaks the
    /// key rules.
    pub fn build(self) -> Result<Client> {
        Ok(Client::from_config(self.into_config()?))
    }
}

impl Inner {
    /// The connection of `key`'s server.
    #[inline]
    pub(crate) fn route(&self, key: &[u8]) -> &Connection {
        self.cluster.route(key)
    }

    /// On the read path with `ignore_exc`, an error (other than illegal input) is a miss.
    pub(crate) fn miss_on_error<T: Default>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(error) if self.config.ignore_exc && !error.is_illegal_input() => {
                tracing::debug!(%error, "ignore_exc: treating the error as a miss");
                Ok(T::default())
            }
            other => other,
        }
    }

    /// The noreply setting for a store-like command: the call's own, else the client's.
    pub(crate) fn noreply(&self, call: Option<bool>) -> bool {
        call.unwrap_or(self.config.default_noreply)
    }
}

/// The error for a response whose shape does not fit the command (a bug on one side or the
/// other; reported, never guessed at).
pub(crate) fn mismatched(response: &Response) -> Error {
    let mut text = format!("{response:?}");
    text.truncate(120);
    Error::UnknownResponse(format!("response does not fit the command: {text}"))
}
