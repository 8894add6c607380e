//! The peer crates, each used the way its users use it.
//!
//! - `memcache` (sync): its `Client` wraps an r2d2 pool. One caller uses it from the calling
//!   thread; W4 shares one `Client` whose pool holds 64 connections between 64 OS threads.
//!   Its default pool checks every connection out with a `version` round trip
//!   (r2d2's `test_on_check_out`); W1 measures that default and, as everywhere else, a pool
//!   built with the check off, the crate's best configuration.
//! - `async-memcached`: one `Client` is one connection used through `&mut self`; W4 gives each
//!   of the 64 tasks its own `Client` (64 connections).
//!
//! Neither has a fire-and-forget `set`: `memcache`'s `Client` never sends `noreply`, and
//! `async-memcached`'s quiet `ms` still waits for the `mn` that follows it. They have no row
//! in the noreply workloads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use async_memcached::AsciiProtocol;
use tokio::runtime::Runtime;

use crate::fixture::{check_value, Fixture, MANY};
use crate::harness::{timed, Case};
use crate::{BenchError, BenchResult, CONCURRENCY};

/// Table label of `memcache` with the best pool settings.
pub const MEMCACHE: &str = "memcache";
/// Table label of `memcache` as `Client::connect` builds it.
pub const MEMCACHE_DEFAULT: &str = "memcache (default pool)";
/// Table label of `async-memcached`.
pub const ASYNC_MEMCACHED: &str = "async-memcached";
/// Its W4 row on a current-thread runtime, shown for scale (not in the targets).
pub const ASYNC_ONE_THREAD: &str = "async-memcached, current-thread runtime";

/// How `memcache` addresses the server. Without `protocol=ascii` it speaks the binary
/// protocol (deprecated by memcached), which measured slower here on every workload (W1
/// 22k vs 40k ops/s, W3 30k vs 1.0M keys/s): the text protocol is its best, and is what this
/// workspace and the raw client speak.
pub fn memcache_url(addr: SocketAddr) -> String {
    format!("memcache://{addr}?protocol=ascii")
}

/// A `memcache` client. `pool_size` connections with the checkout test off, or, when
/// `pool_size` is `None`, exactly what `memcache::Client::connect` builds (one connection,
/// a `version` round trip on every checkout).
///
/// # Errors
/// When the URL is refused or the pool cannot connect.
pub fn memcache_client(addr: SocketAddr, pool_size: Option<u32>) -> BenchResult<memcache::Client> {
    let url = memcache_url(addr);
    let Some(size) = pool_size else {
        return Ok(memcache::Client::connect(url)?);
    };
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .test_on_check_out(false)
        .build(memcache::ConnectionManager::new(memcache::Url::parse(
            &url,
        )?))?;
    Ok(memcache::Client::with_pool(pool)?)
}

/// `memcache` on W1 and W5: `get` from the calling thread, counting operations or, when
/// `large` is set, value bytes. `default_pool` selects the default `Client::connect` client.
///
/// # Errors
/// When the client cannot connect.
pub fn memcache_get(
    addr: SocketAddr,
    fixture: &Arc<Fixture>,
    large: bool,
    default_pool: bool,
) -> BenchResult<Case> {
    let client = memcache_client(addr, if default_pool { None } else { Some(1) })?;
    let fixture = Arc::clone(fixture);
    let label = if default_pool {
        MEMCACHE_DEFAULT
    } else {
        MEMCACHE
    };
    Ok(Case::new(label, move |budget| {
        let (key, expected) = if large {
            (&fixture.large_key, &fixture.large_value)
        } else {
            (&fixture.small_key, &fixture.small_value)
        };
        timed(budget, |deadline| {
            let first: Option<Vec<u8>> = client.get(key)?;
            check_value("get", first.as_deref(), expected)?;
            let unit = if large { expected.len() as u64 } else { 1 };
            let mut done = unit;
            while Instant::now() < deadline {
                match client.get::<Vec<u8>>(key)? {
                    Some(value) if value.len() == expected.len() => done += unit,
                    _ => return Err("get: miss or wrong length".into()),
                }
            }
            Ok(done)
        })
    }))
}

/// `memcache` on W2: acknowledged `set` from the calling thread.
///
/// # Errors
/// When the client cannot connect.
pub fn memcache_set(addr: SocketAddr, fixture: &Arc<Fixture>) -> BenchResult<Case> {
    let client = memcache_client(addr, Some(1))?;
    let fixture = Arc::clone(fixture);
    Ok(Case::new(MEMCACHE, move |budget| {
        let (key, value) = (fixture.set_key.as_str(), fixture.set_value.as_slice());
        timed(budget, |deadline| {
            let mut done = 0;
            loop {
                client.set(key, value, 0)?;
                done += 1;
                if Instant::now() >= deadline {
                    break;
                }
            }
            check_value("set", client.get::<Vec<u8>>(key)?.as_deref(), value)?;
            Ok(done)
        })
    }))
}

