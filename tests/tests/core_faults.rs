//! Failures, against a real memcached and the fault-injecting proxy: a stopped server
//! (timeouts), a killed and restarted one (connection errors, reconnection), `ignore_exc`,
//! responses cut, garbled or reset mid-flight, values too large for the server or for the
//! client, unix sockets, refused and hanging connects.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use memcache_core::{Client, Error, Protocol, TimeoutKind};
use memcache_tests::{eventually, raw_get, FaultMode, FaultProxy, LogCapture, Memcached};

/// The per-command timeout of the fault tests.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How late a timed-out call may return (scheduling on a busy two-core machine).
const MARGIN: Duration = Duration::from_millis(200);

fn client_at(addr: &str, ignore_exc: bool) -> Client {
    Client::builder()
        .server(addr)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .ignore_exc(ignore_exc)
        .build()
        .expect("client builds")
}

/// Awaits `call`, returning its result and how long it took.
async fn timed<T>(call: impl std::future::IntoFuture<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = call.await;
    (result, started.elapsed())
}

/// Checks that a call failed with a timeout after the timeout, not much later.
///
/// The kind is not pinned: a call that had to open a connection to the stopped server may
/// report its connection attempt (the connect, or the protocol probe the client sends
/// first) as the part that timed out. Both limits are `TIMEOUT` here.
fn assert_timed_out<T: std::fmt::Debug>(what: &str, result: Result<T, Error>, took: Duration) {
    match result {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, TIMEOUT, "{what}"),
        other => panic!("{what}: expected a timeout, got {other:?}"),
    }
    assert!(
        took >= TIMEOUT && took < TIMEOUT + MARGIN,
        "{what}: timed out after {took:?}"
    );
}

/// Checks that a call to a server that does not answer failed with a connection error
/// (its own timeout, the timeout of the connection the server stopped answering, or, once
/// the server is in backoff, [`Error::ServerDown`] at once), never later than its deadline.
fn assert_failed_in_time<T: std::fmt::Debug>(what: &str, result: Result<T, Error>, took: Duration) {
    match result {
        Err(error) => assert!(error.is_connection_error(), "{what}: {error:?}"),
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
    }
    assert!(took < TIMEOUT + MARGIN, "{what}: failed after {took:?}");
}

/// Waits until `client` reads `key` again (the server is back and out of backoff).
async fn until_back(client: &Client, key: &str) -> Option<memcache_core::Value> {
    eventually(
        "the server is used again",
        Duration::from_secs(10),
        || async { client.get(key).await.ok() },
    )
    .await
}

/// A stopped server: the first call times out after its own timeout; every call while the
/// server stays stopped fails with a connection error within its deadline (its own timeout,
/// the timeout of the connection the server stopped answering, or, once that happened twice
/// in a row, `ServerDown` at once, without waiting); the client is back once the server
/// resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_times_out_then_recovers() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "before").noreply(false).await.unwrap();

    server.pause();
    let (result, took) = timed(client.get("k")).await;
    assert_timed_out("get", result, took);
    let (result, took) = timed(client.gets("k")).await;
    assert_failed_in_time("gets", result, took);
    let (result, took) = timed(client.get_many(["k", "x"])).await;
    assert_failed_in_time("get_many", result, took);
    let (result, took) = timed(client.set("k", "during").noreply(false)).await;
    assert_failed_in_time("set", result, took);
    let (result, took) = timed(client.incr("n", 1)).await;
    assert_failed_in_time("incr", result, took);
    let (result, took) = timed(client.stats()).await;
    assert_failed_in_time("stats", result.unwrap().single(), took);
    let (result, took) = timed(client.version()).await;
    assert_failed_in_time("version", result.unwrap().single(), took);
    // The predicates agree.
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_connection_error() && !error.is_server_error());
    assert!(error.is_timeout() || error.is_server_down(), "{error:?}");

    server.resume();
    // The set sent while paused may or may not have been applied once the server resumed
    // (the contract says so of timed-out writes); either value is the right one.
    let value = until_back(&client, "k").await.expect("still stored").data;
    assert!(value == "before" || value == "during", "{value:?}");
    client.set("k", "after").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "after");
    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(stats.pid(), server.pid().map(u64::from));
}

