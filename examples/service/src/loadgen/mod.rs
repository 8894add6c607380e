//! The load generator: `concurrency` tasks send a mix of reads and writes to a running
//! service for `duration`, a progress line goes to stderr every second, and the
//! [`Summary`] puts the run's throughput and latencies beside what the service's `/metrics`
//! says happened meanwhile: cache hits and misses, and database queries.
//!
//! The mix, for ids drawn uniformly from `1..=keys`: of the reads, 60% one user or one
//! product, 20% a list of 10 users or products (`?ids=`), 20% a page of the product list;
//! of the writes (`write_ratio` of all requests), half rename a user, half change a
//! product's price (which invalidates its page).

mod flags;
mod report;
mod scrape;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use flags::{LoadConfig, USAGE};
pub use report::{Latency, Summary};
pub use scrape::{Sample, Scrape};

use crate::http::HttpClient;
use crate::metrics::{CACHE_COALESCED, CACHE_HITS, CACHE_MISSES, DB_QUERIES};
use crate::model::{ProductChange, UserChange, PAGE_SIZE};

/// Ids in one list request.
const LIST_SIZE: u64 = 10;
/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One request of the mix.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    User(u64),
    Product(u64),
    Users(Vec<u64>),
    Products(Vec<u64>),
    Page(u64),
    RenameUser(u64, u64),
    Reprice(u64, i64),
}

impl Op {
    fn is_write(&self) -> bool {
        matches!(self, Op::RenameUser(..) | Op::Reprice(..))
    }
}

/// SplitMix64: a few lines of a well-known generator, so that no `rand` crate is compiled
/// for picking ids.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the bias is below 2^-40 for the ranges used here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws the next request.
fn pick(rng: &mut Rng, config: &LoadConfig) -> Op {
    let id = |rng: &mut Rng| 1 + rng.below(config.keys);
    if rng.unit() < config.write_ratio {
        return if rng.below(2) == 0 {
            Op::RenameUser(id(rng), rng.below(1000))
        } else {
            Op::Reprice(id(rng), 99 + rng.below(10_000) as i64)
        };
    }
    let pages = config.keys.div_ceil(u64::from(PAGE_SIZE));
    match rng.below(10) {
        0..=2 => Op::User(id(rng)),
        3..=5 => Op::Product(id(rng)),
        6 => Op::Users((0..LIST_SIZE).map(|_| id(rng)).collect()),
        7 => Op::Products((0..LIST_SIZE).map(|_| id(rng)).collect()),
        _ => Op::Page(rng.below(pages)),
    }
}

/// Sends `op`; whether it was answered with a 2xx status.
async fn send(client: &HttpClient, op: &Op) -> bool {
    let joined = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let answer = match op {
        Op::User(id) => client.get(&format!("/users/{id}")).await,
        Op::Product(id) => client.get(&format!("/products/{id}")).await,
        Op::Users(ids) => client.get(&format!("/users?ids={}", joined(ids))).await,
        Op::Products(ids) => client.get(&format!("/products?ids={}", joined(ids))).await,
        Op::Page(page) => client.get(&format!("/products?page={page}")).await,
        Op::RenameUser(id, n) => {
            let change = UserChange {
                name: Some(format!("User {id} (renamed {n})")),
                email: None,
            };
            client.patch_json(&format!("/users/{id}"), &change).await
        }
        Op::Reprice(id, cents) => {
            let change = ProductChange {
                price_cents: Some(*cents),
                ..ProductChange::default()
            };
            client.patch_json(&format!("/products/{id}"), &change).await
        }
    };
    matches!(answer, Ok(response) if (200..300).contains(&response.status))
}

/// What one task did.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<u32>,
    reads: u64,
    writes: u64,
    errors: u64,
}

/// Requests and errors so far, for the progress line.
#[derive(Debug, Default)]
struct Progress {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// One task: requests one after the other until `deadline`.
async fn worker(
    client: HttpClient,
    config: Arc<LoadConfig>,
    mut rng: Rng,
    deadline: Instant,
    progress: Arc<Progress>,
) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let op = pick(&mut rng, &config);
        let started = Instant::now();
        let ok = send(&client, &op).await;
        let micros = started.elapsed().as_micros();
        tally
            .latencies
            .push(u32::try_from(micros).unwrap_or(u32::MAX));
        progress.requests.fetch_add(1, Ordering::Relaxed);
        match (ok, op.is_write()) {
            (false, _) => {
                tally.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            (true, true) => tally.writes += 1,
            (true, false) => tally.reads += 1,
        }
    }
    tally
}

