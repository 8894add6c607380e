//! Key rules of `memcache-core` against a real memcached: the 250-byte limit (prefix
//! included), forbidden bytes, command injection, whole-batch checking, unicode keys.
//!
//! "Nothing was sent" is checked on the server itself: its `cmd_*` counters and
//! `total_connections` do not move.

use std::collections::HashMap;
use std::time::Duration;

use memcache_core::{Client, Error, IllegalInput, KeyRule};
use memcache_tests::{raw_get, raw_set, raw_stats, Memcached};

fn client(addr: &str) -> Client {
    Client::builder()
        .server(addr)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

/// The key rule an illegal-input error names, with the key it names.
fn key_rule(error: &Error) -> (String, KeyRule) {
    match error {
        Error::IllegalInput(IllegalInput::Key { key, rule }) => (key.clone(), *rule),
        other => panic!("expected an illegal key error, got {other:?}"),
    }
}

/// The server counters that any command would move.
fn counters(addr: &str) -> HashMap<String, u64> {
    let stats = raw_stats(addr);
    [
        "cmd_get",
        "cmd_set",
        "cmd_flush",
        "cmd_touch",
        "get_misses",
        "delete_misses",
        "delete_hits",
        "incr_misses",
        "decr_misses",
        "curr_items",
        "total_connections",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), stats[name].parse().unwrap()))
    .collect()
}

/// Runs every keyed command with `key` and checks each fails with `is_illegal_input()`
/// naming the same key and rule. Returns that rule.
async fn every_command_refuses(client: &Client, key: &[u8]) -> KeyRule {
    let errors = vec![
        client.get(key).await.unwrap_err(),
        client.gets(key).await.unwrap_err(),
        client.gat(key, 1).await.unwrap_err(),
        client.gats(key, 1).await.unwrap_err(),
        client.get_many([key]).await.unwrap_err(),
        client.gets_many([key]).await.unwrap_err(),
        client.set(key, "v").await.unwrap_err(),
        client.set(key, "v").noreply(false).await.unwrap_err(),
        client.add(key, "v").await.unwrap_err(),
        client.replace(key, "v").await.unwrap_err(),
        client.append(key, "v").await.unwrap_err(),
        client.prepend(key, "v").await.unwrap_err(),
        client
            .cas(key, "v", memcache_core::CasToken(1))
            .await
            .unwrap_err(),
        client.set_many([(key, "v")]).await.unwrap_err(),
        client.delete(key).await.unwrap_err(),
        client.delete_many([key]).await.unwrap_err(),
        client.incr(key, 1).await.unwrap_err(),
        client.decr(key, 1).await.unwrap_err(),
        client.touch(key, 1).await.unwrap_err(),
    ];
    let (first_key, rule) = key_rule(&errors[0]);
    assert_eq!(first_key, String::from_utf8_lossy(key));
    for error in &errors {
        assert!(error.is_illegal_input(), "{error:?}");
        assert!(!error.is_connection_error() && !error.is_server_error());
        assert_eq!(key_rule(error), (first_key.clone(), rule));
    }
    rule
}

#[tokio::test]
async fn key_length_limit_counts_the_prefix() {
    let server = Memcached::start();
    let addr = server.addr();
    let plain = client(&addr);

    let longest = "k".repeat(250);
    assert!(plain.set(&longest, "v").noreply(false).await.unwrap());
    assert_eq!(plain.get(&longest).await.unwrap().unwrap().data, "v");
    assert_eq!(raw_get(&addr, &longest), Some((0, b"v".to_vec())));

    let before = counters(&addr);
    let too_long = "k".repeat(251);
    let rule = every_command_refuses(&plain, too_long.as_bytes()).await;
    assert_eq!(rule, KeyRule::TooLong { len: 251 });
    let message = plain.get(&too_long).await.unwrap_err().to_string();
    assert!(message.contains(&too_long), "names the key: {message}");
    assert!(message.contains("251 bytes"), "names the rule: {message}");

    let prefixed = Client::builder()
        .server(&addr)
        .key_prefix("0123456789")
        .build()
        .unwrap();
    let fits = "p".repeat(240);
    let rule = every_command_refuses(&prefixed, "p".repeat(241).as_bytes()).await;
    assert_eq!(rule, KeyRule::TooLong { len: 251 });
    // Nothing reached the server: the counters moved only by this raw_stats connection.
    let mut after = counters(&addr);
    assert_eq!(
        after.remove("total_connections").unwrap(),
        before["total_connections"] + 1
    );
    let mut before = before;
    before.remove("total_connections");
    assert_eq!(after, before);

    assert!(prefixed.set(&fits, "fits").noreply(false).await.unwrap());
    assert_eq!(
        raw_get(&addr, &format!("0123456789{fits}")),
        Some((0, b"fits".to_vec()))
    );
}

#[tokio::test]
async fn whitespace_and_control_bytes_are_refused() {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client(&addr);
    // Connect first, so that "nothing sent" is checked on a live connection too.
    client.set("good", "v").noreply(false).await.unwrap();
    let before = client.stats().await.unwrap().single().unwrap();

    let cases: [(&[u8], u8, usize); 7] = [
        (b"has space", b' ', 3),
        (b"tab\there", b'\t', 3),
        (b"cr\r", b'\r', 2),
        (b"lf\nlf", b'\n', 2),
        (b"nul\0", 0, 3),
        (b"\x7fdel", 0x7f, 0),
        (b"bell\x07", 0x07, 4),
    ];
    for (key, byte, offset) in cases {
        let rule = every_command_refuses(&client, key).await;
        assert_eq!(rule, KeyRule::ForbiddenByte { byte, offset }, "{key:?}");
        let message = client.get(key).await.unwrap_err().to_string();
        assert!(
            message.contains(&format!("{:?}", String::from_utf8_lossy(key))),
            "names the key: {message}"
        );
        assert!(
            message.contains(&format!("forbidden byte 0x{byte:02x} at offset {offset}")),
            "names the rule: {message}"
        );
    }
    let rule = every_command_refuses(&client, b"").await;
    assert_eq!(rule, KeyRule::Empty);

    let after = client.stats().await.unwrap().single().unwrap();
    for name in [
        "cmd_get",
        "cmd_set",
        "cmd_touch",
        "curr_items",
        "total_connections",
    ] {
        assert_eq!(after.get(name), before.get(name), "{name} moved");
    }
    assert_eq!(client.get("good").await.unwrap().unwrap().data, "v");
}

