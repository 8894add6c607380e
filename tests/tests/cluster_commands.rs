//! A client of several real memcacheds: every key is stored on the server `server_for`
//! names (read back from each server directly), multi-key calls span all servers,
//! server-wide commands answer per server, TCP, IPv6 and unix sockets mix, the typed layer
//! works unchanged, and nutcracker with the same ring reads what the client wrote directly,
//! and the other way round.

use std::collections::HashMap;
use std::time::Duration;

use memcache_core::{Client, Distribution, Protocol, ServerAddr};
use memcache_tests::{raw_get, raw_set, Memcached, Nutcracker};
use memcache_typed::{Cache, Cacheable};
use serde::{Deserialize, Serialize};

fn servers(count: usize) -> Vec<Memcached> {
    (0..count).map(|_| Memcached::start()).collect()
}

fn addrs(servers: &[Memcached]) -> Vec<String> {
    servers.iter().map(Memcached::addr).collect()
}

fn cluster(servers: &[Memcached], distribution: Distribution) -> Client {
    Client::builder()
        .servers(addrs(servers))
        .distribution(distribution)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("the cluster client builds")
}

fn keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("key:{i}")).collect()
}

/// Which of `servers` hold `key`, read from each directly.
fn holders(servers: &[Memcached], key: &str) -> Vec<String> {
    servers
        .iter()
        .filter(|server| raw_get(&server.addr(), key).is_some())
        .map(Memcached::addr)
        .collect()
}

/// `key` is on exactly the server `client.server_for` names.
fn on_its_server(client: &Client, servers: &[Memcached], key: &str) {
    let expected = client.server_for(key).unwrap().to_string();
    assert_eq!(holders(servers, key), vec![expected], "{key}");
}

#[tokio::test]
async fn every_key_is_stored_on_the_server_server_for_names() {
    for distribution in [Distribution::Rendezvous, Distribution::Ketama] {
        let servers = servers(4);
        let client = cluster(&servers, distribution);
        let keys = keys(400);
        for key in &keys {
            assert!(client.set(key, key).noreply(false).await.unwrap());
        }
        let mut per_server: HashMap<String, usize> = HashMap::new();
        for key in &keys {
            on_its_server(&client, &servers, key);
            *per_server
                .entry(client.server_for(key).unwrap().to_string())
                .or_default() += 1;
            let hit = client.get(key).await.unwrap().expect("a hit");
            assert_eq!(hit.data, key.as_bytes());
        }
        assert_eq!(
            per_server.len(),
            4,
            "{distribution:?}: every server has keys"
        );
        assert!(
            per_server.values().all(|&count| count > 40),
            "{distribution:?}: {per_server:?}"
        );
        // Single-key commands of every kind go to the key's server.
        let key = &keys[7];
        assert_eq!(client.incr("counter:7", 1).await.unwrap(), None);
        assert!(client.set("counter:7", "10").noreply(false).await.unwrap());
        assert_eq!(client.incr("counter:7", 5).await.unwrap(), Some(15));
        on_its_server(&client, &servers, "counter:7");
        assert!(client.append(key, "+").noreply(false).await.unwrap());
        let owner = client.server_for(key).unwrap().to_string();
        assert_eq!(
            raw_get(&owner, key).unwrap().1,
            format!("{key}+").into_bytes()
        );
        assert!(client.delete(key).noreply(false).await.unwrap());
        assert!(holders(&servers, key).is_empty());
    }
}

