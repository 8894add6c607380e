//! Limits: every setting works at its extreme or is refused by `build()`; sizes from the
//! network are checked arithmetic (nothing they say panics or is allocated); a reply holds no
//! more than was asked; a full write queue wakes its waiters when it drains; a request
//! whose caller has gone before it was written is not written.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use memcache_core::{Client, Error, Protocol, MAX_VALUE_SIZE_LIMIT};
use memcache_tests::{
    eventually, Answer, FaultMode, FaultProxy, Memcached, Request, ScriptedServer,
};

fn refused(builder: memcache_core::ClientBuilder, what: &str) {
    match builder.build() {
        Err(Error::IllegalInput(_)) => {}
        other => panic!("{what}: expected IllegalInput, got {other:?}"),
    }
}

#[test]
fn settings_out_of_range_are_refused_by_build() {
    let base = || Client::builder().server("127.0.0.1:11211");
    refused(base().timeout(Duration::ZERO), "timeout 0");
    refused(base().connect_timeout(Duration::ZERO), "connect_timeout 0");
    refused(
        base().max_value_size(MAX_VALUE_SIZE_LIMIT + 1),
        "max_value_size",
    );
    refused(base().max_value_size(usize::MAX), "max_value_size MAX");
    refused(base().tcp_keepalive(Some(Duration::ZERO)), "keepalive 0");
    refused(
        base().tcp_keepalive(Some(Duration::from_millis(999))),
        "keepalive < 1 s",
    );
    refused(
        base().tcp_keepalive(Some(Duration::from_secs(32_768))),
        "keepalive",
    );
    refused(base().tcp_keepalive(Some(Duration::MAX)), "keepalive MAX");
    refused(
        base().reconnect_backoff(Duration::from_secs(1), Duration::from_millis(1)),
        "backoff max below initial",
    );
    let error = base().timeout(Duration::ZERO).build().unwrap_err();
    assert!(error.to_string().contains("timeout"), "{error}");
}

/// Every setting at its largest accepted value, against a real server: the commands work
/// (`Duration::MAX` means no limit) and nothing panics, in the caller or in the spawned
/// driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_at_their_extremes_work() {
    let server = Memcached::start();
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .max_value_size(MAX_VALUE_SIZE_LIMIT)
        .tcp_keepalive(Some(Duration::from_secs(32_767)))
        .reconnect_backoff(Duration::MAX, Duration::MAX)
        .build()
        .unwrap();
    client.set("k", "v").noreply(false).await.unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
    assert_eq!(client.get_many(["k", "x"]).await.unwrap().len(), 1);
    assert!(!client.stats().await.unwrap().single().unwrap().is_empty());
    let tiny = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_nanos(1))
        .connect_timeout(Duration::from_nanos(1))
        .max_value_size(0)
        .reconnect_backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    // A nanosecond is shorter than any round trip, and no value fits in zero bytes: each
    // call fails, cleanly (a timeout, the connect's, or the value too large).
    for _ in 0..10 {
        match tiny.get("k").await {
            Err(Error::ValueTooLarge { size: 1, max: 0 }) => {}
            Err(error) => assert!(error.is_connection_error(), "{error:?}"),
            Ok(hit) => panic!("{hit:?}"),
        }
    }
}

/// A server that announces values of absurd sizes to a client that accepts the largest:
/// nothing overflows, panics or is allocated; the call fails with a typed error, and the
/// next call works on a new connection.
#[tokio::test]
async fn absurd_value_sizes_neither_panic_nor_allocate() {
    for size in [
        "18446744073709551582",
        "18446744073709551614",
        "18446744073709551615",
        "4611686018427387904",
    ] {
        let header = format!("VALUE k 0 {size}\r\nabc");
        let server = ScriptedServer::start(move |connection, request: &Request| {
            match (connection, request.command()) {
                (0, "get") => Answer::text(header.clone()),
                (0, "version") => Answer::Close,
                (_, "get") => Answer::text("END\r\n"),
                _ => Answer::text("ERROR\r\n"),
            }
        });
        let client = Client::builder()
            .server(server.addr())
            .protocol(Protocol::Classic)
            .max_value_size(MAX_VALUE_SIZE_LIMIT)
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let error = client.get("k").await.unwrap_err();
        assert!(
            error.is_timeout() || matches!(error, Error::ValueTooLarge { .. }),
            "{size}: {error:?}"
        );
        // The server closes the connection (on `version`); the client notices and carries on.
        let _ = client.version().await;
        assert_eq!(client.get("k").await.unwrap(), None, "{size}");
    }
}

