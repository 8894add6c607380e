//! `memcache_typed::KeyedCache` against a real memcached: values that do not carry their key,
//! stored under a key given beside them. Every command for a plain serde type (no derive)
//! and for a type deriving `CacheValue` with `key_type`; composite and over-long keys; a value
//! read as another value type is a counted miss; bad prefixes and TTLs are refused before
//! anything is sent; the client's noreply and ignore_exc; single-flight in `get_or_load`.
//!
//! Each test starts its own server, so tests run in parallel and server state is exact.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use memcache_tests::{raw_get, raw_set, raw_stats, raw_ttl, Memcached};
use memcache_typed::codec::{layout_flags, MESSAGEPACK_CODEC_ID};
use memcache_typed::{CacheValue, Cacheable, CasOutcome, Client, Error, Json, KeyedCache};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

/// A user's friends, under the user's id: the derived form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
struct Friends(Vec<u64>);

/// An enum under a composite key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "page_state", key_type = (String, u32))]
enum PageState {
    Live { version: u32 },
    Moved(String),
    Gone,
}

fn client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

/// Waits until every noreply write sent so far on `client`'s connection is done: a round
/// trip on the same connection is answered after them.
async fn settle(client: &Client) {
    client.version().await.unwrap().single().unwrap();
}

/// Every command of a `KeyedCache<u64, V>` whose prefix is `prefix` and default TTL `ttl`,
/// with values made by `value(n)`: the same checks for the plain and the derived form.
async fn every_command<V, C>(
    server: &Memcached,
    cache: &KeyedCache<u64, V, C>,
    value: impl Fn(u64) -> V + Sync,
    flags: u32,
    ttl: Option<u32>,
) where
    V: Serialize
        + serde::de::DeserializeOwned
        + Clone
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    C: memcache_typed::Codec,
{
    let addr = server.addr();
    let prefix = cache.prefix().to_owned();
    let key = |id: u64| format!("{prefix}:{id}");
    let ttl_near = |id: u64| {
        let left = raw_ttl(&addr, &key(id)).expect("present");
        match ttl {
            Some(ttl) => assert!(
                (i64::from(ttl) - 5..=i64::from(ttl)).contains(&left),
                "ttl {left}"
            ),
            None => assert_eq!(left, -1, "no expiry"),
        }
    };

    // set / get, on the wire: "{prefix}:{id}", the flags, the default TTL.
    assert!(cache.set(&1, &value(1)).await.unwrap());
    assert_eq!(cache.get(&1).await.unwrap(), Some(value(1)));
    assert_eq!(cache.get(&2).await.unwrap(), None);
    let (stored_flags, _) = raw_get(&addr, &key(1)).expect("stored under its key");
    assert_eq!(stored_flags, flags);
    ttl_near(1);
    assert_eq!(cache.memcached_key(&1).unwrap(), key(1));

    // add: only when absent; replace: only when present.
    assert!(!cache.add(&1, &value(9)).noreply(false).await.unwrap());
    assert!(cache.add(&2, &value(2)).noreply(false).await.unwrap());
    assert!(!cache.replace(&3, &value(3)).noreply(false).await.unwrap());
    assert!(cache.replace(&2, &value(22)).noreply(false).await.unwrap());
    assert_eq!(cache.get(&2).await.unwrap(), Some(value(22)));

    // gets / cas: a stale token loses.
    let (current, token) = cache.gets(&2).await.unwrap().expect("present");
    assert_eq!(current, value(22));
    assert_eq!(
        cache.cas(&2, &value(23), token).await.unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(
        cache.cas(&2, &value(24), token).await.unwrap(),
        CasOutcome::Exists
    );
    assert_eq!(cache.get(&2).await.unwrap(), Some(value(23)));
    assert_eq!(cache.gets(&3).await.unwrap(), None);

    // update: gets + cas; a missing key is None without calling f.
    let updated = cache.update(&2, |_| value(25)).await.unwrap();
    assert_eq!(updated, Some(value(25)));
    assert_eq!(cache.get(&2).await.unwrap(), Some(value(25)));
    assert_eq!(
        cache.update(&3, |_| panic!("not called")).await.unwrap(),
        None
    );

    // touch: per-call TTL, then back to the default.
    assert!(cache.touch(&2).ttl(60).noreply(false).await.unwrap());
    let left = raw_ttl(&addr, &key(2)).expect("present");
    assert!((55..=60).contains(&left), "ttl {left}");
    assert!(cache.touch(&2).noreply(false).await.unwrap());
    ttl_near(2);
    assert!(!cache.touch(&3).noreply(false).await.unwrap());

    // set_many from a map and from pairs; get_many of hits only, keyed as given.
    let batch: HashMap<u64, V> = (10..15).map(|id| (id, value(id))).collect();
    assert!(cache
        .set_many(&batch)
        .noreply(false)
        .await
        .unwrap()
        .is_empty());
    let pairs = vec![(15u64, value(15)), (16, value(16))];
    assert!(cache
        .set_many(pairs)
        .ttl(30)
        .noreply(false)
        .await
        .unwrap()
        .is_empty());
    let left = raw_ttl(&addr, &key(16)).expect("present");
    assert!((25..=30).contains(&left), "ttl {left}");
    let hits = cache.get_many([10u64, 12, 16, 99, 12]).await.unwrap();
    let want: HashMap<u64, V> = [10, 12, 16].into_iter().map(|id| (id, value(id))).collect();
    assert_eq!(hits, want);

    // delete / delete_many.
    assert!(cache.delete(&10).noreply(false).await.unwrap());
    assert!(!cache.delete(&10).noreply(false).await.unwrap());
    cache
        .delete_many([11u64, 12, 13])
        .noreply(false)
        .await
        .unwrap();
    let left: Vec<u64> = {
        let mut ids: Vec<u64> = cache.get_many(10..17).await.unwrap().into_keys().collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(left, [14, 15, 16]);

    // get_or_load: a miss loads and stores under the key asked for; then a hit.
    let loads = AtomicUsize::new(0);
    let loaded = cache
        .get_or_load(&40, |id| {
            loads.fetch_add(1, Ordering::SeqCst);
            let v = value(*id);
            async move { Ok::<_, std::io::Error>(v) }
        })
        .await
        .unwrap();
    assert_eq!(loaded, value(40));
    settle(cache.client()).await;
    ttl_near(40);
    let again = cache
        .get_or_load(&40, |_| async {
            Err::<V, _>(std::io::Error::other("not called"))
        })
        .await
        .unwrap();
    assert_eq!(again, value(40));
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    // get_many_or_load: the loader gets exactly the missing keys, returns pairs (as a map
    // here), and a pair for a key that was not missing is ignored.
    let asked = std::sync::Mutex::new(Vec::new());
    let found = cache
        .get_many_or_load([40u64, 41, 42, 41], |missing| {
            asked.lock().unwrap().extend(missing.iter().copied());
            let mut loaded: HashMap<u64, V> = missing.iter().map(|&id| (id, value(id))).collect();
            loaded.insert(40, value(999)); // not missing: ignored
            async move { Ok::<_, std::io::Error>(loaded) }
        })
        .await
        .unwrap();
    assert_eq!(*asked.lock().unwrap(), [41, 42]);
    let want: HashMap<u64, V> = [40, 41, 42].into_iter().map(|id| (id, value(id))).collect();
    assert_eq!(found, want);
    settle(cache.client()).await;
    assert_eq!(cache.get(&41).await.unwrap(), Some(value(41)));
    assert_eq!(cache.get(&40).await.unwrap(), Some(value(40)));

    // The counters of the clones are shared.
    let clone = cache.clone();
    let before = cache.stats();
    assert_eq!(clone.get(&99).await.unwrap(), None);
    assert_eq!(cache.stats().misses, before.misses + 1);
    assert_eq!(cache.stats().loads, 2);
    assert_eq!(cache.mismatches(), 0);
}

#[tokio::test]
async fn a_plain_serde_type_with_every_command() {
    let server = Memcached::start();
    let friends = KeyedCache::<u64, Vec<u64>>::new(client(&server), "friend_ids").unwrap();
    assert_eq!((friends.prefix(), friends.ttl()), ("friend_ids", None));
    let flags = layout_flags(MESSAGEPACK_CODEC_ID, friends.schema());
    every_command(&server, &friends, |n| vec![n, n + 1], flags, None).await;

    // With a default TTL, under another prefix.
    let with_ttl = KeyedCache::<u64, Vec<u64>>::new(client(&server), "friend_ids_ttl")
        .unwrap()
        .with_ttl(120)
        .unwrap();
    assert_eq!(with_ttl.ttl(), Some(120));
    let flags = layout_flags(MESSAGEPACK_CODEC_ID, with_ttl.schema());
    every_command(&server, &with_ttl, |n| vec![n; 3], flags, Some(120)).await;
}

#[tokio::test]
async fn a_derived_type_with_every_command() {
    let server = Memcached::start();
    let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client(&server));
    assert_eq!(friends.prefix(), "friends");
    assert_eq!(friends.ttl(), Some(600));
    assert_eq!(friends.schema(), <Friends as CacheValue>::SCHEMA);
    let flags = layout_flags(MESSAGEPACK_CODEC_ID, <Friends as CacheValue>::SCHEMA);
    every_command(
        &server,
        &friends,
        |n| Friends(vec![n, 2 * n]),
        flags,
        Some(600),
    )
    .await;
}

#[tokio::test]
async fn composite_keys_are_escaped_and_never_collide() {
    let server = Memcached::start();
    let addr = server.addr();
    let pages: KeyedCache<(String, u32), PageState> = KeyedCache::typed(client(&server));
    let live = PageState::Live { version: 3 };
    let moved = PageState::Moved("/new".to_owned());
    let key_a = ("acme corp".to_owned(), 7);
    let key_b = ("acme:corp".to_owned(), 7);
    pages.set(&key_a, &live).noreply(false).await.unwrap();
    pages.set(&key_b, &moved).noreply(false).await.unwrap();
    pages
        .set(&("gone".to_owned(), 1), &PageState::Gone)
        .noreply(false)
        .await
        .unwrap();

    assert!(raw_get(&addr, "page_state:acme%20corp:7").is_some());
    assert!(raw_get(&addr, "page_state:acme%3Acorp:7").is_some());
    assert_eq!(pages.get(&key_a).await.unwrap(), Some(live.clone()));
    assert_eq!(pages.get(&key_b).await.unwrap(), Some(moved.clone()));
    assert_eq!(pages.get(&("acme".to_owned(), 7)).await.unwrap(), None);
    assert_eq!(
        pages.get(&("gone".to_owned(), 1)).await.unwrap(),
        Some(PageState::Gone)
    );
    let hits = pages.get_many([&key_a, &key_b]).await.unwrap();
    assert_eq!(hits[&key_a], live);
    assert_eq!(hits[&key_b], moved);

    // A plain type with a composite key.
    let visits = KeyedCache::<(String, u32), u64>::new(client(&server), "visits").unwrap();
    visits
        .set(&("/about".to_owned(), 2024), &17)
        .noreply(false)
        .await
        .unwrap();
    assert!(raw_get(&addr, "visits:/about:2024").is_some());
    assert_eq!(
        visits.get(&("/about".to_owned(), 2024)).await.unwrap(),
        Some(17)
    );
}

#[tokio::test]
async fn over_long_keys_are_hashed_as_for_cache() {
    let server = Memcached::start();
    let addr = server.addr();
    let pages = KeyedCache::<String, String>::new(client(&server), "page").unwrap();
    let long = "x".repeat(1000);
    let long_other = format!("{}y", "x".repeat(999));

    let full = pages.memcached_key(long.as_str()).unwrap();
    // The same key Cache<T> and full_key give, with this prefix.
    assert_eq!(
        full,
        memcache_typed::full_key("page", long.as_str(), 250).unwrap()
    );
    assert!(
        full.starts_with("page:%H") && full.len() == 4 + 46,
        "{full}"
    );
    assert_ne!(full, pages.memcached_key(long_other.as_str()).unwrap());

    pages
        .set(&long, &"first".to_owned())
        .noreply(false)
        .await
        .unwrap();
    pages
        .set(&long_other, &"second".to_owned())
        .noreply(false)
        .await
        .unwrap();
    assert!(
        raw_get(&addr, &full).is_some(),
        "stored under the hashed key"
    );
    assert_eq!(
        pages.get(long.as_str()).await.unwrap().as_deref(),
        Some("first")
    );
    assert_eq!(
        pages.get(&long_other).await.unwrap().as_deref(),
        Some("second")
    );
    let hits = pages
        .get_many([long.clone(), long_other.clone()])
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
}

#[tokio::test]
async fn a_value_read_as_another_value_type_is_a_counted_miss() {
    let server = Memcached::start();
    let ids = KeyedCache::<u64, Vec<u64>>::new(client(&server), "shared").unwrap();
    let names = KeyedCache::<u64, String>::new(client(&server), "shared").unwrap();
    let json =
        KeyedCache::<u64, Vec<u64>, Json>::with_codec(client(&server), "shared", Json).unwrap();
    assert_ne!(ids.schema(), names.schema());

    ids.set(&1, &vec![1, 2, 3]).noreply(false).await.unwrap();
    names
        .set(&2, &"two".to_owned())
        .noreply(false)
        .await
        .unwrap();
    // Another value type, another schema: misses, counted, never garbage.
    assert_eq!(names.get(&1).await.unwrap(), None);
    assert_eq!(ids.get(&2).await.unwrap(), None);
    assert!(ids.get_many([1u64, 2]).await.unwrap().contains_key(&1));
    assert_eq!(names.mismatches(), 1);
    assert_eq!(ids.mismatches(), 2); // `get(&2)` and the `2` of get_many
                                     // Another codec: a miss too.
    assert_eq!(json.get(&1).await.unwrap(), None);
    assert_eq!(json.mismatches(), 1);
    // get_or_load replaces the value of the other type.
    let loaded = names
        .get_or_load(&1, |_| async { Ok::<_, std::io::Error>("one".to_owned()) })
        .await
        .unwrap();
    assert_eq!(loaded, "one");
    settle(names.client()).await;
    assert_eq!(names.get(&1).await.unwrap().as_deref(), Some("one"));

    // The derived newtype and the plain Vec<u64> encode alike, but have other schemas...
    let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client(&server));
    let plain = KeyedCache::<u64, Vec<u64>>::new(client(&server), "friends").unwrap();
    friends
        .set(&5, &Friends(vec![8]))
        .noreply(false)
        .await
        .unwrap();
    assert_eq!(plain.get(&5).await.unwrap(), None);
    assert_eq!(plain.mismatches(), 1);
    // ... unless the plain cache is told the schema: how two services agree on one.
    let agreed = plain.with_schema(<Friends as CacheValue>::SCHEMA);
    assert_eq!(agreed.get(&5).await.unwrap(), Some(vec![8]));

    // A value somebody else wrote under the key (flags 0, not MessagePack) is a miss too.
    raw_set(&server.addr(), "shared:3", 0, b"raw bytes");
    assert_eq!(ids.get(&3).await.unwrap(), None);
    assert_eq!(ids.mismatches(), 3);
}

