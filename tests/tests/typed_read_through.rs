//! Read-through against a real memcached: `get_or_load` runs the loader once however many
//! tasks ask at once (single-flight), shares loader errors without caching anything,
//! survives a cancelled leader; `get_many_or_load` loads exactly the missing keys in one call.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use memcache_tests::{raw_get, raw_set, raw_ttl, Memcached};
use memcache_typed::{Cache, Client, LoadError};
use tokio::sync::{oneshot, watch};

mod common;

use common::{user, User};

/// A loader error that is deliberately not `Clone`.
#[derive(Debug, PartialEq)]
struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database: {}", self.0)
    }
}

impl std::error::Error for DbError {}

/// Runs a `get_or_load` call, and counts it in `joined` as soon as its first poll is over:
/// by then the call has joined the flight of its key, as leader or follower (it joins
/// before its first await).
async fn joining<F: Future>(joined: &watch::Sender<usize>, call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    joined.send_modify(|n| *n += 1);
    match first {
        Poll::Ready(output) => output,
        Poll::Pending => call.await,
    }
}

/// Waits until `joined` counts `n` calls; panics after 10 seconds.
async fn until_joined(joined: &mut watch::Receiver<usize>, n: usize) {
    let waited = tokio::time::timeout(Duration::from_secs(10), joined.wait_for(|&c| c >= n));
    if !matches!(waited.await, Ok(Ok(_))) {
        panic!("only {} of {n} calls joined", *joined.borrow());
    }
}