/// A stopped server stops reading: noreply writes fill the socket, then the connection's
/// write queue up to its high-water mark. From then on a caller waits for room only until
/// its own deadline (a `get` as well as a write), and nothing is lost or mixed up: once the
/// server resumes it reads everything queued, and the connection carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_write_queue_bounds_callers_by_their_deadline() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();
    let big = vec![b'x'; 512 * 1024];

    server.pause();
    // Noreply sets are handed over at once until the queue is full; the first one that
    // waits for room longer than its deadline fails with a timeout.
    let mut queued = 0;
    let full = loop {
        let (result, took) = timed(client.set(format!("big{queued}"), &big[..])).await;
        match result {
            Ok(_) => queued += 1,
            Err(error) => break (error, took),
        }
        assert!(
            queued < 400,
            "200 MiB handed over to a stopped server without blocking"
        );
    };
    assert_timed_out("set into a full queue", Err::<(), _>(full.0), full.1);
    assert!(
        queued >= 8,
        "the queue filled after only {queued} sets of 512 KiB"
    );
    let (result, took) = timed(client.get("k")).await;
    assert_timed_out("get behind a full queue", result, took);

    server.resume();
    // The server reads the backlog; the connection was never failed (no caller's reply was
    // overdue), so nothing handed over was lost.
    let last = format!("big{}", queued - 1);
    let value = eventually(
        "the backlog is drained",
        Duration::from_secs(10),
        || async { client.get(&last).await.ok().flatten() },
    )
    .await;
    assert_eq!(value.data.len(), big.len());
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
    assert_eq!(
        client.get("big0").await.unwrap().unwrap().data.len(),
        big.len()
    );
}