#[tokio::test]
async fn command_injection_is_refused_and_sends_nothing() {
    let server = Memcached::start();
    let addr = server.addr();
    raw_set(&addr, "canary", 3, b"alive");
    let before = counters(&addr);

    // A fresh client: it must not even connect.
    let client = client(&addr);
    let evil = "k\r\nflush_all";
    let rule = every_command_refuses(&client, evil.as_bytes()).await;
    assert_eq!(
        rule,
        KeyRule::ForbiddenByte {
            byte: b'\r',
            offset: 1
        }
    );
    let injected_value = client.set("k", "x 0 0 1\r\nflush_all").noreply(false).await;
    // The value is data, not a command: stored as is, and it flushes nothing.
    assert!(injected_value.unwrap());

    let after = counters(&addr);
    assert_eq!(after["cmd_flush"], 0);
    assert_eq!(after["cmd_get"], before["cmd_get"]);
    assert_eq!(
        after["cmd_set"],
        before["cmd_set"] + 1,
        "only the value test"
    );
    // The rejected calls opened no connection: only the client's set and the second
    // raw_stats connected.
    assert_eq!(after["total_connections"], before["total_connections"] + 2);
    assert_eq!(raw_get(&addr, "canary"), Some((3, b"alive".to_vec())));
    assert_eq!(
        raw_get(&addr, "k"),
        Some((0, b"x 0 0 1\r\nflush_all".to_vec()))
    );
}

#[tokio::test]
async fn one_bad_key_in_a_batch_sends_nothing() {
    let server = Memcached::start();
    let addr = server.addr();
    let client = client(&addr);
    client
        .set_many([("a", "1"), ("b", "2")])
        .noreply(false)
        .await
        .unwrap();
    let before = client.stats().await.unwrap().single().unwrap();

    let error = client.get_many(["a", "b", "bad key"]).await.unwrap_err();
    assert_eq!(
        key_rule(&error),
        (
            "bad key".to_owned(),
            KeyRule::ForbiddenByte {
                byte: b' ',
                offset: 3
            }
        )
    );
    let error = client.gets_many(["a", "bad\nkey"]).await.unwrap_err();
    assert!(error.is_illegal_input());
    let error = client
        .set_many([("a", "changed"), ("c", "new"), ("bad\rkey", "x")])
        .noreply(false)
        .await
        .unwrap_err();
    assert!(error.is_illegal_input());
    let error = client
        .set_many([("a", "changed"), ("\0", "x")])
        .await
        .unwrap_err();
    assert!(error.is_illegal_input());
    let error = client
        .delete_many(["a", "b", &"x".repeat(251)])
        .noreply(false)
        .await
        .unwrap_err();
    assert_eq!(key_rule(&error).1, KeyRule::TooLong { len: 251 });

    let after = client.stats().await.unwrap().single().unwrap();
    for name in [
        "cmd_get",
        "cmd_set",
        "get_hits",
        "delete_hits",
        "delete_misses",
        "curr_items",
    ] {
        assert_eq!(after.get(name), before.get(name), "{name} moved");
    }
    let hits = client.get_many(["a", "b", "c"]).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits["a"].data, "1");
    assert_eq!(hits["b"].data, "2");
}

#[tokio::test]
async fn non_ascii_keys_only_when_allowed() {
    let server = Memcached::start();
    let addr = server.addr();
    let strict = client(&addr);
    let key = "caf\u{e9}:\u{1f600}";

    let rule = every_command_refuses(&strict, key.as_bytes()).await;
    assert_eq!(
        rule,
        KeyRule::NonAscii {
            byte: 0xc3,
            offset: 3
        }
    );
    let message = strict.get(key).await.unwrap_err().to_string();
    assert!(message.contains(key), "names the key: {message}");
    assert!(message.contains("allow_unicode_keys"), "{message}");

    let lenient = Client::builder()
        .server(&addr)
        .allow_unicode_keys(true)
        .build()
        .unwrap();
    assert!(lenient.set(key, "unicode").noreply(false).await.unwrap());
    assert_eq!(lenient.get(key).await.unwrap().unwrap().data, "unicode");
    assert_eq!(raw_get(&addr, key), Some((0, b"unicode".to_vec())));
    let hits = lenient.get_many([key, "plain"]).await.unwrap();
    assert_eq!(hits[key].data, "unicode");
    // Whitespace stays forbidden with unicode allowed; the length counts bytes.
    let error = lenient.get("caf\u{e9} x").await.unwrap_err();
    assert!(error.is_illegal_input());
    let long = "\u{e9}".repeat(126); // 252 bytes
    assert_eq!(
        key_rule(&lenient.get(&long).await.unwrap_err()).1,
        KeyRule::TooLong { len: 252 }
    );

    // A prefix is held to the same rules, when the client is built.
    let error = Client::builder()
        .server(&addr)
        .key_prefix("a b")
        .build()
        .unwrap_err();
    assert!(error.is_illegal_input(), "{error:?}");
}