#[tokio::test]
async fn bad_prefixes_and_ttls_are_refused_before_anything_is_sent() {
    let server = Memcached::start();
    // Each look at the stats is one connection of its own; a client that sent anything
    // would have connected too.
    let commands = |stats: HashMap<String, String>| {
        let connections: u64 = stats["total_connections"].parse().unwrap();
        (
            stats["cmd_get"].clone(),
            stats["cmd_set"].clone(),
            connections,
        )
    };
    let (gets, sets, connections) = commands(raw_stats(&server.addr()));
    let long = "p".repeat(201);
    for (prefix, rule) in [
        ("", "must not be empty"),
        ("a b", "whitespace"),
        ("line\n", "whitespace"),
        ("bell\u{7}", "control"),
        ("café", "ASCII"),
        ("user:1", "`:`"),
        (long.as_str(), "at most 200 bytes"),
    ] {
        let error = KeyedCache::<u64, String>::new(client(&server), prefix).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidPrefix { prefix: p } if p == prefix),
            "{error}"
        );
        assert!(error.is_key() && error.is_illegal_input(), "{error}");
        assert!(error.to_string().contains(rule), "{prefix:?}: {error}");
    }
    assert!(KeyedCache::<u64, String>::new(client(&server), &"p".repeat(200)).is_ok());

    for seconds in [0, 2_592_001, u32::MAX] {
        let cache = KeyedCache::<u64, String>::new(client(&server), "ok").unwrap();
        let error = cache.with_ttl(seconds).unwrap_err();
        assert!(
            matches!(error, Error::InvalidTtl { seconds: s } if s == seconds),
            "{error}"
        );
        assert!(
            error.is_illegal_input() && error.to_string().contains("30 days"),
            "{error}"
        );
    }
    let cache = KeyedCache::<u64, String>::new(client(&server), "ok").unwrap();
    assert_eq!(cache.with_ttl(2_592_000).unwrap().ttl(), Some(2_592_000));
    assert_eq!(
        commands(raw_stats(&server.addr())),
        (gets, sets, connections + 1),
        "nothing was sent"
    );
}

