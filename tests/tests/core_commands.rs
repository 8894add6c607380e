//! Every command of `memcache-core` against a real memcached: hits and misses, outcomes,
//! flags and TTLs read back from the server, noreply, the server commands, the key prefix.
//!
//! Each test runs once per protocol the client speaks (classic, meta, and auto-detection),
//! concurrently, each run against its own server, so server statistics are exact.

use std::collections::HashMap;
use std::future::Future;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use memcache_core::{CasOutcome, CasToken, Client, Error, Protocol, Value};
use memcache_tests::{raw_command, raw_get, raw_set, raw_stats, raw_ttl, Memcached};

fn client(server: &Memcached, protocol: Protocol) -> Client {
    Client::builder()
        .protocol(protocol)
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

/// The protocols every test runs with.
const PROTOCOLS: [Protocol; 3] = [Protocol::Classic, Protocol::Meta, Protocol::Auto];

/// Runs `test` once per protocol, concurrently, and fails naming the protocols that failed.
async fn each_protocol<F, Fut>(test: F)
where
    F: Fn(Protocol) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runs: Vec<_> = PROTOCOLS
        .iter()
        .map(|&protocol| (protocol, tokio::spawn(test(protocol))))
        .collect();
    let mut failed = Vec::new();
    for (protocol, run) in runs {
        if let Err(error) = run.await {
            failed.push(format!("{protocol:?}: {error}"));
        }
    }
    assert!(failed.is_empty(), "failed with {failed:?}");
}

fn value(data: &str, flags: u32) -> Value {
    Value {
        data: Bytes::copy_from_slice(data.as_bytes()),
        flags,
    }
}

