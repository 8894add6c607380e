//! W7 and W8 (issue 10): the same reads spread over three memcached processes.
//!
//! - **W7**: one caller, `get_many` of the fixture's 100 keys, repeated; the keys fall on
//!   all three servers. Counted in calls (100 keys each).
//! - **W8**: 64 tasks on the two-worker runtime, each doing single-key `get`s of those keys
//!   in turn (each task from its own starting key), so every server is busy.
//!
//! Every key is stored on every server, so each client finds its keys wherever its own
//! placement puts them (rendezvous, ketama, `memcache`'s `DefaultHasher` modulo). Before
//! the clock starts, each client's reads are checked to reach every server: the servers'
//! `get_hits` counters must rise by exactly the keys read, each by some (the shares are
//! printed as `spread:` lines).

pub mod callgrind;
mod ours;
mod peers;
mod python;
mod raw;

use std::net::SocketAddr;

use memcache_core::{Distribution, Protocol};

use crate::fixture::{Fixture, MANY};
use crate::harness::Case;
use crate::server::get_hits;
use crate::workloads::Context;
use crate::BenchResult;

/// Servers W7 and W8 spread their keys over.
pub const SERVERS: usize = 3;

/// This client with ketama placement (the rows labelled `memcache-core` use its default,
/// rendezvous).
pub const KETAMA: &str = "memcache-core, ketama";
/// W7: pylibmc's multi-get.
pub const PYLIBMC: &str = "pylibmc get_multi (ketama_weighted)";
/// W7: pymemcache's multi-get.
pub const PYMEMCACHE: &str = "pymemcache HashClient get_many";
/// W7: `memcache` with one pool per server; its `gets` asks them one after the other.
pub const MEMCACHE: &str = "memcache (3 pools), gets";
/// W7: `async-memcached`, which has no client of several servers, given three.
pub const ASYNC_SPLIT: &str =
    "async-memcached: no several-server client; 3 Clients, keys split by server_for, joined";
/// W7: the raw client, one multi-key `get` per server written on three sockets at once.
pub const RAW_SPREAD: &str = "raw get per server, 3 sockets at once";
/// W8: `memcache`, each thread its own client of the three servers (one pool each).
pub const MEMCACHE_PER_TASK: &str = "memcache, a 3-server Client per thread";
/// W8: `async-memcached`, each task its own three connections.
pub const ASYNC_PER_TASK: &str = "async-memcached, 3 Clients per task, routed by server_for";
/// W8: the raw client, one `mg` in flight per thread, three sockets per thread.
pub const RAW_PER_TASK: &str = "raw mg, 1 in flight, 64 threads x 3 sockets";
/// W8: the raw client, pipelined `mg` on one socket per server, one thread.
pub const RAW_PIPELINED: &str = "raw mg, pipelined x128 on each of 3 sockets";

/// W7's clients, connected, checked and ready.
///
/// # Errors
/// When a client cannot connect, reads wrong values, or does not reach every server; when
/// the Python peers are missing.
pub fn w7_cases(cx: &Context) -> BenchResult<Vec<Case>> {
    let route = Route::rendezvous(cx)?;
    Ok(vec![
        ours::get_many(cx, Distribution::Rendezvous, crate::ours::LABEL)?,
        ours::get_many(cx, Distribution::Ketama, KETAMA)?,
        peers::memcache_get_many(cx)?,
        peers::async_get_many(cx, &route)?,
        python::case(cx, python::Library::Pylibmc, PYLIBMC)?,
        python::case(cx, python::Library::Pymemcache, PYMEMCACHE)?,
        raw::get_many(cx, &route)?,
    ])
}

/// W8's clients, connected, checked and ready.
///
/// # Errors
/// When a client cannot connect, reads wrong values, or does not reach every server.
pub fn w8_cases(cx: &Context) -> BenchResult<Vec<Case>> {
    let route = Route::rendezvous(cx)?;
    Ok(vec![
        ours::concurrent(cx, Distribution::Rendezvous, crate::ours::LABEL)?,
        ours::concurrent(cx, Distribution::Ketama, KETAMA)?,
        peers::memcache_concurrent(cx)?,
        peers::async_concurrent(cx, &route)?,
        raw::per_task(cx, &route)?,
        raw::pipelined(cx, &route)?,
    ])
}

/// The servers of W7 and W8, checked to be started.
fn servers(cx: &Context) -> BenchResult<&[SocketAddr]> {
    if cx.servers.len() == SERVERS {
        Ok(&cx.servers)
    } else {
        Err("W7/W8 need their three memcached servers, which were not started".into())
    }
}

/// Which server (an index into [`Context::servers`]) each of the fixture's keys lives on,
/// by this client's default placement (rendezvous, pymemcache's): how the raw client and
/// `async-memcached`, which place nothing themselves, split the keys. Computed once,
/// before any clock starts.
#[derive(Debug, Clone)]
pub struct Route {
    servers: Vec<usize>,
}

impl Route {
    fn rendezvous(cx: &Context) -> BenchResult<Self> {
        Self::rendezvous_of(servers(cx)?, &cx.fixture)
    }

    fn rendezvous_of(addrs: &[SocketAddr], fixture: &Fixture) -> BenchResult<Self> {
        let client = ours::client(addrs, Distribution::Rendezvous, Protocol::Auto, false)?;
        let names: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        let servers = fixture
            .many_keys
            .iter()
            .map(|key| {
                let server = client.server_for(key)?.to_string();
                names
                    .iter()
                    .position(|name| *name == server)
                    .ok_or_else(|| format!("server_for({key}) = {server}, not one of ours").into())
            })
            .collect::<BenchResult<_>>()?;
        Ok(Route { servers })
    }

    /// The server of the fixture's `i`-th key.
    pub fn server(&self, i: usize) -> usize {
        self.servers[i]
    }

    /// The positions of the keys of `server`, in the fixture's order.
    pub fn keys_of(&self, server: usize) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| self.servers[i] == server)
            .collect()
    }
}

/// Runs `read`, which must read `expected` keys (hits), and checks with the servers'
/// `get_hits` counters that exactly that many hits were served, some by every server.
/// Prints each server's share.
///
/// # Errors
/// `read`'s error; when the counters say otherwise.
pub fn check_spread(
    cx: &Context,
    label: &str,
    expected: u64,
    read: impl FnOnce() -> BenchResult<()>,
) -> BenchResult<()> {
    let addrs = servers(cx)?;
    let counts = || {
        addrs
            .iter()
            .map(|&addr| get_hits(addr))
            .collect::<BenchResult<Vec<_>>>()
    };
    let before = counts()?;
    read()?;
    let shares: Vec<u64> = counts()?.iter().zip(&before).map(|(a, b)| a - b).collect();
    let shown: Vec<String> = shares.iter().map(u64::to_string).collect();
    println!("spread:    {label}: hits per server {}", shown.join(" / "));
    let total: u64 = shares.iter().sum();
    if total != expected {
        return Err(format!("{label}: the servers served {total} hits, not {expected}").into());
    }
    if shares.contains(&0) {
        return Err(format!("{label}: a server served none of the keys").into());
    }
    Ok(())
}

/// The fixture's `i`-th key and value.
fn item(fixture: &Fixture, i: usize) -> (&str, &[u8]) {
    (&fixture.many_keys[i], &fixture.many_values[i])
}

/// The key a W8 task reads after `i`: the next one, round the 100.
fn next_key(i: usize) -> usize {
    (i + 1) % MANY
}
