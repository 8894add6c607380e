//! `memcache_typed::Cache` against a real memcached: round trips of derived and hand-written
//! types, keys that need escaping or hashing, every write command, flags mismatches,
//! corrupt values, per-call TTLs and the client's noreply default.
//!
//! Each test starts its own server, so tests run in parallel and server state is exact.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use memcache_tests::{raw_get, raw_set, raw_stats, raw_ttl, Memcached};
use memcache_typed::codec::{layout_flags, JSON_CODEC_ID, MESSAGEPACK_CODEC_ID};
use memcache_typed::{
    Cache, CacheStats, Cacheable, CasOutcome, Client, Codec, Error, Json, MessagePack,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
    tags: Vec<String>,
}

fn user(id: u64, name: &str) -> User {
    User {
        id,
        name: name.to_owned(),
        tags: vec!["a".to_owned(), format!("tag-{id}")],
    }
}

/// Another version of `User`: same prefix and fields, another `version`, so another schema.
mod v2 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
    #[cacheable(prefix = "user", ttl = 300, version = 2)]
    pub struct User {
        #[cacheable(key)]
        pub id: u64,
        pub name: String,
        pub tags: Vec<String>,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "membership")]
struct Membership {
    #[cacheable(key)]
    tenant: String,
    #[cacheable(key)]
    user: u64,
    role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "doc")]
struct Document {
    #[cacheable(key)]
    path: String,
    body: String,
}

/// A hand-written impl: a `String` key, looked up by `&str`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    token: String,
    user_id: u64,
}

impl Cacheable for Session {
    type Key = String;
    const PREFIX: &'static str = "session";
    const TTL: Option<u32> = Some(1800);
    const SCHEMA: u32 = 0x00C0_FFEE;

    fn cache_key(&self) -> String {
        self.token.clone()
    }
}

/// A hand-written impl whose prefix has a `:`: tenant acme's members by user id. Its key 7
/// would be `membership:acme:7`, the key of `Membership { tenant: "acme", user: 7 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AcmeMember {
    user: u64,
    role: String,
}

impl Cacheable for AcmeMember {
    type Key = u64;
    const PREFIX: &'static str = "membership:acme";
    const TTL: Option<u32> = None;
    const SCHEMA: u32 = 1;

    fn cache_key(&self) -> u64 {
        self.user
    }
}

fn client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

fn stats(hits: u64, misses: u64, mismatches: u64, loads: u64) -> CacheStats {
    let mut stats = CacheStats::default();
    stats.hits = hits;
    stats.misses = misses;
    stats.mismatches = mismatches;
    stats.loads = loads;
    stats
}

#[tokio::test]
async fn derived_type_round_trips() {
    let server = Memcached::start();
    let addr = server.addr();
    let users: Cache<User> = Cache::new(client(&server));
    let ann = user(42, "Ann");

    assert!(users.set(&ann).await.unwrap());
    assert_eq!(users.get(&42).await.unwrap(), Some(ann.clone()));
    assert_eq!(users.get(&43).await.unwrap(), None);

    // On the wire: "user:42", MessagePack with named fields, the layout flags, the type's TTL.
    let (flags, data) = raw_get(&addr, "user:42").expect("stored under user:42");
    assert_eq!(flags, layout_flags(MESSAGEPACK_CODEC_ID, User::SCHEMA));
    assert!(data.windows(4).any(|w| w == b"name"), "named fields");
    let ttl = raw_ttl(&addr, "user:42").expect("present");
    assert!((295..=300).contains(&ttl), "ttl {ttl}");
    assert_eq!(users.memcached_key(&42).unwrap(), "user:42");

    assert_eq!(users.stats(), stats(1, 1, 0, 0));
    assert!(users.delete(&42).noreply(false).await.unwrap());
    assert!(!users.delete(&42).noreply(false).await.unwrap());
    assert_eq!(users.get(&42).await.unwrap(), None);

    // Clones share the client and the counters.
    let clone = users.clone();
    assert_eq!(clone.get(&42).await.unwrap(), None);
    assert_eq!(users.stats().misses, 3);
}

