//! The workloads of issue 4 and the clients measured on each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use memcache_core::Protocol;
use tokio::runtime::Runtime;

use crate::fixture::{Fixture, MANY};
use crate::harness::{timed, Case, Unit};
use crate::raw::{Exchange, RawConnection, RawTokioConnection};
use crate::{cluster, ours, peers, typed, BenchResult};

/// Requests kept outstanding by the raw client's pipelined single-key gets.
const RAW_WINDOW: u64 = 128;
/// Multi-key gets kept outstanding by the raw client's pipelined W3 figure.
const RAW_MULTI_WINDOW: u64 = 8;
/// Noreply sets per `write` in the raw client's batched figure.
const RAW_NOREPLY_BATCH: u64 = 256;

/// Raw client, classic `get`, one in flight.
pub const RAW_GET: &str = "raw get, 1 in flight";
/// Raw client, meta `mg <key> v`, one in flight.
pub const RAW_MG: &str = "raw mg, 1 in flight";
/// Raw client on a tokio socket, classic `get`, one in flight.
pub const RAW_TOKIO_GET: &str = "raw get on tokio, 1 in flight";
/// Raw client on a tokio socket, acknowledged `set`, one in flight.
pub const RAW_TOKIO_SET: &str = "raw set on tokio, 1 in flight";
/// Raw client, classic `get`, pipelined.
pub const RAW_GET_PIPELINED: &str = "raw get, pipelined x128";
/// Raw client, meta `mg <key> v`, pipelined.
pub const RAW_MG_PIPELINED: &str = "raw mg, pipelined x128";
/// Raw client, acknowledged `set`, one in flight.
pub const RAW_SET: &str = "raw set, 1 in flight";
/// Raw client, `set noreply`, one request per `write`.
pub const RAW_SET_NOREPLY: &str = "raw set noreply, 1 per write";
/// Raw client, `set noreply`, batched writes.
pub const RAW_SET_NOREPLY_BATCHED: &str = "raw set noreply, 256 per write";
/// Raw client, multi-key `get` of 100 keys, one in flight.
pub const RAW_MULTI: &str = "raw get x100 keys, 1 in flight";
/// Raw client, multi-key `get` of 100 keys, pipelined.
pub const RAW_MULTI_PIPELINED: &str = "raw get x100 keys, pipelined x8";

/// What every case needs: the server, the data and the runtimes.
pub struct Context {
    /// The memcached of W1-W6.
    pub addr: SocketAddr,
    /// The three memcacheds of W7 and W8 (empty when neither runs).
    pub servers: Vec<SocketAddr>,
    /// The stored data set.
    pub fixture: Arc<Fixture>,
    /// Multi-thread runtime, two workers (W4, W4s).
    pub multi: Arc<Runtime>,
    /// Runtime of the one-caller workloads (`--runtime`).
    pub caller: Arc<Runtime>,
    /// Current-thread runtime of the W4/W4s rows shown for scale (not in the targets).
    pub one_thread: Arc<Runtime>,
    /// The protocol `memcache-core` is built with (`--protocol`).
    pub protocol: Protocol,
    /// `memcache-core` is built with `join_gets(true)` (`--join-gets`).
    pub join_gets: bool,
    /// `--tls`: the memcached's TLS listener, and the client configuration that trusts it.
    #[cfg(feature = "tls")]
    pub tls: Option<(SocketAddr, memcache_core::TlsConfig)>,
}