#[tokio::test]
async fn multi_key_calls_span_every_server() {
    let servers = servers(3);
    let client = cluster(&servers, Distribution::Ketama);
    let keys = keys(300);
    let items: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    let not_stored = client.set_many(items.clone()).noreply(false).await.unwrap();
    assert!(not_stored.is_empty(), "{not_stored:?}");
    for key in &keys {
        on_its_server(&client, &servers, key);
    }
    // Hits from every server, keyed as asked, with the misses left out.
    let mut asked = keys.clone();
    asked.push("missing:1".into());
    asked.push("missing:2".into());
    let found = client
        .get_many(asked.iter().map(String::as_str))
        .await
        .unwrap();
    assert_eq!(found.len(), keys.len());
    for (key, value) in &items {
        assert_eq!(found[key.as_str()].data, value.as_bytes());
    }
    let with_tokens = client.gets_many(&keys).await.unwrap();
    assert_eq!(with_tokens.len(), keys.len());
    let (value, token) = with_tokens[&keys[3]].clone();
    assert_eq!(value.data, items[3].1.as_bytes());
    assert_eq!(
        client.cas(&keys[3], "changed", token).await.unwrap(),
        memcache_core::CasOutcome::Stored
    );
    // The partial form with every server up: no errors.
    let partial = client.get_many(&keys).partial().await.unwrap();
    assert!(partial.errors.is_empty());
    assert_eq!(partial.hits.len(), keys.len());
    // The one key of a server, and keys repeated.
    let twice = [keys[0].as_str(), keys[0].as_str(), keys[1].as_str()];
    assert_eq!(client.get_many(twice).await.unwrap().len(), 2);
    // Noreply set_many and delete_many over all servers.
    let more: Vec<(String, &str)> = (0..60).map(|i| (format!("more:{i}"), "m")).collect();
    assert!(client.set_many(more.clone()).await.unwrap().is_empty());
    client.delete_many(&keys).noreply(false).await.unwrap();
    client
        .delete_many(more.iter().map(|(k, _)| k.as_str()))
        .await
        .unwrap();
    // Noreply writes: an acknowledged command on each server's connection follows them.
    client.version().await.unwrap().all().unwrap();
    for key in keys.iter().chain(more.iter().map(|(k, _)| k)) {
        assert!(holders(&servers, key).is_empty(), "{key} deleted");
    }
    assert!(client.get_many(&keys).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_key_fails_a_multi_key_call_before_anything_is_sent() {
    let servers = servers(3);
    let client = cluster(&servers, Distribution::Rendezvous);
    let items = [("good:1", "a"), ("bad key", "b"), ("good:2", "c")];
    let error = client.set_many(items).noreply(false).await.unwrap_err();
    assert!(error.is_illegal_input(), "{error:?}");
    for server in &servers {
        assert_eq!(raw_get(&server.addr(), "good:1"), None);
        assert_eq!(raw_get(&server.addr(), "good:2"), None);
    }
    let error = client.get_many(["good:1", "bad key"]).await.unwrap_err();
    assert!(
        error.is_illegal_input() && error.server().is_none(),
        "{error:?}"
    );
}

#[tokio::test]
async fn server_wide_commands_answer_for_each_server() {
    let servers = servers(3);
    let client = cluster(&servers, Distribution::Rendezvous);
    for key in keys(30) {
        client.set(&key, "x").noreply(false).await.unwrap();
    }
    let stats = client.stats().await.unwrap();
    let pids: Vec<(String, Option<u64>)> = stats
        .iter()
        .map(|(server, stats)| (server.to_string(), stats.as_ref().unwrap().pid()))
        .collect();
    let expected: Vec<(String, Option<u64>)> = servers
        .iter()
        .map(|server| (server.addr(), server.pid().map(u64::from)))
        .collect();
    assert_eq!(
        pids, expected,
        "one entry per server, in the order configured"
    );
    let items: u64 = stats
        .all()
        .unwrap()
        .iter()
        .map(|(_, stats)| stats.curr_items().unwrap())
        .sum();
    assert_eq!(items, 30);
    let versions = client.version().await.unwrap();
    assert!(versions.get("no-such-server").is_none());
    assert!(versions
        .get(&servers[1].addr())
        .unwrap()
        .as_ref()
        .unwrap()
        .starts_with("1."));
    let error = client.version().await.unwrap().single().unwrap_err();
    assert!(error.is_illegal_input(), "several servers: {error}");

    client.verbosity(1).await.unwrap().all().unwrap();
    let settings = client.stats().arg("settings").await.unwrap().all().unwrap();
    assert!(settings
        .iter()
        .all(|(_, s)| s.get("verbosity") == Some("1")));
    client.cache_memlimit(80).await.unwrap().all().unwrap();
    client
        .flush_all()
        .noreply(false)
        .await
        .unwrap()
        .all()
        .unwrap();
    assert!(client.get_many(keys(30)).await.unwrap().is_empty());
    client.quit().await.unwrap().all().unwrap();
    // After quit, the next commands open new connections to each server.
    client.set("after:quit", "y").noreply(false).await.unwrap();
    assert_eq!(client.get("after:quit").await.unwrap().unwrap().data, "y");
}

#[tokio::test]
async fn tcp_ipv6_and_unix_socket_servers_mix() {
    let tcp = Memcached::start();
    let v6 = Memcached::builder().ipv6(true).start();
    let unix = Memcached::builder().unix_socket(true).start();
    let path = unix.socket_path().unwrap();
    let client = Client::builder()
        .servers([tcp.addr(), v6.addr(), path.display().to_string()])
        .build()
        .unwrap();
    let servers: Vec<String> = client
        .servers()
        .iter()
        .map(|s| s.addr.to_string())
        .collect();
    let unix_addr = format!("unix:{}", path.display());
    assert_eq!(servers, [tcp.addr(), v6.addr(), unix_addr]);
    let keys = keys(120);
    for key in &keys {
        client.set(key, key).noreply(false).await.unwrap();
    }
    let mut seen = HashMap::<String, usize>::new();
    for key in &keys {
        *seen
            .entry(client.server_for(key).unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "keys on all three: {seen:?}");
    for key in &keys {
        match client.server_for(key).unwrap() {
            ServerAddr::Unix(_) => {}
            tcp_or_v6 => assert_eq!(
                raw_get(&tcp_or_v6.to_string(), key).map(|(_, v)| v),
                Some(key.clone().into_bytes())
            ),
        }
    }
    assert_eq!(client.get_many(&keys).await.unwrap().len(), keys.len());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

#[tokio::test]
async fn the_typed_layer_works_over_a_cluster() {
    let servers = servers(3);
    let users: Cache<User> = Cache::new(cluster(&servers, Distribution::Rendezvous));
    let all: Vec<User> = (0..90)
        .map(|id| User {
            id,
            name: format!("user {id}"),
        })
        .collect();
    users.set_many(&all).noreply(false).await.unwrap();
    for user in &all {
        let key = users.memcached_key(&user.id).unwrap();
        on_its_server(users.client(), &servers, &key);
        assert_eq!(users.get(&user.id).await.unwrap().as_ref(), Some(user));
    }
    let ids: Vec<u64> = (0..100).collect();
    let found = users.get_many(&ids).await.unwrap();
    assert_eq!(found.len(), 90);
    // Read-through: the misses are loaded and stored on their servers.
    let loaded = users
        .get_many_or_load(&ids, |missing: Vec<u64>| async move {
            Ok::<_, std::io::Error>(
                missing
                    .into_iter()
                    .map(|id| User {
                        id,
                        name: format!("loaded {id}"),
                    })
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(loaded.len(), 100);
    // The loaded values were stored with noreply: an answer from every server follows them.
    users.client().version().await.unwrap().all().unwrap();
    for id in 90..100u64 {
        let key = users.memcached_key(&id).unwrap();
        on_its_server(users.client(), &servers, &key);
    }
    // A lease goes to its key's server.
    let fresh = users
        .get_or_load(&500, |id| {
            let id = *id;
            async move {
                Ok::<_, std::io::Error>(User {
                    id,
                    name: "leased".into(),
                })
            }
        })
        .await
        .unwrap();
    assert_eq!(fresh.name, "leased");
    users.client().version().await.unwrap().all().unwrap();
    on_its_server(
        users.client(),
        &servers,
        &users.memcached_key(&500).unwrap(),
    );
}

/// nutcracker with `distribution: ketama, hash: md5` in front of the same servers: a key
/// written by the client directly is read through the proxy, and the other way round.
#[tokio::test]
async fn nutcracker_agrees_with_the_ketama_client() {
    let servers = servers(3);
    let proxy = Nutcracker::start(&addrs(&servers));
    let direct = cluster(&servers, Distribution::Ketama);
    let through = Client::builder()
        .server(proxy.addr())
        .protocol(Protocol::Classic)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let keys = keys(300);
    for key in keys.iter().step_by(2) {
        direct
            .set(key, format!("direct {key}"))
            .noreply(false)
            .await
            .unwrap();
    }
    for key in keys.iter().skip(1).step_by(2) {
        through
            .set(key, format!("proxied {key}"))
            .noreply(false)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let expected = if i % 2 == 0 { "direct" } else { "proxied" };
        let expected = format!("{expected} {key}");
        for client in [&direct, &through] {
            let hit = client.get(key).await.unwrap();
            assert_eq!(hit.map(|v| v.data), Some(expected.clone().into()), "{key}");
        }
        on_its_server(&direct, &servers, key);
    }
    let both = direct.get_many(&keys).await.unwrap();
    assert_eq!(both.len(), keys.len());
    // With a key prefix the proxy hashes the whole key it is sent, and so does the ketama
    // client: both agree.
    let prefixed = Client::builder()
        .servers(addrs(&servers))
        .distribution(Distribution::Ketama)
        .key_prefix("app:")
        .build()
        .unwrap();
    for key in keys.iter().take(100) {
        prefixed.set(key, "p").noreply(false).await.unwrap();
        let hit = through.get(format!("app:{key}")).await.unwrap();
        assert_eq!(hit.map(|v| v.data), Some("p".into()), "app:{key}");
    }
    // Written raw to the server the client names: nutcracker reads it from there.
    let owner = direct.server_for("raw:key").unwrap().to_string();
    raw_set(&owner, "raw:key", 3, b"raw");
    let hit = through.get("raw:key").await.unwrap().unwrap();
    assert_eq!((hit.flags, &hit.data[..]), (3, &b"raw"[..]));
}

/// What `build()` refuses, with an error that says what is wrong.
#[test]
fn bad_server_lists_are_refused_by_build() {
    let refused = |builder: memcache_core::ClientBuilder, what: &str, says: &str| {
        let error = builder.build().expect_err(what);
        let text = error.to_string();
        assert!(text.contains(says), "{what}: {text}");
        assert!(
            error.is_illegal_input() || matches!(error, memcache_core::Error::Address { .. }),
            "{what}: {error:?}"
        );
    };
    let none: [&str; 0] = [];
    refused(Client::builder().servers(none), "no server", "no server");
    refused(Client::builder(), "nothing set", "no server");
    refused(
        Client::builder().servers(["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11211"]),
        "duplicate",
        "listed twice",
    );
    refused(
        Client::builder().servers(["localhost", "localhost:11211"]),
        "the default port written out",
        "listed twice",
    );
    refused(
        Client::builder().weighted_server("127.0.0.1:1", 0),
        "weight 0",
        "weight",
    );
    refused(
        Client::builder().servers(["127.0.0.1:1:0", "127.0.0.1:2"]),
        "weight 0 in the spec",
        "weight",
    );
    for bad in [
        "",
        " ",
        "127.0.0.1:",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "127.0.0.1:1:x",
        "127.0.0.1:1:2:3",
        "[::1",
        "[::1]x",
        "unix:",
    ] {
        refused(Client::builder().servers([bad, "127.0.0.1:2"]), bad, "");
    }
    refused(
        Client::builder()
            .named_server("127.0.0.1:1", 1, "a")
            .named_server("127.0.0.1:2", 1, "a"),
        "duplicate name",
        "name",
    );
    refused(
        Client::builder()
            .servers(["127.0.0.1:1", "127.0.0.1:2"])
            .dead_timeout(Duration::ZERO),
        "dead_timeout 0",
        "dead_timeout",
    );
    refused(
        Client::builder().named_server("127.0.0.1:1", 1, "two words"),
        "name with a space",
        "name",
    );
}

/// The cluster settings at their extremes build and work (nothing overflows).
#[tokio::test]
async fn cluster_settings_at_their_extremes_work() {
    let servers = servers(2);
    let addrs = addrs(&servers);
    for (attempts, pause) in [(u32::MAX, Duration::MAX), (0, Duration::from_nanos(1))] {
        let client = Client::builder()
            .weighted_server(&addrs[0], u32::MAX)
            .weighted_server(&addrs[1], 1)
            .distribution(Distribution::Ketama)
            .retry_attempts(attempts)
            .retry_timeout(pause)
            .dead_timeout(pause)
            .failover(true)
            .build()
            .unwrap();
        for key in keys(50) {
            client.set(&key, "x").noreply(false).await.unwrap();
            // The light server has no points next to the heavy one: every key is on it.
            assert_eq!(client.server_for(&key).unwrap().to_string(), addrs[0]);
        }
        assert_eq!(client.get_many(keys(50)).await.unwrap().len(), 50);
    }
}

/// The key a library hashes: pymemcache (rendezvous) hashes the key without its
/// `key_prefix`; a proxy (ketama, as twemproxy) sees and hashes the whole key, and
/// pylibmc has no prefix (its callers write it into the key).
#[test]
fn the_key_prefix_is_hashed_as_each_library_does() {
    let addrs = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"];
    let client = |distribution, prefix: &str| {
        Client::builder()
            .servers(addrs)
            .distribution(distribution)
            .key_prefix(prefix)
            .build()
            .unwrap()
    };
    let (plain, prefixed) = (
        client(Distribution::Rendezvous, ""),
        client(Distribution::Rendezvous, "app:"),
    );
    for key in keys(500) {
        assert_eq!(
            plain.server_for(&key).unwrap(),
            prefixed.server_for(&key).unwrap()
        );
    }
    let (plain, prefixed) = (
        client(Distribution::Ketama, ""),
        client(Distribution::Ketama, "app:"),
    );
    let mut differ = 0;
    for key in keys(500) {
        let whole = plain.server_for(format!("app:{key}")).unwrap();
        assert_eq!(prefixed.server_for(&key).unwrap(), whole, "{key}");
        differ += usize::from(plain.server_for(&key).unwrap() != whole);
    }
    assert!(
        differ > 100,
        "the prefix changes where keys go: {differ} of 500"
    );
}