#[tokio::test]
async fn noreply_default_and_ignore_exc_hold() {
    let server = Memcached::start();
    let friends: KeyedCache<u64, Friends> = KeyedCache::typed(
        Client::builder()
            .server(server.addr())
            .connect_timeout(Duration::from_millis(300))
            .timeout(Duration::from_millis(300))
            .ignore_exc(true)
            .build()
            .unwrap(),
    );
    // noreply by default: `true` at once; a later read on the same client sees the write.
    assert!(friends.set(&1, &Friends(vec![2])).await.unwrap());
    assert_eq!(friends.get(&1).await.unwrap(), Some(Friends(vec![2])));
    server.kill();

    // ignore_exc: reads are misses, read-through serves the loader's value.
    assert_eq!(friends.get(&1).await.unwrap(), None);
    assert_eq!(friends.gets(&1).await.unwrap(), None);
    assert!(friends.get_many([1u64, 2]).await.unwrap().is_empty());
    assert_eq!(friends.update(&1, |f| f).await.unwrap(), None);
    let loaded = friends
        .get_or_load(&1, |id| {
            let id = *id;
            async move { Ok::<_, std::io::Error>(Friends(vec![id])) }
        })
        .await
        .unwrap();
    assert_eq!(loaded, Friends(vec![1]));
    // Writes still report errors.
    let error = friends.set(&1, &loaded).noreply(false).await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");
}

