//! What happens to requests when a connection ends under them: those never written go out
//! on the next connection, each still with its own caller and deadline, in the order they
//! were queued; callers waiting for room move on; a connection is not taken for stalled
//! after an idle spell; and no reply sits unread.
//!
//! The scripted server stops reading on its first connection, so that requests queue up
//! behind a write it does not take; `hang_up` then ends the connection.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use memcache_core::{Client, Error, Protocol};
use memcache_tests::{eventually, Answer, Memcached, ScriptedServer};

/// Polls `future` once (a command is handed to the connection at its first poll).
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// More than a socket holds: the connection's writer is stuck on it while the server does
/// not read.
fn big_value() -> Vec<u8> {
    vec![b'x'; 32 << 20]
}

/// Waits until the server has read a request whose line starts with `line`.
async fn server_read(server: &ScriptedServer, line: &str) {
    eventually(
        &format!("the server read {line:?}"),
        Duration::from_secs(5),
        || async {
            server
                .requests()
                .iter()
                .any(|request| request.line.starts_with(line.as_bytes()))
                .then_some(())
        },
    )
    .await;
}

/// A connection whose writer is stuck: a `get a` written (after which the first connection's
/// server stops reading; `read_line` is how the server sees it), then a value larger than
/// the socket holds, taken by the writer. What is queued from then on is not written. The
/// two futures are kept alive by the caller.
async fn stick_the_writer<'a>(
    client: &'a Client,
    server: &ScriptedServer,
    read_line: &str,
    big: &'a [u8],
) -> (
    impl Future<Output = Result<Option<memcache_core::Value>, Error>> + Unpin + 'a,
    impl Future + Unpin + 'a,
) {
    let mut written = client.get("a").into_future();
    assert!(poll_once(&mut written).await.is_pending());
    server_read(server, read_line).await;
    let mut stuck = client.set("b", big).noreply(false).into_future();
    assert!(poll_once(&mut stuck).await.is_pending());
    until_the_writer_is_stuck(client).await;
    (written, stuck)
}

/// Waits until the connection's writer has taken the stuck write from the queue (so that
/// what is queued from now on waits behind it, unwritten): a noreply marker is handed over
/// at once only then.
async fn until_the_writer_is_stuck(client: &Client) {
    eventually(
        "the writer took the big value",
        Duration::from_secs(5),
        || async {
            let mut marker = client.set("marker", "1").into_future();
            matches!(poll_once(&mut marker).await, Poll::Ready(Ok(true))).then_some(())
        },
    )
    .await;
}

/// A request whose caller gave up before it was written does not go out on the next
/// connection: the caller behind it gets its own reply, not the given-up one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_up_request_does_not_take_the_next_callers_reply() {
    let server = ScriptedServer::start(|connection, request| {
        match (
            connection,
            request.command(),
            request.words().get(1).copied(),
        ) {
            (0, "get", _) => Answer::StopReading,
            (_, "add", Some("x")) => Answer::text("NOT_STORED\r\n"),
            (_, "add", Some("y")) => Answer::text("STORED\r\n"),
            _ => Answer::Nothing,
        }
    });
    let client = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Classic)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let big = big_value();
    let (written, _stuck) = stick_the_writer(&client, &server, "get a", &big).await;
    // X is queued, never written, and its caller gives up; Y is queued behind it.
    let mut given_up = client.add("x", "1").noreply(false).into_future();
    assert!(poll_once(&mut given_up).await.is_pending());
    drop(given_up);
    let mut behind = client.add("y", "1").noreply(false).into_future();
    assert!(poll_once(&mut behind).await.is_pending());
    server.hang_up();
    assert!(behind.await.unwrap(), "y's own reply: STORED");
    assert!(written.await.unwrap_err().is_connection_error());
    let adds: Vec<String> = server
        .requests()
        .iter()
        .map(|request| String::from_utf8_lossy(&request.line).into_owned())
        .filter(|line| line.starts_with("add"))
        .collect();
    assert_eq!(adds, ["add y 0 0 1"], "the given-up add was not sent");
}

/// Carried to a next connection that never finishes opening (its protocol probe is not
/// answered), a request still fails at its own deadline, not the connect's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carried_request_keeps_its_deadline() {
    let server = ScriptedServer::start(|connection, request| {
        match (connection, request.command()) {
            (0, "mn") => Answer::text("MN\r\n"),
            (0, "version") => Answer::text("VERSION 1.6.18\r\n"),
            (0, _) => Answer::StopReading,
            _ => Answer::Nothing, // the next connection's probe is never answered
        }
    });
    let timeout = Duration::from_millis(300);
    let client = Client::builder()
        .server(server.addr())
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    client.version().await.unwrap().single().unwrap(); // connected, the probe answered
    let big = big_value();
    let _stuck = stick_the_writer(&client, &server, "mg a", &big).await;
    let started = Instant::now();
    let mut carried = client.get("c").into_future();
    assert!(poll_once(&mut carried).await.is_pending());
    server.hang_up();
    let result = carried.await;
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(
        took < timeout * 2,
        "waited {took:?} for a {timeout:?} timeout"
    );
}