async fn get_gets_gat_gats_hits_and_misses(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    assert!(client.set("k", "v1").flags(5).noreply(false).await.unwrap());

    assert_eq!(client.get("k").await.unwrap(), Some(value("v1", 5)));
    assert_eq!(client.get("missing").await.unwrap(), None);

    let (hit, token) = client.gets("k").await.unwrap().expect("gets hit");
    assert_eq!(hit, value("v1", 5));
    assert_ne!(token.get(), 0);
    assert_eq!(client.gets("missing").await.unwrap(), None);

    assert_eq!(client.gat("k", 0).await.unwrap(), Some(value("v1", 5)));
    assert_eq!(client.gat("missing", 100).await.unwrap(), None);

    let (hit, gats_token) = client.gats("k", 0).await.unwrap().expect("gats hit");
    assert_eq!(hit, value("v1", 5));
    // Touching does not change the value, so the token still works for cas.
    assert_eq!(
        client.cas("k", "v2", gats_token).await.unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(client.gats("missing", 100).await.unwrap(), None);
    assert_eq!(client.get("k").await.unwrap(), Some(value("v2", 0)));

    // Hits and misses reached the server as such.
    let stats = raw_stats(&server.addr());
    let sum =
        |a: &str, b: &str| stats[a].parse::<u64>().unwrap() + stats[b].parse::<u64>().unwrap();
    // The classic protocol counts gat/gats as touches, the meta one counts their misses
    // as get misses: the sums are the same.
    assert_eq!(sum("get_hits", "touch_hits"), 5, "5 hits");
    assert_eq!(sum("get_misses", "touch_misses"), 4, "4 misses");
}

async fn get_many_and_gets_many(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    client
        .set_many([("a", "1"), ("b", "22"), ("c", "333")])
        .flags(9)
        .noreply(false)
        .await
        .unwrap();

    let hits = client
        .get_many(["a", "b", "missing", "a", "c"])
        .await
        .unwrap();
    let expected: HashMap<&str, Value> = [
        ("a", value("1", 9)),
        ("b", value("22", 9)),
        ("c", value("333", 9)),
    ]
    .into_iter()
    .collect();
    assert_eq!(hits, expected, "hits only, duplicates collapse");

    // Owned keys work too, and a list of misses is an empty map.
    let none = client
        .get_many(vec!["x".to_owned(), "y".to_owned()])
        .await
        .unwrap();
    assert!(none.is_empty());

    let empty = client.get_many(Vec::<&str>::new()).await.unwrap();
    assert!(empty.is_empty());
    let empty = client.gets_many(Vec::<&str>::new()).await.unwrap();
    assert!(empty.is_empty());

    let with_tokens = client.gets_many(["c", "nope", "a", "c"]).await.unwrap();
    assert_eq!(with_tokens.len(), 2);
    let (a, a_token) = &with_tokens["a"];
    assert_eq!(*a, value("1", 9));
    let (_, single_token) = client.gets("a").await.unwrap().unwrap();
    assert_eq!(*a_token, single_token, "same item, same CAS unique");
    assert_eq!(with_tokens["c"].0, value("333", 9));
    // The tokens are usable.
    assert_eq!(
        client.cas("c", "new", with_tokens["c"].1).await.unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(client.get("c").await.unwrap(), Some(value("new", 0)));

    // An empty request sends nothing to the server: only the two multi-key reads of
    // real keys, the gets and the get above count (one cmd_get per key requested).
    assert_eq!(raw_stats(&server.addr())["cmd_get"], "13");
}

async fn set_with_flags_and_ttl_is_read_back_from_the_server(protocol: Protocol) {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client(&server, protocol);

    assert!(client
        .set("flagged", "data")
        .flags(0xdead_beef)
        .ttl(100)
        .noreply(false)
        .await
        .unwrap());
    assert_eq!(
        client.get("flagged").await.unwrap(),
        Some(value("data", 0xdead_beef))
    );
    assert_eq!(
        raw_get(&addr, "flagged"),
        Some((0xdead_beef, b"data".to_vec()))
    );
    let ttl = raw_ttl(&addr, "flagged").expect("stored");
    assert!((98..=100).contains(&ttl), "ttl {ttl}");

    // Default: noreply, no flags, no expiry.
    client.set("plain", "x").await.unwrap();
    assert_eq!(client.get("plain").await.unwrap(), Some(value("x", 0)));
    assert_eq!(raw_ttl(&addr, "plain"), Some(-1));

    // Binary data with CRLF inside and an empty value round-trip.
    let binary: Vec<u8> = (0..=255u8).chain(*b"\r\nEND\r\n").collect();
    client.set("binary", &binary).await.unwrap();
    assert_eq!(client.get("binary").await.unwrap().unwrap().data, binary);
    client.set("empty", "").await.unwrap();
    assert_eq!(client.get("empty").await.unwrap(), Some(value("", 0)));
}

async fn cas_accepts_a_fresh_token_once(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    client.set("k", "v1").await.unwrap();

    let (_, token) = client.gets("k").await.unwrap().unwrap();
    assert_eq!(
        client.cas("k", "v2", token).flags(3).await.unwrap(),
        CasOutcome::Stored
    );
    assert_eq!(client.get("k").await.unwrap(), Some(value("v2", 3)));
    // The value changed (by this very cas): the old token is refused.
    assert_eq!(
        client.cas("k", "v3", token).await.unwrap(),
        CasOutcome::Exists
    );
    assert_eq!(client.get("k").await.unwrap(), Some(value("v2", 3)));

    // A change by a plain set also invalidates the token.
    let (_, token) = client.gets("k").await.unwrap().unwrap();
    client.set("k", "other writer").await.unwrap();
    assert_eq!(
        client.cas("k", "mine", token).await.unwrap(),
        CasOutcome::Exists
    );
    assert_eq!(
        client.get("k").await.unwrap(),
        Some(value("other writer", 0))
    );

    assert_eq!(
        client.cas("missing", "v", CasToken(1)).await.unwrap(),
        CasOutcome::NotFound
    );
    assert_eq!(client.get("missing").await.unwrap(), None);
}

async fn add_replace_append_prepend(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);

    assert!(client.add("k", "first").noreply(false).await.unwrap());
    assert!(!client.add("k", "second").noreply(false).await.unwrap());
    assert_eq!(client.get("k").await.unwrap(), Some(value("first", 0)));

    assert!(!client.replace("missing", "x").noreply(false).await.unwrap());
    assert_eq!(client.get("missing").await.unwrap(), None);
    assert!(client
        .replace("k", "mid")
        .flags(7)
        .noreply(false)
        .await
        .unwrap());

    assert!(client.append("k", "_end").noreply(false).await.unwrap());
    assert!(client.prepend("k", "start_").noreply(false).await.unwrap());
    // append/prepend keep the stored flags.
    assert_eq!(
        client.get("k").await.unwrap(),
        Some(value("start_mid_end", 7))
    );
    assert!(!client.append("missing", "x").noreply(false).await.unwrap());
    assert!(!client.prepend("missing", "x").noreply(false).await.unwrap());
    assert_eq!(client.get("missing").await.unwrap(), None);

    // With noreply (the default) the calls report true and still take effect in order.
    assert!(client.append("k", "!").await.unwrap());
    assert!(client.add("k", "ignored").await.unwrap());
    assert_eq!(
        client.get("k").await.unwrap(),
        Some(value("start_mid_end!", 7))
    );
}

async fn incr_and_decr(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);

    assert_eq!(client.incr("missing", 1).await.unwrap(), None);
    assert_eq!(client.decr("missing", 1).await.unwrap(), None);
    assert_eq!(client.get("missing").await.unwrap(), None);

    client.set("n", "10").await.unwrap();
    assert_eq!(client.incr("n", 5).await.unwrap(), Some(15));
    assert_eq!(client.decr("n", 4).await.unwrap(), Some(11));
    assert_eq!(
        client.decr("n", 20).await.unwrap(),
        Some(0),
        "decr stops at 0"
    );
    // memcached shortens a decremented number in place, padding it with spaces.
    let stored = client.get("n").await.unwrap().unwrap().data;
    assert_eq!(std::str::from_utf8(&stored).unwrap().trim_end(), "0");

    client.set("big", u64::MAX.to_string()).await.unwrap();
    assert_eq!(
        client.incr("big", 1).await.unwrap(),
        Some(0),
        "wraps at 2^64"
    );
    client.set("big", (u64::MAX - 1).to_string()).await.unwrap();
    assert_eq!(client.incr("big", 3).await.unwrap(), Some(1));
    assert_eq!(
        client.incr("big", u64::MAX).await.unwrap(),
        Some(0),
        "1 + (2^64 - 1) wraps to 0"
    );

    // noreply incr: None, applied all the same.
    assert_eq!(client.incr("n", 7).noreply(true).await.unwrap(), None);
    let stored = client.get("n").await.unwrap().unwrap().data;
    assert_eq!(std::str::from_utf8(&stored).unwrap().trim_end(), "7");

    client.set("text", "abc").await.unwrap();
    let error = client.incr("text", 1).await.unwrap_err();
    assert!(error.is_server_error(), "{error:?}");
    assert!(!error.is_connection_error(), "{error:?}");
    match &error {
        Error::Client(message) => assert!(message.contains("non-numeric"), "{message}"),
        other => panic!("expected Error::Client, got {other:?}"),
    }
    assert_eq!(
        error.server_message(),
        Some("cannot increment or decrement non-numeric value")
    );
    let error = client.decr("text", 1).await.unwrap_err();
    assert!(matches!(error, Error::Client(_)), "{error:?}");
    // The connection is still in step.
    assert_eq!(client.get("text").await.unwrap(), Some(value("abc", 0)));
    assert_eq!(client.incr("n", 1).await.unwrap(), Some(8));
}

