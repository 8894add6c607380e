//! This workspace's client, `memcache_core::Client`, on every workload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memcache_core::{Client, Protocol};
use tokio::runtime::Runtime;

use crate::fixture::{check_value, Fixture, MANY};
use crate::harness::{timed, Case};
use crate::workloads::Context;
use crate::{run_task, BenchResult, CONCURRENCY};

/// The label of this client in the table.
pub const LABEL: &str = "memcache-core";
/// Its W4/W4s rows on a current-thread runtime, shown for scale (not in the targets).
pub const LABEL_ONE_THREAD: &str = "memcache-core, current-thread runtime";
/// Its W1/W4 rows over TLS (`--tls`), against the same memcached's TLS listener.
#[cfg(feature = "tls")]
pub const LABEL_TLS: &str = "memcache-core over TLS";

/// A client with every setting at its default but the protocol (`--protocol`, default
/// `auto`, the client's own default) and `join_gets` (`--join-gets`, default off, the
/// client's own default), as a user would build it.
///
/// # Errors
/// When the address is refused by the builder.
pub fn client(addr: SocketAddr, protocol: Protocol, join_gets: bool) -> BenchResult<Client> {
    Ok(Client::builder()
        .server(addr.to_string())
        .protocol(protocol)
        .join_gets(join_gets)
        .build()?)
}

/// The shared state of one case: the client, its runtime and the data set.
#[derive(Clone)]
struct Setup {
    rt: Arc<Runtime>,
    client: Client,
    fixture: Arc<Fixture>,
}

impl Setup {
    fn new(rt: &Arc<Runtime>, cx: &Context) -> BenchResult<Self> {
        Ok(Setup {
            rt: Arc::clone(rt),
            client: client(cx.addr, cx.protocol, cx.join_gets)?,
            fixture: Arc::clone(&cx.fixture),
        })
    }

    /// The same client, to the TLS listener (`--tls`).
    #[cfg(feature = "tls")]
    fn over_tls(rt: &Arc<Runtime>, cx: &Context) -> BenchResult<Self> {
        let (addr, tls) = cx.tls.clone().ok_or("--tls was not given")?;
        Ok(Setup {
            rt: Arc::clone(rt),
            client: Client::builder()
                .server(addr.to_string())
                .protocol(cx.protocol)
                .join_gets(cx.join_gets)
                .tls(tls)
                .build()?,
            fixture: Arc::clone(&cx.fixture),
        })
    }

    /// A case that runs `body(client, fixture, deadline)` as one task on the runtime.
    fn case<F, Fut>(self, body: F) -> Case
    where
        F: Fn(Client, Arc<Fixture>, Instant) -> Fut + 'static,
        Fut: std::future::Future<Output = BenchResult<u64>> + Send + 'static,
    {
        Case::new(LABEL, move |budget: Duration| {
            timed(budget, |deadline| {
                run_task(
                    &self.rt,
                    body(self.client.clone(), Arc::clone(&self.fixture), deadline),
                )
            })
        })
    }
}

/// W1 and W5: `get` one at a time, of the 100-byte value (counts operations) or, when
/// `large` is set, of the 100 KiB value (counts value bytes).
///
/// # Errors
/// When the client cannot be built.
pub fn get(rt: &Arc<Runtime>, cx: &Context, large: bool) -> BenchResult<Case> {
    get_with(Setup::new(rt, cx)?, large)
}

/// W1 over TLS (`--tls`): as [`get`], to the memcached's TLS listener.
///
/// # Errors
/// When the client cannot be built.
#[cfg(feature = "tls")]
pub fn get_over_tls(rt: &Arc<Runtime>, cx: &Context) -> BenchResult<Case> {
    let mut case = get_with(Setup::over_tls(rt, cx)?, false)?;
    case.client = LABEL_TLS.to_owned();
    Ok(case)
}

fn get_with(setup: Setup, large: bool) -> BenchResult<Case> {
    Ok(setup.case(move |client, fixture, deadline| async move {
        let (key, expected) = if large {
            (&fixture.large_key, &fixture.large_value)
        } else {
            (&fixture.small_key, &fixture.small_value)
        };
        let first = client.get(key.as_str()).await?;
        check_value("get", first.as_ref().map(|v| &v.data[..]), expected)?;
        let unit = if large { expected.len() as u64 } else { 1 };
        let mut done = unit;
        while Instant::now() < deadline {
            match client.get(key.as_str()).await? {
                Some(value) if value.data.len() == expected.len() => done += unit,
                _ => return Err("get: miss or wrong length".into()),
            }
        }
        Ok(done)
    }))
}

/// W2: `set` one at a time, acknowledged (`.noreply(false)`) or with noreply, one caller
/// awaiting each call; then one acknowledged `get` of the key (verified), so that every
/// set is counted once the server has done it.
///
/// # Errors
/// When the client cannot be built.
pub fn set(rt: &Arc<Runtime>, cx: &Context, noreply: bool) -> BenchResult<Case> {
    Ok(
        Setup::new(rt, cx)?.case(move |client, fixture, deadline| async move {
            let done = sets_until(&client, &fixture, deadline, noreply).await?;
            check_sets(&client, &fixture).await?;
            Ok(done)
        }),
    )
}

