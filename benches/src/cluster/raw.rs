//! The raw-socket client on W7 and W8: requests encoded before the clock starts, blocking
//! `std` sockets with `TCP_NODELAY`, answers read by their known length. The keys are
//! placed by this client's rendezvous placement ([`Route`], computed beforehand).
//!
//! - W7: one multi-key `get` of each server's keys written on each of three sockets, all
//!   three written before any answer is read; then the three answers. The floor of a
//!   client of several servers that sends every server's request at once.
//! - W8, one in flight per task: 64 OS threads, each with three sockets, one `mg <key> v`
//!   at a time on its key's socket (the floor of "one connection per task").
//! - W8, pipelined: one thread keeps 128 `mg` outstanding on each of three sockets, one
//!   per server, reading them in turn (what the three servers serve at most here).

use std::net::SocketAddr;
use std::thread;
use std::time::Instant;

use super::{check_spread, item, next_key, servers, Route, SERVERS};
use super::{RAW_PER_TASK, RAW_PIPELINED, RAW_SPREAD};
use crate::fixture::{Fixture, MANY};
use crate::harness::{timed, Case};
use crate::raw::{Exchange, RawConnection};
use crate::workloads::Context;
use crate::{BenchResult, CONCURRENCY};

/// Requests kept outstanding on each socket by the pipelined W8 figure.
const WINDOW: u64 = 128;

/// One connection to each server, in the order of [`Context::servers`].
pub(super) fn connect_all(addrs: &[SocketAddr]) -> BenchResult<Vec<RawConnection>> {
    addrs
        .iter()
        .map(|&addr| RawConnection::connect(addr))
        .collect()
}

/// One multi-key `get` of each server's keys.
pub(super) fn split_requests(fixture: &Fixture, route: &Route) -> Vec<Exchange> {
    (0..SERVERS)
        .map(|server| {
            Exchange::multi_get_of(route.keys_of(server).into_iter().map(|i| item(fixture, i)))
        })
        .collect()
}

/// Every server's request written, then every answer read (and compared, when `verify`).
pub(super) fn get_many_once(
    connections: &mut [RawConnection],
    requests: &[Exchange],
    verify: bool,
) -> BenchResult<()> {
    for (connection, request) in connections.iter_mut().zip(requests) {
        connection.send(request)?;
    }
    for (connection, request) in connections.iter_mut().zip(requests) {
        connection.receive(request, verify)?;
    }
    Ok(())
}

/// W7: see the module docs; counts calls. The first call of every run is compared byte for
/// byte with the expected answers.
///
/// # Errors
/// On connection errors, or a wrong answer.
pub fn get_many(cx: &Context, route: &Route) -> BenchResult<Case> {
    let mut connections = connect_all(servers(cx)?)?;
    let requests = split_requests(&cx.fixture, route);
    check_spread(cx, RAW_SPREAD, MANY as u64, || {
        get_many_once(&mut connections, &requests, true)
    })?;
    Ok(Case::new(RAW_SPREAD, move |budget| {
        timed(budget, |deadline| {
            get_many_once(&mut connections, &requests, true)?;
            let mut calls = 1;
            while Instant::now() < deadline {
                get_many_once(&mut connections, &requests, false)?;
                calls += 1;
            }
            Ok(calls)
        })
    }))
}

/// The `mg <key> v` of each of the fixture's keys.
fn meta_gets(fixture: &Fixture) -> Vec<Exchange> {
    (0..MANY)
        .map(|i| {
            let (key, value) = item(fixture, i);
            Exchange::meta_get(key, value)
        })
        .collect()
}

/// W8, one in flight per task: see the module docs; counts gets. Each thread's first
/// answer is compared byte for byte.
///
/// # Errors
/// On connection errors, or a wrong answer.
pub fn per_task(cx: &Context, route: &Route) -> BenchResult<Case> {
    let addrs = servers(cx)?;
    let mut sockets = (0..CONCURRENCY)
        .map(|_| connect_all(addrs))
        .collect::<BenchResult<Vec<_>>>()?;
    let gets = meta_gets(&cx.fixture);
    let route = route.clone();
    check_spread(cx, RAW_PER_TASK, MANY as u64, || {
        for (i, get) in gets.iter().enumerate() {
            sockets[0][route.server(i)].exchange(get, true)?;
        }
        Ok(())
    })?;
    Ok(Case::new(RAW_PER_TASK, move |budget| {
        timed(budget, |deadline| {
            thread::scope(|scope| {
                let workers: Vec<_> = sockets
                    .iter_mut()
                    .enumerate()
                    .map(|(task, own)| {
                        let (gets, route) = (&gets, &route);
                        scope.spawn(move || -> BenchResult<u64> {
                            let mut i = task % MANY;
                            own[route.server(i)].exchange(&gets[i], true)?;
                            let mut done = 1;
                            while Instant::now() < deadline {
                                i = next_key(i);
                                own[route.server(i)].exchange(&gets[i], false)?;
                                done += 1;
                            }
                            Ok(done)
                        })
                    })
                    .collect();
                let mut done = 0;
                for worker in workers {
                    done += worker
                        .join()
                        .map_err(|_| "a raw worker thread panicked")??;
                }
                Ok(done)
            })
        })
    }))
}

/// W8, pipelined: see the module docs; counts gets. The first read on each socket is
/// verified against the expected stream of answers.
///
/// # Errors
/// On connection errors, or a wrong answer.
pub fn pipelined(cx: &Context, route: &Route) -> BenchResult<Case> {
    let mut connections = connect_all(servers(cx)?)?;
    let gets = meta_gets(&cx.fixture);
    // Each socket repeats one key of its server.
    let requests: Vec<Exchange> = (0..SERVERS)
        .map(|server| {
            let first = route.keys_of(server).first().copied();
            first
                .map(|i| gets[i].clone())
                .ok_or_else(|| format!("server {server} holds none of the keys").into())
        })
        .collect::<BenchResult<_>>()?;
    check_spread(cx, RAW_PIPELINED, SERVERS as u64, || {
        for (connection, request) in connections.iter_mut().zip(&requests) {
            connection.exchange(request, true)?;
        }
        Ok(())
    })?;
    Ok(Case::new(RAW_PIPELINED, move |budget| {
        timed(budget, |deadline| {
            let mut windows = connections
                .iter_mut()
                .zip(&requests)
                .map(|(connection, request)| connection.open_window(request, WINDOW))
                .collect::<BenchResult<Vec<_>>>()?;
            while windows.iter().any(|window| !window.is_drained()) {
                for ((connection, request), window) in
                    connections.iter_mut().zip(&requests).zip(&mut windows)
                {
                    if !window.is_drained() {
                        connection.advance(window, request, deadline)?;
                    }
                }
            }
            Ok(windows.iter().map(|window| window.completed()).sum())
        })
    }))
}
