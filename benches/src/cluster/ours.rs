//! This workspace's client on W7 and W8: one `Client` of the three servers, built as a user
//! would (every setting at its default but the placement, `--protocol` and `--join-gets`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use memcache_core::{Client, Distribution, Protocol};

use super::{check_spread, item, next_key, servers};
use crate::fixture::{check_value, Fixture, MANY};
use crate::harness::{timed, Case};
use crate::workloads::Context;
use crate::{run_task, BenchResult, CONCURRENCY};

/// A client of `servers` with `distribution`.
///
/// # Errors
/// When the builder refuses an address.
pub fn client(
    servers: &[SocketAddr],
    distribution: Distribution,
    protocol: Protocol,
    join_gets: bool,
) -> BenchResult<Client> {
    Ok(Client::builder()
        .servers(servers.iter().map(ToString::to_string))
        .distribution(distribution)
        .protocol(protocol)
        .join_gets(join_gets)
        .build()?)
}

fn cx_client(cx: &Context, distribution: Distribution) -> BenchResult<Client> {
    client(servers(cx)?, distribution, cx.protocol, cx.join_gets)
}

/// W7: `get_many` of the 100 keys, one call at a time, as one task on the one-caller
/// runtime; counts calls. The first call of every run is checked value by value.
///
/// # Errors
/// When the client cannot be built, or its first call is wrong or misses a server.
pub fn get_many(
    cx: &Context,
    distribution: Distribution,
    label: &'static str,
) -> BenchResult<Case> {
    let client = cx_client(cx, distribution)?;
    let rt = Arc::clone(&cx.caller);
    let fixture = Arc::clone(&cx.fixture);
    check_spread(cx, label, MANY as u64, || {
        rt.block_on(check_get_many(&client, &fixture))
    })?;
    Ok(Case::new(label, move |budget| {
        let (client, fixture) = (client.clone(), Arc::clone(&fixture));
        timed(budget, |deadline| {
            run_task(&rt, async move {
                check_get_many(&client, &fixture).await?;
                let keys = || fixture.many_keys.iter().map(String::as_str);
                let mut calls = 1;
                while Instant::now() < deadline {
                    let hits = client.get_many(keys()).await?;
                    if hits.len() != MANY {
                        return Err(format!("get_many: {} hits of {MANY}", hits.len()).into());
                    }
                    calls += 1;
                }
                Ok(calls)
            })
        })
    }))
}

/// One `get_many` of the 100 keys: every key a hit with its own value.
async fn check_get_many(client: &Client, fixture: &Fixture) -> BenchResult<()> {
    let hits = client
        .get_many(fixture.many_keys.iter().map(String::as_str))
        .await?;
    crate::peers::check_many(
        hits.iter().map(|(k, v)| (k.as_bytes(), &v.data[..])),
        fixture,
    )
}

/// W8: 64 tasks share one `Client` (one connection per server) on the two-worker runtime,
/// each doing `get`s of the 100 keys in turn from its own first key; counts gets. Each
/// task's first read is compared with the stored value, every other one must be a hit of
/// the right length.
///
/// # Errors
/// When the client cannot be built, or its reads are wrong or miss a server.
pub fn concurrent(
    cx: &Context,
    distribution: Distribution,
    label: &'static str,
) -> BenchResult<Case> {
    let client = cx_client(cx, distribution)?;
    let rt = Arc::clone(&cx.multi);
    let fixture = Arc::clone(&cx.fixture);
    check_spread(cx, label, MANY as u64, || {
        rt.block_on(async {
            for i in 0..MANY {
                let (key, value) = item(&fixture, i);
                let hit = client.get(key).await?;
                check_value("get", hit.as_ref().map(|v| &v.data[..]), value)?;
            }
            Ok(())
        })
    })?;
    Ok(Case::new(label, move |budget| {
        let (client, fixture) = (client.clone(), Arc::clone(&fixture));
        timed(budget, |deadline| {
            rt.block_on(async move {
                let tasks: Vec<_> = (0..CONCURRENCY)
                    .map(|task| {
                        let (client, fixture) = (client.clone(), Arc::clone(&fixture));
                        tokio::spawn(async move {
                            gets_until(&client, &fixture, task % MANY, deadline).await
                        })
                    })
                    .collect();
                let mut done = 0;
                for task in tasks {
                    done += task.await??;
                }
                Ok(done)
            })
        })
    }))
}

/// `get`s of the keys in turn from the `first`-th until the deadline (at least one).
async fn gets_until(
    client: &Client,
    fixture: &Fixture,
    first: usize,
    deadline: Instant,
) -> BenchResult<u64> {
    let (key, value) = item(fixture, first);
    let hit = client.get(key).await?;
    check_value("get", hit.as_ref().map(|v| &v.data[..]), value)?;
    let mut done = 1;
    let mut i = first;
    while Instant::now() < deadline {
        i = next_key(i);
        let (key, value) = item(fixture, i);
        match client.get(key).await? {
            Some(hit) if hit.data.len() == value.len() => done += 1,
            _ => return Err("get: miss or wrong length".into()),
        }
    }
    Ok(done)
}
