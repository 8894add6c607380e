//! Client configuration: [`ClientBuilder`], and the settings a client runs with.

use std::time::Duration;

use crate::address::{ServerAddr, ServerSpec};
use crate::credentials::Credentials;
use crate::error::{Error, IllegalInput, Result};
use crate::key::KeyRules;
#[cfg(feature = "tls")]
use crate::tls::{Tls, TlsConfig};

/// Default for [`ClientBuilder::connect_timeout`]: 1 second.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default for [`ClientBuilder::timeout`]: 1 second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default for [`ClientBuilder::max_value_size`]: 1 MiB, memcached's default item size.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 1024 * 1024;
/// Default first pause of [`ClientBuilder::reconnect_backoff`]: 50 ms.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Default longest pause of [`ClientBuilder::reconnect_backoff`]: 5 seconds.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The largest [`ClientBuilder::max_value_size`] accepted: 1 GiB, memcached's largest item
/// size (`-I 1024m`).
pub const MAX_VALUE_SIZE_LIMIT: usize = 1024 * 1024 * 1024;
/// The longest [`ClientBuilder::tcp_keepalive`] idle time accepted: 32,767 s, Linux's
/// largest `TCP_KEEPIDLE`.
const MAX_KEEPALIVE: Duration = Duration::from_secs(32_767);
/// Default for [`ClientBuilder::retry_attempts`]: 2, as pymemcache's `HashClient`.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// Default for [`ClientBuilder::retry_timeout`]: 1 second, as pymemcache.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(1);
/// Default for [`ClientBuilder::dead_timeout`]: 60 seconds, as pymemcache.
pub const DEFAULT_DEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Which protocol the data commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// Detect per connection: each new connection sends an `mn` probe first and uses the
    /// meta protocol once the server answers `MN`; until then, and for servers and proxies
    /// that answer `ERROR` (or close the connection, as some proxies do), the classic text
    /// protocol. The default.
    #[default]
    Auto,
    /// Always the classic text protocol (`get`, `set`, ...): memcached before 1.6, twemproxy.
    Classic,
    /// Always the meta protocol (`mg`, `ms`, `md`, `ma`): memcached 1.6 and later.
    Meta,
}

/// How the keys are spread over several servers: see the crate docs, *Several servers*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Distribution {
    /// Rendezvous (highest random weight) hashing, as pymemcache's `HashClient`: each key
    /// goes to the server whose MurmurHash3 of `"{host}:{port}-{key}"` is highest. Weights
    /// do not count. The default.
    #[default]
    Rendezvous,
    /// Ketama consistent hashing over MD5 with weights, as libmemcached's
    /// `ketama_weighted` (pylibmc `{"ketama_weighted": True}`) and twemproxy's
    /// `distribution: ketama, hash: md5`.
    Ketama,
}

/// One server of a client, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerConfig {
    pub(crate) addr: ServerAddr,
    pub(crate) weight: u32,
    /// The node name placement uses instead of the address (twemproxy's `host:port:weight
    /// NAME`), so that a server keeps its keys when its address changes.
    pub(crate) name: Option<String>,
}

/// Settings shared by every connection of a client.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) servers: Vec<ServerConfig>,
    pub(crate) distribution: Distribution,
    pub(crate) failover: bool,
    pub(crate) retry_attempts: u32,
    pub(crate) retry_timeout: Duration,
    pub(crate) dead_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) no_delay: bool,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) ignore_exc: bool,
    pub(crate) default_noreply: bool,
    pub(crate) max_value_size: usize,
    pub(crate) keys: KeyRules,
    pub(crate) protocol: Protocol,
    pub(crate) join_gets: bool,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) credentials: Option<Credentials>,
    /// TLS for every server (feature `tls`).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Tls>,
}

