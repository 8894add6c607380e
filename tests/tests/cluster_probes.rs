//! The probes of dead servers and the edges of a cluster's life, found by a review: a
//! probe that never finishes (its runtime gone) does not keep its server out for good,
//! `server_for` spawns nothing (it works outside a runtime), a probe that outlives its
//! client opens no connection, probes are paced by `dead_timeout`, errors are named once,
//! and `ignore_exc` leaves a single server's write errors alone.

use std::future::{Future, IntoFuture};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use memcache_core::{Client, Error, ServerState};
use memcache_tests::{eventually, LogCapture, Memcached, ScriptedServer};

/// An address nothing listens on.
fn nobody() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn key_on(client: &Client, server: &str) -> String {
    (0..10_000)
        .map(|i| format!("key:{i}"))
        .find(|key| client.server_for(key).unwrap().to_string() == server)
        .expect("a key on that server")
}

fn state(client: &Client, server: &str) -> ServerState {
    let info = client.servers().into_iter();
    info.filter(|info| info.addr.to_string() == server)
        .map(|info| info.state)
        .next()
        .expect("one of the client's servers")
}

/// Whether `server` is dead and its `dead_timeout` has passed.
fn due(client: &Client, server: &str) -> bool {
    matches!(state(client, server), ServerState::Dead { retry_in, .. } if retry_in.is_zero())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits, without a runtime, until `check` holds.
fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not so after 5 s");
        std::thread::yield_now();
    }
}

/// `server_for` answers from the ring: no I/O, no task, so it works outside a runtime,
/// even under failover with a dead server due for its probe.
#[test]
fn server_for_spawns_nothing_and_works_outside_a_runtime() {
    let live = Memcached::start();
    let gone = nobody();
    let client = Client::builder()
        .servers([live.addr(), gone.clone()])
        .failover(true)
        .retry_attempts(0)
        .dead_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let victim = key_on(&client, &gone);
    runtime().block_on(async {
        assert!(client.get(&victim).await.is_err());
    });
    until("the dead server is due for its probe", || {
        due(&client, &gone)
    });
    // Outside any runtime: the key is on the live server meanwhile.
    assert_eq!(client.server_for(&victim).unwrap().to_string(), live.addr());
    assert!(due(&client, &gone), "server_for probed nothing");
}

/// A probe whose task is dropped with its runtime ends all the same: the server is probed
/// again later and rejoins.
#[test]
fn a_probe_dropped_with_its_runtime_does_not_keep_the_server_out() {
    let servers = [Memcached::start(), Memcached::start()];
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let client = Client::builder()
        .servers(addrs.clone())
        .failover(true)
        .retry_attempts(0)
        .dead_timeout(Duration::from_millis(100))
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let victim = key_on(&client, &addrs[1]);
    // Paused, the server accepts connections and answers nothing: a probe waits.
    servers[1].pause();
    let first = runtime();
    first.block_on(async {
        assert!(client.get(&victim).await.is_err());
    });
    until("due for its probe", || due(&client, &addrs[1]));
    // A command spawns the probe on this runtime, which is shut down while the probe
    // waits for the server.
    first.block_on(async {
        client.get(&victim).await.unwrap();
    });
    drop(first);
    servers[1].resume();
    let second = runtime();
    second.block_on(async {
        eventually("the server rejoins", Duration::from_secs(5), || async {
            let _ = client.get(&victim).await;
            (client.server_for(&victim).unwrap().to_string() == addrs[1]).then_some(())
        })
        .await;
    });
    assert_eq!(state(&client, &addrs[1]), ServerState::Up);
}

/// A probe that runs after its client was dropped opens no connection.
#[tokio::test(flavor = "current_thread")]
async fn a_probe_that_outlives_its_client_opens_no_connection() {
    let logs = LogCapture::global();
    let live = Memcached::start();
    let dead = ScriptedServer::hanging_up();
    let client = Client::builder()
        .servers([live.addr(), dead.addr()])
        .failover(true)
        .retry_attempts(0)
        .dead_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let victim = key_on(&client, &dead.addr());
    assert!(client.get(&victim).await.is_err());
    eventually("due", Duration::from_secs(5), || async {
        due(&client, &dead.addr()).then_some(())
    })
    .await;
    let before = dead.connections();
    // The first poll of a command spawns the probe; this task drops the command and the
    // client before it yields, so on this current-thread runtime the probe runs after.
    {
        let mut get = std::pin::pin!(client.get(&victim).into_future());
        let mut cx = Context::from_waker(Waker::noop());
        let _ = get.as_mut().poll(&mut cx);
    }
    drop(client);
    let probed = format!("server={}", dead.addr());
    eventually("the probe ran", Duration::from_secs(5), || async {
        let lines = logs.lines();
        let done = lines
            .iter()
            .any(|line| line.text.contains("probed a dead server") && line.text.contains(&probed));
        done.then_some(())
    })
    .await;
    assert_eq!(
        dead.connections(),
        before,
        "no connection after the client went"
    );
}

/// A probe that fails waits `dead_timeout` again: a server that accepts and hangs up is
/// not hammered under failover while traffic flows.
#[tokio::test]
async fn probes_are_paced_by_dead_timeout() {
    let live = Memcached::start();
    let hangs_up = ScriptedServer::hanging_up();
    let dead_timeout = Duration::from_millis(200);
    let client = Client::builder()
        .servers([live.addr(), hangs_up.addr()])
        .failover(true)
        .retry_attempts(0)
        .dead_timeout(dead_timeout)
        .build()
        .unwrap();
    let victim = key_on(&client, &hangs_up.addr());
    assert!(client.get(&victim).await.is_err());
    let before = hangs_up.connections();
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(1_000) {
        client.get(&victim).await.unwrap(); // on the live server meanwhile
        calls += 1;
    }
    let probes = hangs_up.connections() - before;
    assert!(probes <= 6, "{probes} probes for {calls} calls in 1 s");
    assert!(probes >= 1, "probed at least once after dead_timeout");
}

/// `PerServer::all` names a failed server once (a `ServerDown` names it already).
#[tokio::test]
async fn errors_name_their_server_once() {
    let live = Memcached::start();
    let gone = nobody();
    let client = Client::builder()
        .servers([live.addr(), gone.clone()])
        .retry_attempts(0)
        .build()
        .unwrap();
    let first = client.version().await.unwrap();
    assert!(first.get(&live.addr()).unwrap().is_ok());
    let error = client.version().await.unwrap().all().unwrap_err();
    assert!(matches!(error, Error::ServerDown { .. }), "{error:?}");
    assert_eq!(error.server(), Some(gone.as_str()));
    assert_eq!(error.to_string().matches(&gone).count(), 1, "{error}");
}

/// With one server, `ignore_exc` is about reads: `set_many` still reports the error, as
/// `set` does (only a cluster reports a failed server's keys as not stored).
#[tokio::test]
async fn ignore_exc_leaves_a_single_servers_write_errors_alone() {
    let client = Client::builder()
        .server(nobody())
        .ignore_exc(true)
        .build()
        .unwrap();
    let error = client
        .set_many([("a", "1"), ("b", "2")])
        .noreply(false)
        .await;
    assert!(error.unwrap_err().is_connection_error());
    assert!(client.set("a", "1").noreply(false).await.is_err());
    assert_eq!(client.get("a").await.unwrap(), None, "reads are misses");
}