/// Calls made one right after the other to a stopped server: each fails with a connection
/// error, none later than the timeout plus the margin. None inherits another's fate: each
/// runs to its own deadline on the connection, until the client gives the stalled
/// connection up (and, after the second time, fails calls at once while in backoff).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_calls_to_a_paused_server_all_fail_in_time() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();

    server.pause();
    let started = Instant::now();
    for round in 0..6 {
        let (result, took) = timed(client.get("k")).await;
        assert_failed_in_time(&format!("round {round}"), result, took);
    }
    assert!(started.elapsed() < 6 * (TIMEOUT + MARGIN));
    server.resume();
    assert_eq!(until_back(&client, "k").await.unwrap().data, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_with_ignore_exc_reads_miss_and_writes_fail() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), true);
    assert!(client.ignore_exc());
    client.set("k", "v").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");

    server.pause();
    let in_time = |what: &str, took: Duration| {
        assert!(took < TIMEOUT + MARGIN, "{what}: returned after {took:?}");
    };
    let (hit, took) = timed(client.get("k")).await;
    assert_eq!(hit.unwrap(), None);
    assert!(
        took >= TIMEOUT,
        "the first read waited for the server: {took:?}"
    );
    in_time("get", took);
    let (hit, took) = timed(client.gets("k")).await;
    assert_eq!(hit.unwrap(), None);
    in_time("gets", took);
    let (hit, took) = timed(client.gat("k", 10)).await;
    assert_eq!(hit.unwrap(), None);
    in_time("gat", took);
    let (hits, took) = timed(client.get_many(["k", "other"])).await;
    assert!(hits.unwrap().is_empty());
    in_time("get_many", took);
    let (hits, took) = timed(client.gets_many(["k"])).await;
    assert!(hits.unwrap().is_empty());
    in_time("gets_many", took);
    let (stats, took) = timed(client.stats()).await;
    assert!(stats.unwrap().single().unwrap().is_empty());
    in_time("stats", took);

    let (result, took) = timed(client.set("k", "w").noreply(false)).await;
    assert_failed_in_time("set", result, took);
    let (result, took) = timed(client.delete("k").noreply(false)).await;
    assert_failed_in_time("delete", result, took);
    let (result, took) = timed(client.incr("n", 1)).await;
    assert_failed_in_time("incr", result, took);

    let (result, took) = timed(client.get("bad key")).await;
    assert!(result.unwrap_err().is_illegal_input());
    assert!(
        took < Duration::from_millis(50),
        "refused at once: {took:?}"
    );

    server.resume();
    // The misses above were not real: the value is still there (the set and delete that
    // timed out may have been applied after the resume, so look at a fresh write).
    eventually("writes work again", Duration::from_secs(10), || async {
        client.set("fresh", "yes").noreply(false).await.ok()
    })
    .await;
    assert_eq!(client.get("fresh").await.unwrap().unwrap().data, "yes");
    let value = client.get("k").await.unwrap().map(|v| v.data);
    assert!(
        value.is_none()
            || value.as_deref() == Some(&b"v"[..])
            || value.as_deref() == Some(&b"w"[..]),
        "{value:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_restart_on_the_same_port_recovers() {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client_at(&addr, false);
    client.set("k", "v").noreply(false).await.unwrap();

    server.kill();
    let (result, took) = timed(client.get("k")).await;
    let error = result.unwrap_err();
    assert!(
        error.is_connection_error() && !error.is_timeout(),
        "{error:?}"
    );
    assert!(took < TIMEOUT, "fails fast, not by timeout: {took:?}");

    // While it is down, connecting is refused (and after two failures the server is in
    // backoff: calls fail at once without trying): a connection error, at once. (The exact
    // variants are checked in `refused_and_hanging_connects`.)
    for _ in 0..3 {
        let (result, took) = timed(client.set("k", "x").noreply(false)).await;
        let error = result.unwrap_err();
        assert!(
            error.is_connection_error() && !error.is_timeout(),
            "{error:?}"
        );
        assert!(took < TIMEOUT, "{took:?}");
    }
    let error = client.incr("n", 1).await.unwrap_err();
    assert!(error.is_connection_error(), "{error:?}");

    server.restart();
    assert_eq!(server.addr(), addr, "same port");
    // Once its backoff has passed, the client connects to the restarted server. Its cache
    // is empty.
    assert_eq!(until_back(&client, "k").await, None);
    client.set("k", "again").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "again");
    assert_eq!(raw_get(&addr, "k"), Some((0, b"again".to_vec())));
}

/// Killed and restarted while the client was idle: the connection's driver looks at the idle
/// socket at each tick of its timer (at most one timeout apart), sees the end of stream and
/// ends, so the first call after the restart opens a new connection and succeeds.
#[tokio::test]
async fn idle_connection_to_a_killed_server_is_noticed_by_its_driver() {
    let logs = LogCapture::global();
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();

    server.kill();
    noticed_idle_close(logs, &server.addr()).await;
    server.restart();
    assert_eq!(client.get("k").await.unwrap(), None, "first call succeeds");
    client.set("k", "new").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "new");
}

/// Waits until the client has logged that the server at `addr` closed its idle connection.
async fn noticed_idle_close(logs: &LogCapture, addr: &str) {
    let server = format!("server={addr}");
    eventually(
        "the driver noticed the close",
        Duration::from_secs(5),
        || async {
            logs.lines()
                .iter()
                .any(|line| line.text.contains("closed while idle") && line.text.contains(&server))
                .then_some(())
        },
    )
    .await;
}

/// The same on a multi-thread runtime, after many one-at-a-time calls (each caller reads
/// its own reply and then hands the socket back to the driver) mixed with bursts of
/// concurrent ones (read by the driver, or by a caller that also completes the others):
/// whoever read last, the driver still watches the idle connection (at its timer's ticks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_watched_after_callers_read_their_own_replies() {
    let logs = LogCapture::global();
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();
    for _ in 0..20 {
        for _ in 0..10 {
            assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
        }
        let burst: Vec<_> = (0..16)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.get("k").await })
            })
            .collect();
        for task in burst {
            assert_eq!(task.await.unwrap().unwrap().unwrap().data, "v");
        }
    }
    for _ in 0..3 {
        assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
    }

    server.kill();
    noticed_idle_close(logs, &server.addr()).await;
    server.restart();
    assert_eq!(client.get("k").await.unwrap(), None, "first call succeeds");
}

