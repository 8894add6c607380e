//! Read-through across processes: independent clients (as separate processes would have)
//! share one load of a missing key through memcached leases; without the meta protocol
//! each loads; a failed or cancelled winner gives its lease back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memcache_tests::{raw_command, raw_set, raw_stats, Memcached};
use memcache_typed::{Cache, CacheStats, Cacheable, Client, Codec, Lease, Protocol, Pymemcache};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "report", ttl = 300)]
struct Report {
    #[cacheable(key)]
    id: u64,
    body: String,
}

/// A client of its own: another "process" as far as the server can tell.
fn client(server: &Memcached, protocol: Protocol) -> Client {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// A cache with its own client: another "process".
fn process<T: Cacheable>(server: &Memcached, protocol: Protocol) -> Cache<T> {
    Cache::new(client(server, protocol))
}

/// Waits until the server has answered at least `reads` reads (`cmd_get`), asking it every
/// few milliseconds; panics after 10 seconds.
async fn server_has_answered_reads(addr: String, reads: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let addr = addr.clone();
        let stats = tokio::task::spawn_blocking(move || raw_stats(&addr))
            .await
            .unwrap();
        let answered: usize = stats["cmd_get"].parse().unwrap();
        if answered >= reads {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server answered {answered} reads, not {reads}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `processes` independent caches, 10 concurrent callers each, all asking for one missing
/// key: how many times a loader ran.
///
/// A loader returns (and its value is stored) only once the server has answered as many
/// reads as there are processes. Within a process only the leading caller reads, so
/// without the meta protocol every process's read is a miss and every process loads; with
/// it, the winner loads while the lease it holds is refused to reads of the others.
async fn loads_across(server: &Memcached, protocol: Protocol, processes: usize) -> usize {
    let loads = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..processes {
        let cache = process(server, protocol);
        for _ in 0..10 {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            let addr = server.addr();
            callers.push(tokio::spawn(async move {
                cache
                    .get_or_load(&7, |id| {
                        let id = *id;
                        async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            server_has_answered_reads(addr, processes).await;
                            Ok::<_, std::io::Error>(Report {
                                id,
                                body: "expensive".into(),
                            })
                        }
                    })
                    .await
            }));
        }
    }
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().body, "expensive");
    }
    loads.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_load_across_processes_with_the_meta_protocol() {
    let server = Memcached::start();
    let loads = loads_across(&server, Protocol::Auto, 4).await;
    assert_eq!(loads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_meta_protocol_each_process_loads_once() {
    let server = Memcached::start();
    // Every process's leader misses before the first load is stored; single-flight still
    // holds within each process.
    let loads = loads_across(&server, Protocol::Classic, 3).await;
    assert_eq!(loads, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_winner_gives_the_lease_back() {
    let server = Memcached::start();
    let (a, b) = (
        process(&server, Protocol::Meta),
        process(&server, Protocol::Meta),
    );
    let failed = a
        .get_or_load(&9, |_| async {
            Err::<Report, _>(std::io::Error::other("db down"))
        })
        .await;
    assert!(failed.is_err());
    // The release went out before the error returned; a round trip on the same connection
    // makes sure the server has applied it. Then b loads at once instead of waiting for a's
    // lease to run out.
    a.client().version().await.unwrap().single().unwrap();
    let started = tokio::time::Instant::now();
    let report = b
        .get_or_load(&9, |id| {
            let id = *id;
            async move {
                Ok::<_, std::io::Error>(Report {
                    id,
                    body: "recovered".into(),
                })
            }
        })
        .await
        .unwrap();
    assert_eq!(report.body, "recovered");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // an empty placeholder is a plain miss for readers, not a mismatch
    assert_eq!(a.stats().mismatches, 0);
    assert_eq!(b.stats().mismatches, 0);
}

/// A note whose text "unencodable" its `Serialize` impl refuses, as a real type may refuse
/// values it cannot represent.
#[derive(Debug, Clone, PartialEq, Deserialize, Cacheable)]
#[cacheable(prefix = "note", ttl = 300)]
struct Note {
    #[cacheable(key)]
    id: u64,
    text: String,
}

impl Serialize for Note {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeStruct as _};
        if self.text == "unencodable" {
            return Err(S::Error::custom("this note cannot be encoded"));
        }
        let mut note = serializer.serialize_struct("Note", 2)?;
        note.serialize_field("id", &self.id)?;
        note.serialize_field("text", &self.text)?;
        note.end()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winner_whose_value_does_not_encode_gives_the_lease_back() {
    let server = Memcached::start();
    let (a, b): (Cache<Note>, Cache<Note>) = (
        process(&server, Protocol::Meta),
        process(&server, Protocol::Meta),
    );
    let failed = a
        .get_or_load(&4, |id| {
            let id = *id;
            async move {
                Ok::<_, std::io::Error>(Note {
                    id,
                    text: "unencodable".into(),
                })
            }
        })
        .await
        .unwrap_err();
    let error = failed
        .cache_error()
        .expect("a cache error, not the loader's");
    assert!(error.is_encode(), "{error}");
    assert!(
        error.to_string().contains("this note cannot be encoded"),
        "{error}"
    );
    assert_eq!(a.stats().loads, 1);

    // The release went out before the call returned; a round trip on the same connection
    // makes sure the server has applied it.
    a.client().version().await.unwrap().single().unwrap();
    let placeholder = raw_command(&server.addr(), b"mg note:4 v\r\n");
    assert_eq!(
        String::from_utf8_lossy(&placeholder),
        "EN\r\n",
        "the placeholder is gone"
    );
    // Another process wins the lease at once instead of waiting out LEASE_TTL.
    let lease = b.client().lease("note:4", 30).await.unwrap();
    assert!(matches!(lease, Lease::Won { .. }), "{lease:?}");
}

/// A thumbnail shared with Python services as plain `bytes`: the stored value is the bytes
/// alone, which the Pymemcache codec writes with flags 0, as pymemcache does. The key is
/// not part of the stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[serde(transparent)]
#[cacheable(prefix = "thumb")]
struct Thumbnail {
    #[cacheable(key)]
    #[serde(skip)]
    id: u64,
    bytes: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_lease_placeholder_is_a_miss_for_pymemcache_bytes() {
    let server = Memcached::start();
    let thumbs: Cache<Thumbnail, Pymemcache> =
        Cache::with_codec(client(&server, Protocol::Meta), Pymemcache::new());
    let empty = Thumbnail {
        id: 2,
        bytes: Vec::new(),
    };
    let encoded = Pymemcache::new().encode(&empty, Thumbnail::SCHEMA).unwrap();
    assert_eq!((encoded.flags, encoded.data.len()), (0, 0));

    // Another process takes the lease on thumb:1: memcached stores an empty placeholder
    // with flags 0, exactly what an empty `bytes` looks like. thumb:2 is a real empty value.
    let won = raw_command(&server.addr(), b"mg thumb:1 v f c N30\r\n");
    assert!(won.ends_with(b" W\r\n\r\n"), "{won:?}");
    raw_set(&server.addr(), "thumb:2", 0, b"");

    // (misses, hits, mismatches)
    let counts = |stats: CacheStats| (stats.misses, stats.hits, stats.mismatches);
    assert_eq!(thumbs.get(&1).await.unwrap(), None);
    assert_eq!(counts(thumbs.stats()), (1, 0, 0));
    assert_eq!(thumbs.gets(&1).await.unwrap(), None);
    assert_eq!(counts(thumbs.stats()), (2, 0, 0));
    let updated = thumbs
        .update(&1, |_| panic!("a placeholder is not a value to update"))
        .await
        .unwrap();
    assert_eq!(updated, None);
    assert_eq!(counts(thumbs.stats()), (3, 0, 0));
    // get_many's classic reply shows both as empty flags-0 values; only thumb:2 is one.
    let found = thumbs.get_many([1u64, 2]).await.unwrap();
    assert_eq!(found.keys().copied().collect::<Vec<_>>(), [2]);
    assert!(found[&2].bytes.is_empty());
    assert_eq!(counts(thumbs.stats()), (4, 1, 0));
    // The batch loader is asked for the placeholder's key, not served an empty hit.
    let loaded = thumbs
        .get_many_or_load([1u64, 2], |missing| async move {
            assert_eq!(missing, [1]);
            Ok::<_, std::io::Error>(vec![Thumbnail {
                id: 1,
                bytes: b"png".to_vec(),
            }])
        })
        .await
        .unwrap();
    assert_eq!(loaded[&1].bytes, b"png");
    assert!(loaded[&2].bytes.is_empty());
    assert_eq!(counts(thumbs.stats()), (5, 2, 0));
}
