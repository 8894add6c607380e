//! `Cache::update`, the typed compare-and-swap loop, against a real memcached: concurrent
//! increments are exact, a missing key is `None`, endless conflicts end in a typed error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memcache_tests::{raw_command, raw_get, raw_set, Memcached};
use memcache_typed::{
    Cache, Cacheable, Client, Codec, Error, MessagePack, DEFAULT_UPDATE_ATTEMPTS,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "counter", ttl = 600)]
struct Counter {
    #[cacheable(key)]
    name: String,
    count: u64,
    touched_by: Vec<u32>,
}

fn counters(server: &Memcached) -> Cache<Counter> {
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds");
    Cache::new(client)
}

fn counter(name: &str) -> Counter {
    Counter {
        name: name.to_owned(),
        count: 0,
        touched_by: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_tasks_increment_exactly() {
    let server = Memcached::start();
    let counters = counters(&server);
    counters.set(&counter("hits")).noreply(false).await.unwrap();

    // One increment per task, with the default bound: each round some task wins, so 16
    // attempts always suffice for 16 writers.
    let mut tasks = Vec::new();
    for task in 0..16u32 {
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            counters
                .update("hits", |mut c| {
                    c.count += 1;
                    c.touched_by.push(task);
                    c
                })
                .await
        }));
    }
    for task in tasks {
        let updated = task.await.unwrap().unwrap().expect("the key exists");
        assert!(updated.count >= 1);
    }
    let after = counters.get("hits").await.unwrap().unwrap();
    assert_eq!(after.count, 16);
    let mut by = after.touched_by.clone();
    by.sort_unstable();
    assert_eq!(by, (0..16).collect::<Vec<u32>>());

    // Many increments per task, with a larger bound.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                counters
                    .update("hits", |mut c| {
                        c.count += 1;
                        c
                    })
                    .max_attempts(10_000)
                    .await
                    .unwrap()
                    .expect("the key exists");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(counters.get("hits").await.unwrap().unwrap().count, 16 + 160);
}

#[tokio::test]
async fn update_of_a_missing_key_is_none() {
    let server = Memcached::start();
    let counters = counters(&server);
    let calls = AtomicUsize::new(0);
    let result = counters
        .update("nope", |c| {
            calls.fetch_add(1, Ordering::SeqCst);
            c
        })
        .await
        .unwrap();
    assert_eq!(result, None);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // A value of another type under the key counts as missing too.
    raw_set(&server.addr(), "counter:nope", 0, b"42");
    assert_eq!(counters.update("nope", |c| c).await.unwrap(), None);
    assert_eq!(counters.mismatches(), 1);
}

#[tokio::test]
async fn update_keeps_the_ttl_and_returns_the_new_value() {
    let server = Memcached::start();
    let counters = counters(&server);
    counters.set(&counter("c")).noreply(false).await.unwrap();
    let updated = counters
        .update("c", |mut c| {
            c.count = 41;
            c
        })
        .ttl(90)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.count, 41);
    let reply = raw_command(&server.addr(), b"mg counter:c t\r\n");
    let ttl: i64 = String::from_utf8(reply)
        .unwrap()
        .trim_end()
        .trim_start_matches("HD t")
        .parse()
        .unwrap();
    assert!((85..=90).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn endless_conflicts_give_a_typed_error() {
    let server = Memcached::start();
    let addr = server.addr();
    let counters = counters(&server);
    counters.set(&counter("hot")).noreply(false).await.unwrap();

    // Another writer changes the value between every read and write of ours.
    let calls = Arc::new(AtomicUsize::new(0));
    let rival = MessagePack
        .encode(&counter("hot"), Counter::SCHEMA)
        .unwrap();
    let error = counters
        .update("hot", |mut c| {
            calls.fetch_add(1, Ordering::SeqCst);
            raw_set(&addr, "counter:hot", rival.flags, &rival.data);
            c.count += 1;
            c
        })
        .max_attempts(3)
        .await
        .unwrap_err();
    assert!(error.is_update_conflict(), "{error}");
    assert!(matches!(
        error,
        Error::UpdateConflict { ref key, attempts: 3 } if key == "counter:hot"
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        raw_get(&addr, "counter:hot").unwrap().1,
        rival.data.to_vec()
    );

    // The default bound is documented as 16.
    assert_eq!(DEFAULT_UPDATE_ATTEMPTS, 16);
    let calls = AtomicUsize::new(0);
    let error = counters
        .update("hot", |c| {
            calls.fetch_add(1, Ordering::SeqCst);
            raw_set(&addr, "counter:hot", rival.flags, &rival.data);
            c
        })
        .await
        .unwrap_err();
    assert!(error.is_update_conflict());
    assert_eq!(calls.load(Ordering::SeqCst), 16);
}
