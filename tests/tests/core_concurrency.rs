//! Many tasks sharing one `memcache-core` client against a real memcached: every task gets
//! exactly its own answers, and callers that give up (timeouts, dropped futures) never
//! disturb the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use memcache_core::{CasOutcome, Client, Protocol};
use memcache_tests::{raw_stats, FaultMode, FaultProxy, Memcached};

/// A small deterministic generator (xorshift64*), one per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TASKS: usize = 64;
const OPS_PER_TASK: usize = 2_000;
const KEYS_PER_TASK: u64 = 6;

/// What one task saw go wrong.
#[derive(Default)]
struct Tally {
    mismatches: AtomicUsize,
    errors: AtomicUsize,
    ops: AtomicUsize,
}

/// A value that names its task, operation and length, so that a value delivered to the wrong
/// caller can never compare equal.
fn make_value(task: usize, op: usize, rng: &mut Rng) -> Bytes {
    let len = if rng.below(100) == 0 {
        20_000 + rng.below(20_000) as usize // now and then a value spanning several reads
    } else {
        rng.below(300) as usize
    };
    let mut data = format!("task{task}-op{op}-").into_bytes();
    data.resize(data.len() + len, b'a' + (op % 26) as u8);
    Bytes::from(data)
}

async fn run_task(client: Client, task: usize, tally: Arc<Tally>) {
    let mut rng = Rng::new(task as u64 + 1);
    let keys: Vec<String> = (0..KEYS_PER_TASK)
        .map(|i| format!("t{task}:k{i}"))
        .collect();
    let counter = format!("t{task}:counter");
    let mut model: HashMap<&str, Bytes> = HashMap::new();
    let mut count: u64 = 0;
    let mismatch = |what: &str, detail: String| {
        tally.mismatches.fetch_add(1, Ordering::Relaxed);
        eprintln!("task {task}: {what} mismatch: {detail}");
    };
    let error = |what: &str, e: memcache_core::Error| {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        eprintln!("task {task}: {what} failed: {e}");
    };

    // The counter starts at 0 (set waits: the incr below must find it).
    if let Err(e) = client.set(&counter, "0").noreply(false).await {
        error("set counter", e);
    }
    for op in 0..OPS_PER_TASK {
        tally.ops.fetch_add(1, Ordering::Relaxed);
        let key = keys[rng.below(KEYS_PER_TASK) as usize].as_str();
        match rng.below(10) {
            0..=2 => {
                let data = make_value(task, op, &mut rng);
                let noreply = rng.below(2) == 0;
                match client.set(key, &data).noreply(noreply).await {
                    Ok(true) => {
                        model.insert(key, data);
                    }
                    Ok(false) => mismatch("set", format!("{key} not stored")),
                    Err(e) => error("set", e),
                }
            }
            3..=4 => match client.get(key).await {
                Ok(got) => {
                    let got = got.map(|v| v.data);
                    if got.as_ref() != model.get(key) {
                        mismatch("get", format!("{key}: {:?}", got.map(|d| d.len())));
                    }
                }
                Err(e) => error("get", e),
            },
            5 => match client.gets(key).await {
                Ok(Some((value, token))) => {
                    if Some(&value.data) != model.get(key) {
                        mismatch("gets", key.to_owned());
                    }
                    let data = make_value(task, op, &mut rng);
                    match client.cas(key, &data, token).await {
                        Ok(CasOutcome::Stored) => {
                            model.insert(key, data);
                        }
                        Ok(other) => mismatch("cas", format!("{key}: {other:?}")),
                        Err(e) => error("cas", e),
                    }
                }
                Ok(None) => {
                    if model.contains_key(key) {
                        mismatch("gets", format!("{key}: miss"));
                    }
                }
                Err(e) => error("gets", e),
            },
            6 => {
                let delta = rng.below(1000);
                count += delta;
                match client.incr(&counter, delta).await {
                    Ok(Some(n)) if n == count => {}
                    Ok(other) => mismatch("incr", format!("{other:?} != {count}")),
                    Err(e) => error("incr", e),
                }
            }
            7 => {
                let existed = model.remove(key).is_some();
                match client.delete(key).noreply(false).await {
                    Ok(found) if found == existed => {}
                    Ok(found) => mismatch("delete", format!("{key}: {found}")),
                    Err(e) => error("delete", e),
                }
            }
            _ => match client.get_many(keys.iter().map(String::as_str)).await {
                Ok(hits) => {
                    let got: HashMap<&str, Bytes> =
                        hits.into_iter().map(|(k, v)| (k, v.data)).collect();
                    if got != model {
                        mismatch(
                            "get_many",
                            format!("{} hits, {} expected", got.len(), model.len()),
                        );
                    }
                }
                Err(e) => error("get_many", e),
            },
        }
    }
    // Final check of everything this task owns.
    match client.get(&counter).await {
        Ok(Some(v)) if v.data == count.to_string() => {}
        other => mismatch("final counter", format!("{other:?}")),
    }
    for key in &keys {
        match client.get(key).await {
            Ok(got) if got.as_ref().map(|v| &v.data) == model.get(key.as_str()) => {}
            other => mismatch("final get", format!("{key}: {:?}", other.map(|_| ()))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_client_and_get_their_own_values() {
    many_tasks_share_one_client(Protocol::Auto).await;
}

/// The same over the classic protocol, with concurrent single-key gets sharing `get` lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_classic_client_and_get_their_own_values() {
    many_tasks_share_one_client(Protocol::Classic).await;
}

async fn many_tasks_share_one_client(protocol: Protocol) {
    let server = Memcached::builder().memory_mb(256).start();
    let client = Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .join_gets(protocol == Protocol::Classic)
        // Generous: this test is about correctness under load, not about timeouts.
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let connections = client
        .stats()
        .await
        .unwrap()
        .single()
        .unwrap()
        .total_connections();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(run_task(client.clone(), task, Arc::clone(&tally))))
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} operations by {TASKS} tasks in {elapsed:?}",
        tally.ops.load(Ordering::Relaxed)
    );
    assert_eq!(tally.ops.load(Ordering::Relaxed), TASKS * OPS_PER_TASK);
    assert_eq!(tally.errors.load(Ordering::Relaxed), 0, "errors");
    assert_eq!(tally.mismatches.load(Ordering::Relaxed), 0, "mismatches");

    // All of it went through the one connection the client already had.
    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(stats.total_connections(), connections, "no new connection");
    assert!(stats.cmd_get().unwrap() > (TASKS * OPS_PER_TASK / 4) as u64);
}

