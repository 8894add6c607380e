//! The servers of a client, their health, and where each key lives: single-key commands go
//! to their key's server ([`Cluster::route`]); multi-key commands are split into one group
//! per server ([`Cluster::split`]); server-wide commands run on every server and answer
//! with one result each ([`PerServer`]).
//!
//! With one server nothing is hashed. With several, a key's server is given by the
//! [`Distribution`]; a dead server (see [`ClientBuilder::retry_attempts`]) either fails its
//! keys at once or, with [`ClientBuilder::failover`], leaves the ring, its keys moving to
//! the others, and is probed in the background once its `dead_timeout` has passed.
//!
//! [`ClientBuilder::retry_attempts`]: crate::ClientBuilder::retry_attempts
//! [`ClientBuilder::failover`]: crate::ClientBuilder::failover

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::address::ServerAddr;
use crate::config::{Config, Distribution, ServerConfig};
use crate::connection::{Connection, Retry, ServerState};
use crate::error::{Error, IllegalInput, Result};
use crate::ring::ketama::{key_hash, Continuum, KetamaNode};
use crate::ring::rendezvous;

/// The servers of a client (see the module docs).
#[derive(Debug)]
pub(crate) struct Cluster {
    servers: Vec<Connection>,
    configs: Vec<ServerConfig>,
    ring: Ring,
    failover: bool,
    /// The client's key prefix: ketama hashes it with the key, as a proxy does.
    prefix: Vec<u8>,
}

/// Where keys go.
#[derive(Debug)]
enum Ring {
    /// One server: nothing to hash.
    One,
    /// pymemcache's nodes (named `"{host}:{port}"`, or the explicit name), by server.
    Rendezvous(Vec<rendezvous::Node>),
    /// The continuum of every server, and the one of the servers alive when some are dead
    /// (under failover), with which were dead when it was built.
    Ketama {
        nodes: Vec<KetamaNode>,
        all: Continuum,
        live: Mutex<Option<(Vec<bool>, Arc<Continuum>)>>,
    },
}

impl Cluster {
    /// The servers `config` lists, each with a connection that opens on first use.
    pub(crate) fn new(config: &Arc<Config>) -> Self {
        let several = config.servers.len() > 1;
        let retry = if several {
            Retry::Dead {
                attempts: config.retry_attempts,
                timeout: config.retry_timeout,
                dead: config.dead_timeout,
            }
        } else {
            Retry::Backoff {
                initial: config.backoff_initial,
                max: config.backoff_max,
            }
        };
        let servers = config
            .servers
            .iter()
            .map(|server| Connection::new(Arc::clone(config), server.addr.clone(), retry, several))
            .collect();
        let ring = match (several, config.distribution) {
            (false, _) => Ring::One,
            (true, Distribution::Rendezvous) => Ring::Rendezvous(
                config
                    .servers
                    .iter()
                    .map(|server| rendezvous::Node::new(rendezvous_name(server)))
                    .collect(),
            ),
            (true, Distribution::Ketama) => {
                let nodes: Vec<KetamaNode> = config
                    .servers
                    .iter()
                    .map(|server| KetamaNode {
                        name: ketama_name(server),
                        weight: server.weight,
                    })
                    .collect();
                Ring::Ketama {
                    all: Continuum::new(&nodes, |_| false),
                    nodes,
                    live: Mutex::new(None),
                }
            }
        };
        Cluster {
            servers,
            configs: config.servers.clone(),
            ring,
            failover: config.failover,
            prefix: config.keys.prefix().to_vec(),
        }
    }

    /// Every server's connection, in the order configured.
    pub(crate) fn connections(&self) -> &[Connection] {
        &self.servers
    }

    /// `true` for a client of several servers.
    pub(crate) fn several(&self) -> bool {
        !matches!(self.ring, Ring::One)
    }

    /// The connection of `key`'s server (`key` without the client's prefix), for a
    /// command about to be sent.
    #[inline]
    pub(crate) fn route(&self, key: &[u8]) -> &Connection {
        match self.ring {
            Ring::One => &self.servers[0],
            _ => &self.servers[self.placement(true).index(key)],
        }
    }