async fn touch_delete_and_delete_many(protocol: Protocol) {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client(&server, protocol);

    assert!(!client.touch("missing", 10).noreply(false).await.unwrap());
    client.set("k", "v").noreply(false).await.unwrap();
    assert_eq!(raw_ttl(&addr, "k"), Some(-1));
    assert!(client.touch("k", 300).noreply(false).await.unwrap());
    let ttl = raw_ttl(&addr, "k").unwrap();
    assert!((298..=300).contains(&ttl), "ttl {ttl}");
    // noreply touch (the default) is applied too.
    assert!(client.touch("k", 0).await.unwrap());
    client.version().await.unwrap().single().unwrap(); // the touch has been processed once this answers
    assert_eq!(raw_ttl(&addr, "k"), Some(-1));

    assert!(client.delete("k").noreply(false).await.unwrap());
    assert!(!client.delete("k").noreply(false).await.unwrap());
    assert_eq!(client.get("k").await.unwrap(), None);

    client.set("d", "v").await.unwrap();
    assert!(
        client.delete("d").await.unwrap(),
        "noreply delete says true"
    );
    assert_eq!(client.get("d").await.unwrap(), None);

    client
        .set_many([("a", "1"), ("b", "2"), ("c", "3"), ("keep", "4")])
        .await
        .unwrap();
    client
        .delete_many(["a", "b", "never-there"])
        .noreply(false)
        .await
        .unwrap();
    client.delete_many(["c"]).await.unwrap();
    client.delete_many(Vec::<&str>::new()).await.unwrap();
    let left = client.get_many(["a", "b", "c", "keep"]).await.unwrap();
    assert_eq!(left.keys().copied().collect::<Vec<_>>(), ["keep"]);
    let stats = raw_stats(&addr);
    assert_eq!(stats["delete_hits"], "5");
    assert_eq!(stats["delete_misses"], "2");
}