fn users(server: &Memcached) -> Cache<User> {
    let client = Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds");
    Cache::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hundred_concurrent_callers_share_one_load() {
    let server = Memcached::start();
    let users = users(&server);
    let loads = Arc::new(AtomicUsize::new(0));

    let mut tasks = Vec::new();
    for _ in 0..100 {
        let users = users.clone();
        let loads = Arc::clone(&loads);
        tasks.push(tokio::spawn(async move {
            users
                .get_or_load(&7, |id| {
                    let id = *id;
                    async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        // A slow database, so that most callers arrive during the load.
                        // Callers that come after it read the stored value: the counts
                        // below hold whatever the timing.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, DbError>(user(id))
                    }
                })
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), user(7));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "exactly one load");
    let stats = users.stats();
    assert_eq!((stats.loads, stats.misses), (1, 1));
    // Every caller either read the cache itself or shared another's flight.
    assert_eq!(stats.hits + stats.misses + stats.coalesced, 100);

    // Stored with the type's TTL (noreply by default: a round trip on the same connection
    // makes sure the server has it); the next call is a hit and loads nothing.
    users.client().version().await.unwrap().single().unwrap();
    let ttl = raw_ttl(&server.addr(), "user:7").expect("stored");
    assert!((295..=300).contains(&ttl), "ttl {ttl}");
    let again = users
        .get_or_load(&7, |_| async {
            Err::<User, _>(DbError("not called".into()))
        })
        .await
        .unwrap();
    assert_eq!(again, user(7));
    assert_eq!(users.stats().loads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loader_error_reaches_every_waiter_and_nothing_is_cached() {
    let server = Memcached::start();
    let users = users(&server);
    let loads = Arc::new(AtomicUsize::new(0));
    // The loader fails only once all 20 callers have joined the flight.
    let joined = Arc::new(watch::Sender::new(0));

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let users = users.clone();
        let loads = Arc::clone(&loads);
        let joined = Arc::clone(&joined);
        tasks.push(tokio::spawn(async move {
            let mut all_joined = joined.subscribe();
            let call = users.get_or_load(&3, |_| async move {
                loads.fetch_add(1, Ordering::SeqCst);
                until_joined(&mut all_joined, 20).await;
                Err::<User, _>(DbError("connection refused".into()))
            });
            joining(&joined, call).await
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(task.await.unwrap().unwrap_err());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    for error in &errors {
        assert!(error.is_loader());
        assert_eq!(
            error.loader_error(),
            Some(&DbError("connection refused".into()))
        );
        assert_eq!(
            error.to_string(),
            "the loader failed: database: connection refused"
        );
    }
    // Every waiter holds the same shared error.
    match (&errors[0], &errors[19]) {
        (LoadError::Loader(a), LoadError::Loader(b)) => assert!(Arc::ptr_eq(a, b)),
        other => panic!("unexpected {other:?}"),
    }
    // The lease is released with a noreply request: a round trip on the same connection
    // makes sure the server has had it before another connection looks.
    users.client().version().await.unwrap().single().unwrap();
    assert_eq!(raw_get(&server.addr(), "user:3"), None, "nothing cached");
    assert_eq!(users.get(&3).await.unwrap(), None);

    // The next call loads again, and succeeds.
    let loaded = users
        .get_or_load(&3, |id| {
            let id = *id;
            async move { Ok::<_, DbError>(user(id)) }
        })
        .await
        .unwrap();
    assert_eq!(loaded, user(3));
    assert_eq!(users.stats().loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    let server = Memcached::start();
    let users = users(&server);

    // The leader's loader never finishes; it says when it has started.
    let (started_tx, started) = oneshot::channel();
    let leader = {
        let users = users.clone();
        tokio::spawn(async move {
            users
                .get_or_load(&1, |_| async move {
                    let _ = started_tx.send(());
                    std::future::pending::<Result<User, DbError>>().await
                })
                .await
        })
    };
    started.await.expect("the leader's loader started");

    let loads = Arc::new(AtomicUsize::new(0));
    let joined = Arc::new(watch::Sender::new(0));
    let mut followers = Vec::new();
    for _ in 0..10 {
        let users = users.clone();
        let loads = Arc::clone(&loads);
        let joined = Arc::clone(&joined);
        followers.push(tokio::spawn(async move {
            let call = users.get_or_load(&1, |id| {
                let id = *id;
                async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // A slow database; a follower that comes back after this load reads
                    // the stored value, so one load whatever the timing.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, DbError>(user(id))
                }
            });
            joining(&joined, call).await
        }));
    }
    // Once every follower waits on the leader's flight, cancel the leader.
    until_joined(&mut joined.subscribe(), 10).await;
    assert_eq!(
        loads.load(Ordering::SeqCst),
        0,
        "followers wait for the leader"
    );
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    for follower in followers {
        let result = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("followers do not hang")
            .unwrap();
        assert_eq!(result.unwrap(), user(1));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one follower took over");
}

#[tokio::test]
async fn different_keys_load_independently() {
    let server = Memcached::start();
    let users = users(&server);
    let loaded = Arc::new(Mutex::new(Vec::new()));
    let mut calls = Vec::new();
    for id in [1u64, 2, 3, 1, 2, 3] {
        let users = users.clone();
        let loaded = Arc::clone(&loaded);
        calls.push(async move {
            users
                .get_or_load(&id, |id| {
                    let id = *id;
                    async move {
                        loaded.lock().unwrap().push(id);
                        // A slow database; a second call for a key that comes after its
                        // load reads the stored value, so one load per key whatever the
                        // timing.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, DbError>(user(id))
                    }
                })
                .await
        });
    }
    let mut handles = Vec::new();
    for call in calls {
        handles.push(tokio::spawn(call));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let mut loaded = loaded.lock().unwrap().clone();
    loaded.sort_unstable();
    assert_eq!(loaded, [1, 2, 3]);
}

#[tokio::test]
async fn a_mismatched_value_is_reloaded_and_replaced() {
    let server = Memcached::start();
    let users = users(&server);
    raw_set(&server.addr(), "user:5", 0, b"legacy value");
    let got = users
        .get_or_load(&5, |id| {
            let id = *id;
            async move { Ok::<_, DbError>(user(id)) }
        })
        .await
        .unwrap();
    assert_eq!(got, user(5));
    assert_eq!(users.mismatches(), 1);
    assert_eq!(users.stats().loads, 1);
    assert_eq!(users.get(&5).await.unwrap(), Some(user(5)), "replaced");
}

#[tokio::test]
async fn get_many_or_load_loads_exactly_the_missing_keys_once() {
    let server = Memcached::start();
    let users = users(&server);
    users
        .set_many(&[user(1), user(2)])
        .noreply(false)
        .await
        .unwrap();

    let calls = Arc::new(Mutex::new(Vec::new()));
    let found = {
        let calls = Arc::clone(&calls);
        users
            .get_many_or_load([1u64, 2, 3, 4, 3], |missing| async move {
                calls.lock().unwrap().push(missing.clone());
                // The "database" knows user 3 only.
                Ok::<_, DbError>(
                    missing
                        .into_iter()
                        .filter(|&id| id == 3)
                        .map(user)
                        .collect(),
                )
            })
            .await
            .unwrap()
    };
    assert_eq!(*calls.lock().unwrap(), [vec![3u64, 4]]);
    let mut ids: Vec<u64> = found.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(found[&3], user(3));
    assert_eq!(users.stats().loads, 1);

    // The loaded value was stored with the type's TTL.
    users.client().version().await.unwrap().single().unwrap();
    let ttl = raw_ttl(&server.addr(), "user:3").expect("stored");
    assert!((295..=300).contains(&ttl), "ttl {ttl}");

    // Everything cached now: the loader is not called.
    let all = users
        .get_many_or_load([1u64, 2, 3], |_| async {
            Err::<Vec<User>, _>(DbError("not called".into()))
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(users.stats().loads, 1);

    // A loader error is returned, and nothing is stored.
    let error = users
        .get_many_or_load([8u64, 9], |_| async {
            Err::<Vec<User>, _>(DbError("down".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(error.loader_error(), Some(&DbError("down".into())));
    // (anything the call sent without waiting has reached the server after a round trip)
    users.client().version().await.unwrap().single().unwrap();
    assert_eq!(raw_get(&server.addr(), "user:8"), None);
}