    /// Where keys go now, taken once for a command (or a [`Client::server_for`]
    /// question, `sending` false: nothing is probed then, no task spawned).
    ///
    /// [`Client::server_for`]: crate::Client::server_for
    pub(crate) fn placement(&self, sending: bool) -> Placement<'_> {
        let out = if self.failover {
            let dead: Vec<bool> = self.servers.iter().map(|s| s.health().is_dead()).collect();
            dead.iter().any(|&dead| dead).then_some(dead)
        } else {
            None
        };
        let Some(dead) = out else {
            return Placement {
                cluster: self,
                out: Out::None,
            };
        };
        if sending {
            self.probe_the_dead();
        }
        let out = match &self.ring {
            Ring::Ketama { nodes, live, .. } => {
                let mut cached = lock(live);
                let continuum = match &*cached {
                    Some((built_for, continuum)) if *built_for == dead => Arc::clone(continuum),
                    _ => {
                        let continuum = Arc::new(Continuum::new(nodes, |i| dead[i]));
                        *cached = Some((dead, Arc::clone(&continuum)));
                        continuum
                    }
                };
                Out::Ketama(continuum)
            }
            _ => Out::Rendezvous(dead),
        };
        Placement { cluster: self, out }
    }

    /// Under failover, dead servers whose `dead_timeout` has passed are probed (each by
    /// one request in the background; they rejoin when it is answered).
    fn probe_the_dead(&self) {
        let now = Instant::now();
        for server in &self.servers {
            if server.health().probe_due(now) {
                server.probe();
            }
        }
    }

    /// The items of a multi-key command split by server, in the order of their first
    /// item: `key` gives an item's key, `part` what its server's request needs of it. One
    /// group with one server.
    pub(crate) fn split<'i, T, P>(
        &self,
        items: &'i [T],
        key: impl Fn(&T) -> &[u8],
        part: impl Fn(&'i T) -> P,
    ) -> Vec<Group<P>> {
        if let Ring::One = self.ring {
            return vec![Group {
                server: 0,
                members: (0..items.len()).collect(),
                items: items.iter().map(part).collect(),
            }];
        }
        let placement = self.placement(true);
        let mut groups: Vec<Group<P>> = Vec::new();
        for (at, item) in items.iter().enumerate() {
            let server = placement.index(key(item));
            let group = match groups.iter().position(|group| group.server == server) {
                Some(found) => &mut groups[found],
                None => {
                    // About its share of the items, so that it seldom grows.
                    let share = items.len() / self.servers.len() + items.len() / 8 + 1;
                    groups.push(Group {
                        server,
                        members: Vec::with_capacity(share),
                        items: Vec::with_capacity(share),
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.members.push(at);
            group.items.push(part(item));
        }
        groups
    }

    /// What [`Client::servers`](crate::Client::servers) reports.
    pub(crate) fn infos(&self) -> Vec<ServerInfo> {
        let now = Instant::now();
        self.servers
            .iter()
            .zip(&self.configs)
            .map(|(connection, config)| ServerInfo {
                addr: config.addr.clone(),
                weight: config.weight,
                name: config.name.clone(),
                state: connection.health().state(now),
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in &self.servers {
            server.shut();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// pymemcache's name for a node: `"{host}:{port}"` (an IPv6 host without brackets), a unix
/// socket's path, or the explicit node name.
fn rendezvous_name(server: &ServerConfig) -> Vec<u8> {
    if let Some(name) = &server.name {
        return name.as_bytes().to_vec();
    }
    match &server.addr {
        ServerAddr::Tcp { host, port } => format!("{host}:{port}").into_bytes(),
        ServerAddr::Unix(path) => path.to_string_lossy().into_owned().into_bytes(),
    }
}

/// libmemcached's and twemproxy's name for a server's points: the explicit node name, or
/// `"{host}"` on port 11211 and `"{host}:{port}"` otherwise (the host as written); a unix
/// socket is `"{path}:0"`, as libmemcached names it (its port is 0). twemproxy names a
/// socket `"{path}:"` instead: name the servers explicitly to agree with it.
fn ketama_name(server: &ServerConfig) -> Vec<u8> {
    if let Some(name) = &server.name {
        return name.as_bytes().to_vec();
    }
    match &server.addr {
        ServerAddr::Tcp { host, port: 11211 } => host.as_bytes().to_vec(),
        ServerAddr::Tcp { host, port } => format!("{host}:{port}").into_bytes(),
        ServerAddr::Unix(path) => format!("{}:0", path.to_string_lossy()).into_bytes(),
    }
}

/// Where keys go, for one command (see [`Cluster::placement`]).
pub(crate) struct Placement<'c> {
    cluster: &'c Cluster,
    out: Out,
}

/// The servers out of the ring under failover, when some are.
enum Out {
    /// None: every key goes where the ring says.
    None,
    /// Which servers are out.
    Rendezvous(Vec<bool>),
    /// The continuum of the servers left.
    Ketama(Arc<Continuum>),
}

impl Placement<'_> {
    /// The index of `key`'s server (`key` without the client's prefix).
    pub(crate) fn index(&self, key: &[u8]) -> usize {
        let cluster = self.cluster;
        match (&cluster.ring, &self.out) {
            (Ring::One, _) => 0,
            (Ring::Rendezvous(nodes), Out::Rendezvous(dead)) => {
                rendezvous::locate(nodes, key, |i| dead[i])
                    // every server is dead: the key's own server answers (ServerDown)
                    .or_else(|| rendezvous::locate(nodes, key, |_| false))
                    .unwrap_or(0)
            }
            (Ring::Rendezvous(nodes), _) => rendezvous::locate(nodes, key, |_| false).unwrap_or(0),
            (Ring::Ketama { all, .. }, out) => {
                let hash = key_hash(&[&cluster.prefix, key]);
                let live = match out {
                    Out::Ketama(live) => live.locate(hash),
                    _ => None,
                };
                // every server is dead: the key's own server answers (ServerDown)
                live.or_else(|| all.locate(hash)).unwrap_or(0)
            }
        }
    }
}

/// One server's part of a multi-key command (see [`Cluster::split`]).
#[derive(Debug)]
pub(crate) struct Group<P> {
    /// The server's index.
    pub(crate) server: usize,
    /// The positions of its items in the command's list.
    pub(crate) members: Vec<usize>,
    /// Its items, as its request needs them.
    pub(crate) items: Vec<P>,
}

/// One server of a client, as [`Client::servers`](crate::Client::servers) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Where it listens.
    pub addr: ServerAddr,
    /// Its weight (1 unless set).
    pub weight: u32,
    /// Its explicit node name, if it has one.
    pub name: Option<String>,
    /// Its health now.
    pub state: ServerState,
}

/// What each server answered to a server-wide command (`stats`, `version`, `flush_all`,
/// `verbosity`, `cache_memlimit`, `quit`), in the order the servers were configured. A
/// server that failed has its error in its entry; the others' results stand.
///
/// ```no_run
/// # async fn demo(client: memcache_core::Client) -> Result<(), memcache_core::Error> {
/// for (server, stats) in &client.stats().await? {
///     match stats {
///         Ok(stats) => println!("{server}: {:?} items", stats.curr_items()),
///         Err(error) => println!("{server}: {error}"),
///     }
/// }
/// let pid = client.stats().await?.single()?.pid(); // a client of one server
/// # let _ = pid;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PerServer<T> {
    entries: Vec<(ServerAddr, Result<T>)>,
}

impl<T> PerServer<T> {
    pub(crate) fn new(entries: Vec<(ServerAddr, Result<T>)>) -> Self {
        PerServer { entries }
    }

    /// Each server with its result.
    pub fn iter(&self) -> impl Iterator<Item = (&ServerAddr, &Result<T>)> {
        self.into_iter()
    }

    /// The result of `server` (written as for
    /// [`ClientBuilder::server`](crate::ClientBuilder::server): `"10.0.0.1"` is
    /// `10.0.0.1:11211`), if it is one of the client's.
    pub fn get(&self, server: &str) -> Option<&Result<T>> {
        let server = ServerAddr::parse(server).ok()?;
        self.iter()
            .find(|(addr, _)| **addr == server)
            .map(|(_, result)| result)
    }

    /// The result of the only server, for a client of one.
    ///
    /// # Errors
    /// That server's error; [`Error::IllegalInput`] when the client has several servers.
    pub fn single(self) -> Result<T> {
        let count = self.entries.len();
        match self.entries.into_iter().next() {
            Some((_, result)) if count == 1 => result,
            _ => Err(Error::IllegalInput(IllegalInput::Argument(format!(
                "a result from each of {count} servers: look at each (iter) instead of single"
            )))),
        }
    }

    /// Every server's value, or the first error (as [`Error::AtServer`], naming its
    /// server).
    ///
    /// # Errors
    /// The first server's error, in the order configured.
    pub fn all(self) -> Result<Vec<(ServerAddr, T)>> {
        self.entries
            .into_iter()
            .map(|(server, result)| match result {
                Ok(value) => Ok((server, value)),
                Err(error) => Err(Error::at_server(&server, error)),
            })
            .collect()
    }
}

impl<T> IntoIterator for PerServer<T> {
    type Item = (ServerAddr, Result<T>);
    type IntoIter = std::vec::IntoIter<(ServerAddr, Result<T>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a PerServer<T> {
    type Item = (&'a ServerAddr, &'a Result<T>);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ServerAddr, Result<T>)>,
        fn(&'a (ServerAddr, Result<T>)) -> (&'a ServerAddr, &'a Result<T>),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(server, result)| (server, result))
    }
}