/// A workload as selected on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// get of a 100-byte value, one in flight.
    W1,
    /// set of a 100-byte value, acknowledged and noreply.
    W2,
    /// get_many of 100 keys, one caller.
    W3,
    /// 64 concurrent tasks doing gets.
    W4,
    /// 64 concurrent tasks doing noreply sets.
    W4s,
    /// get of a 100 KiB value.
    W5,
    /// typed `Cache<User>::get` beside `Client::get` of the same keys, one in flight.
    W6,
    /// get_many of 100 keys over three servers, one caller.
    W7,
    /// 64 concurrent tasks doing gets of keys over three servers.
    W8,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 9] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W4s,
        Workload::W5,
        Workload::W6,
        Workload::W7,
        Workload::W8,
    ];

    /// Parses `W1` .. `W8`, `W4s` (case-insensitive).
    ///
    /// # Errors
    /// For any other name.
    pub fn parse(text: &str) -> BenchResult<Self> {
        Ok(match text.trim().to_ascii_uppercase().as_str() {
            "W1" => Workload::W1,
            "W2" => Workload::W2,
            "W3" => Workload::W3,
            "W4" => Workload::W4,
            "W4S" => Workload::W4s,
            "W5" => Workload::W5,
            "W6" => Workload::W6,
            "W7" => Workload::W7,
            "W8" => Workload::W8,
            _ => {
                return Err(format!(
                    "unknown workload {text:?} (W1, W2, W3, W4, W4s, W5, W6, W7, W8)"
                )
                .into())
            }
        })
    }

    /// The table sections of this workload (W2 has two: acknowledged and noreply).
    pub fn sections(self) -> Vec<Section> {
        match self {
            Workload::W1 => vec![Section::W1],
            Workload::W2 => vec![Section::W2, Section::W2Noreply],
            Workload::W3 => vec![Section::W3],
            Workload::W4 => vec![Section::W4],
            Workload::W4s => vec![Section::W4s],
            Workload::W5 => vec![Section::W5],
            Workload::W6 => vec![Section::W6],
            Workload::W7 => vec![Section::W7],
            Workload::W8 => vec![Section::W8],
        }
    }

    /// Whether the workload runs on the three servers of W7 and W8.
    pub fn several_servers(self) -> bool {
        matches!(self, Workload::W7 | Workload::W8)
    }
}

/// One block of rows in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// get 100 B, one in flight.
    W1,
    /// set 100 B, acknowledged, one in flight.
    W2,
    /// set 100 B, noreply, one caller.
    W2Noreply,
    /// get_many of 100 keys, one caller.
    W3,
    /// 64 tasks doing gets.
    W4,
    /// 64 tasks doing noreply sets.
    W4s,
    /// get 100 KiB, one in flight.
    W5,
    /// typed `Cache<User>::get` and `Client::get` of the same keys, one in flight.
    W6,
    /// get_many of 100 keys over three servers, one caller.
    W7,
    /// 64 tasks doing gets of keys over three servers.
    W8,
}

