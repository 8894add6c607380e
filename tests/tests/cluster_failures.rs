//! A client of several real memcacheds when one fails: only its keys fail (naming it), or
//! are misses with `ignore_exc`, or move to the others with `failover`; the others keep
//! their latency; every transport failure and timeout counts towards the server's death;
//! a dead server fails fast, is probed after `dead_timeout` and rejoins when it answers.

use std::time::{Duration, Instant};

use memcache_core::{Client, ClientBuilder, Distribution, Error, ServerState};
use memcache_tests::{eventually, raw_get, Memcached, ScriptedServer};

const TIMEOUT: Duration = Duration::from_millis(400);

fn servers(count: usize) -> Vec<Memcached> {
    (0..count).map(|_| Memcached::start()).collect()
}

fn builder(addrs: &[String]) -> ClientBuilder {
    Client::builder()
        .servers(addrs.iter().cloned())
        .distribution(Distribution::Ketama)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
}

fn addrs(servers: &[Memcached]) -> Vec<String> {
    servers.iter().map(Memcached::addr).collect()
}

/// `count` keys, with the server each lives on.
fn placed(client: &Client, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let key = format!("key:{i}");
            let server = client.server_for(&key).unwrap().to_string();
            (key, server)
        })
        .collect()
}

/// The health `client` reports for `server`.
fn state(client: &Client, server: &str) -> ServerState {
    let info = client.servers().into_iter();
    info.filter(|info| info.addr.to_string() == server)
        .map(|info| info.state)
        .next()
        .expect("one of the client's servers")
}

/// Calls `get(key)` until `server` is dead; returns how many calls that took.
async fn until_dead(client: &Client, key: &str, server: &str) -> usize {
    for calls in 1..=20 {
        let error = client.get(key).await.unwrap_err();
        assert!(error.is_connection_error(), "{error:?}");
        assert_eq!(error.server(), Some(server), "the error names the server");
        if matches!(state(client, server), ServerState::Dead { .. }) {
            return calls;
        }
    }
    panic!(
        "{server} not dead after 20 failed calls: {:?}",
        state(client, server)
    );
}

#[tokio::test]
async fn a_killed_server_fails_only_its_own_keys() {
    let servers = servers(3);
    let addrs = addrs(&servers);
    let client = builder(&addrs).build().unwrap();
    let lenient = builder(&addrs).ignore_exc(true).build().unwrap();
    let keys = placed(&client, 150);
    for (key, _) in &keys {
        client.set(key, key).noreply(false).await.unwrap();
    }
    let dead = addrs[1].clone();
    servers[1].kill();
    let mine = keys.iter().filter(|(_, server)| *server == dead).count();
    assert!(mine > 10 && mine < 100, "{mine} keys on the killed server");

    for (key, server) in &keys {
        match (client.get(key).await, server == &dead) {
            (Ok(hit), false) => assert_eq!(hit.unwrap().data, key.as_bytes()),
            (Err(error), true) => {
                assert!(error.is_connection_error(), "{key}: {error:?}");
                assert_eq!(error.server(), Some(dead.as_str()), "{key}: {error}");
            }
            (other, on_dead) => panic!("{key} (on the killed server: {on_dead}): {other:?}"),
        }
        // With ignore_exc the killed server's keys are misses.
        let hit = lenient.get(key).await.unwrap();
        assert_eq!(hit.is_some(), server != &dead, "{key}");
    }

    let all: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
    let error = client.get_many(&all).await.unwrap_err();
    assert_eq!(error.server(), Some(dead.as_str()), "{error}");
    assert!(error.is_connection_error());
    let found = lenient.get_many(&all).await.unwrap();
    assert_eq!(found.len(), keys.len() - mine);
    // The partial form: the others' hits and the killed server's error, either way.
    for client in [&client, &lenient] {
        let partial = client.get_many(&all).partial().await.unwrap();
        assert_eq!(partial.hits.len(), keys.len() - mine);
        assert_eq!(partial.errors.len(), 1);
        let (server, error) = &partial.errors[0];
        assert_eq!(server.to_string(), dead);
        assert!(error.is_connection_error(), "{error:?}");
    }

    // Writes: the call fails naming the server, or (ignore_exc) returns its keys as not
    // stored, as pymemcache's HashClient does; the other servers' keys are stored.
    let items: Vec<(&str, &str)> = all.iter().map(|key| (*key, "new")).collect();
    let error = client
        .set_many(items.clone())
        .noreply(false)
        .await
        .unwrap_err();
    assert_eq!(error.server(), Some(dead.as_str()), "{error}");
    let not_stored = lenient.set_many(items).noreply(false).await.unwrap();
    assert_eq!(not_stored.len(), mine);
    for (key, server) in &keys {
        if server != &dead {
            assert_eq!(raw_get(server, key).unwrap().1, b"new");
        }
    }
    let error = client.delete_many(&all).noreply(false).await.unwrap_err();
    assert_eq!(error.server(), Some(dead.as_str()), "{error}");

    // Server-wide commands: the killed server's entry holds its error.
    let stats = client.stats().await.unwrap();
    for (server, stats) in &stats {
        assert_eq!(stats.is_err(), server.to_string() == dead, "{server}");
    }
    let error = stats.all().unwrap_err();
    assert_eq!(error.server(), Some(dead.as_str()));
}

