//! The benchmark of issues 4 and 10: `memcache-core` beside the peer crates (`memcache`,
//! `async-memcached`), the Python peers of several servers (pylibmc, pymemcache) and a
//! raw-socket client, against memcacheds it starts itself (`-t 1`, loopback): one for
//! W1-W6, three for W7 and W8.
//!
//! ```text
//! cargo run --release -p memcache-benches                  # every workload, about 2.5 min
//! cargo run --release -p memcache-benches -- --quick       # a few seconds: a smoke test
//! cargo run --release -p memcache-benches -- --only W1,W4  # some workloads
//! cargo run --release -p memcache-benches -- --callgrind W1 --client ours   # see BENCHMARKS.md
//! ```
//!
//! Each figure is the median of several rounds; the rounds of one workload take turns
//! between the clients. The ratio column compares each client with the raw-socket figure
//! of the same run that the workload's target names, and with the best peer. See
//! `BENCHMARKS.md`.

mod callgrind;
mod cluster;
mod fixture;
mod harness;
mod ours;
mod peers;
mod raw;
mod report;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod typed;
mod workloads;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use memcache_core::Protocol;
use tokio::runtime::Runtime;

use crate::fixture::Fixture;
use crate::server::Memcached;
use crate::workloads::Workload;

/// Any failure of the benchmark: it reports and stops.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// The result of every fallible step.
pub type BenchResult<T> = Result<T, BenchError>;

/// Concurrent callers in W4, W4s and W8.
pub const CONCURRENCY: usize = 64;

/// Which runtime one-caller workloads (W1, W2, W3, W5, W6) use for the async clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// A multi-thread runtime with two workers, as `#[tokio::main]` gives on this machine.
    Multi,
    /// A current-thread runtime.
    Current,
}

/// The command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds per workload; the median is reported.
    pub rounds: usize,
    /// Duration of one round of one client.
    pub round: Duration,
    /// Warm-up run of each client before the rounds.
    pub warmup: Duration,
    /// The workloads to run.
    pub only: Vec<Workload>,
    /// Runtime for the one-caller workloads.
    pub runtime: RuntimeKind,
    /// The protocol `memcache-core` is built with.
    pub protocol: Protocol,
    /// `memcache-core` is built with `join_gets(true)`.
    pub join_gets: bool,
    /// W1 and W4 also over TLS (`--tls`, feature `tls`).
    pub tls: bool,
    /// `Some((workload, client, n))`: the callgrind mode instead of the table.
    pub callgrind: Option<(Workload, callgrind::Subject, u64)>,
}

const USAGE: &str = "\
usage: memcache-benches [--quick] [--only W1,W2,W3,W4,W4s,W5,W6,W7,W8] [--rounds N] [--round-ms MS]
                        [--runtime multi|current] [--protocol auto|classic|meta] [--join-gets]
                        [--tls]
       memcache-benches --callgrind W1 --client ours|raw|raw-mg|raw-tokio|memcache|async-memcached
                        [--n N]
       memcache-benches --callgrind W7 --client ours|ours-ketama|raw [--n N]

  --quick       1 round of 150 ms per client: a smoke test of a few seconds
  --only        run only these workloads (W2 covers acknowledged and noreply sets; W7 and
                W8 run on three more memcacheds, W7 with the Python peers in /usr/bin/python3)
  --rounds      rounds per workload, median reported (default 9)
  --round-ms    duration of one round of one client (default 300)
  --runtime     runtime of the async clients in the one-caller workloads (default multi:
                two workers; W4/W4s/W8 always use it)
  --protocol    the protocol memcache-core is built with (default auto: its own default,
                meta on memcached 1.6)
  --join-gets   memcache-core is built with join_gets(true): classic single-key gets
                queued together share a multi-key line (with --protocol classic)
  --tls         W1 and W4 also over TLS, to a TLS listener of the same memcached (-Z, a
                certificate made at start); needs the feature: --features tls
  --callgrind   N gets one in flight (default 20000) for instruction counts under valgrind
                (the async clients run on a current-thread runtime); W7: N get_many calls
                over three servers; see BENCHMARKS.md";