/// W3: `get_many` of the 100 keys, one call at a time; counts keys.
///
/// # Errors
/// When the client cannot be built.
pub fn get_many(rt: &Arc<Runtime>, cx: &Context) -> BenchResult<Case> {
    Ok(
        Setup::new(rt, cx)?.case(|client, fixture, deadline| async move {
            let keys = || fixture.many_keys.iter().map(String::as_str);
            let first = client.get_many(keys()).await?;
            if first.len() != MANY {
                return Err(format!("get_many: {} hits of {MANY}", first.len()).into());
            }
            for (key, value) in &first {
                let expected = fixture
                    .many_value(key.as_bytes())
                    .ok_or("get_many: unknown key")?;
                check_value("get_many", Some(&value.data[..]), expected)?;
            }
            let mut done = MANY as u64;
            while Instant::now() < deadline {
                let hits = client.get_many(keys()).await?;
                if hits.len() != MANY {
                    return Err(format!("get_many: {} hits of {MANY}", hits.len()).into());
                }
                done += MANY as u64;
            }
            Ok(done)
        }),
    )
}

/// W4 and W4s: 64 tasks share one `Client` on `rt` (the two-worker runtime; or, for the
/// rows shown for scale, a current-thread one), each doing `get`s (or noreply `set`s when
/// `sets` is set) until the deadline. After noreply sets, one acknowledged `get` (verified)
/// closes the measurement. The row is labelled `label`.
///
/// # Errors
/// When the client cannot be built.
pub fn concurrent(
    label: &'static str,
    rt: &Arc<Runtime>,
    cx: &Context,
    sets: bool,
) -> BenchResult<Case> {
    concurrent_with(label, Setup::new(rt, cx)?, sets)
}

/// W4 over TLS (`--tls`): as [`concurrent`] with gets, to the memcached's TLS listener.
///
/// # Errors
/// When the client cannot be built.
#[cfg(feature = "tls")]
pub fn concurrent_over_tls(rt: &Arc<Runtime>, cx: &Context) -> BenchResult<Case> {
    concurrent_with(LABEL_TLS, Setup::over_tls(rt, cx)?, false)
}

fn concurrent_with(label: &'static str, setup: Setup, sets: bool) -> BenchResult<Case> {
    Ok(Case::new(label, move |budget| {
        let Setup {
            rt,
            client,
            fixture,
        } = setup.clone();
        timed(budget, |deadline| {
            rt.block_on(async move {
                let mut tasks = Vec::with_capacity(CONCURRENCY);
                for _ in 0..CONCURRENCY {
                    let (client, fixture) = (client.clone(), Arc::clone(&fixture));
                    tasks.push(tokio::spawn(async move {
                        if sets {
                            sets_until(&client, &fixture, deadline, true).await
                        } else {
                            gets_until(&client, &fixture, deadline).await
                        }
                    }));
                }
                let mut done = 0;
                for task in tasks {
                    done += task.await??;
                }
                if sets {
                    check_sets(&client, &fixture).await?;
                }
                Ok(done)
            })
        })
    }))
}

/// Fails when a noreply write was reported failed (meta quiet mode reports them; classic
/// noreply cannot, and counts nothing).
fn check_noreply_errors(client: &Client) -> BenchResult<()> {
    match client.noreply_errors() {
        0 => Ok(()),
        n => Err(format!("{n} noreply writes failed").into()),
    }
}

async fn gets_until(client: &Client, fixture: &Fixture, deadline: Instant) -> BenchResult<u64> {
    let key = fixture.small_key.as_str();
    let first = client.get(key).await?;
    check_value(
        "get",
        first.as_ref().map(|v| &v.data[..]),
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

/// `set`s of the key until the deadline (at least one), acknowledged or noreply.
async fn sets_until(
    client: &Client,
    fixture: &Fixture,
    deadline: Instant,
    noreply: bool,
) -> BenchResult<u64> {
    let (key, value) = (fixture.set_key.as_str(), fixture.set_value.as_slice());
    let mut done = 0;
    loop {
        if !client.set(key, value).noreply(noreply).await? && !noreply {
            return Err("set: NOT_STORED".into());
        }
        done += 1;
        if Instant::now() >= deadline {
            return Ok(done);
        }
    }
}

/// After sets: the key reads back as the value written, and no noreply write was reported
/// failed.
async fn check_sets(client: &Client, fixture: &Fixture) -> BenchResult<()> {
    let (key, value) = (fixture.set_key.as_str(), &fixture.set_value);
    let stored = client.get(key).await?;
    check_value("set", stored.as_ref().map(|v| &v.data[..]), value)?;
    check_noreply_errors(client)
}