/// Killed and restarted while the (single-threaded) runtime is blocked, so the driver could
/// not notice: the first call is handed to the old connection, whose driver then finds it
/// closed and fails the call with a connection error. The call after it opens a new
/// connection and succeeds. (A call is never retried silently: it may have been written.)
#[tokio::test(flavor = "current_thread")]
async fn unnoticed_dead_connection_fails_one_call_then_recovers() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();

    server.kill(); // blocking: the driver does not run in between
    server.restart();
    let (result, took) = timed(client.get("k")).await;
    let error = result.unwrap_err();
    assert!(
        error.is_connection_error() && !error.is_timeout(),
        "{error:?}"
    );
    assert!(took < TIMEOUT, "{took:?}");
    assert_eq!(client.get("k").await.unwrap(), None, "second call succeeds");
    client.set("k", "new").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_with_ignore_exc_reads_miss_and_writes_fail() {
    let server = Memcached::start();
    let client = client_at(&server.addr(), true);
    client.set("k", "v").noreply(false).await.unwrap();

    server.kill();
    let (hit, took) = timed(client.get("k")).await;
    assert_eq!(hit.unwrap(), None);
    assert!(took < TIMEOUT, "a refused connect is quick: {took:?}");
    assert_eq!(client.gets("k").await.unwrap(), None);
    assert_eq!(client.gats("k", 5).await.unwrap(), None);
    assert!(client.get_many(["k", "j"]).await.unwrap().is_empty());
    assert!(client.gets_many(["k"]).await.unwrap().is_empty());
    assert!(client.stats().await.unwrap().single().unwrap().is_empty());

    for error in [
        client.set("k", "w").noreply(false).await.unwrap_err(),
        client.add("k", "w").noreply(false).await.unwrap_err(),
        client.delete("k").noreply(false).await.unwrap_err(),
        client.touch("k", 1).noreply(false).await.unwrap_err(),
        client.incr("n", 1).await.unwrap_err(),
        client.version().await.unwrap().single().unwrap_err(),
    ] {
        assert!(
            error.is_connection_error() && !error.is_timeout(),
            "{error:?}"
        );
    }
    assert!(client.get("a\nb").await.unwrap_err().is_illegal_input());
    assert!(client
        .get_many(["ok", "not ok"])
        .await
        .unwrap_err()
        .is_illegal_input());

    server.restart();
    // (With ignore_exc a read misses whether the server is back or not: wait on a write.)
    eventually(
        "the server is used again",
        Duration::from_secs(10),
        || async { client.set("k", "back").noreply(false).await.ok() },
    )
    .await;
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "back");
    assert_eq!(
        client.stats().await.unwrap().single().unwrap().pid(),
        server.pid().map(u64::from)
    );
}