fn parse_options() -> BenchResult<Options> {
    let mut options = Options {
        rounds: 9,
        round: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        only: Workload::ALL.to_vec(),
        runtime: RuntimeKind::Multi,
        protocol: Protocol::Auto,
        join_gets: false,
        tls: false,
        callgrind: None,
    };
    let mut callgrind_workload = None;
    let mut client = None;
    let mut n = 20_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => {
                options.rounds = 1;
                options.round = Duration::from_millis(150);
                options.warmup = Duration::from_millis(20);
            }
            "--only" => {
                options.only = value()?
                    .split(',')
                    .map(Workload::parse)
                    .collect::<BenchResult<_>>()?;
            }
            "--rounds" => options.rounds = value()?.parse()?,
            "--round-ms" => options.round = Duration::from_millis(value()?.parse()?),
            "--runtime" => {
                options.runtime = match value()?.as_str() {
                    "multi" => RuntimeKind::Multi,
                    "current" => RuntimeKind::Current,
                    other => return Err(format!("unknown runtime {other:?}\n{USAGE}").into()),
                }
            }
            "--protocol" => options.protocol = parse_protocol(&value()?)?,
            "--join-gets" => options.join_gets = true,
            "--tls" if cfg!(feature = "tls") => options.tls = true,
            "--tls" => {
                return Err(
                    "--tls needs the feature: cargo run --release -p memcache-benches \
                            --features tls -- --tls"
                        .into(),
                )
            }
            "--callgrind" => callgrind_workload = Some(Workload::parse(&value()?)?),
            "--client" => client = Some(callgrind::Subject::parse(&value()?)?),
            "--n" => n = value()?.parse()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    if options.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    match (callgrind_workload, client) {
        (Some(workload), Some(client)) => options.callgrind = Some((workload, client, n)),
        (None, None) => {}
        _ => return Err(format!("--callgrind and --client go together\n{USAGE}").into()),
    }
    Ok(options)
}

/// Parses `auto`, `classic` or `meta`.
fn parse_protocol(text: &str) -> BenchResult<Protocol> {
    Ok(match text {
        "auto" => Protocol::Auto,
        "classic" => Protocol::Classic,
        "meta" => Protocol::Meta,
        other => return Err(format!("unknown protocol {other:?}\n{USAGE}").into()),
    })
}

/// A multi-thread runtime with two workers.
fn multi_thread_runtime() -> BenchResult<Arc<Runtime>> {
    Ok(Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    ))
}

/// A current-thread runtime.
fn current_thread_runtime() -> BenchResult<Arc<Runtime>> {
    Ok(Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    ))
}

/// Runs `task` as a spawned task on `rt` (a worker thread, as a server's request handler
/// would run) and waits for it.
///
/// # Errors
/// The task's error, or its panic.
pub fn run_task<F>(rt: &Runtime, task: F) -> BenchResult<u64>
where
    F: Future<Output = BenchResult<u64>> + Send + 'static,
{
    rt.block_on(rt.spawn(task))
        .map_err(|error| format!("task failed: {error}"))?
}

fn run(options: &Options) -> BenchResult<()> {
    #[cfg(feature = "tls")]
    let certs = match options.tls {
        true => Some(tls::Certs::make()?),
        false => None,
    };
    #[cfg(feature = "tls")]
    let server = match &certs {
        Some(certs) => {
            let (chain, key) = certs.files();
            Memcached::start_with_tls(Some((&chain, &key)))?
        }
        None => Memcached::start()?,
    };
    #[cfg(not(feature = "tls"))]
    let server = Memcached::start()?;
    let fixture = Arc::new(Fixture::new());
    fixture.store(server.addr())?;
    if let Some((workload, subject, n)) = options.callgrind {
        return callgrind::run(&server, &fixture, options.protocol, workload, subject, n);
    }
    // W7 and W8 spread their keys over three servers of their own, each holding every key.
    let several: Vec<Memcached> = if options.only.iter().any(|w| w.several_servers()) {
        (0..cluster::SERVERS)
            .map(|_| Memcached::start())
            .collect::<BenchResult<_>>()?
    } else {
        Vec::new()
    };
    for server in &several {
        fixture.store(server.addr())?;
    }
    let multi = multi_thread_runtime()?;
    let caller = match options.runtime {
        RuntimeKind::Multi => Arc::clone(&multi),
        RuntimeKind::Current => current_thread_runtime()?,
    };
    let context = workloads::Context {
        addr: server.addr(),
        servers: several.iter().map(Memcached::addr).collect(),
        fixture,
        multi,
        caller,
        one_thread: current_thread_runtime()?,
        protocol: options.protocol,
        join_gets: options.join_gets,
        #[cfg(feature = "tls")]
        tls: match (&certs, server.tls_addr()) {
            (Some(certs), Some(addr)) => Some((addr, certs.client_config())),
            _ => None,
        },
    };
    report::print_header(&server, &several, options)?;
    let mut results = Vec::new();
    for workload in &options.only {
        for section in workload.sections() {
            eprintln!("running {} ...", section.title());
            let mut cases = section.cases(&context)?;
            let measured =
                harness::measure(&mut cases, options.rounds, options.round, options.warmup)?;
            results.push(report::SectionResult::new(section, measured));
        }
    }
    report::print_table(&results);
    report::print_targets(&results);
    Ok(())
}

fn main() -> ExitCode {
    let outcome = parse_options().and_then(|options| run(&options));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("memcache-benches: {error}");
            ExitCode::FAILURE
        }
    }
}