impl Section {
    /// The section's heading in the table.
    pub fn title(self) -> &'static str {
        match self {
            Section::W1 => "W1 get 100 B, 1 in flight",
            Section::W2 => "W2 set 100 B, acknowledged",
            Section::W2Noreply => "W2 set 100 B, noreply",
            Section::W3 => "W3 get_many 100 keys, 1 caller",
            Section::W4 => "W4 64 tasks, get 100 B",
            Section::W4s => "W4s 64 tasks, set 100 B noreply",
            Section::W5 => "W5 get 100 KiB, 1 in flight",
            Section::W6 => "W6 typed get User (~100 B), 1 in flight",
            Section::W7 => "W7 get_many 100 keys over 3 servers, 1 caller",
            Section::W8 => "W8 64 tasks, get 100 B, keys over 3 servers",
        }
    }

    /// What the section counts.
    pub fn unit(self) -> Unit {
        match self {
            Section::W3 => Unit::Keys,
            Section::W5 => Unit::Bytes,
            Section::W7 => Unit::Calls,
            _ => Unit::Ops,
        }
    }

    /// The raw figure(s) the ratio column divides by: the best of these (W6: this client's
    /// untyped `Client::get` of the same keys, the "raw get" of its issue-4 target).
    pub fn reference(self) -> &'static [&'static str] {
        match self {
            Section::W1 => &[RAW_GET, RAW_MG],
            Section::W2 => &[RAW_SET],
            Section::W2Noreply => &[RAW_SET_NOREPLY],
            Section::W3 => &[RAW_MULTI],
            Section::W4 => &[RAW_MG_PIPELINED],
            Section::W4s => &[RAW_SET_NOREPLY_BATCHED],
            Section::W5 => &[RAW_GET],
            Section::W6 => &[typed::UNTYPED],
            Section::W7 => &[cluster::RAW_SPREAD],
            Section::W8 => &[cluster::RAW_PIPELINED],
        }
    }

    /// The peers' rows of this section: the "vs best peer" column divides by the best of
    /// them. Rows shown for scale (a peer on a current-thread runtime, `async-memcached`
    /// helped to several servers in W7) are not among them.
    pub fn peers(self) -> &'static [&'static str] {
        match self {
            Section::W1 => &[
                peers::MEMCACHE,
                peers::MEMCACHE_DEFAULT,
                peers::ASYNC_MEMCACHED,
            ],
            Section::W2 | Section::W3 | Section::W4 | Section::W5 => {
                &[peers::MEMCACHE, peers::ASYNC_MEMCACHED]
            }
            Section::W2Noreply | Section::W4s | Section::W6 => &[],
            Section::W7 => &[cluster::PYLIBMC, cluster::PYMEMCACHE, cluster::MEMCACHE],
            Section::W8 => &[cluster::MEMCACHE_PER_TASK, cluster::ASYNC_PER_TASK],
        }
    }

    /// The clients measured in this section, connected and ready (with `--tls`, W1 and
    /// W4 have a row over TLS too, second).
    ///
    /// # Errors
    /// When a client cannot connect.
    pub fn cases(self, cx: &Context) -> BenchResult<Vec<Case>> {
        let cases = self.plain_cases(cx)?;
        #[cfg(feature = "tls")]
        let cases = self.with_tls_rows(cases, cx)?;
        Ok(cases)
    }

    /// With `--tls`: W1 and W4 get this client's row over TLS too, second.
    #[cfg(feature = "tls")]
    fn with_tls_rows(self, mut cases: Vec<Case>, cx: &Context) -> BenchResult<Vec<Case>> {
        if cx.tls.is_some() {
            match self {
                Section::W1 => cases.insert(1, ours::get_over_tls(&cx.caller, cx)?),
                Section::W4 => cases.insert(1, ours::concurrent_over_tls(&cx.multi, cx)?),
                _ => {}
            }
        }
        Ok(cases)
    }

    /// The cases over plain TCP (or a unix socket).
    fn plain_cases(self, cx: &Context) -> BenchResult<Vec<Case>> {
        let (addr, fx) = (cx.addr, &cx.fixture);
        let small_get = Exchange::get(&fx.small_key, &fx.small_value);
        let small_mg = Exchange::meta_get(&fx.small_key, &fx.small_value);
        let check_set = Exchange::get(&fx.set_key, &fx.set_value);
        Ok(match self {
            Section::W1 => vec![
                ours::get(&cx.caller, cx, false)?,
                peers::memcache_get(addr, fx, false, true)?,
                peers::memcache_get(addr, fx, false, false)?,
                peers::async_get(&cx.caller, addr, fx, false)?,
                raw_case(RAW_GET, addr, move |c, deadline| {
                    c.one_in_flight(&small_get, deadline)
                })?,
                raw_case(RAW_MG, addr, move |c, deadline| {
                    c.one_in_flight(&small_mg, deadline)
                })?,
                raw_tokio_case(
                    RAW_TOKIO_GET,
                    &cx.caller,
                    addr,
                    Exchange::get(&fx.small_key, &fx.small_value),
                )?,
            ],
            Section::W2 => {
                let set = Exchange::set(&fx.set_key, &fx.set_value);
                let tokio_set = set.clone();
                vec![
                    ours::set(&cx.caller, cx, false)?,
                    peers::memcache_set(addr, fx)?,
                    peers::async_set(&cx.caller, addr, fx)?,
                    raw_case(RAW_SET, addr, move |c, deadline| {
                        let sets = c.one_in_flight(&set, deadline)?;
                        c.exchange(&check_set, true)?;
                        Ok(sets)
                    })?,
                    raw_tokio_case(RAW_TOKIO_SET, &cx.caller, addr, tokio_set)?,
                ]
            }
            Section::W2Noreply => {
                let set = Exchange::set_noreply(&fx.set_key, &fx.set_value);
                vec![
                    ours::set(&cx.caller, cx, true)?,
                    raw_case(RAW_SET_NOREPLY, addr, move |c, deadline| {
                        c.noreply(&set, 1, &check_set, deadline)
                    })?,
                ]
            }
            Section::W3 => {
                let multi = Exchange::multi_get(fx);
                let pipelined = multi.clone();
                vec![
                    ours::get_many(&cx.caller, cx)?,
                    peers::memcache_get_many(addr, fx)?,
                    peers::async_get_many(&cx.caller, addr, fx)?,
                    raw_case(RAW_MULTI, addr, move |c, deadline| {
                        Ok(c.one_in_flight(&multi, deadline)? * MANY as u64)
                    })?,
                    raw_case(RAW_MULTI_PIPELINED, addr, move |c, deadline| {
                        Ok(c.pipelined(&pipelined, RAW_MULTI_WINDOW, deadline)? * MANY as u64)
                    })?,
                ]
            }
            Section::W4 => vec![
                ours::concurrent(ours::LABEL, &cx.multi, cx, false)?,
                peers::memcache_concurrent(addr, fx)?,
                peers::async_concurrent(peers::ASYNC_MEMCACHED, &cx.multi, addr, fx)?,
                ours::concurrent(ours::LABEL_ONE_THREAD, &cx.one_thread, cx, false)?,
                peers::async_concurrent(peers::ASYNC_ONE_THREAD, &cx.one_thread, addr, fx)?,
                raw_case(RAW_GET_PIPELINED, addr, move |c, deadline| {
                    c.pipelined(&small_get, RAW_WINDOW, deadline)
                })?,
                raw_case(RAW_MG_PIPELINED, addr, move |c, deadline| {
                    c.pipelined(&small_mg, RAW_WINDOW, deadline)
                })?,
            ],
            Section::W4s => {
                let set = Exchange::set_noreply(&fx.set_key, &fx.set_value);
                vec![
                    ours::concurrent(ours::LABEL, &cx.multi, cx, true)?,
                    ours::concurrent(ours::LABEL_ONE_THREAD, &cx.one_thread, cx, true)?,
                    raw_case(RAW_SET_NOREPLY_BATCHED, addr, move |c, deadline| {
                        c.noreply(&set, RAW_NOREPLY_BATCH, &check_set, deadline)
                    })?,
                ]
            }
            Section::W5 => {
                let large = Exchange::get(&fx.large_key, &fx.large_value);
                let bytes = fx.large_value.len() as u64;
                vec![
                    ours::get(&cx.caller, cx, true)?,
                    peers::memcache_get(addr, fx, true, false)?,
                    peers::async_get(&cx.caller, addr, fx, true)?,
                    raw_case(RAW_GET, addr, move |c, deadline| {
                        Ok(c.one_in_flight(&large, deadline)? * bytes)
                    })?,
                ]
            }
            Section::W6 => typed::cases(cx)?,
            Section::W7 => cluster::w7_cases(cx)?,
            Section::W8 => cluster::w8_cases(cx)?,
        })
    }
}