/// Reads the service's `/metrics`.
///
/// # Errors
/// The service did not answer `/metrics` with 200.
pub async fn scrape(client: &HttpClient) -> Result<Scrape, String> {
    let response = client
        .get("/metrics")
        .await
        .map_err(|error| format!("reading the service's metrics: {error}"))?;
    if response.status != 200 {
        return Err(format!(
            "reading the service's metrics: status {}",
            response.status
        ));
    }
    Ok(Scrape::parse(&response.text()))
}

/// Runs the load described by `config` against its target, printing a progress line to
/// stderr every second, and returns the summary.
///
/// # Errors
/// The service's `/metrics` could not be read before or after the run.
pub async fn run(config: &LoadConfig) -> Result<Summary, String> {
    let client = HttpClient::new(&config.target);
    let before = scrape(&client).await?;
    let config = Arc::new(config.clone());
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let deadline = started + config.duration;
    let workers: Vec<_> = (0..config.concurrency as u64)
        .map(|n| {
            let rng = Rng(config.seed.wrapping_mul(1_000_003).wrapping_add(n));
            tokio::spawn(worker(
                client.clone(),
                Arc::clone(&config),
                rng,
                deadline,
                Arc::clone(&progress),
            ))
        })
        .collect();
    let ticker = tokio::spawn(report_progress(Arc::clone(&progress), started));
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker
            .await
            .map_err(|error| format!("a load task failed: {error}"))?;
        total.latencies.extend(tally.latencies);
        total.reads += tally.reads;
        total.writes += tally.writes;
        total.errors += tally.errors;
    }
    let elapsed = started.elapsed();
    ticker.abort();
    let after = scrape(&client).await?;
    let delta = |name: &str| (after.sum(name) - before.sum(name)).max(0.0) as u64;
    Ok(Summary {
        elapsed,
        reads: total.reads,
        writes: total.writes,
        errors: total.errors,
        latency: Latency::from_micros(&mut total.latencies),
        cache_hits: delta(CACHE_HITS),
        cache_misses: delta(CACHE_MISSES),
        coalesced: delta(CACHE_COALESCED),
        db_queries: delta(DB_QUERIES),
    })
}

/// Prints `[  3s] 12034 requests, 4011/s, 0 errors` every second.
async fn report_progress(progress: Arc<Progress>, started: Instant) {
    let mut every = tokio::time::interval_at(started.into(), PROGRESS_EVERY);
    every.tick().await;
    let mut last = 0;
    loop {
        every.tick().await;
        let requests = progress.requests.load(Ordering::Relaxed);
        eprintln!(
            "[{:>3}s] {requests} requests, {}/s, {} errors",
            started.elapsed().as_secs_f64().round(),
            requests - last,
            progress.errors.load(Ordering::Relaxed),
        );
        last = requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_the_write_ratio_and_the_key_range() {
        let config = LoadConfig {
            write_ratio: 0.25,
            keys: 50,
            ..LoadConfig::default()
        };
        let mut rng = Rng(3);
        let ops: Vec<Op> = (0..10_000).map(|_| pick(&mut rng, &config)).collect();
        let writes = ops.iter().filter(|op| op.is_write()).count();
        assert!((2300..2700).contains(&writes), "{writes} writes");
        for op in &ops {
            match op {
                Op::User(id) | Op::Product(id) | Op::RenameUser(id, _) | Op::Reprice(id, _) => {
                    assert!((1..=50).contains(id), "{op:?}")
                }
                Op::Users(ids) | Op::Products(ids) => {
                    assert!(ids.iter().all(|id| (1..=50).contains(id)), "{op:?}")
                }
                Op::Page(page) => assert!(*page < 3, "{op:?}"),
            }
        }
        assert!(ops.iter().any(|op| matches!(op, Op::Page(_))));
        assert!(ops.iter().any(|op| matches!(op, Op::Users(_))));
    }

    #[test]
    fn the_same_seed_gives_the_same_requests() {
        let config = LoadConfig::default();
        let (mut a, mut b) = (Rng(9), Rng(9));
        for _ in 0..100 {
            assert_eq!(pick(&mut a, &config), pick(&mut b, &config));
        }
        assert!(Rng(1).unit() < 1.0);
    }
}