/// How many fault / recovery cycles each proxy test runs: the recovery must hold every
/// time, not by luck of scheduling.
const CYCLES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_cut_mid_way_is_a_connection_error() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = client_at(&proxy.addr(), false);
    let big = "0123456789".repeat(2_000); // 20 kB: the cut lands inside the value
    client.set("big", &big).noreply(false).await.unwrap();
    assert_eq!(client.get("big").await.unwrap().unwrap().data, big);

    for cycle in 0..CYCLES {
        proxy.set_mode(FaultMode::CutAfter(100 + cycle * 50));
        let (result, took) = timed(client.get("big")).await;
        let error = result.unwrap_err();
        assert!(
            matches!(error, Error::UnexpectedClose | Error::Io(_)),
            "cycle {cycle}: {error:?}"
        );
        assert!(error.is_connection_error() && !error.is_timeout());
        assert!(took < TIMEOUT, "cycle {cycle}: {took:?}");

        proxy.set_mode(FaultMode::PassThrough);
        let value = client.get("big").await;
        assert!(
            matches!(&value, Ok(Some(v)) if v.data == big),
            "cycle {cycle}: the call after the cut failed: {:?}",
            value.map(|v| v.map(|v| v.data.len()))
        );
    }
    assert_eq!(proxy.connections(), 1 + CYCLES, "one reconnection per cut");

    // The same with ignore_exc: a miss, then the value again.
    let lenient = client_at(&proxy.addr(), true);
    lenient.version().await.unwrap().single().unwrap();
    proxy.set_mode(FaultMode::CutAfter(10));
    assert_eq!(lenient.get("big").await.unwrap(), None);
    proxy.set_mode(FaultMode::PassThrough);
    assert_eq!(lenient.get("big").await.unwrap().unwrap().data, big);
}