/// Callers that give up mid-flight (a timeout shorter than the proxy's delay, or a `select!`
/// that drops the losing future) interleaved with callers that wait: the waiting callers
/// always get their own values, and the connection never falls out of step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_futures_do_not_disturb_other_callers() {
    dropped_futures_with(Protocol::Auto).await;
}

/// The same over the classic protocol with shared `get` lines: a caller that gives up may
/// be one of several whose gets share a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_futures_do_not_disturb_other_classic_callers() {
    dropped_futures_with(Protocol::Classic).await;
}

async fn dropped_futures_with(protocol: Protocol) {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = Client::builder()
        .server(proxy.addr())
        .protocol(protocol)
        .join_gets(protocol == Protocol::Classic)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Values for the droppers' keys, different from the waiters' ones.
    for i in 0..8 {
        client
            .set(format!("drop{i}"), format!("dropper-value-{i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    // Every chunk now waits 3 ms in each direction: responses are in flight for a while.
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(3)));

    let dropped = Arc::new(AtomicUsize::new(0));
    let mismatches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for d in 0..8 {
        let client = client.clone();
        let dropped = Arc::clone(&dropped);
        let mismatches = Arc::clone(&mismatches);
        tasks.push(tokio::spawn(async move {
            for round in 0..40 {
                let key = format!("drop{}", (d + round) % 8);
                if round % 2 == 0 {
                    let limit = Duration::from_micros(200 + 100 * (round as u64 % 5));
                    match tokio::time::timeout(limit, client.gets(&key)).await {
                        Err(_) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Ok(Some((v, _)))) if v.data.starts_with(b"dropper-value-") => {}
                        Ok(other) => {
                            eprintln!("dropper {d}: {other:?}");
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    tokio::select! {
                        result = client.get_many([key.as_str(), "drop0"]) => {
                            if result.map(|m| m.len()).ok() != Some(if key == "drop0" { 1 } else { 2 }) {
                                mismatches.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        () = tokio::time::sleep(Duration::from_micros(300)) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }));
    }
    for w in 0..8 {
        let client = client.clone();
        let mismatches = Arc::clone(&mismatches);
        tasks.push(tokio::spawn(async move {
            for round in 0..25 {
                let key = format!("wait{w}");
                let data = format!("waiter{w}-round{round}");
                let stored = client.set(&key, &data).noreply(round % 2 == 0).await;
                let got = client.get(&key).await;
                let ok = matches!(stored, Ok(true))
                    && matches!(&got, Ok(Some(v)) if v.data == data.as_bytes());
                if !ok {
                    eprintln!("waiter {w} round {round}: {stored:?} {got:?}");
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
                let n = client.incr(format!("count{w}"), 1).await;
                let expected = if round == 0 { None } else { Some(round as u64) };
                if round == 0 {
                    client.set(format!("count{w}"), "0").await.unwrap();
                }
                if n.as_ref().ok() != Some(&expected) {
                    eprintln!("waiter {w} round {round}: incr {n:?}");
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task panicked");
    }
    let dropped = dropped.load(Ordering::Relaxed);
    eprintln!("{dropped} futures dropped mid-flight");
    assert_eq!(mismatches.load(Ordering::Relaxed), 0, "mismatches");
    // The delay makes most give-ups land while the request is in flight.
    assert!(dropped >= 160, "only {dropped} of 320 calls were dropped");

    proxy.set_mode(FaultMode::PassThrough);
    // Still in step, on the same connection: no error closed it.
    for i in 0..8 {
        let hit = client.get(format!("drop{i}")).await.unwrap().unwrap();
        assert_eq!(hit.data, format!("dropper-value-{i}"));
    }
    assert_eq!(proxy.connections(), 1, "the connection was never closed");
    // Every request that was answered was sent once: at most each key of each retrieval
    // (8 x 20 gets + 8 x 20 get_many of 2 keys by the droppers, 8 x 25 gets by the
    // waiters, the 8 final gets). A dropped request was sent (and its answer discarded)
    // unless its caller had gone before it was written (under load the 300 us give-up
    // can come first; such a request is not written at all), so the dropped calls make
    // up the difference, and at least every call that completed was counted.
    let stats = raw_stats(&server.addr());
    let counted: usize = stats["cmd_get"].parse().expect("cmd_get is a number");
    let completed = 320 - dropped;
    assert!(
        (208 + completed..=160 + 320 + 200 + 8).contains(&counted),
        "cmd_get {counted} with {dropped} dropped calls"
    );
}

/// The `get`/`gets` command lines memcached logged (`-vv`): each line's key count.
fn logged_get_lines(server: &Memcached, command: &str) -> Vec<usize> {
    server
        .stderr()
        .lines()
        .filter_map(|line| line.strip_prefix('<'))
        .filter_map(|line| line.split_once(' ').map(|(_fd, command_line)| command_line))
        .filter_map(|line| line.strip_prefix(command)?.strip_prefix(' '))
        .map(|keys| keys.split(' ').count())
        .collect()
}

/// With `join_gets`, classic single-key gets queued behind each other go out as one
/// multi-key line, and each caller still gets exactly its own answer: hits, misses, the
/// same key asked by several callers, and `gets` tokens that work for `cas`.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_classic_gets_share_one_line() {
    let server = Memcached::builder().arg("-vv").start();
    let client = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Classic)
        .join_gets(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // k0, k2, .. k38 are stored, the odd keys are missing.
    for i in (0..40).step_by(2) {
        client
            .set(format!("k{i}"), format!("value-{i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    // 100 gets, then 100 gets, of 40 keys: each key is asked for by several callers. All
    // are queued before any runs (one thread): the first is written at once, the others
    // wait behind it.
    let mut gets = tokio::task::JoinSet::new();
    for n in 0..100usize {
        let client = client.clone();
        gets.spawn(async move { (n, client.get(format!("k{}", n % 40)).await) });
    }
    let mut with_tokens = tokio::task::JoinSet::new();
    for n in 0..100usize {
        let client = client.clone();
        with_tokens.spawn(async move { (n, client.gets(format!("k{}", (n * 7) % 40)).await) });
    }
    while let Some(done) = gets.join_next().await {
        let (n, got) = done.unwrap();
        let i = n % 40;
        let got = got.unwrap().map(|value| value.data);
        let expected = (i % 2 == 0).then(|| Bytes::from(format!("value-{i}")));
        assert_eq!(got, expected, "get k{i} (caller {n})");
    }
    let mut tokens = HashMap::new();
    while let Some(done) = with_tokens.join_next().await {
        let (n, got) = done.unwrap();
        let i = (n * 7) % 40;
        match got.unwrap() {
            Some((value, token)) => {
                assert_eq!(i % 2, 0, "gets k{i} (caller {n}) hit a missing key");
                assert_eq!(value.data, format!("value-{i}"), "gets k{i} (caller {n})");
                // nothing changed the key: every caller saw the same token
                assert_eq!(*tokens.entry(i).or_insert(token), token, "gets k{i}");
            }
            None => assert_eq!(i % 2, 1, "gets k{i} (caller {n}) missed a stored key"),
        }
    }
    for (i, token) in tokens {
        let outcome = client.cas(format!("k{i}"), "new", token).await.unwrap();
        assert_eq!(outcome, CasOutcome::Stored, "cas k{i} with its gets token");
    }

    // Every key was asked for, and in far fewer lines than calls.
    let get_lines = logged_get_lines(&server, "get");
    let gets_lines = logged_get_lines(&server, "gets");
    eprintln!("get lines (keys each): {get_lines:?}; gets lines: {gets_lines:?}");
    assert_eq!(get_lines.iter().sum::<usize>(), 100);
    assert_eq!(gets_lines.iter().sum::<usize>(), 100);
    assert!(
        get_lines.len() <= 4,
        "100 gets took {} lines",
        get_lines.len()
    );
    assert!(
        gets_lines.len() <= 4,
        "100 gets took {} lines",
        gets_lines.len()
    );
    assert!(get_lines.iter().all(|&keys| keys <= 64), "{get_lines:?}");
}