/// A raw-socket case on its own connection.
fn raw_case(
    label: &'static str,
    addr: SocketAddr,
    mut body: impl FnMut(&mut RawConnection, Instant) -> BenchResult<u64> + 'static,
) -> BenchResult<Case> {
    let mut connection = RawConnection::connect(addr)?;
    Ok(Case::new(label, move |budget| {
        timed(budget, |deadline| body(&mut connection, deadline))
    }))
}

/// The raw client on a tokio socket (one in flight, on the one-caller runtime), lent to one
/// task per run.
fn raw_tokio_case(
    label: &'static str,
    rt: &Arc<Runtime>,
    addr: SocketAddr,
    exchange: Exchange,
) -> BenchResult<Case> {
    let rt = Arc::clone(rt);
    let mut slot = Some(rt.block_on(RawTokioConnection::connect(addr))?);
    let exchange = Arc::new(exchange);
    Ok(Case::new(label, move |budget| {
        let mut connection = slot
            .take()
            .ok_or("the raw tokio connection was lost in an earlier run")?;
        let exchange = Arc::clone(&exchange);
        timed(budget, |deadline| {
            let (connection, result) = rt
                .block_on(rt.spawn(async move {
                    let result = connection.one_in_flight(&exchange, deadline).await;
                    (connection, result)
                }))
                .map_err(|error| format!("task failed: {error}"))?;
            slot = Some(connection);
            result
        })
    }))
}