/// A server that stops answering (SIGSTOP) costs its own callers the timeout; callers of
/// the other servers' keys are answered meanwhile as fast as before.
#[tokio::test]
async fn a_stalled_server_does_not_slow_the_others() {
    let servers = servers(3);
    let addrs = addrs(&servers);
    let client = builder(&addrs)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let keys = placed(&client, 90);
    for (key, _) in &keys {
        client.set(key, "v").noreply(false).await.unwrap();
    }
    let stalled = addrs[0].clone();
    let (victim, _) = keys.iter().find(|(_, server)| *server == stalled).unwrap();
    servers[0].pause();
    let started = Instant::now();
    let stuck = tokio::spawn({
        let (client, victim) = (client.clone(), victim.clone());
        async move { client.get(&victim).await }
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        for (key, server) in &keys {
            if *server != stalled {
                let call = Instant::now();
                assert!(client.get(key).await.unwrap().is_some());
                slowest = slowest.max(call.elapsed());
            }
        }
    }
    assert!(
        !stuck.is_finished(),
        "the stalled server's caller is still waiting"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the other servers' slowest get took {slowest:?}"
    );
    let error = stuck.await.unwrap().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.server(), Some(stalled.as_str()));
    assert!(started.elapsed() >= Duration::from_secs(3));
    servers[0].resume();
}

/// Every transport failure counts: a server that times out, and one that accepts and hangs
/// up at once (pymemcache counts neither), are dead after `retry_attempts` failed retries;
/// until then calls fail with the error, not a silent default.
#[tokio::test]
async fn timeouts_and_hang_ups_count_towards_death() {
    let live = Memcached::start();
    let stalled = Memcached::start();
    let hangs_up = ScriptedServer::hanging_up();
    let addrs = vec![live.addr(), stalled.addr(), hangs_up.addr()];
    let client = builder(&addrs)
        .retry_attempts(1)
        .retry_timeout(Duration::from_millis(20))
        .dead_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let keys = placed(&client, 60);
    let key_of = |server: &str| {
        let found = keys.iter().find(|(_, s)| s == server);
        found.map(|(key, _)| key.clone()).unwrap()
    };
    stalled.pause();
    for server in [&addrs[1], &addrs[2]] {
        let key = key_of(server);
        let calls = until_dead(&client, &key, server).await;
        assert!(calls <= 4, "{server}: dead after {calls} calls");
        // Dead: its keys fail at once.
        let call = Instant::now();
        let error = client.get(&key).await.unwrap_err();
        assert!(error.is_server_down(), "{error:?}");
        assert!(call.elapsed() < Duration::from_millis(100));
    }
    let key = key_of(&addrs[0]);
    client.set(&key, "up").noreply(false).await.unwrap();
    assert!(client.get(&key).await.unwrap().is_some());
    assert_eq!(state(&client, &addrs[0]), ServerState::Up);
    stalled.resume();
}

