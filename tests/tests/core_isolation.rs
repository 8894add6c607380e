//! Sharing one connection is as safe as one connection per caller: what one caller does, or
//! what happens to its request, never delays or fails another (the crate docs, *Pipelining*;
//! DESIGN §4). Each test reproduces, through the public API, a way it used to go wrong:
//! a parked future, an overdue request, an oversized value, a reply that is not its
//! request's, and a request failed by a connection it was never written to.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use memcache_core::{Client, Error, Protocol};
use memcache_tests::{eventually, Answer, FaultMode, FaultProxy, Memcached, ScriptedServer};

fn client(addr: &str, timeout: Duration) -> Client {
    Client::builder()
        .server(addr)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("client builds")
}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Connections the server has accepted since it started.
async fn total_connections(client: &Client) -> u64 {
    let stats = client
        .stats()
        .await
        .expect("stats")
        .single()
        .expect("stats");
    stats.total_connections().expect("total_connections")
}

/// A `get` polled once on an idle connection (so that its caller would read the reply
/// itself) and then kept alive unpolled holds nothing others need: the other callers' gets
/// are answered at once, from this task and from others, and the parked future, polled at
/// last, finds its own reply kept for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_future_stalls_nobody() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let timeout = Duration::from_secs(2);
    let client = client(&proxy.addr(), timeout);
    client.set("parked", "mine").noreply(false).await.unwrap();
    client.set("other", "theirs").noreply(false).await.unwrap();
    // Every reply takes a little while, so the parked caller's reply is surely not in
    // when it is first polled.
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(10)));

    for round in 0..5 {
        let mut parked = client.get("parked").into_future();
        assert!(poll_once(&mut parked).await.is_pending(), "round {round}");
        for _ in 0..3 {
            let started = Instant::now();
            let hit = client.get("other").await.unwrap().unwrap();
            assert_eq!(hit.data, "theirs");
            assert!(
                started.elapsed() < timeout / 4,
                "round {round}: {:?}",
                started.elapsed()
            );
        }
        let other = client.clone();
        let from_another_task = tokio::spawn(async move { other.get("other").await });
        let hit = from_another_task.await.unwrap().unwrap().unwrap();
        assert_eq!(hit.data, "theirs");
        assert_eq!(parked.await.unwrap().unwrap().data, "mine", "round {round}");
    }
}

/// The same with many futures: each polled once, then awaited in reverse order (a slow
/// `buffered(n)` consumer): every one gets its own value, promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_awaited_out_of_order_each_get_their_own_value() {
    let server = Memcached::start();
    let client = client(&server.addr(), Duration::from_secs(2));
    for i in 0..32 {
        client
            .set(format!("k{i}"), format!("v{i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut futures: Vec<_> = (0..32)
        .map(|i| client.get(format!("k{i}")).into_future())
        .collect();
    let mut done: Vec<_> = Vec::new();
    for future in &mut futures {
        done.push(match poll_once(future).await {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        });
    }
    for (i, (future, done)) in futures.into_iter().zip(done).enumerate().rev() {
        let result = match done {
            Some(result) => result,
            None => future.await,
        };
        assert_eq!(result.unwrap().unwrap().data, format!("v{i}"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

/// A caller past its deadline fails alone with `Timeout`: a request queued behind it on the
/// same connection, still within its own deadline, gets its reply once the server answers,
/// and the connection is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_request_fails_alone() {
    let server = Memcached::start();
    let timeout = Duration::from_millis(400);
    let client = client(&server.addr(), timeout);
    client.set("k", "v").noreply(false).await.unwrap();
    let connections = total_connections(&client).await;

    server.pause();
    let start = tokio::time::Instant::now();
    let early = tokio::spawn({
        let client = client.clone();
        async move { (client.get("k").await, start.elapsed()) }
    });
    tokio::time::sleep_until(start + timeout / 2).await; // the scenario's timeline
    let late = tokio::spawn({
        let client = client.clone();
        async move { client.get("k").await }
    });
    tokio::time::sleep_until(start + timeout + timeout / 8).await;
    server.resume();

    let (result, took) = early.await.unwrap();
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(took >= timeout && took < timeout * 2, "{took:?}");
    let hit = late
        .await
        .unwrap()
        .expect("answered within its own deadline");
    assert_eq!(hit.unwrap().data, "v");
    assert_eq!(
        total_connections(&client).await,
        connections,
        "the connection was kept"
    );
}

/// A slow server (every reply late, the connection still making progress) makes callers
/// time out, each alone; it never turns into failing every request and reconnecting, as it
/// did when the connection was closed whenever its oldest request was overdue: one
/// connection serves the whole run, and calls keep succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_is_not_a_loop_of_failing_everything_and_reconnecting() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let client = client(&proxy.addr(), Duration::from_millis(300));
    client.set("k", "v").noreply(false).await.unwrap();
    // Each chunk, either way, waits 130 ms in the proxy: requests pile up behind each other.
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(130)));

    let until = Instant::now() + Duration::from_secs(2);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut ok, mut timed_out) = (0, 0);
                while Instant::now() < until {
                    match client.get("k").await {
                        Ok(Some(hit)) if hit.data == "v" => ok += 1,
                        Err(Error::Timeout { .. }) => timed_out += 1,
                        other => panic!("{other:?}"),
                    }
                }
                (ok, timed_out)
            })
        })
        .collect();
    let (mut ok, mut timed_out) = (0, 0);
    for task in tasks {
        let (o, t) = task.await.unwrap();
        (ok, timed_out) = (ok + o, timed_out + t);
    }
    assert!(
        timed_out > 0,
        "the slow server made no caller time out ({ok} answered)"
    );
    assert!(ok > 0, "{ok} answered, {timed_out} timed out");
    assert_eq!(proxy.connections(), 1, "no reconnection");
}