#[tokio::test]
async fn get_many_and_set_many() {
    let server = Memcached::start();
    let users: Cache<User> = Cache::new(client(&server));
    let all: Vec<User> = (1..=5).map(|id| user(id, &format!("user {id}"))).collect();

    let not_stored = users.set_many(&all).noreply(false).await.unwrap();
    assert!(not_stored.is_empty());
    let hits = users.get_many(&[1, 3, 5, 99, 3]).await.unwrap();
    let want: HashMap<u64, User> = [1, 3, 5]
        .into_iter()
        .map(|id| (id, all[id as usize - 1].clone()))
        .collect();
    assert_eq!(hits, want);
    // Duplicates are asked for once: three hits, one miss.
    assert_eq!(users.stats(), stats(3, 1, 0, 0));
    assert!(users.get_many(Vec::<u64>::new()).await.unwrap().is_empty());

    // set_many honours a per-call TTL.
    users
        .set_many([&all[0]])
        .ttl(60)
        .noreply(false)
        .await
        .unwrap();
    let ttl = raw_ttl(&server.addr(), "user:1").expect("present");
    assert!((55..=60).contains(&ttl), "ttl {ttl}");

    users
        .delete_many([1u64, 2, 3])
        .noreply(false)
        .await
        .unwrap();
    let left = users.get_many([1u64, 2, 3, 4, 5]).await.unwrap();
    let mut ids: Vec<u64> = left.into_keys().collect();
    ids.sort_unstable();
    assert_eq!(ids, [4, 5]);
}

#[tokio::test]
async fn composite_keys() {
    let server = Memcached::start();
    let members: Cache<Membership> = Cache::new(client(&server));
    let m = Membership {
        tenant: "acme corp".to_owned(),
        user: 7,
        role: "admin".to_owned(),
    };
    let other = Membership {
        tenant: "acme:corp".to_owned(),
        ..m.clone()
    };
    members.set(&m).noreply(false).await.unwrap();
    members.set(&other).noreply(false).await.unwrap();

    let key = ("acme corp".to_owned(), 7u64);
    assert_eq!(members.get(&key).await.unwrap(), Some(m.clone()));
    let key2 = ("acme:corp".to_owned(), 7u64);
    assert_eq!(members.get(&key2).await.unwrap(), Some(other));
    assert_eq!(
        members.get(&("acme".to_owned(), 7)).await.unwrap(),
        None,
        "no collision with a shorter tenant"
    );
    assert!(raw_get(&server.addr(), "membership:acme%20corp:7").is_some());
    assert!(raw_get(&server.addr(), "membership:acme%3Acorp:7").is_some());
    let hits = members.get_many([&key, &key2]).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[&key], m);
}

#[tokio::test]
async fn awkward_keys_round_trip_through_the_server() {
    let server = Memcached::start();
    let docs: Cache<Document> = Cache::new(client(&server));
    let long = "x".repeat(1000);
    let long_other = format!("{}y", "x".repeat(999));
    let paths = [
        "with space",
        "new\nline",
        "crlf\r\nflush_all",
        "tab\t",
        "100%",
        "%20",
        "a:b",
        "a%3Ab",
        ":",
        "",
        "ünïcødé 🦀",
        "nul\0byte",
        long.as_str(),
        long_other.as_str(),
    ];
    for path in paths {
        let doc = Document {
            path: path.to_owned(),
            body: format!("body of {path:?}"),
        };
        assert!(docs.set(&doc).noreply(false).await.unwrap(), "{path:?}");
    }
    for path in paths {
        let doc = docs.get(path).await.unwrap().expect("hit");
        assert_eq!(doc.path, path);
        assert_eq!(doc.body, format!("body of {path:?}"));
        let key = docs.memcached_key(path).unwrap();
        assert!(key.len() <= 250, "{key}");
        assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{key:?}");
        assert!(raw_get(&server.addr(), &key).is_some(), "{key}");
    }
    // Every key landed on its own item: nothing overwrote anything (and no flush_all ran).
    assert_eq!(
        raw_stats(&server.addr())["curr_items"],
        paths.len().to_string()
    );
    let owned: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    let hits = docs.get_many(&owned).await.unwrap();
    assert_eq!(hits.len(), paths.len());
    assert!(docs
        .memcached_key(long.as_str())
        .unwrap()
        .starts_with("doc:%H"));
}