async fn set_many_reports_what_was_not_stored(protocol: Protocol) {
    // A small item size so that one value of the batch is too large for the server.
    let server = Memcached::builder().max_item_size(64 * 1024).start();
    let client = client(&server, protocol);

    let stored = client
        .set_many([("a", "1".to_owned()), ("b", "2".to_owned())])
        .ttl(100)
        .noreply(false)
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing failed: {stored:?}");
    assert_eq!(raw_ttl(&server.addr(), "b").map(|t| t > 90), Some(true));

    // noreply (the default): returns at once, readable by the next command.
    let items: Vec<(String, String)> = (0..50)
        .map(|i| (format!("key{i}"), format!("value{i}")))
        .collect();
    assert!(client
        .set_many(items.clone())
        .flags(4)
        .await
        .unwrap()
        .is_empty());
    let hits = client
        .get_many(items.iter().map(|(k, _)| k.as_str()))
        .await
        .unwrap();
    assert_eq!(hits.len(), 50);
    for (key, data) in &items {
        assert_eq!(hits[key.as_str()], value(data, 4));
    }

    // A value over the server's item size in the middle of a batch: the server's error is
    // reported, the other items are stored, and the connection stays in step.
    let big = "x".repeat(100 * 1024);
    let error = client
        .set_many([("before", "1"), ("huge", big.as_str()), ("after", "2")])
        .noreply(false)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Server(m) if m.contains("object too large")),
        "{error:?}"
    );
    let hits = client.get_many(["before", "huge", "after"]).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.contains_key("before") && hits.contains_key("after"));
}

async fn flush_all_now_and_with_delay(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);

    client.set_many([("a", "1"), ("b", "2")]).await.unwrap();
    client
        .flush_all()
        .noreply(false)
        .await
        .unwrap()
        .single()
        .unwrap();
    assert!(client.get_many(["a", "b"]).await.unwrap().is_empty());

    // noreply (the default), then read by the very next command.
    client.set("c", "3").await.unwrap();
    client.flush_all().await.unwrap().single().unwrap();
    assert_eq!(client.get("c").await.unwrap(), None);

    // With a delay of 3 s: memcached invalidates items once its clock passes now + 2 s
    // (it keeps a one-second clock), so the item is there now and gone after 3 s.
    client.set("later", "v").await.unwrap();
    client
        .flush_all()
        .delay(3)
        .noreply(false)
        .await
        .unwrap()
        .single()
        .unwrap();
    assert_eq!(client.get("later").await.unwrap(), Some(value("v", 0)));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(client.get("later").await.unwrap(), None);
    assert_eq!(raw_stats(&server.addr())["cmd_flush"], "3");
}

async fn stats_are_the_servers(protocol: Protocol) {
    let server = Memcached::builder().max_item_size(512 * 1024).start();
    let client = client(&server, protocol);

    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(
        stats.pid(),
        Some(u64::from(server.pid().unwrap())),
        "the server's pid"
    );
    assert_eq!(stats.curr_items(), Some(0));
    assert!(stats.len() > 30, "{} stats", stats.len());

    client
        .set_many([("a", "1"), ("b", "2"), ("c", "3")])
        .await
        .unwrap();
    client.get("a").await.unwrap();
    client.get("nope").await.unwrap();
    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(stats.curr_items(), Some(3));
    assert_eq!(stats.cmd_set(), Some(3));
    assert_eq!(stats.get_hits(), Some(1));
    assert_eq!(stats.get_misses(), Some(1));
    assert_eq!(stats.get("curr_items"), Some("3"));
    assert_eq!(
        stats.version(),
        Some(client.version().await.unwrap().single().unwrap().as_str())
    );
    // Every figure the client reports is one the server reports, in the server's order.
    let raw = raw_stats(&server.addr());
    for (name, _) in &stats {
        assert!(raw.contains_key(name), "{name} not in the raw stats");
    }

    let settings = client
        .stats()
        .arg("settings")
        .await
        .unwrap()
        .single()
        .unwrap();
    assert_eq!(settings.get_u64("item_size_max"), Some(512 * 1024));
    assert_eq!(settings.get("inter"), Some("127.0.0.1"));
    assert_eq!(settings.get("cas_enabled"), Some("yes"));

    let slabs = client.stats().arg("slabs").await.unwrap().single().unwrap();
    assert!(slabs.get_u64("active_slabs").unwrap() >= 1);

    let error = client.stats().arg("two words").await.unwrap_err();
    assert!(error.is_illegal_input(), "{error:?}");
}