/// A caller waiting for room in a full queue is woken when the connection ends, and its
/// request goes out on the next one at once (not at its deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_waiters_move_on_when_the_connection_ends() {
    let server =
        ScriptedServer::start(
            |connection, request| match (connection, request.command()) {
                (_, "mn") => Answer::text("MN\r\n"),
                (_, "version") => Answer::text("VERSION 1.6.18\r\n"),
                (0, _) => Answer::StopReading,
                (_, "mg") => Answer::text(format!("EN{}\r\n", request.opaque())),
                _ => Answer::Nothing,
            },
        );
    let timeout = Duration::from_secs(2);
    let client = Client::builder()
        .server(server.addr())
        .timeout(timeout)
        .build()
        .unwrap();
    client.version().await.unwrap().single().unwrap();
    let big = big_value();
    let _stuck = stick_the_writer(&client, &server, "mg a", &big).await;
    // Over the high-water mark: the callers after it wait for room.
    assert!(client.set("c", vec![b'y'; 5 << 20]).await.unwrap());
    let started = Instant::now();
    let mut waiting = client.get("d").into_future();
    assert!(poll_once(&mut waiting).await.is_pending());
    server.hang_up();
    assert_eq!(waiting.await.unwrap(), None);
    let took = started.elapsed();
    assert!(took < timeout / 2, "woken after {took:?}");
}

/// Every reply takes a while and the connection idles between calls: a call made just
/// before the driver's timer ticks (after an idle spell) is not taken for a stalled
/// connection; no call fails, and one connection serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_spell_is_not_a_stall() {
    let server = ScriptedServer::start(|_, request| {
        std::thread::sleep(Duration::from_millis(120)); // a slow server
        match request.command() {
            "get" => Answer::text("END\r\n"),
            _ => Answer::text("ERROR\r\n"),
        }
    });
    let timeout = Duration::from_millis(400);
    let client = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Classic)
        .timeout(timeout)
        .build()
        .unwrap();
    for call in 0..8 {
        assert_eq!(client.get("k").await.unwrap(), None, "call {call}");
        // An idle spell longer than the timer's period.
        tokio::time::sleep(timeout + timeout / 8).await;
    }
    assert_eq!(server.connections(), 1);
}

/// Tasks doing gets one after another, some with noreply sets among them, on one client:
/// no call ever waits long (a reply left unread would wait for the driver's next timer
/// tick, up to the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_is_left_unread() {
    let server = Memcached::start();
    let timeout = Duration::from_secs(3);
    let client = Client::builder()
        .server(server.addr())
        .timeout(timeout)
        .build()
        .unwrap();
    client.set("k", "v").noreply(false).await.unwrap();
    let until = Instant::now() + Duration::from_secs(4);
    let tasks: Vec<_> = (0..6)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut calls, mut worst) = (0u64, Duration::ZERO);
                while Instant::now() < until {
                    let started = Instant::now();
                    if task % 3 == 0 && calls % 4 == 0 {
                        assert!(client.set("q", "w").await.unwrap());
                    }
                    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
                    worst = worst.max(started.elapsed());
                    calls += 1;
                    if calls % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                (calls, worst)
            })
        })
        .collect();
    for task in tasks {
        let (calls, worst) = task.await.unwrap();
        assert!(calls > 0);
        assert!(worst < timeout / 3, "a call took {worst:?}");
    }
}

/// A client outlives the runtime its connection's task ran on: a connection whose task
/// was dropped with that runtime while it connected is closed, and the next runtime's
/// calls open a new one (they do not wait for a task that is gone).
#[test]
fn a_client_outlives_the_runtime_its_connection_ran_on() {
    let server = Memcached::start();
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // Paused, the server accepts and answers nothing: the connection's task waits for
    // the protocol probe's answer when its runtime goes.
    server.pause();
    let first = runtime();
    first.block_on(async {
        let waited = tokio::time::timeout(Duration::from_millis(50), client.get("k")).await;
        assert!(waited.is_err(), "still connecting");
    });
    drop(first);
    server.resume();
    let started = Instant::now();
    runtime().block_on(async {
        client.set("k", "2").noreply(false).await.unwrap();
        assert_eq!(client.get("k").await.unwrap().unwrap().data, "2");
    });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
