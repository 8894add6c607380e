//! The Rust peers on W7 and W8.
//!
//! - `memcache` takes several servers (`Client::with_pools`, one r2d2 pool per server, the
//!   checkout test off as everywhere in this benchmark); it places keys by `DefaultHasher`
//!   modulo the number of servers, and its multi-key `gets` asks the servers one after the
//!   other. W8 gives each of the 64 threads its own client (three connections).
//! - `async-memcached` has no client of several servers: one `Client` is one connection.
//!   It gets three, one per server, and the keys are placed for it by this client's
//!   rendezvous placement ([`Route`], computed before the clock starts). W7: one
//!   `get_multi` per server, the three awaited together (`tokio::join!`); W8: each task its
//!   own three.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use async_memcached::AsciiProtocol;

use super::{check_spread, item, next_key, servers, Route, SERVERS};
use super::{ASYNC_PER_TASK, ASYNC_SPLIT, MEMCACHE, MEMCACHE_PER_TASK};
use crate::fixture::{check_value, Fixture, MANY};
use crate::harness::{timed, Case};
use crate::peers::{check_many, memcache_url};
use crate::workloads::Context;
use crate::{BenchError, BenchResult, CONCURRENCY};

/// A `memcache` client of `servers`: one pool of one connection per server, without the
/// checkout test.
fn memcache_client(servers: &[SocketAddr]) -> BenchResult<memcache::Client> {
    let pools = servers
        .iter()
        .map(|&addr| {
            Ok(r2d2::Pool::builder()
                .max_size(1)
                .test_on_check_out(false)
                .build(memcache::ConnectionManager::new(memcache::Url::parse(
                    &memcache_url(addr),
                )?))?)
        })
        .collect::<BenchResult<Vec<_>>>()?;
    Ok(memcache::Client::with_pools(pools)?)
}

/// `memcache` on W7: `gets` of the 100 keys from the calling thread; counts calls. The
/// first call of every run is checked value by value.
///
/// # Errors
/// When the client cannot connect, or its first call is wrong or misses a server.
pub fn memcache_get_many(cx: &Context) -> BenchResult<Case> {
    let client = memcache_client(servers(cx)?)?;
    let fixture = Arc::clone(&cx.fixture);
    check_spread(cx, MEMCACHE, MANY as u64, || {
        memcache_check_many(&client, &fixture)
    })?;
    Ok(Case::new(MEMCACHE, move |budget| {
        let keys: Vec<&str> = fixture.many_keys.iter().map(String::as_str).collect();
        timed(budget, |deadline| {
            memcache_check_many(&client, &fixture)?;
            let mut calls = 1;
            while Instant::now() < deadline {
                let hits = client.gets::<Vec<u8>>(&keys)?;
                if hits.len() != MANY {
                    return Err(format!("gets: {} hits of {MANY}", hits.len()).into());
                }
                calls += 1;
            }
            Ok(calls)
        })
    }))
}

/// One `gets` of the 100 keys: every key a hit with its own value.
fn memcache_check_many(client: &memcache::Client, fixture: &Fixture) -> BenchResult<()> {
    let keys: Vec<&str> = fixture.many_keys.iter().map(String::as_str).collect();
    let hits: std::collections::HashMap<String, Vec<u8>> = client.gets(&keys)?;
    check_many(
        hits.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        fixture,
    )
}