#[tokio::test]
async fn client_key_prefix_shrinks_the_budget() {
    let server = Memcached::start();
    let client = Client::builder()
        .server(server.addr())
        .key_prefix("app-v1:")
        .build()
        .unwrap();
    let docs: Cache<Document> = Cache::new(client);
    let path = "p".repeat(245); // "doc:" + 245 = 249 bytes, plus 7 of client prefix: too long
    let doc = Document {
        path: path.clone(),
        body: "b".to_owned(),
    };
    docs.set(&doc).noreply(false).await.unwrap();
    assert_eq!(docs.get(path.as_str()).await.unwrap(), Some(doc));
    let key = docs.memcached_key(path.as_str()).unwrap();
    assert!(key.starts_with("doc:%H") && key.len() + 7 <= 250, "{key}");
    assert!(raw_get(&server.addr(), &format!("app-v1:{key}")).is_some());
}

#[tokio::test]
async fn hand_written_impl() {
    let server = Memcached::start();
    let sessions: Cache<Session> = Cache::new(client(&server));
    let s = Session {
        token: "tok en".to_owned(),
        user_id: 9,
    };
    sessions.set(&s).noreply(false).await.unwrap();
    // Key = String, looked up by &str or &String.
    assert_eq!(sessions.get("tok en").await.unwrap(), Some(s.clone()));
    assert_eq!(sessions.get(&"tok en".to_owned()).await.unwrap(), Some(s));
    let (flags, _) = raw_get(&server.addr(), "session:tok%20en").expect("stored");
    assert_eq!(flags, layout_flags(MESSAGEPACK_CODEC_ID, 0x00C0_FFEE));
    let ttl = raw_ttl(&server.addr(), "session:tok%20en").unwrap();
    assert!((1795..=1800).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn a_hand_written_prefix_with_a_colon_is_refused() {
    let server = Memcached::start();
    let addr = server.addr();
    let members: Cache<Membership> = Cache::new(client(&server));
    let acme: Cache<AcmeMember> = Cache::new(client(&server));
    let member = Membership {
        tenant: "acme".to_owned(),
        user: 7,
        role: "admin".to_owned(),
    };
    members.set(&member).noreply(false).await.unwrap();
    let commands =
        |stats: HashMap<String, String>| (stats["cmd_get"].clone(), stats["cmd_set"].clone());
    let before = commands(raw_stats(&addr));

    let refused = |error: Error| {
        assert!(matches!(&error, Error::InvalidPrefix { prefix } if prefix == "membership:acme"));
        assert!(error.is_key() && error.is_illegal_input(), "{error}");
        assert!(error.to_string().contains("`:`"), "{error}");
    };
    refused(acme.memcached_key(&7).unwrap_err());
    refused(acme.get(&7).await.unwrap_err());
    refused(acme.get_many([7u64]).await.unwrap_err());
    let intruder = AcmeMember {
        user: 7,
        role: "intruder".to_owned(),
    };
    refused(acme.set(&intruder).noreply(false).await.unwrap_err());
    refused(acme.set(&intruder).await.unwrap_err());
    refused(acme.delete(&7).await.unwrap_err());
    let loaded = acme
        .get_or_load(&7, |_| async {
            Err::<AcmeMember, _>(std::io::Error::other("the loader is not called"))
        })
        .await
        .unwrap_err();
    refused(loaded.cache_error().expect("a cache error").clone());

    // Nothing reached the server, and the membership it would have overwritten is intact.
    assert_eq!(commands(raw_stats(&addr)), before);
    assert_eq!(
        members.get(&("acme".to_owned(), 7)).await.unwrap(),
        Some(member)
    );
}

#[tokio::test]
async fn add_replace_gets_cas_touch() {
    let server = Memcached::start();
    let addr = server.addr();
    let users: Cache<User> = Cache::new(client(&server));
    let ann = user(1, "Ann");
    let bob = User {
        name: "Bob".to_owned(),
        ..ann.clone()
    };

    assert!(!users.replace(&ann).noreply(false).await.unwrap());
    assert!(users.add(&ann).noreply(false).await.unwrap());
    assert!(!users.add(&bob).noreply(false).await.unwrap());
    assert_eq!(users.get(&1).await.unwrap(), Some(ann.clone()));
    assert!(users.replace(&bob).noreply(false).await.unwrap());
    assert_eq!(users.get(&1).await.unwrap(), Some(bob.clone()));

    let (read, token) = users.gets(&1).await.unwrap().expect("hit");
    assert_eq!(read, bob);
    assert_eq!(users.gets(&2).await.unwrap(), None);
    assert_eq!(users.cas(&ann, token).await.unwrap(), CasOutcome::Stored);
    assert_eq!(users.cas(&bob, token).await.unwrap(), CasOutcome::Exists);
    assert_eq!(users.get(&1).await.unwrap(), Some(ann.clone()));
    let ttl = raw_ttl(&addr, "user:1").unwrap();
    assert!(
        (295..=300).contains(&ttl),
        "cas keeps the type's ttl: {ttl}"
    );

    assert!(users.touch(&1).ttl(1000).noreply(false).await.unwrap());
    let ttl = raw_ttl(&addr, "user:1").unwrap();
    assert!((995..=1000).contains(&ttl), "touched: {ttl}");
    assert!(users.touch(&1).noreply(false).await.unwrap());
    let ttl = raw_ttl(&addr, "user:1").unwrap();
    assert!(
        (295..=300).contains(&ttl),
        "touched to the type's ttl: {ttl}"
    );
    assert!(!users.touch(&2).noreply(false).await.unwrap());

    users.delete(&1).noreply(false).await.unwrap();
    let other = user(2, "Cy");
    users.set(&other).await.unwrap();
    let (_, token) = users.gets(&2).await.unwrap().unwrap();
    users.delete(&2).noreply(false).await.unwrap();
    assert_eq!(
        users.cas(&other, token).await.unwrap(),
        CasOutcome::NotFound
    );
}

#[tokio::test]
async fn raw_value_under_the_typed_key_is_a_counted_miss() {
    let server = Memcached::start();
    let addr = server.addr();
    let users: Cache<User> = Cache::new(client(&server));
    raw_set(&addr, "user:1", 0, b"written by someone else");
    raw_set(&addr, "user:2", 16, b"a python str");
    users.set(&user(3, "Cy")).noreply(false).await.unwrap();

    assert_eq!(users.get(&1).await.unwrap(), None);
    assert_eq!(users.mismatches(), 1);
    assert_eq!(users.gets(&2).await.unwrap(), None);
    assert_eq!(users.mismatches(), 2);
    let hits = users.get_many([1u64, 2, 3]).await.unwrap();
    assert_eq!(hits.keys().copied().collect::<Vec<_>>(), [3]);
    assert_eq!(users.stats(), stats(1, 4, 4, 0));
    // The foreign values are untouched.
    assert_eq!(
        raw_get(&addr, "user:1").unwrap().1,
        b"written by someone else"
    );
}

#[tokio::test]
async fn another_schema_version_is_a_counted_miss() {
    let server = Memcached::start();
    let client = client(&server);
    let old: Cache<User> = Cache::new(client.clone());
    let new: Cache<v2::User> = Cache::new(client);
    assert_ne!(User::SCHEMA, v2::User::SCHEMA);

    old.set(&user(1, "Ann")).noreply(false).await.unwrap();
    assert_eq!(new.get(&1).await.unwrap(), None);
    assert_eq!(new.mismatches(), 1);
    let (flags, _) = raw_get(&server.addr(), "user:1").unwrap();
    assert_eq!(flags, layout_flags(MESSAGEPACK_CODEC_ID, User::SCHEMA));

    let v2_ann = v2::User {
        id: 1,
        name: "Ann v2".to_owned(),
        tags: Vec::new(),
    };
    new.set(&v2_ann).noreply(false).await.unwrap();
    assert_eq!(new.get(&1).await.unwrap(), Some(v2_ann));
    assert_eq!(old.get(&1).await.unwrap(), None);
    assert_eq!(old.mismatches(), 1);
}

#[tokio::test]
async fn json_and_messagepack_do_not_read_each_other() {
    let server = Memcached::start();
    let client = client(&server);
    let packed: Cache<User> = Cache::new(client.clone());
    let json: Cache<User, Json> = Cache::with_codec(client, Json);

    json.set(&user(1, "Ann")).noreply(false).await.unwrap();
    let (flags, data) = raw_get(&server.addr(), "user:1").unwrap();
    assert_eq!(flags, layout_flags(JSON_CODEC_ID, User::SCHEMA));
    assert!(data.starts_with(b"{\"id\":1,"), "{data:?}");
    assert_eq!(json.get(&1).await.unwrap(), Some(user(1, "Ann")));
    assert_eq!(packed.get(&1).await.unwrap(), None);
    assert_eq!(packed.mismatches(), 1);

    packed.set(&user(2, "Bob")).noreply(false).await.unwrap();
    assert_eq!(json.get(&2).await.unwrap(), None);
    assert_eq!(json.stats(), stats(1, 1, 1, 0));
}

#[tokio::test]
async fn corrupt_bytes_under_the_right_flags_are_a_decode_error() {
    let server = Memcached::start();
    let addr = server.addr();
    let users: Cache<User> = Cache::new(client(&server));
    let flags = layout_flags(MESSAGEPACK_CODEC_ID, User::SCHEMA);
    let good = MessagePack
        .encode(&user(5, "Eve"), User::SCHEMA)
        .unwrap()
        .data
        .to_vec();

    let cases: [(&str, Vec<u8>); 5] = [
        ("reserved byte", vec![0xc1]),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("trailing bytes", [good.as_slice(), b"junk"].concat()),
        ("another shape", b"\x93\x01\x02\x03".to_vec()),
    ];
    for (what, bytes) in cases {
        raw_set(&addr, "user:5", flags, &bytes);
        let error = users.get(&5).await.expect_err(what);
        assert!(error.is_decode(), "{what}: {error}");
        assert!(matches!(error, Error::Decode(_)), "{what}");
        let error = users.get_many([5u64]).await.expect_err(what);
        assert!(error.is_decode(), "{what}: {error}");
        let error = users.gets(&5).await.expect_err(what);
        assert!(error.is_decode(), "{what}: {error}");
    }
    assert_eq!(users.mismatches(), 0);
}

#[tokio::test]
async fn per_call_ttl_overrides_the_type_ttl() {
    let server = Memcached::start();
    let users: Cache<User> = Cache::new(client(&server));
    users
        .set(&user(1, "Ann"))
        .ttl(1)
        .noreply(false)
        .await
        .unwrap();
    users.set(&user(2, "Bob")).noreply(false).await.unwrap();
    assert!(users.get(&1).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(users.get(&1).await.unwrap(), None, "expired after ttl 1");
    assert!(
        users.get(&2).await.unwrap().is_some(),
        "type ttl 300 still live"
    );
}

#[tokio::test]
async fn noreply_default_is_honoured() {
    let server = Memcached::start();
    let quick = Duration::from_millis(300);
    let noreply = Client::builder()
        .server(server.addr())
        .timeout(quick)
        .build()
        .unwrap();
    let waiting = Client::builder()
        .server(server.addr())
        .timeout(quick)
        .default_noreply(false)
        .build()
        .unwrap();
    let users: Cache<User> = Cache::new(noreply.clone());
    let users_waiting: Cache<User> = Cache::new(waiting);
    // A second noreply client for the per-call override: its connection dies of the timeout,
    // while the first one's stays up (it never waits for a reply while the server is paused).
    let users_override: Cache<User> = Cache::new(
        Client::builder()
            .server(server.addr())
            .timeout(quick)
            .build()
            .unwrap(),
    );
    // Connect the clients first.
    for cache in [&users, &users_waiting, &users_override] {
        assert_eq!(cache.get(&0).await.unwrap(), None);
    }

    server.pause();
    // noreply (the client's default): handed to the connection, no reply awaited.
    let started = Instant::now();
    assert!(users.set(&user(1, "Ann")).await.unwrap());
    assert!(users.delete(&7).await.unwrap());
    assert!(started.elapsed() < quick, "{:?}", started.elapsed());
    // A client whose default is to wait times out on the paused server ...
    let error = users_waiting.set(&user(2, "Bob")).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    // ... and so does a per-call override on the noreply client.
    let error = users_override
        .set(&user(3, "Cy"))
        .noreply(false)
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    server.resume();

    // The noreply write was applied: readable next on the same connection (memcached
    // answers one connection in order).
    assert_eq!(users.get(&1).await.unwrap(), Some(user(1, "Ann")));
    drop(noreply);
}