/// With a server allowing 4 MiB items and one 2 MiB value stored, one task reading it gets
/// `ValueTooLarge` (the client's limit is 1 MiB); the 31 tasks reading other keys at the same
/// time on the same connection all get their values, and the connection is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_value_fails_only_its_caller() {
    let server = Memcached::builder()
        .max_item_size(4 * 1024 * 1024)
        .memory_mb(64)
        .start();
    let client = client(&server.addr(), Duration::from_secs(5));
    let big = vec![b'x'; 2 * 1024 * 1024];
    client.set("big", &big).noreply(false).await.unwrap();
    for i in 0..31 {
        client
            .set(format!("small{i}"), format!("value {i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    let connections = total_connections(&client).await;

    for round in 0..10 {
        let reader = client.clone();
        let oversized = tokio::spawn(async move { reader.get("big").await });
        let others: Vec<_> = (0..31)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { (i, client.get(format!("small{i}")).await) })
            })
            .collect();
        match oversized.await.unwrap() {
            Err(Error::ValueTooLarge { size, max }) => {
                assert_eq!((size, max), (big.len() as u64, 1024 * 1024));
            }
            other => panic!("round {round}: {other:?}"),
        }
        for other in others {
            let (i, hit) = other.await.unwrap();
            let hit = hit.unwrap_or_else(|e| panic!("round {round}: small{i}: {e}"));
            assert_eq!(hit.unwrap().data, format!("value {i}"));
        }
    }
    assert_eq!(total_connections(&client).await, connections);
}

/// A script answering every request correctly, except `wrong` on the first connection.
fn script_with(
    wrong: impl Fn(&memcache_tests::Request) -> Option<Answer> + Send + Sync + 'static,
) -> ScriptedServer {
    ScriptedServer::start(move |connection, request| {
        if connection == 0 {
            if let Some(answer) = wrong(request) {
                return answer;
            }
        }
        match request.command() {
            "get" => Answer::text("END\r\n"),
            "mg" => Answer::text(format!("EN{}\r\n", request.opaque())),
            "mn" => Answer::text("MN\r\n"),
            "version" => Answer::text("VERSION 1.6.18\r\n"),
            _ => Answer::text("ERROR\r\n"),
        }
    })
}

