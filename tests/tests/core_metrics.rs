//! The per-server metrics of the `metrics` feature, read through a recording test recorder:
//! each counter, gauge and histogram moves when, and only when, it should.

use std::future::IntoFuture;
use std::time::Duration;

use memcache_core::{Client, Protocol};
use memcache_tests::{eventually, Memcached, TestRecorder};

fn build(recorder: &TestRecorder, servers: &[String], protocol: Protocol) -> Client {
    recorder.capture(|| {
        Client::builder()
            .servers(servers)
            .protocol(protocol)
            .timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300))
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(10))
            .build()
            .expect("client builds")
    })
}

/// Everything the client records, summed over its servers and labels.
const EVERY_COUNTER: [&str; 8] = [
    "memcache_requests_total",
    "memcache_errors_total",
    "memcache_timeouts_total",
    "memcache_connections_opened_total",
    "memcache_connect_failures_total",
    "memcache_bytes_read_total",
    "memcache_bytes_written_total",
    "memcache_noreply_failures_total",
];

fn totals(recorder: &TestRecorder) -> Vec<u64> {
    EVERY_COUNTER
        .iter()
        .map(|name| recorder.counter(name, &[]))
        .collect()
}

#[tokio::test]
async fn requests_latency_bytes_and_connections_move_with_the_commands() {
    let server = Memcached::start();
    let addr = server.addr();
    let recorder = TestRecorder::new();
    let client = build(&recorder, std::slice::from_ref(&addr), Protocol::Meta);
    let at = [("server", addr.as_str())];

    // Built: every metric is registered, nothing has moved, the server counts as up.
    for name in EVERY_COUNTER {
        assert!(recorder.registered(name), "{name} is registered");
    }
    assert!(recorder.registered("memcache_request_duration_seconds"));
    assert_eq!(totals(&recorder), [0; 8]);
    assert_eq!(recorder.gauge("memcache_server_up", &at), 1.0);
    assert_eq!(recorder.gauge("memcache_server_dead", &at), 0.0);
    assert_eq!(recorder.gauge("memcache_requests_in_flight", &at), 0.0);

    client.set("k", "value").noreply(false).await.expect("set");
    assert!(client.get("k").await.expect("get").is_some());
    assert!(client.get("missing").await.expect("get").is_none());
    client.set("quiet", "v").await.expect("noreply set");

    let requests = |command: &str| {
        recorder.counter(
            "memcache_requests_total",
            &[("server", &addr), ("command", command)],
        )
    };
    assert_eq!(requests("set"), 2);
    assert_eq!(requests("get"), 2);
    assert_eq!(requests("delete"), 0);
    assert_eq!(recorder.counter("memcache_requests_total", &at), 4);
    let latency = |command: &str| {
        recorder.histogram(
            "memcache_request_duration_seconds",
            &[("server", &addr), ("command", command)],
        )
    };
    assert_eq!(latency("get").len(), 2);
    assert!(latency("get").iter().all(|s| *s > 0.0 && *s < 1.0));
    assert_eq!(latency("set").len(), 2);
    assert_eq!(
        recorder.counter("memcache_connections_opened_total", &at),
        1
    );
    assert_eq!(recorder.counter("memcache_errors_total", &at), 0);
    assert_eq!(recorder.gauge("memcache_requests_in_flight", &at), 0.0);
    // `mg k v f t O....\r\n` and friends: more than nothing, less than a kilobyte.
    let (read, written) = (
        recorder.counter("memcache_bytes_read_total", &at),
        recorder.counter("memcache_bytes_written_total", &at),
    );
    assert!(read > 20 && read < 1024, "read {read}");
    assert!(written > 40 && written < 1024, "written {written}");

    // An illegal key is refused before anything is sent: nothing moves.
    let before = totals(&recorder);
    assert!(client.get("bad key").await.is_err());
    assert_eq!(totals(&recorder), before);
}

