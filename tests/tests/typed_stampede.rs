//! Stampede-free writes and hot keys, against a real memcached: `invalidate` after a write
//! makes exactly one of many concurrent readers (in several processes: here several
//! clients) reload, while the others get the old value; refresh-ahead reloads a hot key
//! once before it expires, with no miss.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memcache_tests::Memcached;
use memcache_typed::{Cache, Cacheable, Client, KeyedCache};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "article", ttl = 300)]
struct Article {
    #[cacheable(key)]
    id: u64,
    version: u32,
}

fn client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_invalidation_64_readers_cause_one_load_and_see_the_old_or_the_new_value() {
    let server = Memcached::start();
    // Eight "processes" (clients and caches of their own: no shared single-flight), eight
    // readers each.
    let caches: Vec<Cache<Article>> = (0..8).map(|_| Cache::new(client(&server))).collect();
    let writer = &caches[0];
    writer
        .set(&Article { id: 7, version: 1 })
        .noreply(false)
        .await
        .unwrap();
    // The write: the database has version 2 now; the cache entry is marked stale.
    assert!(writer.invalidate(&7).noreply(false).await.unwrap());

    let loads = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    // The one load does not finish before the 56 readers of the seven other clients have
    // answered: none of them waits for it. (The loader's own cache's seven other readers
    // share its load: single-flight within a process.)
    let (all_answered, others_done) = watch::channel(false);
    let mut readers = Vec::new();
    for cache in &caches {
        for _ in 0..8 {
            let (cache, loads, answered) = (cache.clone(), loads.clone(), answered.clone());
            let mut others_done = others_done.clone();
            let all_answered = all_answered.clone();
            readers.push(tokio::spawn(async move {
                let article = cache
                    .get_or_load(&7, |id| {
                        let id = *id;
                        let loads = Arc::clone(&loads);
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            let waited = tokio::time::timeout(
                                Duration::from_secs(10),
                                others_done.wait_for(|done| *done),
                            )
                            .await;
                            assert!(waited.is_ok(), "the other readers waited for the load");
                            Ok::<_, std::io::Error>(Article { id, version: 2 })
                        }
                    })
                    .await
                    .expect("get_or_load");
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == 56 {
                    all_answered.send_replace(true);
                }
                article.version
            }));
        }
    }
    let mut versions = Vec::new();
    for reader in readers {
        versions.push(reader.await.unwrap());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "exactly one reload");
    // The loader's cache answered the new value; the seven others, all 56, the old one.
    assert_eq!(
        versions.iter().filter(|v| **v == 1).count(),
        56,
        "{versions:?}"
    );
    assert_eq!(
        versions.iter().filter(|v| **v == 2).count(),
        8,
        "{versions:?}"
    );
    let stats: Vec<_> = caches.iter().map(Cache::stats).collect();
    assert_eq!(stats.iter().map(|s| s.loads).sum::<u64>(), 1);
    assert_eq!(
        stats.iter().map(|s| s.misses).sum::<u64>(),
        0,
        "no miss: {stats:?}"
    );
    // The other clients served the stale value: each either read it under another
    // client's lease, or shared the read of a reader of its own client that did.
    let leased: u64 = stats.iter().map(|s| s.leased).sum();
    let coalesced: u64 = stats.iter().map(|s| s.coalesced).sum();
    assert!(leased >= 7, "{stats:?}");
    assert!((56..=63).contains(&(leased + coalesced)), "{stats:?}");
    // And the new value is what everyone reads now.
    for cache in &caches {
        assert_eq!(cache.get(&7).await.unwrap().unwrap().version, 2);
    }
}

#[tokio::test]
async fn an_invalidated_entry_over_the_classic_protocol_is_deleted() {
    let server = Memcached::start();
    let classic = Client::builder()
        .server(server.addr())
        .protocol(memcache_typed::Protocol::Classic)
        .build()
        .unwrap();
    let cache: Cache<Article> = Cache::new(classic);
    cache
        .set(&Article { id: 1, version: 1 })
        .noreply(false)
        .await
        .unwrap();
    assert!(cache.invalidate(&1).noreply(false).await.unwrap());
    assert_eq!(cache.get(&1).await.unwrap(), None);
    let keyed = KeyedCache::<u64, String>::new(client(&server), "label").unwrap();
    keyed
        .set(&1, &"one".to_owned())
        .noreply(false)
        .await
        .unwrap();
    assert!(keyed.invalidate(&1).ttl(10).noreply(false).await.unwrap());
    // Over meta, a plain read still returns the stale value until it is replaced.
    assert_eq!(keyed.get(&1).await.unwrap().as_deref(), Some("one"));
    assert!(!keyed.invalidate(&2).noreply(false).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_read_across_its_expiry_is_reloaded_once_with_no_miss() {
    let server = Memcached::start();
    // Lives 5 s; in its last 2 s one reader reloads it.
    let cache = KeyedCache::<u64, u32>::new(client(&server), "hot")
        .unwrap()
        .with_ttl(5)
        .unwrap()
        .refresh_ahead(2);
    cache.set(&1, &1).noreply(false).await.unwrap();
    let started = Instant::now();
    let loads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (cache, loads) = (cache.clone(), Arc::clone(&loads));
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut pace = tokio::time::interval(Duration::from_millis(10));
            // Past the first value's expiry (5 s), short of the second one's window.
            while started.elapsed() < Duration::from_millis(5_500) {
                pace.tick().await;
                let value = cache
                    .get_or_load(&1, |_| {
                        let loads = Arc::clone(&loads);
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, std::io::Error>(2)
                        }
                    })
                    .await
                    .expect("get_or_load");
                seen.push(value);
            }
            seen
        }));
    }
    let mut seen = Vec::new();
    for reader in readers {
        seen.extend(reader.await.unwrap());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one reload");
    let stats = cache.stats();
    assert_eq!(stats.misses, 0, "{stats:?}");
    assert_eq!(stats.loads, 1, "{stats:?}");
    assert!(seen.len() > 100, "{} reads", seen.len());
    // The old value until the reload, the new one after: never anything else.
    let first_new = seen
        .iter()
        .position(|v| *v == 2)
        .expect("the reload happened");
    assert!(seen[..first_new].iter().all(|v| *v == 1));
    assert_eq!(cache.get(&1).await.unwrap(), Some(2));
}