/// Builds a [`Client`](crate::Client). Every setting has a documented default; [`build`](Self::build) does
/// no I/O (the first command connects).
///
/// ```
/// use std::time::Duration;
/// use memcache_core::Client;
///
/// let client = Client::builder()
///     .server("127.0.0.1:11211")
///     .connect_timeout(Duration::from_millis(500))
///     .timeout(Duration::from_millis(200))
///     .key_prefix("app:")
///     .build()?;
/// # Ok::<(), memcache_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ClientBuilder {
    servers: Vec<(String, Option<u32>, Option<String>)>,
    distribution: Distribution,
    failover: bool,
    retry_attempts: u32,
    retry_timeout: Duration,
    dead_timeout: Duration,
    connect_timeout: Duration,
    timeout: Duration,
    no_delay: bool,
    tcp_keepalive: Option<Duration>,
    ignore_exc: bool,
    key_prefix: Vec<u8>,
    default_noreply: bool,
    allow_unicode_keys: bool,
    max_value_size: usize,
    protocol: Protocol,
    join_gets: bool,
    backoff_initial: Duration,
    backoff_max: Duration,
    credentials: Option<Credentials>,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: Vec::new(),
            distribution: Distribution::Rendezvous,
            failover: false,
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            dead_timeout: DEFAULT_DEAD_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            no_delay: true,
            tcp_keepalive: None,
            ignore_exc: false,
            key_prefix: Vec::new(),
            default_noreply: true,
            allow_unicode_keys: false,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            protocol: Protocol::Auto,
            join_gets: false,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            credentials: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ClientBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The server, for a client of one: `"host:port"`, `"host"` (port 11211),
    /// `"[v6]:port"`, or a unix socket path (`"/run/memcached.sock"` or
    /// `"unix:/run/memcached.sock"`). Replaces any servers set before. One server, or
    /// [`servers`](Self::servers), is required.
    pub fn server(mut self, addr: impl Into<String>) -> Self {
        self.servers = vec![(addr.into(), None, None)];
        self
    }

    /// The servers, for a client of several (keys are spread over them: see
    /// [`distribution`](Self::distribution)). Each is written as for
    /// [`server`](Self::server), optionally followed by `:weight` after its port and by
    /// ` name` (twemproxy's `"host:port:weight name"`): `"10.0.0.1:11211:3 cache-a"`.
    /// Replaces any servers set before; TCP, IPv6 and unix sockets mix.
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.servers = servers
            .into_iter()
            .map(|server| (server.into(), None, None))
            .collect();
        self
    }

    /// Adds a server with a weight (default 1): under [`Distribution::Ketama`] a server's
    /// share of the keys is its share of the total weight. Rendezvous placement ignores
    /// weights, as pymemcache does.
    pub fn weighted_server(mut self, addr: impl Into<String>, weight: u32) -> Self {
        self.servers.push((addr.into(), Some(weight), None));
        self
    }

    /// Adds a server with a weight and a node name that placement uses instead of its
    /// address (twemproxy's `host:port:weight NAME`), so that its keys stay where they are
    /// when its address changes.
    pub fn named_server(
        mut self,
        addr: impl Into<String>,
        weight: u32,
        name: impl Into<String>,
    ) -> Self {
        self.servers
            .push((addr.into(), Some(weight), Some(name.into())));
        self
    }

    /// How keys are spread over several servers. Default: [`Distribution::Rendezvous`],
    /// pymemcache's `HashClient` placement. With one server nothing is hashed.
    pub fn distribution(mut self, distribution: Distribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// With several servers: whether the keys of a dead server (see
    /// [`retry_attempts`](Self::retry_attempts)) move to the other servers, as pymemcache,
    /// libmemcached's auto-eject and twemproxy's `auto_eject_hosts` do. Default: off, the
    /// dead server's keys fail at once with [`Error::ServerDown`] (misses with
    /// [`ignore_exc`](Self::ignore_exc)). What is written to the other servers meanwhile is
    /// orphaned when the dead one returns: its keys go back to it, to whatever it still
    /// holds.
    pub fn failover(mut self, on: bool) -> Self {
        self.failover = on;
        self
    }

    /// With several servers: how many times a failing server is tried again before it is
    /// dead (the first retry comes at once, the others
    /// [`retry_timeout`](Self::retry_timeout) apart; calls meanwhile fail at once with
    /// [`Error::ServerDown`]). A dead server is left alone for
    /// [`dead_timeout`](Self::dead_timeout), then tried again (under
    /// [`failover`](Self::failover) by a probe of its own; without it by the next call of
    /// one of its keys), and rejoins when it answers.
    /// Default: 2 ([`DEFAULT_RETRY_ATTEMPTS`]), as pymemcache's `HashClient`; 0 makes a
    /// server dead at its first failure. (A client of one server backs off instead: see
    /// [`reconnect_backoff`](Self::reconnect_backoff).)
    pub fn retry_attempts(mut self, attempts: u32) -> Self {
        self.retry_attempts = attempts;
        self
    }

    /// With several servers: the pause between two retries of a failing server. Default:
    /// 1 s ([`DEFAULT_RETRY_TIMEOUT`]).
    pub fn retry_timeout(mut self, pause: Duration) -> Self {
        self.retry_timeout = pause;
        self
    }

    /// With several servers: how long a dead server is left alone before it is tried
    /// again (see [`retry_attempts`](Self::retry_attempts)). Zero is refused by
    /// [`build`](Self::build): the server would be tried without a pause.
    /// Default: 60 s ([`DEFAULT_DEAD_TIMEOUT`]).
    pub fn dead_timeout(mut self, pause: Duration) -> Self {
        self.dead_timeout = pause;
        self
    }

    /// How long opening a connection may take (and, under [`Protocol::Auto`], its protocol
    /// probe). Default: 1 s ([`DEFAULT_CONNECT_TIMEOUT`]). `Duration::MAX` means no limit;
    /// zero is refused by [`build`](Self::build).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// How long one command may take from the caller's point of view, including waiting for a
    /// connection. Default: 1 s ([`DEFAULT_TIMEOUT`]). A call past its deadline fails alone
    /// with [`Error::Timeout`]; its reply, when it comes, is read and discarded. A connection
    /// is closed for slowness only when the server has sent nothing for this long while
    /// requests were outstanding. `Duration::MAX` means no limit; zero is refused by
    /// [`build`](Self::build).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Sets `TCP_NODELAY` on connections. Default: on (requests are batched by the
    /// connection's writer, so Nagle's algorithm only adds latency).
    pub fn no_delay(mut self, on: bool) -> Self {
        self.no_delay = on;
        self
    }

    /// Enables TCP keepalive probes after this much idle time, from 1 s to 32,767 s (the
    /// range Linux accepts; anything else is refused by [`build`](Self::build)). Default:
    /// off.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Turns errors on the read path (get, gets, get_many, gets_many, gat, gats, stats) into
    /// misses (empty results), as pymemcache's `ignore_exc`. Illegal input still fails, and
    /// writes still report errors. Default: off.
    pub fn ignore_exc(mut self, on: bool) -> Self {
        self.ignore_exc = on;
        self
    }

    /// A prefix put in front of every key on the wire (and counted in the 250-byte limit).
    /// Results are keyed without it. With several servers, [`Distribution::Rendezvous`]
    /// places a key by the key without the prefix (as pymemcache's `key_prefix`), and
    /// [`Distribution::Ketama`] by the whole key (as a proxy in front of the servers sees
    /// it). Default: none.
    pub fn key_prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.key_prefix = prefix.as_ref().to_vec();
        self
    }

    /// Whether set, set_many, add, replace, append, prepend, delete, delete_many, touch and
    /// flush_all use `noreply` unless a call says otherwise. Default: on, as pymemcache. cas,
    /// incr and decr always default to waiting for the reply.
    pub fn default_noreply(mut self, on: bool) -> Self {
        self.default_noreply = on;
        self
    }

    /// Allows non-ASCII bytes in keys (memcached accepts them; whitespace and control bytes
    /// stay forbidden). Default: off, as pymemcache.
    pub fn allow_unicode_keys(mut self, on: bool) -> Self {
        self.allow_unicode_keys = on;
        self
    }

    /// The largest value the client accepts in a response. A larger one is skipped as it
    /// arrives, without allocating it: that call alone fails with [`Error::ValueTooLarge`],
    /// and the connection carries on. Default: 1 MiB ([`DEFAULT_MAX_VALUE_SIZE`]),
    /// memcached's default item size limit; at most 1 GiB ([`MAX_VALUE_SIZE_LIMIT`],
    /// memcached's largest), which [`build`](Self::build) checks.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Which protocol the data commands use: [`Protocol::Auto`] (the default) detects meta
    /// support per connection. With the meta protocol, single-key reads use `mg` (which
    /// memcached answers without the per-request flush of a classic `get`), writes use `ms`,
    /// `md` and `ma`, and noreply writes use quiet mode, so that a failed noreply write is
    /// still reported (logged, and counted by [`Client::noreply_errors`](crate::Client::noreply_errors)) instead of lost.
    /// `get_many`/`gets_many` always send one classic multi-key `get`, the server's cheapest
    /// read for many keys; `stats`, `version` and the other server commands are classic too.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Over the classic protocol, sends single-key `get`s (and `gets`) that queue up behind
    /// each other while the connection is busy as one multi-key line, `get k1 k2 ..` (up to
    /// 64 keys), and hands each caller the answer for its own key. Default: off.
    ///
    /// memcached flushes a write after every classic `get`, which caps pipelined ones near
    /// 170k/s on one server thread, while a multi-key `get` is its cheapest read: with many
    /// tasks sharing a client, this gives several times the throughput (see BENCHMARKS.md).
    /// Meta gets ([`Protocol::Meta`], or [`Protocol::Auto`] on memcached 1.6+) need no
    /// joining and are never joined.
    ///
    /// Turn it on for memcached servers only, not behind a proxy: twemproxy answers a
    /// multi-key `get` with `SERVER_ERROR` as a whole, and closes the connection, when the
    /// server of any one of its keys is down, so one dead shard would fail the callers of
    /// other keys too. A server error for a shared line is every caller's error.
    pub fn join_gets(mut self, on: bool) -> Self {
        self.join_gets = on;
        self
    }

    /// For a client of one server: how long to wait before connecting again after failures:
    /// `initial` after the second failure in a row (the first is retried at once: a lost connection is usually just
    /// that), then twice as long after each further one, up to `max`, each pause shortened
    /// by a random part of up to half (jitter), so that many clients do not come back at
    /// once. A failure is a connect that fails (refused, timed out, the protocol probe
    /// unanswered) or a connection lost with requests outstanding; a reply read resets the
    /// count. Meanwhile calls fail at once with [`Error::ServerDown`], which says when the
    /// next attempt is. Defaults: 50 ms ([`DEFAULT_BACKOFF_INITIAL`]) and 5 s
    /// ([`DEFAULT_BACKOFF_MAX`]). `initial` zero turns backoff off (still one connect
    /// attempt at a time); `max` below `initial` is refused by [`build`](Self::build).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// The user name and password for memcached's ASCII authentication (`memcached -Y
    /// authfile`), used on every new connection of every server. The connection first
    /// asks `mn` (or `version`); only a server that answers `CLIENT_ERROR
    /// unauthenticated` is sent the login (a `set` whose data is `"<user> <password>"`),
    /// so a server without authentication never receives the password. A refused login
    /// fails the connection with [`Error::Auth`] (see [`Error::is_auth_error`]); the calls
    /// waiting for it fail without being sent, and the server is retried as after any
    /// failed connect. The password never appears in `Debug`, logs or errors. Both must be
    /// non-empty, without whitespace or control characters (memcached's login line cannot
    /// carry them): [`build`](Self::build) refuses them otherwise. Default: none.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::new(user.into(), password.into()));
        self
    }

    /// Speaks TLS to every server (feature `tls`), as `config` says: which certificates
    /// are trusted, the client certificate, the name verified (see [`TlsConfig`]). Each
    /// new connection does the TLS handshake first, within the
    /// [`connect_timeout`](Self::connect_timeout), then its protocol probe and login over
    /// TLS. A failed handshake (an untrusted, expired or misnamed certificate, a server
    /// that does not speak TLS or refuses the client) is an [`Error::Tls`] that fails the
    /// calls waiting for the connection, unsent, and the server is retried as after any
    /// failed connect. [`build`](Self::build) reads the PEM files and refuses bad ones;
    /// it refuses TLS with a unix socket server too (a local socket needs no TLS, and
    /// memcached serves TLS on TCP only). A `memcaches://` URL turns TLS on (see
    /// [`from_url`](Self::from_url)). Default: plain TCP.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The servers as configured: each address parsed, weights and names checked (no
    /// server, a duplicate, a weight of 0 or a duplicate name is refused).
    fn server_configs(&self) -> Result<Vec<ServerConfig>> {
        if self.servers.is_empty() {
            return Err(Error::IllegalInput(IllegalInput::Argument(
                "no server set: call ClientBuilder::server or ::servers".to_owned(),
            )));
        }
        let refuse = |what: String| Error::IllegalInput(IllegalInput::Argument(what));
        let mut servers: Vec<ServerConfig> = Vec::with_capacity(self.servers.len());
        for (text, weight, name) in &self.servers {
            let spec = ServerSpec::parse(text)?;
            let weight = weight.or(spec.weight).unwrap_or(1);
            let name = name.clone().or(spec.name);
            if weight == 0 {
                return Err(refuse(format!(
                    "server {text:?}: a weight must be at least 1"
                )));
            }
            if let Some(name) = &name {
                if name.is_empty() || name.chars().any(char::is_whitespace) {
                    return Err(refuse(format!(
                        "server {text:?}: a node name must be non-empty, without whitespace"
                    )));
                }
            }
            if servers.iter().any(|other| other.addr == spec.addr) {
                return Err(refuse(format!("server {text:?} is listed twice")));
            }
            if name.is_some() && servers.iter().any(|other| other.name == name) {
                return Err(refuse(format!("server {text:?}: its node name is taken")));
            }
            servers.push(ServerConfig {
                addr: spec.addr,
                weight,
                name,
            });
        }
        Ok(servers)
    }

    /// Checks every setting and turns them into the configuration a client runs with (see
    /// [`ClientBuilder::build`](crate::ClientBuilder::build)).
    pub(crate) fn into_config(self) -> Result<Config> {
        let servers = self.server_configs()?;
        let refuse = |what: String| Err(Error::IllegalInput(IllegalInput::Argument(what)));
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return refuse("timeout and connect_timeout must be longer than zero".into());
        }
        if self.max_value_size > MAX_VALUE_SIZE_LIMIT {
            return refuse(format!(
                "max_value_size {} is over {MAX_VALUE_SIZE_LIMIT} (1 GiB, memcached's largest item)",
                self.max_value_size
            ));
        }
        if let Some(idle) = self.tcp_keepalive {
            if idle < Duration::from_secs(1) || idle > MAX_KEEPALIVE {
                return refuse(format!(
                    "tcp_keepalive {idle:?} is outside 1 s ..= {}s",
                    MAX_KEEPALIVE.as_secs()
                ));
            }
        }
        if self.dead_timeout.is_zero() {
            return refuse(
                "dead_timeout must be longer than zero (a dead server would be tried without a pause)"
                    .into(),
            );
        }
        if let Some(credentials) = &self.credentials {
            credentials.check()?;
        }
        if self.backoff_max < self.backoff_initial {
            return refuse(format!(
                "reconnect_backoff: max {:?} is below initial {:?}",
                self.backoff_max, self.backoff_initial
            ));
        }
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(settings) => {
                if let Some(unix) = servers
                    .iter()
                    .find(|s| matches!(s.addr, ServerAddr::Unix(_)))
                {
                    return refuse(format!(
                        "tls: the server {} is a unix socket; TLS is for TCP servers only",
                        unix.addr
                    ));
                }
                let tls = settings.build()?;
                for server in &servers {
                    if let ServerAddr::Tcp { host, .. } = &server.addr {
                        tls.name_for(host)?;
                    }
                }
                Some(tls)
            }
            None => None,
        };
        let config = Config {
            servers,
            distribution: self.distribution,
            failover: self.failover,
            retry_attempts: self.retry_attempts,
            retry_timeout: self.retry_timeout,
            dead_timeout: self.dead_timeout,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            no_delay: self.no_delay,
            tcp_keepalive: self.tcp_keepalive,
            ignore_exc: self.ignore_exc,
            default_noreply: self.default_noreply,
            max_value_size: self.max_value_size,
            keys: KeyRules::new(&self.key_prefix, self.allow_unicode_keys)?,
            protocol: self.protocol,
            join_gets: self.join_gets,
            backoff_initial: self.backoff_initial,
            backoff_max: self.backoff_max,
            credentials: self.credentials,
            #[cfg(feature = "tls")]
            tls,
        };
        Ok(config)
    }
}