async fn version_matches_the_binary_and_the_raw_reply(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    let version = client.version().await.unwrap().single().unwrap();

    let output = Command::new("memcached")
        .arg("-V")
        .output()
        .expect("memcached -V runs (apt-get install memcached)");
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.trim(), format!("memcached {version}"));

    let raw = raw_command(&server.addr(), b"version\r\n");
    assert_eq!(raw, format!("VERSION {version}\r\n").into_bytes());
}

async fn gat_changes_the_ttl(protocol: Protocol) {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client(&server, protocol);

    client.set("touched", "t").ttl(1).await.unwrap();
    client.set("control", "c").ttl(1).await.unwrap();
    assert_eq!(
        client.gat("touched", 100).await.unwrap(),
        Some(value("t", 0))
    );
    let ttl = raw_ttl(&addr, "touched").unwrap();
    assert!((98..=100).contains(&ttl), "ttl {ttl}");

    assert_eq!(client.gats("never-set", 100).await.unwrap(), None);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(client.get("control").await.unwrap(), None, "expired");
    assert_eq!(client.get("touched").await.unwrap(), Some(value("t", 0)));
}

async fn noreply_set_is_readable_by_the_very_next_get(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    for i in 0..200 {
        let key = format!("key{}", i % 7);
        let data = format!("value-{i}");
        assert!(client.set(&key, &data).await.unwrap());
        assert_eq!(
            client.get(&key).await.unwrap(),
            Some(value(&data, 0)),
            "round {i}"
        );
    }
    // A noreply client by default, overridden per call.
    let waiting = Client::builder()
        .protocol(protocol)
        .server(server.addr())
        .default_noreply(false)
        .build()
        .unwrap();
    assert!(
        !waiting.add("key0", "x").await.unwrap(),
        "waits: NOT_STORED"
    );
    assert!(waiting.add("key0", "x").noreply(true).await.unwrap());
}

async fn verbosity_and_cache_memlimit(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);

    client.verbosity(1).await.unwrap().single().unwrap();
    let settings = client
        .stats()
        .arg("settings")
        .await
        .unwrap()
        .single()
        .unwrap();
    assert_eq!(settings.get("verbosity"), Some("1"));
    client
        .verbosity(0)
        .noreply(true)
        .await
        .unwrap()
        .single()
        .unwrap();

    client.cache_memlimit(100).await.unwrap().single().unwrap();
    let stats = client.stats().await.unwrap().single().unwrap();
    assert_eq!(stats.limit_maxbytes(), Some(100 * 1024 * 1024));
    assert_eq!(
        client
            .stats()
            .arg("settings")
            .await
            .unwrap()
            .single()
            .unwrap()
            .get("verbosity"),
        Some("0")
    );
}

async fn quit_then_the_next_command_reconnects(protocol: Protocol) {
    let server = Memcached::start();
    let client = client(&server, protocol);
    client.set("k", "v").await.unwrap();
    let before = client
        .stats()
        .await
        .unwrap()
        .single()
        .unwrap()
        .total_connections()
        .unwrap();

    client.quit().await.unwrap().single().unwrap();
    assert_eq!(client.get("k").await.unwrap(), Some(value("v", 0)));
    let after = client
        .stats()
        .await
        .unwrap()
        .single()
        .unwrap()
        .total_connections()
        .unwrap();
    assert_eq!(after, before + 1, "one new connection after quit");

    // Twice in a row, and with nothing connected, quit is harmless.
    client.quit().await.unwrap().single().unwrap();
    client.quit().await.unwrap().single().unwrap();
    assert_eq!(client.get("k").await.unwrap(), Some(value("v", 0)));
}

