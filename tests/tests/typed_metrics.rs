//! The per-prefix metrics of memcache-typed's `metrics` feature, and its read-through span,
//! against a real memcached: each counter moves when, and only when, it should.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memcache_tests::{raw_set, LogCapture, Memcached, TestRecorder};
use memcache_typed::{Cache, Cacheable, Client, KeyedCache};
use serde::{Deserialize, Serialize};
use tracing::Level;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

const NAMES: [&str; 6] = [
    "memcache_typed_hits_total",
    "memcache_typed_misses_total",
    "memcache_typed_schema_mismatches_total",
    "memcache_typed_loads_total",
    "memcache_typed_load_errors_total",
    "memcache_typed_coalesced_total",
];

fn counts(recorder: &TestRecorder, prefix: &str) -> Vec<u64> {
    NAMES
        .iter()
        .map(|name| recorder.counter(name, &[("prefix", prefix)]))
        .collect()
}

fn client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_counter_moves_when_and_only_when_it_should() {
    let server = Memcached::start();
    let recorder = TestRecorder::new();
    let (users, friends) = recorder.capture(|| {
        let client = client(&server);
        (
            Cache::<User>::new(client.clone()),
            KeyedCache::<u64, Vec<u64>>::new(client, "friends").unwrap(),
        )
    });
    // hits, misses, mismatches, loads, load errors, coalesced
    assert_eq!(counts(&recorder, "user"), [0, 0, 0, 0, 0, 0]);

    users.set(&user(1)).noreply(false).await.unwrap();
    assert_eq!(
        counts(&recorder, "user"),
        [0, 0, 0, 0, 0, 0],
        "a write is none of them"
    );
    assert!(users.get(&1).await.unwrap().is_some());
    assert!(users.get(&2).await.unwrap().is_none());
    assert_eq!(counts(&recorder, "user"), [1, 1, 0, 0, 0, 0]);

    // A value someone else wrote under the key: a mismatch, and a miss.
    raw_set(&server.addr(), "user:3", 0, b"not ours");
    assert!(users.get(&3).await.unwrap().is_none());
    assert_eq!(counts(&recorder, "user"), [1, 2, 1, 0, 0, 0]);

    // A load, timed; a failed load; and a hit that needs no load.
    let loaded = users
        .get_or_load(&4, |id| {
            std::future::ready(Ok::<_, std::io::Error>(user(*id)))
        })
        .await
        .unwrap();
    assert_eq!(loaded, user(4));
    let failed = users
        .get_or_load(&5, |_| {
            std::future::ready(Err::<User, _>(std::io::Error::other("db")))
        })
        .await;
    assert!(failed.is_err());
    users
        .get_or_load(&4, |_| {
            std::future::ready(Err::<User, _>(std::io::Error::other("no")))
        })
        .await
        .unwrap();
    assert_eq!(counts(&recorder, "user"), [2, 4, 1, 2, 1, 0]);
    let latency = recorder.histogram(
        "memcache_typed_load_duration_seconds",
        &[("prefix", "user")],
    );
    assert_eq!(latency.len(), 2, "{latency:?}");

    // Concurrent callers of one missing key: one load, the rest coalesced (single-flight).
    let hits_before = users.stats().hits;
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, gate) = tokio::sync::watch::channel(false);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (users, loads, mut gate) = (users.clone(), loads.clone(), gate.clone());
            tokio::spawn(async move {
                users
                    .get_or_load(&6, |id| {
                        let id = *id;
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            gate.wait_for(|open| *open).await.unwrap();
                            Ok::<_, std::io::Error>(user(id))
                        }
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    memcache_tests::eventually("the load has started", Duration::from_secs(5), || {
        let started = loads.load(Ordering::SeqCst) == 1;
        async move { started.then_some(()) }
    })
    .await;
    release.send_replace(true);
    for call in calls {
        assert_eq!(call.await.unwrap(), user(6));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let coalesced = recorder.counter(
        "memcache_typed_coalesced_total",
        &[("prefix", "user"), ("via", "single_flight")],
    );
    assert_eq!(coalesced, users.stats().coalesced);
    // Each of the seven others shared the load, or (started after it) read its value.
    assert_eq!(coalesced + users.stats().hits - hits_before, 7);
    assert!(coalesced >= 1, "{:?}", users.stats());

    // The other cache counts under its own prefix; nothing moved there yet.
    assert_eq!(counts(&recorder, "friends"), [0, 0, 0, 0, 0, 0]);
    friends.set(&1, &vec![2, 3]).noreply(false).await.unwrap();
    assert_eq!(friends.get(&1).await.unwrap(), Some(vec![2, 3]));
    assert_eq!(counts(&recorder, "friends"), [1, 0, 0, 0, 0, 0]);
}

#[tokio::test]
async fn a_lease_held_elsewhere_counts_as_coalesced_by_lease() {
    let server = Memcached::start();
    let recorder = TestRecorder::new();
    let users = recorder.capture(|| Cache::<User>::new(client(&server)));
    let other = Cache::<User>::new(client(&server));
    users.set(&user(9)).noreply(false).await.unwrap();
    users.invalidate(&9).noreply(false).await.unwrap();
    // Another process wins the reload, and holds it...
    let holder = other.client().lease("user:9", 30).await.unwrap();
    assert!(matches!(
        holder,
        memcache_typed::Lease::Won { stale: Some(_), .. }
    ));
    // ...so this one serves the stale value without loading.
    let stale = users
        .get_or_load(&9, |_| {
            std::future::ready(Err::<User, _>(std::io::Error::other("no")))
        })
        .await
        .unwrap();
    assert_eq!(stale, user(9));
    let via_lease = recorder.counter(
        "memcache_typed_coalesced_total",
        &[("prefix", "user"), ("via", "lease")],
    );
    assert_eq!(via_lease, 1);
    assert_eq!(users.stats().leased, 1);
    assert_eq!(counts(&recorder, "user")[3], 0, "no load");
}

#[tokio::test]
async fn read_through_runs_in_a_memcache_typed_span_around_the_command_spans() {
    let server = Memcached::start();
    let logs = LogCapture::up_to(Level::DEBUG);
    let _guard = logs.install();
    let users = Cache::<User>::new(client(&server));
    users
        .get_or_load(&1, |id| {
            std::future::ready(Ok::<_, std::io::Error>(user(*id)))
        })
        .await
        .unwrap();
    users
        .get_many_or_load([1, 2, 3], |ids| {
            std::future::ready(Ok::<_, std::io::Error>(
                ids.into_iter().map(user).collect::<Vec<_>>(),
            ))
        })
        .await
        .unwrap();
    let spans = logs.spans();
    let typed: Vec<_> = spans
        .iter()
        .filter(|span| span.target == "memcache_typed")
        .collect();
    assert_eq!(typed.len(), 2, "{spans:#?}");
    assert_eq!(typed[0].field("op"), Some("get_or_load"));
    assert_eq!(typed[0].field("prefix"), Some("user"));
    assert_eq!(typed[0].field("keys"), Some("1"));
    assert_eq!(typed[1].field("op"), Some("get_many_or_load"));
    assert_eq!(typed[1].field("keys"), Some("3"));
    assert!(spans
        .iter()
        .any(|span| span.target == "memcache_core::command"
            && span.field("command") == Some("lease")));
}