/// `memcache` on W8: 64 OS threads, each with its own client of the three servers, doing
/// `get`s of the keys in turn from its own first key; counts gets.
///
/// # Errors
/// When a client cannot connect, or the reads are wrong or miss a server.
pub fn memcache_concurrent(cx: &Context) -> BenchResult<Case> {
    let addrs = servers(cx)?;
    let clients = (0..CONCURRENCY)
        .map(|_| memcache_client(addrs))
        .collect::<BenchResult<Vec<_>>>()?;
    let fixture = Arc::clone(&cx.fixture);
    check_spread(cx, MEMCACHE_PER_TASK, MANY as u64, || {
        for i in 0..MANY {
            let (key, value) = item(&fixture, i);
            check_value("get", clients[0].get::<Vec<u8>>(key)?.as_deref(), value)?;
        }
        Ok(())
    })?;
    Ok(Case::new(MEMCACHE_PER_TASK, move |budget| {
        timed(budget, |deadline| {
            thread::scope(|scope| {
                let workers: Vec<_> = clients
                    .iter()
                    .enumerate()
                    .map(|(task, client)| {
                        let fixture = &fixture;
                        scope.spawn(move || -> BenchResult<u64> {
                            let mut i = task % MANY;
                            let (key, value) = item(fixture, i);
                            check_value("get", client.get::<Vec<u8>>(key)?.as_deref(), value)?;
                            let mut done = 1;
                            while Instant::now() < deadline {
                                i = next_key(i);
                                let (key, value) = item(fixture, i);
                                match client.get::<Vec<u8>>(key)? {
                                    Some(hit) if hit.len() == value.len() => done += 1,
                                    _ => return Err("get: miss or wrong length".into()),
                                }
                            }
                            Ok(done)
                        })
                    })
                    .collect();
                let mut done = 0;
                for worker in workers {
                    done += worker
                        .join()
                        .map_err(|_| "a memcache worker thread panicked")??;
                }
                Ok(done)
            })
        })
    }))
}

/// One `async-memcached` connection to each server, in the order of [`Context::servers`].
async fn async_clients(servers: &[SocketAddr]) -> BenchResult<Vec<async_memcached::Client>> {
    let mut clients = Vec::with_capacity(servers.len());
    for addr in servers {
        clients.push(async_memcached::Client::new(format!("tcp://{addr}")).await?);
    }
    Ok(clients)
}

/// Three connections as an array, one per server.
fn three(clients: Vec<async_memcached::Client>) -> BenchResult<[async_memcached::Client; 3]> {
    clients
        .try_into()
        .map_err(|_| BenchError::from(format!("W7/W8 use {SERVERS} servers")))
}

/// One W7 call of `async-memcached`: each server's `get_multi` of its keys, the three
/// awaited together; every hit as key and value, checked when `verify` is set (else only
/// counted).
async fn joined_get_multi(
    clients: &mut [async_memcached::Client; 3],
    keys: &[Vec<&str>; 3],
    fixture: &Fixture,
    verify: bool,
) -> BenchResult<()> {
    let [a, b, c] = clients;
    let (a, b, c) = tokio::join!(
        a.get_multi(&keys[0]),
        b.get_multi(&keys[1]),
        c.get_multi(&keys[2])
    );
    let (a, b, c) = (a?, b?, c?);
    if verify {
        let hits = a.iter().chain(&b).chain(&c);
        let pairs = hits.map(|v| (v.key.as_slice(), v.data.as_deref().unwrap_or_default()));
        check_many(pairs, fixture)
    } else if a.len() + b.len() + c.len() == MANY {
        Ok(())
    } else {
        Err("get_multi: fewer hits than keys".into())
    }
}

/// `async-memcached` on W7 (see the module docs): one task per run on the one-caller
/// runtime; counts calls.
///
/// # Errors
/// When a client cannot connect, or the first call is wrong or misses a server.
pub fn async_get_many(cx: &Context, route: &Route) -> BenchResult<Case> {
    let rt = Arc::clone(&cx.caller);
    let mut clients = Some(three(rt.block_on(async_clients(servers(cx)?))?)?);
    let fixture = Arc::clone(&cx.fixture);
    let split = Arc::new([0, 1, 2].map(|server| {
        route
            .keys_of(server)
            .into_iter()
            .map(|i| fixture.many_keys[i].clone())
            .collect::<Vec<String>>()
    }));
    check_spread(cx, ASYNC_SPLIT, MANY as u64, || {
        let clients = clients.as_mut().ok_or("no clients")?;
        let keys = split
            .each_ref()
            .map(|k| k.iter().map(String::as_str).collect());
        rt.block_on(joined_get_multi(clients, &keys, &fixture, true))
    })?;
    Ok(Case::new(ASYNC_SPLIT, move |budget| {
        let mut lent = clients
            .take()
            .ok_or("the async-memcached clients were lost in an earlier run")?;
        let (fixture, split) = (Arc::clone(&fixture), Arc::clone(&split));
        timed(budget, |deadline| {
            let (returned, result) = rt
                .block_on(rt.spawn(async move {
                    let keys: [Vec<&str>; 3] = split
                        .each_ref()
                        .map(|k| k.iter().map(String::as_str).collect());
                    let result = async {
                        joined_get_multi(&mut lent, &keys, &fixture, true).await?;
                        let mut calls = 1;
                        while Instant::now() < deadline {
                            joined_get_multi(&mut lent, &keys, &fixture, false).await?;
                            calls += 1;
                        }
                        Ok(calls)
                    }
                    .await;
                    (lent, result)
                }))
                .map_err(|error| BenchError::from(format!("task failed: {error}")))?;
            clients = Some(returned);
            result
        })
    }))
}