/// Without failover a dead server's keys fail fast until `dead_timeout` has passed; then
/// the next call tries it, and it is back once it answers.
#[tokio::test]
async fn a_dead_server_fails_fast_then_rejoins_after_dead_timeout() {
    let servers = servers(3);
    let addrs = addrs(&servers);
    let dead_timeout = Duration::from_millis(500);
    let client = builder(&addrs)
        .retry_attempts(1)
        .retry_timeout(Duration::from_millis(20))
        .dead_timeout(dead_timeout)
        .build()
        .unwrap();
    let keys = placed(&client, 60);
    let (key, server) = keys.iter().find(|(_, s)| *s == addrs[2]).unwrap().clone();
    client.set(&key, "v").noreply(false).await.unwrap();
    servers[2].kill();
    until_dead(&client, &key, &server).await;
    let died = Instant::now();
    assert_eq!(
        client.server_for(&key).unwrap().to_string(),
        server,
        "no failover"
    );
    let error = client.get(&key).await.unwrap_err();
    let Some(Error::ServerDown { retry_in, .. }) = Some(error.root()).cloned() else {
        panic!("{error:?}");
    };
    assert!(retry_in <= dead_timeout);
    servers[2].restart();
    let answered = eventually("the server rejoins", Duration::from_secs(5), || async {
        client.get(&key).await.ok()
    })
    .await;
    assert_eq!(answered, None, "a restarted memcached is empty");
    assert!(
        died.elapsed() >= dead_timeout - Duration::from_millis(50),
        "tried again only after dead_timeout"
    );
    assert_eq!(state(&client, &server), ServerState::Up);
    client.set(&key, "again").noreply(false).await.unwrap();
    assert_eq!(raw_get(&server, &key).unwrap().1, b"again");
}

/// With failover a dead server leaves the ring: its keys move to the others (the others'
/// keys stay where they are), and come back once it is probed after `dead_timeout` and
/// answers.
#[tokio::test]
async fn with_failover_a_dead_servers_keys_move_and_come_back() {
    for distribution in [Distribution::Ketama, Distribution::Rendezvous] {
        let servers = servers(3);
        let addrs = addrs(&servers);
        let client = builder(&addrs)
            .distribution(distribution)
            .failover(true)
            .retry_attempts(0)
            .dead_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let keys = placed(&client, 120);
        let dead = addrs[0].clone();
        let (victim, _) = keys.iter().find(|(_, s)| *s == dead).unwrap().clone();
        servers[0].kill();
        // Its health is updated before the caller hears of the failure: the first failed
        // call leaves it dead (retry_attempts 0), and the next call of its keys goes
        // elsewhere.
        assert_eq!(until_dead(&client, &victim, &dead).await, 1);
        for (key, server) in &keys {
            let now = client.server_for(key).unwrap().to_string();
            if *server == dead {
                assert_ne!(now, dead, "{distribution:?}: {key} moved");
                client.set(key, "moved").noreply(false).await.unwrap();
                assert_eq!(raw_get(&now, key).unwrap().1, b"moved");
                assert!(client.get(key).await.unwrap().is_some());
            } else {
                assert_eq!(&now, server, "{distribution:?}: {key} stays");
            }
        }
        servers[0].restart();
        eventually(
            "the dead server is probed and rejoins",
            Duration::from_secs(5),
            // Traffic after dead_timeout sends the probe (server_for only looks).
            || async {
                let _ = client.get(&victim).await;
                (client.server_for(&victim).unwrap().to_string() == dead).then_some(())
            },
        )
        .await;
        assert_eq!(state(&client, &dead), ServerState::Up);
        // Back on its own server, which is empty after its restart: the copy written to
        // another server meanwhile is orphaned (the docs say so).
        assert_eq!(client.get(&victim).await.unwrap(), None);
        client.set(&victim, "home").noreply(false).await.unwrap();
        assert_eq!(raw_get(&dead, &victim).unwrap().1, b"home");
    }
}

/// Every server down: a clear error naming a server, or misses with `ignore_exc`; with
/// failover too (no server left to move to).
#[tokio::test]
async fn every_server_down() {
    let servers = servers(3);
    let addrs = addrs(&servers);
    for server in &servers {
        server.kill();
    }
    for failover in [false, true] {
        let client = builder(&addrs)
            .failover(failover)
            .retry_attempts(0)
            .build()
            .unwrap();
        let lenient = builder(&addrs)
            .failover(failover)
            .retry_attempts(0)
            .ignore_exc(true)
            .build()
            .unwrap();
        for i in 0..20 {
            let key = format!("key:{i}");
            let error = client.get(&key).await.unwrap_err();
            assert!(error.is_connection_error(), "{error:?}");
            assert!(
                addrs.iter().any(|a| error.server() == Some(a.as_str())),
                "{error}"
            );
            assert_eq!(lenient.get(&key).await.unwrap(), None);
        }
        let keys: Vec<String> = (0..20).map(|i| format!("key:{i}")).collect();
        assert!(client.get_many(&keys).await.is_err());
        assert!(lenient.get_many(&keys).await.unwrap().is_empty());
        let partial = client.get_many(&keys).partial().await.unwrap();
        assert!(partial.hits.is_empty() && !partial.errors.is_empty());
        for info in client.servers() {
            assert!(matches!(info.state, ServerState::Dead { .. }), "{info:?}");
        }
    }
}