/// Runs a call and counts it in `joined` once its first poll is over: by then a
/// `get_or_load` has joined the flight of its key (it joins before its first await).
async fn joining<F: Future>(joined: &watch::Sender<usize>, call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    joined.send_modify(|n| *n += 1);
    match first {
        Poll::Ready(output) => output,
        Poll::Pending => call.await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_get_or_load_calls_share_one_load() {
    let server = Memcached::start();
    let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client(&server));
    let loads = Arc::new(AtomicUsize::new(0));
    let (open, gate) = oneshot::channel::<()>();
    let gate = Arc::new(tokio::sync::Mutex::new(Some(gate)));
    let (joined, mut joined_rx) = watch::channel(0usize);
    let joined = Arc::new(joined);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (friends, loads, gate, joined) = (
            friends.clone(),
            Arc::clone(&loads),
            Arc::clone(&gate),
            Arc::clone(&joined),
        );
        tasks.push(tokio::spawn(async move {
            let call = friends.get_or_load(&7, |id| {
                let id = *id;
                async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // The load waits until every caller has joined.
                    if let Some(gate) = gate.lock().await.take() {
                        gate.await.expect("the test opens the gate");
                    }
                    Ok::<_, std::io::Error>(Friends(vec![id]))
                }
            });
            joining(&joined, call).await
        }));
    }
    let all_joined =
        tokio::time::timeout(Duration::from_secs(10), joined_rx.wait_for(|&n| n >= 20));
    assert!(matches!(all_joined.await, Ok(Ok(_))), "every caller joins");
    open.send(()).expect("the leader waits at the gate");
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Friends(vec![7]));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "exactly one load");
    let stats = friends.stats();
    assert_eq!((stats.loads, stats.coalesced), (1, 19));
}