/// `memcache` on W3: its multi-key `gets` of the 100 keys; counts keys.
///
/// # Errors
/// When the client cannot connect.
pub fn memcache_get_many(addr: SocketAddr, fixture: &Arc<Fixture>) -> BenchResult<Case> {
    let client = memcache_client(addr, Some(1))?;
    let fixture = Arc::clone(fixture);
    Ok(Case::new(MEMCACHE, move |budget| {
        let keys: Vec<&str> = fixture.many_keys.iter().map(String::as_str).collect();
        timed(budget, |deadline| {
            let first: std::collections::HashMap<String, Vec<u8>> = client.gets(&keys)?;
            check_many(
                first.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
                &fixture,
            )?;
            let mut done = MANY as u64;
            while Instant::now() < deadline {
                let hits = client.gets::<Vec<u8>>(&keys)?;
                if hits.len() != MANY {
                    return Err(format!("gets: {} hits of {MANY}", hits.len()).into());
                }
                done += MANY as u64;
            }
            Ok(done)
        })
    }))
}

/// `memcache` on W4: 64 OS threads share one `Client` whose pool holds 64 connections.
///
/// # Errors
/// When the client cannot connect.
pub fn memcache_concurrent(addr: SocketAddr, fixture: &Arc<Fixture>) -> BenchResult<Case> {
    let client = memcache_client(addr, Some(CONCURRENCY as u32))?;
    let fixture = Arc::clone(fixture);
    Ok(Case::new(MEMCACHE, move |budget| {
        timed(budget, |deadline| {
            thread::scope(|scope| {
                let workers: Vec<_> = (0..CONCURRENCY)
                    .map(|_| {
                        scope.spawn(|| -> BenchResult<u64> {
                            let key = fixture.small_key.as_str();
                            let first: Option<Vec<u8>> = client.get(key)?;
                            check_value("get", first.as_deref(), &fixture.small_value)?;
                            let mut done = 1;
                            while Instant::now() < deadline {
                                if client.get::<Vec<u8>>(key)?.is_none() {
                                    return Err("get: miss".into());
                                }
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
                        .map_err(|_| "a memcache worker thread panicked")??;
                }
                Ok(done)
            })
        })
    }))
}

/// An `async-memcached` connection on `rt`.
fn async_client(rt: &Runtime, addr: SocketAddr) -> BenchResult<async_memcached::Client> {
    Ok(rt.block_on(async_memcached::Client::new(format!("tcp://{addr}")))?)
}

/// A case that lends its single `async-memcached` client to one task per run and takes it
/// back when the task ends.
fn async_case<F, Fut>(
    rt: &Arc<Runtime>,
    addr: SocketAddr,
    fixture: &Arc<Fixture>,
    body: F,
) -> BenchResult<Case>
where
    F: Fn(async_memcached::Client, Arc<Fixture>, Instant) -> Fut + 'static,
    Fut: Future<Output = (async_memcached::Client, BenchResult<u64>)> + Send + 'static,
{
    let rt = Arc::clone(rt);
    let mut slot = Some(async_client(&rt, addr)?);
    let fixture = Arc::clone(fixture);
    Ok(Case::new(ASYNC_MEMCACHED, move |budget| {
        let client = slot
            .take()
            .ok_or("the async-memcached client was lost in an earlier run")?;
        timed(budget, |deadline| {
            let (client, result) = rt
                .block_on(rt.spawn(body(client, Arc::clone(&fixture), deadline)))
                .map_err(|error| BenchError::from(format!("task failed: {error}")))?;
            slot = Some(client);
            result
        })
    }))
}

/// `async-memcached` on W1 and W5: `get` one at a time, counting operations or, when `large`
/// is set, value bytes.
///
/// # Errors
/// When the client cannot connect.
pub fn async_get(
    rt: &Arc<Runtime>,
    addr: SocketAddr,
    fixture: &Arc<Fixture>,
    large: bool,
) -> BenchResult<Case> {
    async_case(
        rt,
        addr,
        fixture,
        move |mut client, fixture, deadline| async move {
            let result = async {
                let (key, expected) = if large {
                    (&fixture.large_key, &fixture.large_value)
                } else {
                    (&fixture.small_key, &fixture.small_value)
                };
                let first = client.get(key).await?;
                check_value(
                    "get",
                    first.as_ref().and_then(|v| v.data.as_deref()),
                    expected,
                )?;
                let unit = if large { expected.len() as u64 } else { 1 };
                let mut done = unit;
                while Instant::now() < deadline {
                    match client.get(key).await? {
                        Some(value)
                            if value.data.as_ref().map(Vec::len) == Some(expected.len()) =>
                        {
                            done += unit
                        }
                        _ => return Err("get: miss or wrong length".into()),
                    }
                }
                Ok(done)
            }
            .await;
            (client, result)
        },
    )
}

/// `async-memcached` on W2: acknowledged `set` one at a time.
///
/// # Errors
/// When the client cannot connect.
pub fn async_set(rt: &Arc<Runtime>, addr: SocketAddr, fixture: &Arc<Fixture>) -> BenchResult<Case> {
    async_case(
        rt,
        addr,
        fixture,
        |mut client, fixture, deadline| async move {
            let result = async {
                let (key, value) = (fixture.set_key.as_str(), fixture.set_value.as_slice());
                let mut done = 0;
                loop {
                    client.set(key, value, None, None).await?;
                    done += 1;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let stored = client.get(key).await?;
                check_value(
                    "set",
                    stored.as_ref().and_then(|v| v.data.as_deref()),
                    value,
                )?;
                Ok(done)
            }
            .await;
            (client, result)
        },
    )
}

/// `async-memcached` on W3: its multi-key `get_multi` of the 100 keys; counts keys.
///
/// # Errors
/// When the client cannot connect.
pub fn async_get_many(
    rt: &Arc<Runtime>,
    addr: SocketAddr,
    fixture: &Arc<Fixture>,
) -> BenchResult<Case> {
    async_case(
        rt,
        addr,
        fixture,
        |mut client, fixture, deadline| async move {
            let result = async {
                let first = client.get_multi(&fixture.many_keys).await?;
                let pairs = first
                    .iter()
                    .map(|v| (v.key.as_slice(), v.data.as_deref().unwrap_or_default()));
                check_many(pairs, &fixture)?;
                let mut done = MANY as u64;
                while Instant::now() < deadline {
                    let hits = client.get_multi(&fixture.many_keys).await?;
                    if hits.len() != MANY {
                        return Err(format!("get_multi: {} hits of {MANY}", hits.len()).into());
                    }
                    done += MANY as u64;
                }
                Ok(done)
            }
            .await;
            (client, result)
        },
    )
}

/// `async-memcached` on W4: 64 tasks on `rt`, each with its own `Client`; the row is
/// labelled `label`.
///
/// # Errors
/// When a client cannot connect.
pub fn async_concurrent(
    label: &'static str,
    rt: &Arc<Runtime>,
    addr: SocketAddr,
    fixture: &Arc<Fixture>,
) -> BenchResult<Case> {
    let rt = Arc::clone(rt);
    let mut clients = Some(
        (0..CONCURRENCY)
            .map(|_| async_client(&rt, addr))
            .collect::<BenchResult<Vec<_>>>()?,
    );
    let fixture = Arc::clone(fixture);
    Ok(Case::new(label, move |budget| {
        let lent = clients
            .take()
            .ok_or("the async-memcached clients were lost in an earlier run")?;
        timed(budget, |deadline| {
            let (returned, done) = rt.block_on(async {
                let tasks: Vec<_> = lent
                    .into_iter()
                    .map(|mut client| {
                        let fixture = Arc::clone(&fixture);
                        tokio::spawn(async move {
                            let result = async {
                                let key = fixture.small_key.as_str();
                                let first = client.get(key).await?;
                                check_value(
                                    "get",
                                    first.as_ref().and_then(|v| v.data.as_deref()),
                                    &fixture.small_value,
                                )?;
                                let mut done = 1;
                                while Instant::now() < deadline {
                                    if client.get(key).await?.is_none() {
                                        return Err("get: miss".into());
                                    }
                                    done += 1;
                                }
                                Ok(done)
                            }
                            .await;
                            (client, result)
                        })
                    })
                    .collect();
                let mut returned = Vec::with_capacity(CONCURRENCY);
                let mut done: BenchResult<u64> = Ok(0);
                for task in tasks {
                    let (client, result) = task
                        .await
                        .map_err(|error| format!("task failed: {error}"))?;
                    returned.push(client);
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

/// Checks a multi-get's hits: all 100 keys, each with its own value.
pub fn check_many<'a>(
    hits: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    fixture: &Fixture,
) -> BenchResult<()> {
    let mut count = 0;
    for (key, value) in hits {
        let expected = fixture
            .many_value(key)
            .ok_or("multi-get: a key that was not asked for")?;
        check_value("multi-get", Some(value), expected)?;
        count += 1;
    }
    if count == MANY {
        Ok(())
    } else {
        Err(format!("multi-get: {count} hits of {MANY}").into())
    }
}
