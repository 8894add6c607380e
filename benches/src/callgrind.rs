//! The callgrind mode: N gets of the 100-byte value, one in flight, inside one function whose
//! name callgrind can toggle collection on, so that the instruction count covers the client's
//! work for those gets and nothing else (memcached runs in another process and is not
//! counted). The async clients run on a current-thread runtime, so that their driver tasks
//! run on the measured thread, inside the measured function.

use std::future::IntoFuture;
use std::sync::Arc;

use async_memcached::AsciiProtocol;
use memcache_core::Protocol;
use tokio::runtime::Runtime;

use crate::fixture::{check_value, Fixture};
use crate::raw::{Exchange, RawConnection, RawTokioConnection};
use crate::server::Memcached;
use crate::workloads::Workload;
use crate::{cluster, current_thread_runtime, ours, peers, BenchResult};

/// The client a callgrind run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `memcache_core::Client` (W7: with rendezvous placement, its default).
    Ours,
    /// `memcache_core::Client` with ketama placement (W7 only).
    OursKetama,
    /// The raw-socket client, classic `get`.
    Raw,
    /// The raw-socket client, meta `mg <key> v`.
    RawMeta,
    /// The raw-socket client on a tokio socket (current-thread runtime), classic `get`.
    RawTokio,
    /// `memcache` (pool without the checkout test).
    Memcache,
    /// `async-memcached`.
    AsyncMemcached,
}

impl Subject {
    /// Parses `ours`, `ours-ketama`, `raw`, `raw-mg`, `raw-tokio`, `memcache` or
    /// `async-memcached`.
    ///
    /// # Errors
    /// For any other name.
    pub fn parse(text: &str) -> BenchResult<Self> {
        Ok(match text {
            "ours" => Subject::Ours,
            "ours-ketama" => Subject::OursKetama,
            "raw" => Subject::Raw,
            "raw-mg" => Subject::RawMeta,
            "raw-tokio" => Subject::RawTokio,
            "memcache" => Subject::Memcache,
            "async-memcached" => Subject::AsyncMemcached,
            _ => {
                return Err(format!(
                    "unknown client {text:?} \
                 (ours, ours-ketama, raw, raw-mg, raw-tokio, memcache, async-memcached)"
                )
                .into())
            }
        })
    }
}

/// A connected client, ready for gets.
enum Prepared {
    Ours(Arc<Runtime>, memcache_core::Client),
    Raw(RawConnection, Exchange),
    RawTokio(Arc<Runtime>, RawTokioConnection, Exchange),
    Memcache(memcache::Client),
    AsyncMemcached(Arc<Runtime>, async_memcached::Client),
}

/// Runs the callgrind mode: connects, verifies and warms up with 1,000 gets, then does `n`
/// gets inside [`callgrind_measured_gets`]. W7 has a mode of its own, on three servers
/// (see [`crate::cluster::callgrind`]).
///
/// # Errors
/// For a workload other than W1 and W7, on connection errors and on a wrong value.
pub fn run(
    server: &Memcached,
    fixture: &Arc<Fixture>,
    protocol: Protocol,
    workload: Workload,
    subject: Subject,
    n: u64,
) -> BenchResult<()> {
    if workload == Workload::W7 {
        return cluster::callgrind::run(fixture, protocol, subject, n);
    }
    if workload != Workload::W1 {
        return Err("the callgrind mode measures W1 (get 100 B, one in flight) and W7 only".into());
    }
    let addr = server.addr();
    let mut prepared = match subject {
        Subject::OursKetama => return Err("ours-ketama is a client of W7's callgrind mode".into()),
        Subject::Ours => Prepared::Ours(
            current_thread_runtime()?,
            ours::client(addr, protocol, false)?,
        ),
        Subject::Raw => Prepared::Raw(
            RawConnection::connect(addr)?,
            Exchange::get(&fixture.small_key, &fixture.small_value),
        ),
        Subject::RawMeta => Prepared::Raw(
            RawConnection::connect(addr)?,
            Exchange::meta_get(&fixture.small_key, &fixture.small_value),
        ),
        Subject::RawTokio => {
            let rt = current_thread_runtime()?;
            let connection = rt.block_on(RawTokioConnection::connect(addr))?;
            Prepared::RawTokio(
                rt,
                connection,
                Exchange::get(&fixture.small_key, &fixture.small_value),
            )
        }
        Subject::Memcache => Prepared::Memcache(peers::memcache_client(addr, Some(1))?),
        Subject::AsyncMemcached => {
            let rt = current_thread_runtime()?;
            let client = rt.block_on(async_memcached::Client::new(format!("tcp://{addr}")))?;
            Prepared::AsyncMemcached(rt, client)
        }
    };
    verify(&mut prepared, fixture)?;
    gets(&mut prepared, fixture, 1_000)?;
    callgrind_measured_gets(&mut prepared, fixture, n)?;
    eprintln!(
        "callgrind mode: {subject:?} did {n} gets one in flight inside \
         memcache_benches::callgrind::callgrind_measured_gets"
    );
    Ok(())
}

/// The measured function: `n` gets. Callgrind toggles collection on its entry and exit
/// (`--toggle-collect='*callgrind_measured_gets*'`).
#[inline(never)]
fn callgrind_measured_gets(prepared: &mut Prepared, fixture: &Fixture, n: u64) -> BenchResult<()> {
    gets(prepared, fixture, n)
}

/// One get, its value checked against the stored one.
fn verify(prepared: &mut Prepared, fixture: &Fixture) -> BenchResult<()> {
    let key = fixture.small_key.as_str();
    let expected = fixture.small_value.as_slice();
    match prepared {
        Prepared::Ours(rt, client) => {
            let value = rt.block_on(client.get(key).into_future())?;
            check_value("get", value.as_ref().map(|v| &v.data[..]), expected)
        }
        Prepared::Raw(connection, exchange) => connection.exchange(exchange, true),
        Prepared::RawTokio(rt, connection, exchange) => {
            rt.block_on(connection.exchange(exchange, true))
        }
        Prepared::Memcache(client) => {
            check_value("get", client.get::<Vec<u8>>(key)?.as_deref(), expected)
        }
        Prepared::AsyncMemcached(rt, client) => {
            let value = rt.block_on(client.get(key))?;
            check_value(
                "get",
                value.as_ref().and_then(|v| v.data.as_deref()),
                expected,
            )
        }
    }
}

/// `n` gets, each checked to be a hit.
fn gets(prepared: &mut Prepared, fixture: &Fixture, n: u64) -> BenchResult<()> {
    let key = fixture.small_key.as_str();
    let miss = || crate::BenchError::from("get: miss");
    match prepared {
        Prepared::Ours(rt, client) => rt.block_on(async {
            for _ in 0..n {
                client.get(key).await?.ok_or_else(miss)?;
            }
            Ok(())
        }),
        Prepared::Raw(connection, exchange) => {
            for _ in 0..n {
                connection.exchange(exchange, false)?;
            }
            Ok(())
        }
        Prepared::RawTokio(rt, connection, exchange) => rt.block_on(async {
            for _ in 0..n {
                connection.exchange(exchange, false).await?;
            }
            Ok(())
        }),
        Prepared::Memcache(client) => {
            for _ in 0..n {
                client.get::<Vec<u8>>(key)?.ok_or_else(miss)?;
            }
            Ok(())
        }
        Prepared::AsyncMemcached(rt, client) => rt.block_on(async {
            for _ in 0..n {
                client.get(key).await?.ok_or_else(miss)?;
            }
            Ok(())
        }),
    }
}