#[tokio::test]
async fn errors_by_kind_timeouts_and_in_flight_requests() {
    let server = Memcached::start();
    let addr = server.addr();
    let recorder = TestRecorder::new();
    let client = build(&recorder, std::slice::from_ref(&addr), Protocol::Meta);
    let errors = |kind: &str| recorder.counter("memcache_errors_total", &[("kind", kind)]);

    client.set("text", "abc").noreply(false).await.expect("set");
    assert!(client.incr("text", 1).await.is_err(), "incr of text");
    assert_eq!(errors("client_error"), 1);
    assert_eq!(recorder.counter("memcache_errors_total", &[]), 1);
    assert_eq!(recorder.counter("memcache_timeouts_total", &[]), 0);

    // A stalled server: the call times out (counted as a timeout), and while it waits it
    // is in flight; a future dropped before its reply leaves the gauge too.
    server.pause();
    let mut parked = Box::pin(client.get("text").into_future());
    assert!(futures_poll_once(&mut parked).await.is_none());
    assert_eq!(recorder.gauge("memcache_requests_in_flight", &[]), 1.0);
    drop(parked);
    assert_eq!(recorder.gauge("memcache_requests_in_flight", &[]), 0.0);
    let error = client.get("text").await.expect_err("times out");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(errors("timeout"), 1);
    assert_eq!(recorder.counter("memcache_timeouts_total", &[]), 1);
    server.resume();
    eventually(
        "the server answers again",
        Duration::from_secs(10),
        || async { client.get("text").await.ok() },
    )
    .await;
    assert_eq!(recorder.gauge("memcache_requests_in_flight", &[]), 0.0);
    assert_eq!(
        recorder.counter("memcache_errors_total", &[("kind", "io")]),
        0
    );
}

/// Polls `future` once: `Some` if it finished.
async fn futures_poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut *future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn a_failed_noreply_write_is_counted() {
    let server = Memcached::builder().max_item_size(1024 * 1024).start();
    let recorder = TestRecorder::new();
    let client = build(&recorder, &[server.addr()], Protocol::Meta);
    let too_large = vec![b'x'; 2 * 1024 * 1024];
    client.set("big", &too_large).await.expect("handed over");
    client.set("small", "v").await.expect("handed over");
    eventually(
        "the failure is reported",
        Duration::from_secs(5),
        || async {
            client.version().await.ok();
            (client.noreply_errors() == 1).then_some(())
        },
    )
    .await;
    assert_eq!(recorder.counter("memcache_noreply_failures_total", &[]), 1);
    assert_eq!(recorder.counter("memcache_errors_total", &[]), 0);
}

#[tokio::test]
async fn a_down_server_is_counted_as_such_and_comes_back() {
    let server = Memcached::start();
    let addr = server.addr();
    let recorder = TestRecorder::new();
    let client = build(&recorder, std::slice::from_ref(&addr), Protocol::Meta);
    let at = [("server", addr.as_str())];
    client.version().await.expect("version");
    assert_eq!(
        recorder.counter("memcache_connections_opened_total", &at),
        1
    );

    server.kill();
    assert!(client.get("k").await.is_err());
    eventually(
        "the server is seen down",
        Duration::from_secs(10),
        || async {
            let _ = client.get("k").await;
            (recorder.counter("memcache_connect_failures_total", &at) >= 1).then_some(())
        },
    )
    .await;
    assert_eq!(recorder.gauge("memcache_server_up", &at), 0.0);
    assert!(recorder.counter("memcache_errors_total", &at) >= 2);

    server.restart();
    eventually(
        "the server answers again",
        Duration::from_secs(10),
        || async { client.get("k").await.ok() },
    )
    .await;
    assert_eq!(recorder.gauge("memcache_server_up", &at), 1.0);
    assert_eq!(
        recorder.counter("memcache_connections_opened_total", &at),
        2
    );
}

#[tokio::test]
async fn several_servers_are_labelled_apart_and_a_dead_one_says_so() {
    let servers: Vec<Memcached> = (0..2).map(|_| Memcached::start()).collect();
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let recorder = TestRecorder::new();
    let client = recorder.capture(|| {
        Client::builder()
            .servers(&addrs)
            .timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300))
            .retry_attempts(0)
            .dead_timeout(Duration::from_secs(60))
            .build()
            .expect("cluster builds")
    });
    let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    client.get_many(&keys).await.expect("get_many");
    for addr in &addrs {
        let labels = [("server", addr.as_str()), ("command", "get_many")];
        assert_eq!(
            recorder.counter("memcache_requests_total", &labels),
            1,
            "{addr}"
        );
    }
    client.stats().await.expect("stats");
    assert_eq!(
        recorder.counter("memcache_requests_total", &[("command", "stats")]),
        2
    );

    servers[1].kill();
    let dead = [("server", addrs[1].as_str())];
    eventually("the server is dead", Duration::from_secs(10), || async {
        let _ = client.get_many(&keys).await;
        (recorder.gauge("memcache_server_dead", &dead) == 1.0).then_some(())
    })
    .await;
    assert_eq!(recorder.gauge("memcache_server_up", &dead), 0.0);
    let alive = [("server", addrs[0].as_str())];
    assert_eq!(recorder.gauge("memcache_server_up", &alive), 1.0);
    assert_eq!(recorder.gauge("memcache_server_dead", &alive), 0.0);
    assert_eq!(recorder.counter("memcache_errors_total", &alive), 0);
}