/// With `join_gets`, concurrent classic gets share `get` lines: a reply cut mid-way fails
/// every caller of its line with the connection's error, no caller gets another's value,
/// and the calls after it reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_cut_mid_way_fails_every_caller_of_a_shared_get_line() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = Client::builder()
        .server(proxy.addr())
        .protocol(Protocol::Classic)
        .join_gets(true)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let value = |i: usize| format!("{i}:").repeat(300);
    for i in 0..20 {
        client
            .set(format!("cut{i}"), value(i))
            .noreply(false)
            .await
            .unwrap();
    }
    for cycle in 0..CYCLES {
        proxy.set_mode(FaultMode::CutAfter(5_000));
        let calls: Vec<_> = (0..40)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { (n % 20, client.get(format!("cut{}", n % 20)).await) })
            })
            .collect();
        let mut failed = 0;
        for call in calls {
            match call.await.unwrap() {
                // answered before the cut, or sent on the next connection
                (i, Ok(Some(hit))) => assert_eq!(hit.data, value(i), "cycle {cycle}: cut{i}"),
                (i, Ok(None)) => panic!("cycle {cycle}: cut{i} missed"),
                (i, Err(error)) => {
                    assert!(
                        error.is_connection_error() && !error.is_timeout(),
                        "cycle {cycle}: cut{i}: {error:?}"
                    );
                    failed += 1;
                }
            }
        }
        assert!(failed > 0, "cycle {cycle}: the cut failed no call");
        proxy.set_mode(FaultMode::PassThrough);
        // A cut before any reply, on the connection that took over the unwritten requests,
        // is a second failure in a row: the server may be in backoff for a moment.
        until_back(&client, "cut0").await;
        for i in 0..20 {
            let hit = client.get(format!("cut{i}")).await.unwrap().unwrap();
            assert_eq!(hit.data, value(i), "cycle {cycle}: cut{i} after the cut");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_response_is_an_unknown_response() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = client_at(&proxy.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();

    for cycle in 0..CYCLES {
        proxy.set_mode(FaultMode::Garble);
        let error = match cycle % 4 {
            0 => client.get("k").await.unwrap_err(),
            1 => client.incr("n", 1).await.unwrap_err(),
            2 => client.stats().await.unwrap().single().unwrap_err(),
            _ => client.get_many(["k", "j"]).await.unwrap_err(),
        };
        assert!(
            matches!(error, Error::UnknownResponse(_)),
            "cycle {cycle}: {error:?}"
        );
        assert!(error.is_connection_error() && !error.is_server_error());

        proxy.set_mode(FaultMode::PassThrough);
        let value = client.get("k").await;
        assert!(
            matches!(&value, Ok(Some(v)) if v.data == "v"),
            "cycle {cycle}: the call after the garbage failed: {value:?}"
        );
    }

    proxy.set_mode(FaultMode::Garble);
    let error = client.set("k", "w").noreply(false).await.unwrap_err();
    assert!(matches!(error, Error::UnknownResponse(_)), "{error:?}");
    proxy.set_mode(FaultMode::PassThrough);
    // The garbled set may or may not have been applied (its reply was lost).
    let value = client.get("k").await.unwrap().unwrap().data;
    assert!(value == "v" || value == "w", "{value:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_a_connection_error() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = client_at(&proxy.addr(), false);
    client.set("k", "v").noreply(false).await.unwrap();

    for cycle in 0..CYCLES {
        proxy.set_mode(FaultMode::Reset);
        // First on the open connection, then on a new one, which the proxy resets on
        // accept.
        for attempt in 0..2 {
            let (result, took) = timed(client.get("k")).await;
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::Io(_) | Error::UnexpectedClose),
                "cycle {cycle} attempt {attempt}: {error:?}"
            );
            assert!(error.is_connection_error() && !error.is_timeout());
            assert!(took < TIMEOUT, "cycle {cycle} attempt {attempt}: {took:?}");
        }

        proxy.set_mode(FaultMode::PassThrough);
        // Two failures in a row: the server is in backoff for a moment, then used again.
        let value = until_back(&client, "k").await;
        assert!(
            matches!(&value, Some(v) if v.data == "v"),
            "cycle {cycle}: the call after the reset: {value:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_too_large_for_the_server_is_a_server_error() {
    let server = Memcached::builder().max_item_size(1024 * 1024).start();
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client.set("small", "ok").noreply(false).await.unwrap();
    let connections = client
        .stats()
        .await
        .unwrap()
        .single()
        .unwrap()
        .total_connections();

    let huge = vec![b'x'; 2 * 1024 * 1024];
    let error = client.set("huge", &huge).noreply(false).await.unwrap_err();
    match &error {
        Error::Server(message) => assert_eq!(message, "object too large for cache"),
        other => panic!("expected Error::Server, got {other:?}"),
    }
    assert!(error.is_server_error() && !error.is_connection_error());
    // The server skipped the value's bytes; the connection is in step.
    assert_eq!(client.get("small").await.unwrap().unwrap().data, "ok");
    assert_eq!(client.get("huge").await.unwrap(), None);

    // With noreply (the default) the failure is silently lost, as documented.
    assert!(client.set("huge", &huge).await.unwrap());
    assert_eq!(client.get("huge").await.unwrap(), None);
    assert_eq!(client.get("small").await.unwrap().unwrap().data, "ok");
    // Nothing reconnected: the same connection served every call.
    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(stats.total_connections(), connections);
}

/// A value over the client's `max_value_size` fails that call alone: its bytes are skipped as
/// they arrive (never allocated), and the connection carries on (no reconnection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_over_the_clients_max_value_size_fails_without_allocating() {
    let server = Memcached::start();
    let addr = server.addr();
    let writer = client_at(&addr, false);
    let reader = Client::builder()
        .server(&addr)
        .timeout(TIMEOUT)
        .max_value_size(1024)
        .build()
        .unwrap();
    writer
        .set("big", vec![b'b'; 64 * 1024])
        .noreply(false)
        .await
        .unwrap();
    writer
        .set("limit", vec![b'l'; 1024])
        .noreply(false)
        .await
        .unwrap();
    writer
        .set("over", vec![b'o'; 1025])
        .noreply(false)
        .await
        .unwrap();
    let connections = reader
        .stats()
        .await
        .unwrap()
        .single()
        .unwrap()
        .total_connections();

    for cycle in 0..CYCLES {
        let error = reader.get("big").await.unwrap_err();
        match error {
            Error::ValueTooLarge { size, max } => assert_eq!((size, max), (64 * 1024, 1024)),
            ref other => panic!("cycle {cycle}: expected ValueTooLarge, got {other:?}"),
        }
        assert!(
            !error.is_connection_error(),
            "the connection is not at fault"
        );
        // The next call works, on the same connection.
        let next = reader.get("limit").await;
        assert!(
            matches!(&next, Ok(Some(v)) if v.data.len() == 1024),
            "cycle {cycle}: the call after ValueTooLarge failed: {:?}",
            next.map(|v| v.map(|v| v.data.len()))
        );
    }
    let error = reader.get("over").await.unwrap_err();
    assert!(
        matches!(error, Error::ValueTooLarge { size: 1025, .. }),
        "{error:?}"
    );
    let error = reader.get_many(["limit", "big"]).await.unwrap_err();
    assert!(matches!(error, Error::ValueTooLarge { .. }), "{error:?}");
    let error = reader.gets("big").await.unwrap_err();
    assert!(matches!(error, Error::ValueTooLarge { .. }), "{error:?}");
    assert_eq!(reader.get("limit").await.unwrap().unwrap().data.len(), 1024);
    assert_eq!(
        reader
            .stats()
            .await
            .unwrap()
            .single()
            .unwrap()
            .total_connections(),
        connections,
        "no reconnection"
    );
    assert_eq!(
        writer.get("big").await.unwrap().unwrap().data.len(),
        64 * 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_client() {
    let server = Memcached::builder().unix_socket(true).start();
    let path = server.socket_path().expect("a unix socket server");
    let path = path.to_str().expect("a UTF-8 path");
    let client = client_at(path, false);

    assert!(client
        .set("k", "over unix")
        .flags(3)
        .noreply(false)
        .await
        .unwrap());
    let hit = client.get("k").await.unwrap().unwrap();
    assert_eq!((hit.data.as_ref(), hit.flags), (&b"over unix"[..], 3));
    assert_eq!(raw_get(path, "k"), Some((3, b"over unix".to_vec())));
    assert_eq!(client.get_many(["k", "x"]).await.unwrap().len(), 1);
    assert_eq!(
        client.stats().await.unwrap().single().unwrap().pid(),
        server.pid().map(u64::from)
    );
    // The "unix:" form of the address works too.
    let prefixed = client_at(&format!("unix:{path}"), false);
    assert_eq!(prefixed.get("k").await.unwrap().unwrap().data, "over unix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_hanging_connects() {
    // A port where memcached was and nothing listens any more.
    let server = Memcached::start();
    let addr = server.addr();
    server.kill();
    let client = client_at(&addr, false);
    // The first attempts report what happened (the connect was refused, not, say, "the
    // server closed the connection"); once the server is in backoff, calls fail at once with
    // ServerDown, which carries that same cause.
    let refused = |error: &Error| match error {
        Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    };
    let mut down = 0;
    for attempt in 0..200 {
        let (result, took) = timed(client.get("k")).await;
        match result {
            Err(ref error) if refused(error) => assert!(down == 0 || attempt > 2),
            Err(Error::ServerDown { ref last, .. }) if refused(last) => down += 1,
            other => panic!("attempt {attempt}: expected connection refused, got {other:?}"),
        }
        assert!(
            took < Duration::from_millis(100),
            "attempt {attempt}: refused at once: {took:?}"
        );
    }
    assert!(
        down > 100,
        "most calls did not try: {down} of 200 were ServerDown"
    );

    // A listener whose accept queue is full (backlog 0 holds one connection, and nobody
    // accepts): further SYNs are dropped, so connecting hangs until connect_timeout.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let listener: TcpListener = socket.into();
    let target = listener.local_addr().unwrap();
    // The first filler's connect completes (it takes the one place in the queue); the
    // second's may itself hang in SYN_SENT, which is fine.
    let first = std::net::TcpStream::connect(target).unwrap();
    let second = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    second.set_nonblocking(true).unwrap();
    let _ = second.connect(&target.into());
    let connect_limit = Duration::from_millis(200);
    let client = Client::builder()
        .server(target.to_string())
        .connect_timeout(connect_limit)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (result, took) = timed(client.get("k")).await;
    match result {
        Err(Error::Timeout {
            kind: TimeoutKind::Connect,
            after,
        }) => assert_eq!(after, connect_limit),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(
        took >= connect_limit && took < connect_limit + MARGIN,
        "{took:?}"
    );
    drop((first, second));
}
