//! Per-server health: a server that fails is retried with exponential backoff and jitter,
//! calls meanwhile fail at once with `Error::ServerDown` (reads are misses with
//! `ignore_exc`), one connect attempt is in flight at a time, and one log line marks each
//! change of state, not each call.

use std::time::{Duration, Instant};

use memcache_core::{Client, Error, Protocol};
use memcache_tests::{eventually, Answer, LogCapture, ScriptedServer};
use tracing::Level;

fn client(addr: &str, ignore_exc: bool) -> Client {
    Client::builder()
        .server(addr)
        .timeout(Duration::from_millis(250))
        .connect_timeout(Duration::from_millis(250))
        .ignore_exc(ignore_exc)
        .build()
        .expect("client builds")
}

/// Answers like a memcached with nothing stored.
fn empty_server(_: usize, request: &memcache_tests::Request) -> Answer {
    match request.command() {
        "get" => Answer::text("END\r\n"),
        "mg" => Answer::text(format!("EN{}\r\n", request.opaque())),
        "mn" => Answer::text("MN\r\n"),
        "ms" => Answer::text(format!("HD{}\r\n", request.opaque())),
        "set" => Answer::text("STORED\r\n"),
        "version" => Answer::text("VERSION 1.6.18\r\n"),
        _ => Answer::text("ERROR\r\n"),
    }
}

/// The log lines the client wrote about `server` at `level`.
fn lines_about(logs: &LogCapture, level: Level, server: &ScriptedServer) -> Vec<String> {
    let addr = format!("server={}", server.addr());
    logs.at(level, "memcache_core")
        .into_iter()
        .filter(|line| line.text.contains(&addr))
        .map(|line| line.text)
        .collect()
}

/// Against a listener that accepts and hangs up at once, 1,000 calls in one second cause at
/// most 20 connection attempts (they used to open one connection each); all but the first
/// few fail at once with `ServerDown`, which says when the next attempt is; the server is
/// used again once it is back; and the whole episode is two log lines at warn and info.
#[tokio::test]
async fn a_failing_server_is_retried_with_backoff_not_on_every_call() {
    let logs = LogCapture::global();
    let server = ScriptedServer::start(empty_server);
    server.set_hang_up_on_accept(true);
    let client = client(&server.addr(), false);

    let started = Instant::now();
    let mut down = 0;
    // One call a millisecond, for a second.
    let mut pace = tokio::time::interval(Duration::from_millis(1));
    for call in 0..1_000 {
        pace.tick().await;
        match client.get("k").await {
            Err(Error::ServerDown {
                ref server,
                failures,
                retry_in,
                ref last,
            }) => {
                assert!(
                    failures >= 2 && retry_in <= Duration::from_secs(5),
                    "{call}"
                );
                assert!(last.is_connection_error() && !server.is_empty());
                down += 1;
            }
            Err(error) => assert!(error.is_connection_error(), "{call}: {error:?}"),
            Ok(hit) => panic!("{call}: {hit:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    let attempts = server.connections();
    assert!(
        attempts <= 20,
        "{attempts} connection attempts for 1,000 calls"
    );
    assert!(down >= 980, "{down} of 1,000 calls were ServerDown");
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_server_down() && error.is_connection_error());
    assert!(error.to_string().contains("next attempt in"), "{error}");

    server.set_hang_up_on_accept(false);
    let hit = eventually(
        "the server is used again",
        Duration::from_secs(10),
        || async { client.get("k").await.ok() },
    )
    .await;
    assert_eq!(hit, None);
    assert_eq!(client.get("k").await.unwrap(), None);
    assert_eq!(
        lines_about(logs, Level::WARN, &server).len(),
        1,
        "one warning for the failure: {:?}",
        lines_about(logs, Level::WARN, &server)
    );
    assert_eq!(
        lines_about(logs, Level::INFO, &server).len(),
        1,
        "one line for the recovery"
    );
}

/// While the server is in backoff, reads under `ignore_exc` are misses at once; writes
/// still report the error.
#[tokio::test]
async fn in_backoff_reads_are_misses_with_ignore_exc() {
    let server = ScriptedServer::hanging_up();
    let client = client(&server.addr(), true);
    for _ in 0..3 {
        let _ = client.get("k").await;
    }
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(client.get("k").await.unwrap(), None);
        assert!(client.get_many(["a", "b"]).await.unwrap().is_empty());
        assert!(client.stats().await.unwrap().single().unwrap().is_empty());
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "misses at once"
    );
    let error = client.set("k", "v").noreply(false).await.unwrap_err();
    assert!(error.is_server_down(), "{error:?}");
    let error = client.set("k", "v").await.unwrap_err();
    assert!(error.is_server_down(), "a noreply write too: {error:?}");
}

/// Many callers at once while the connection is being opened (here: a server that accepts
/// but never answers the protocol probe) wait for that one attempt: one connection, not one
/// per caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connect_attempt_at_a_time() {
    let server = ScriptedServer::start(|_, _| Answer::Nothing);
    let client = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Auto)
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.get(format!("k{i}")).await })
        })
        .collect();
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
    }
    assert_eq!(server.connections(), 1);
}

/// A failed connect is retried at once the first time (a lost connection is usually just
/// that), and the server's error reaches the caller as it is; only from the second failure
/// in a row do calls fail without trying.
#[tokio::test]
async fn the_first_failure_is_retried_at_once() {
    let server = ScriptedServer::start(empty_server);
    let client = client(&server.addr(), false);
    assert_eq!(client.get("k").await.unwrap(), None);
    server.set_hang_up_on_accept(true);
    server.hang_up();
    let first = client.get("k").await.unwrap_err();
    assert!(!first.is_server_down(), "{first:?}");
    server.set_hang_up_on_accept(false);
    // The connection that hung up had answered before: one failure, retried at once.
    assert_eq!(client.get("k").await.unwrap(), None);
}
