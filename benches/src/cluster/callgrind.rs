//! The callgrind mode of W7: N `get_many` calls of the 100 keys over three servers, one at
//! a time, inside one function whose name callgrind toggles collection on
//! (`callgrind_measured_gets_many`, matched by the same `*callgrind_measured_gets*` as
//! W1's). The async client runs on a current-thread runtime, so its connections' work is
//! done on the measured thread and counted; the servers are other processes.

use std::future::IntoFuture;
use std::sync::Arc;

use memcache_core::{Client, Distribution, Protocol};
use tokio::runtime::Runtime;

use super::ours::client;
use super::raw::{connect_all, get_many_once, split_requests};
use super::{Route, SERVERS};
use crate::callgrind::Subject;
use crate::fixture::{Fixture, MANY};
use crate::peers::check_many;
use crate::raw::{Exchange, RawConnection};
use crate::server::Memcached;
use crate::{current_thread_runtime, BenchResult};

/// A client of the three servers, ready for calls.
enum Prepared {
    Ours(Arc<Runtime>, Client),
    Raw(Vec<RawConnection>, Vec<Exchange>),
}

/// Starts the three servers, stores the keys, connects `subject` (`ours` with rendezvous,
/// `ours-ketama`, or `raw`), checks one call, warms up with 200 and makes `n` inside
/// [`callgrind_measured_gets_many`].
///
/// # Errors
/// For another client, on connection errors and on wrong answers.
pub fn run(
    fixture: &Arc<Fixture>,
    protocol: Protocol,
    subject: Subject,
    n: u64,
) -> BenchResult<()> {
    let servers = (0..SERVERS)
        .map(|_| Memcached::start())
        .collect::<BenchResult<Vec<_>>>()?;
    let addrs: Vec<_> = servers.iter().map(Memcached::addr).collect();
    for addr in &addrs {
        fixture.store(*addr)?;
    }
    let mut prepared = match subject {
        Subject::Ours | Subject::OursKetama => {
            let distribution = if subject == Subject::Ours {
                Distribution::Rendezvous
            } else {
                Distribution::Ketama
            };
            let client = client(&addrs, distribution, protocol, false)?;
            let rt = current_thread_runtime()?;
            let keys = fixture.many_keys.iter().map(String::as_str);
            let hits = rt.block_on(client.get_many(keys).into_future())?;
            check_many(
                hits.iter().map(|(k, v)| (k.as_bytes(), &v.data[..])),
                fixture,
            )?;
            Prepared::Ours(rt, client)
        }
        Subject::Raw => {
            let route = Route::rendezvous_of(&addrs, fixture)?;
            let mut connections = connect_all(&addrs)?;
            let requests = split_requests(fixture, &route);
            get_many_once(&mut connections, &requests, true)?;
            Prepared::Raw(connections, requests)
        }
        _ => return Err("the callgrind mode of W7 measures ours, ours-ketama or raw".into()),
    };
    calls(&mut prepared, fixture, 200)?;
    callgrind_measured_gets_many(&mut prepared, fixture, n)?;
    eprintln!(
        "callgrind mode: {subject:?} did {n} get_many calls of {MANY} keys over {SERVERS} \
         servers inside memcache_benches::cluster::callgrind::callgrind_measured_gets_many"
    );
    Ok(())
}

/// The measured function: `n` calls.
#[inline(never)]
fn callgrind_measured_gets_many(
    prepared: &mut Prepared,
    fixture: &Fixture,
    n: u64,
) -> BenchResult<()> {
    calls(prepared, fixture, n)
}

/// `n` calls, each checked to return every key.
fn calls(prepared: &mut Prepared, fixture: &Fixture, n: u64) -> BenchResult<()> {
    match prepared {
        Prepared::Ours(rt, client) => rt.block_on(async {
            for _ in 0..n {
                let hits = client
                    .get_many(fixture.many_keys.iter().map(String::as_str))
                    .await?;
                if hits.len() != MANY {
                    return Err(format!("get_many: {} hits of {MANY}", hits.len()).into());
                }
            }
            Ok(())
        }),
        Prepared::Raw(connections, requests) => {
            for _ in 0..n {
                get_many_once(connections, requests, false)?;
            }
            Ok(())
        }
    }
}