async fn key_prefix_is_applied_on_the_wire_and_stripped_in_results(protocol: Protocol) {
    let server = Memcached::start();
    let addr = server.addr();
    let client = Client::builder()
        .protocol(protocol)
        .server(&addr)
        .key_prefix("app:")
        .build()
        .unwrap();
    assert_eq!(client.key_prefix(), b"app:");

    assert!(client.set("k", "v").flags(2).noreply(false).await.unwrap());
    assert_eq!(raw_get(&addr, "app:k"), Some((2, b"v".to_vec())));
    assert_eq!(raw_get(&addr, "k"), None);

    raw_set(&addr, "app:other", 0, b"o");
    raw_set(&addr, "other", 0, b"unprefixed");
    assert_eq!(client.get("other").await.unwrap(), Some(value("o", 0)));

    let hits = client.get_many(["k", "other", "missing"]).await.unwrap();
    let keys: Vec<&str> = {
        let mut keys: Vec<&str> = hits.keys().copied().collect();
        keys.sort_unstable();
        keys
    };
    assert_eq!(keys, ["k", "other"]);
    assert_eq!(hits["other"], value("o", 0));
    let with_tokens = client.gets_many(["k"]).await.unwrap();
    assert!(with_tokens.contains_key("k"));

    assert_eq!(client.incr("n", 1).await.unwrap(), None);
    raw_set(&addr, "app:n", 0, b"41");
    assert_eq!(client.incr("n", 1).await.unwrap(), Some(42));
    assert!(client.delete("k").noreply(false).await.unwrap());
    assert_eq!(raw_get(&addr, "app:k"), None);
    assert_eq!(raw_get(&addr, "other"), Some((0, b"unprefixed".to_vec())));
}

// One test per command group, each run with every protocol.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_gets_gat_gats_hits_and_misses_all_protocols() {
    each_protocol(get_gets_gat_gats_hits_and_misses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_and_gets_many_all_protocols() {
    each_protocol(get_many_and_gets_many).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_with_flags_and_ttl_is_read_back_from_the_server_all_protocols() {
    each_protocol(set_with_flags_and_ttl_is_read_back_from_the_server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_accepts_a_fresh_token_once_all_protocols() {
    each_protocol(cas_accepts_a_fresh_token_once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_replace_append_prepend_all_protocols() {
    each_protocol(add_replace_append_prepend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incr_and_decr_all_protocols() {
    each_protocol(incr_and_decr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_delete_and_delete_many_all_protocols() {
    each_protocol(touch_delete_and_delete_many).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_reports_what_was_not_stored_all_protocols() {
    each_protocol(set_many_reports_what_was_not_stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_all_now_and_with_delay_all_protocols() {
    each_protocol(flush_all_now_and_with_delay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_the_servers_all_protocols() {
    each_protocol(stats_are_the_servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_matches_the_binary_and_the_raw_reply_all_protocols() {
    each_protocol(version_matches_the_binary_and_the_raw_reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gat_changes_the_ttl_all_protocols() {
    each_protocol(gat_changes_the_ttl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noreply_set_is_readable_by_the_very_next_get_all_protocols() {
    each_protocol(noreply_set_is_readable_by_the_very_next_get).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbosity_and_cache_memlimit_all_protocols() {
    each_protocol(verbosity_and_cache_memlimit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_then_the_next_command_reconnects_all_protocols() {
    each_protocol(quit_then_the_next_command_reconnects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefix_is_applied_on_the_wire_and_stripped_in_results_all_protocols() {
    each_protocol(key_prefix_is_applied_on_the_wire_and_stripped_in_results).await;
}

/// `"[v6]:port"` addresses: a client on the IPv6 loopback.
#[tokio::test]
async fn ipv6_server_address() {
    let server = Memcached::builder().ipv6(true).start();
    assert!(server.addr().starts_with("[::1]:"));
    let client = Client::builder().server(server.addr()).build().unwrap();
    assert!(client.set("v6", "over ipv6").noreply(false).await.unwrap());
    let value = client.get("v6").await.unwrap().unwrap();
    assert_eq!(&value.data[..], b"over ipv6");
}