/// A client of a scripted server, speaking `protocol`.
fn scripted_client(server: &ScriptedServer, protocol: Protocol) -> Client {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A reply that holds more than its request asked for cannot be its: more values than
/// keys, more stats lines than any memcached sends, more failure lines than a run of quiet
/// requests can have. Each closes the connection (the next call reconnects); nothing piles
/// up.
#[tokio::test]
async fn replies_hold_no_more_than_was_asked() {
    let many_values: String = (0..3).map(|_| "VALUE k 0 1\r\nx\r\n").collect();
    let server =
        ScriptedServer::start(
            move |connection, request: &Request| match request.command() {
                "get" if connection == 0 => Answer::text(format!("{many_values}END\r\n")),
                "get" => Answer::text("END\r\n"),
                _ => Answer::text("ERROR\r\n"),
            },
        );
    let client = scripted_client(&server, Protocol::Classic);
    let error = client.get("k").await.unwrap_err();
    assert!(
        error.to_string().contains("more values than keys"),
        "{error}"
    );
    assert_eq!(client.get("k").await.unwrap(), None, "on a new connection");
    assert_eq!(server.connections(), 2);

    let endless_stats: String = (0..100_001).map(|i| format!("STAT s{i} 1\r\n")).collect();
    let server =
        ScriptedServer::start(
            move |connection, request: &Request| match request.command() {
                "stats" if connection == 0 => Answer::text(format!("{endless_stats}END\r\n")),
                "stats" => Answer::text("STAT pid 1\r\nEND\r\n"),
                _ => Answer::text("ERROR\r\n"),
            },
        );
    let client = scripted_client(&server, Protocol::Classic);
    let error = client.stats().await.unwrap().single().unwrap_err();
    assert!(error.to_string().contains("too many lines"), "{error}");
    assert_eq!(
        client.stats().await.unwrap().single().unwrap().pid(),
        Some(1)
    );
    assert_eq!(server.connections(), 2);

    // Quiet (noreply) meta requests: at most one line each before the `mn` that ends them.
    let server = ScriptedServer::start(|connection, request: &Request| match request.command() {
        "ms" if connection == 0 => {
            let opaque = request.opaque();
            Answer::text(format!("NS{opaque}\r\nNS{opaque}\r\n"))
        }
        "ms" => Answer::Nothing,
        "mn" => Answer::text("MN\r\n"),
        "mg" => Answer::text(format!("EN{}\r\n", request.opaque())),
        _ => Answer::text("ERROR\r\n"),
    });
    let client = scripted_client(&server, Protocol::Meta);
    assert!(client.add("k", "v").await.unwrap(), "noreply: handed over");
    // The next request follows the run's `mn`: its reply comes after the run's report,
    // which holds one line too many: the connection is closed.
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_connection_error(), "{error:?}");
    assert_eq!(client.get("k").await.unwrap(), None);
    assert_eq!(server.connections(), 2);
}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// A caller waiting for room in a full write queue (the server stopped reading) is woken as
/// soon as the queue drains, not at a polling interval or at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_queue_wakes_its_waiters_when_it_drains() {
    let server = Memcached::start();
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    client.set("k", "v").noreply(false).await.unwrap();
    let big = vec![b'x'; 512 * 1024];

    server.pause();
    // Noreply sets are handed over at once until the queue is full.
    let mut waiting = None;
    for i in 0..400 {
        let mut set = client.set(format!("big{i}"), &big[..]).into_future();
        if poll_once(&mut set).await.is_pending() {
            waiting = Some(set);
            break;
        }
    }
    let waiting = waiting.expect("the queue filled");
    server.resume();
    let resumed = Instant::now();
    assert!(waiting.await.unwrap());
    let took = resumed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "woken {took:?} after the resume"
    );
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
}

/// Requests whose callers gave up while the connection was still opening are not written
/// when it opens (memcached never sees them); a noreply write queued meanwhile is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_caller_has_gone_are_not_written() {
    let server = Memcached::builder().arg("-vv").start();
    let proxy = FaultProxy::start(&server.addr());
    // The protocol probe crawls through the proxy (the proxy holds it 1.5 s; its answer,
    // after the proxy is back to passing traffic through, comes at once): the connection
    // takes a while to open.
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(1500)));
    let client = Client::builder()
        .server(proxy.addr())
        .protocol(Protocol::Auto)
        .timeout(Duration::from_millis(150))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0..5 {
        let error = client.incr(format!("gone{i}"), 1).await.unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    }
    // A read waits for the probe's answer (a `version` queued behind it), and gives up too.
    let error = client.get("gone-get").await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        client.set("written", "yes").await.unwrap(),
        "noreply: handed over"
    );
    proxy.set_mode(FaultMode::PassThrough);
    // Once the connection opens, what is still wanted is written: the noreply set.
    let log = eventually(
        "the queued write went out",
        Duration::from_secs(5),
        || async {
            let log = server.stderr();
            log.contains("set written").then_some(log)
        },
    )
    .await;
    assert!(
        !log.contains("gone") && log.matches("version").count() == 1,
        "a request whose caller had gone was written (the one `version` is the test \
         fixture's, when the server started):\n{log}"
    );
    assert_eq!(client.get("written").await.unwrap().unwrap().data, "yes");
    assert_eq!(proxy.connections(), 1);
}