fn scripted_client(server: &ScriptedServer, protocol: Protocol) -> Client {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A classic reply that carries a value for another key is refused, and the connection,
/// which can no longer be trusted, is closed: the next call goes out on a new one.
#[tokio::test]
async fn a_classic_value_for_another_key_closes_the_connection() {
    let server = script_with(|request| {
        (request.words() == ["get", "mine"])
            .then(|| Answer::text("VALUE theirs 0 6\r\ntheirs\r\nEND\r\n"))
    });
    let client = scripted_client(&server, Protocol::Classic);
    let error = client.get("mine").await.unwrap_err();
    assert!(matches!(error, Error::UnknownResponse(_)), "{error:?}");
    assert!(error.is_connection_error());
    assert_eq!(
        client.get("mine").await.unwrap(),
        None,
        "answered on a new connection"
    );
    assert_eq!(server.connections(), 2);

    // A multi-key get answered with a key nobody asked for: the same.
    let server = script_with(|request| {
        (request.command() == "get").then(|| Answer::text("VALUE c 0 1\r\nc\r\nEND\r\n"))
    });
    let client = scripted_client(&server, Protocol::Classic);
    let error = client.get_many(["a", "b"]).await.unwrap_err();
    assert!(matches!(error, Error::UnknownResponse(_)), "{error:?}");
    assert!(client.get_many(["a", "b"]).await.unwrap().is_empty());
    assert_eq!(server.connections(), 2);
}

/// Over meta, each reply must echo its request's opaque token: one that does not is refused
/// and closes the connection.
#[tokio::test]
async fn a_meta_reply_for_another_request_closes_the_connection() {
    let server = script_with(|request| {
        (request.command() == "mg").then(|| Answer::text("VA 6 f0 Offff\r\ntheirs\r\n"))
    });
    let client = scripted_client(&server, Protocol::Meta);
    let error = client.get("mine").await.unwrap_err();
    assert!(matches!(error, Error::UnknownResponse(_)), "{error:?}");
    assert_eq!(
        client.get("mine").await.unwrap(),
        None,
        "answered on a new connection"
    );
    assert_eq!(server.connections(), 2);
}

/// Two pipelined gets whose replies come back swapped: without a check, each caller would
/// get the other's value. Over both protocols, neither does: both fail, and the next calls
/// go out on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_replies_never_reach_the_wrong_caller() {
    for protocol in [Protocol::Classic, Protocol::Meta] {
        let held = Arc::new(std::sync::Mutex::new(None::<memcache_tests::Request>));
        let first = Arc::clone(&held);
        let server = script_with(move |request| {
            if !matches!(request.command(), "get" | "mg") {
                return None;
            }
            let reply = |request: &memcache_tests::Request| {
                let key = request.words()[1].to_owned();
                match request.command() {
                    "get" => format!("VALUE {key} 0 {}\r\n{key}\r\nEND\r\n", key.len()),
                    _ => format!("VA {} f0{}\r\n{key}\r\n", key.len(), request.opaque()),
                }
            };
            let mut first = first.lock().unwrap();
            match first.take() {
                None => {
                    *first = Some(request.clone());
                    Some(Answer::Nothing)
                }
                // The second request's reply first, then the first's.
                Some(earlier) => Some(Answer::text(reply(request) + &reply(&earlier))),
            }
        });
        let client = scripted_client(&server, protocol);
        let (a, b) = (client.clone(), client.clone());
        let first = tokio::spawn(async move { a.get("alpha").await });
        // The second request goes out once the first has reached the server.
        eventually(
            "the first get reached the server",
            Duration::from_secs(5),
            || async { (!server.requests().is_empty()).then_some(()) },
        )
        .await;
        let second = tokio::spawn(async move { b.get("bravo").await });
        for (name, call) in [("alpha", first), ("bravo", second)] {
            match call.await.unwrap() {
                Err(error) => assert!(
                    error.is_connection_error(),
                    "{protocol:?} {name}: {error:?}"
                ),
                Ok(hit) => panic!("{protocol:?}: {name} got {:?}", hit.map(|hit| hit.data)),
            }
        }
        assert_eq!(client.get("alpha").await.unwrap(), None, "{protocol:?}");
        assert_eq!(server.connections(), 2, "{protocol:?}");
    }
}

/// A call made right after another timed out is its own: it does not inherit the first's
/// error (it used to fail at once with `Timeout`), and succeeds once the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_after_a_timeout_does_not_inherit_it() {
    let server = Memcached::start();
    let timeout = Duration::from_millis(300);
    let client = client(&server.addr(), timeout);
    client.set("k", "v").noreply(false).await.unwrap();

    server.pause();
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    let started = Instant::now();
    let next = tokio::spawn({
        let client = client.clone();
        async move { client.get("k").await }
    });
    // The server stays stopped a little longer: the call waits, on its own deadline.
    tokio::time::sleep(timeout / 4).await;
    server.resume();
    let hit = next.await.unwrap().expect("the next call is its own");
    assert_eq!(hit.unwrap().data, "v");
    assert!(started.elapsed() >= timeout / 4);
}

/// A request queued behind a write the server is not reading, and so not yet written when
/// the server drops the connection, is not failed with that connection's error: it goes
/// out on the next connection and is answered there. The request that was written fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_written_goes_out_on_the_next_connection() {
    let server =
        ScriptedServer::start(
            |connection, request| match (connection, request.command()) {
                (0, "version") => Answer::StopReading,
                (_, "version") => Answer::text("VERSION 1.6.18\r\n"),
                (_, "get") => Answer::text("END\r\n"),
                _ => Answer::Nothing,
            },
        );
    let client = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Classic)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let written = tokio::spawn({
        let client = client.clone();
        async move { client.version().await }
    });
    eventually(
        "the server stopped reading",
        Duration::from_secs(5),
        || async { (!server.requests().is_empty()).then_some(()) },
    )
    .await;
    // More than the socket holds: the connection's writer is stuck on it.
    assert!(client.set("big", vec![b'x'; 32 << 20]).await.unwrap());
    // Handed to the connection (or waiting for room in its full queue), not written.
    let mut queued = client.get("k").into_future();
    assert!(poll_once(&mut queued).await.is_pending());
    server.hang_up();
    assert_eq!(
        queued.await.unwrap(),
        None,
        "answered on the next connection"
    );
    let error = written.await.unwrap().unwrap().single().unwrap_err();
    assert!(error.is_connection_error(), "{error:?}");
    assert_eq!(server.connections(), 2);
    let on_next: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|request| request.command() == "get")
        .collect();
    assert_eq!(on_next.len(), 1);
}