/// `async-memcached` on W8 (see the module docs): 64 tasks on the two-worker runtime, each
/// with its own three connections, doing `get`s of the keys in turn from its own first key,
/// each on its key's connection; counts gets.
///
/// # Errors
/// When a client cannot connect, or the reads are wrong or miss a server.
pub fn async_concurrent(cx: &Context, route: &Route) -> BenchResult<Case> {
    let rt = Arc::clone(&cx.multi);
    let addrs = servers(cx)?;
    let mut clients = Some(
        (0..CONCURRENCY)
            .map(|_| rt.block_on(async_clients(addrs)))
            .collect::<BenchResult<Vec<_>>>()?,
    );
    let fixture = Arc::clone(&cx.fixture);
    let route = Arc::new(route.clone());
    check_spread(cx, ASYNC_PER_TASK, MANY as u64, || {
        let first = clients
            .as_mut()
            .and_then(|c| c.first_mut())
            .ok_or("no clients")?;
        rt.block_on(async {
            for i in 0..MANY {
                let (key, value) = item(&fixture, i);
                let hit = first[route.server(i)].get(key).await?;
                check_value("get", hit.as_ref().and_then(|v| v.data.as_deref()), value)?;
            }
            Ok(())
        })
    })?;
    Ok(Case::new(ASYNC_PER_TASK, move |budget| {
        let lent = clients
            .take()
            .ok_or("the async-memcached clients were lost in an earlier run")?;
        timed(budget, |deadline| {
            let (returned, done) = rt.block_on(async {
                let tasks: Vec<_> = lent
                    .into_iter()
                    .enumerate()
                    .map(|(task, mut own)| {
                        let (fixture, route) = (Arc::clone(&fixture), Arc::clone(&route));
                        tokio::spawn(async move {
                            let result =
                                async_gets_until(&mut own, &fixture, &route, task, deadline).await;
                            (own, result)
                        })
                    })
                    .collect();
                let mut returned = Vec::with_capacity(CONCURRENCY);
                let mut done: BenchResult<u64> = Ok(0);
                for task in tasks {
                    let (own, result) = task
                        .await
                        .map_err(|error| format!("task failed: {error}"))?;
                    returned.push(own);
                    done = match (done, result) {
                        (Ok(total), Ok(n)) => Ok(total + n),
                        (Err(error), _) | (_, Err(error)) => Err(error),
                    };
                }
                Ok::<_, BenchError>((returned, done))
            })?;
            clients = Some(returned);
            done
        })
    }))
}

/// One W8 task of `async-memcached`: `get`s from key `task % 100` on, each on its key's
/// connection, until the deadline (at least one).
async fn async_gets_until(
    own: &mut [async_memcached::Client],
    fixture: &Fixture,
    route: &Route,
    task: usize,
    deadline: Instant,
) -> BenchResult<u64> {
    let mut i = task % MANY;
    let (key, value) = item(fixture, i);
    let hit = own[route.server(i)].get(key).await?;
    check_value("get", hit.as_ref().and_then(|v| v.data.as_deref()), value)?;
    let mut done = 1;
    while Instant::now() < deadline {
        i = next_key(i);
        let (key, value) = item(fixture, i);
        match own[route.server(i)].get(key).await? {
            Some(hit) if hit.data.as_ref().map(Vec::len) == Some(value.len()) => done += 1,
            _ => return Err("get: miss or wrong length".into()),
        }
    }
    Ok(done)
}
