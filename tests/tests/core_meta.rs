//! The meta protocol on the data path: the same commands give the same results over
//! classic, meta and auto-detected connections; quiet (noreply) meta writes report their
//! failures; memcached 1.6.18's quirks do not desynchronise the stream; and a proxy without
//! the meta protocol (twemproxy) is detected without losing a request.

use std::collections::HashMap;
use std::time::Duration;

use memcache_core::{CasOutcome, Client, Protocol};
use memcache_tests::{raw_get, Memcached, Nutcracker};

fn client(addr: &str, protocol: Protocol) -> Client {
    Client::builder()
        .server(addr)
        .protocol(protocol)
        .timeout(Duration::from_secs(2))
        .allow_unicode_keys(true)
        .build()
        .unwrap()
}

/// Runs every data command under `protocol` with keys under `ns`, returning a transcript
/// of the results, which must not depend on the protocol.
async fn transcript(client: &Client, ns: &str) -> Vec<String> {
    let k = |name: &str| format!("{ns}:{name}");
    let mut out = Vec::new();
    let mut log = |line: String| out.push(line);

    log(format!(
        "get miss {:?}",
        client.get(k("missing")).await.unwrap()
    ));
    log(format!(
        "set {:?}",
        client.set(k("a"), "alpha").flags(42).noreply(false).await
    ));
    log(format!("get {:?}", client.get(k("a")).await.unwrap()));
    log(format!(
        "set noreply {:?}",
        client.set(k("b"), "beta").ttl(100).await
    ));
    log(format!(
        "get after noreply {:?}",
        client.get(k("b")).await.unwrap()
    ));
    log(format!(
        "add existing {:?}",
        client.add(k("a"), "x").noreply(false).await
    ));
    log(format!(
        "add new {:?}",
        client.add(k("c"), "gamma").noreply(false).await
    ));
    log(format!(
        "replace missing {:?}",
        client.replace(k("zz"), "x").noreply(false).await
    ));
    log(format!(
        "replace {:?}",
        client.replace(k("c"), "GAMMA").noreply(false).await
    ));
    log(format!(
        "append {:?}",
        client.append(k("c"), "!").noreply(false).await
    ));
    log(format!(
        "prepend {:?}",
        client.prepend(k("c"), "<").noreply(false).await
    ));
    log(format!(
        "append missing {:?}",
        client.append(k("zz"), "!").noreply(false).await
    ));
    log(format!("get c {:?}", client.get(k("c")).await.unwrap()));
    let (value, token) = client.gets(k("a")).await.unwrap().unwrap();
    log(format!("gets value {value:?}"));
    log(format!(
        "cas {:?}",
        client.cas(k("a"), "alpha2", token).await
    ));
    log(format!(
        "cas stale {:?}",
        client.cas(k("a"), "alpha3", token).await
    ));
    log(format!(
        "cas missing {:?}",
        client.cas(k("zz"), "x", token).await
    ));
    log(format!("gat {:?}", client.gat(k("a"), 300).await.unwrap()));
    log(format!(
        "gats {:?}",
        client.gats(k("a"), 300).await.unwrap().map(|(v, _)| v)
    ));
    log(format!(
        "gat miss {:?}",
        client.gat(k("zz"), 300).await.unwrap()
    ));
    log(format!(
        "touch {:?}",
        client.touch(k("a"), 300).noreply(false).await
    ));
    log(format!(
        "touch missing {:?}",
        client.touch(k("zz"), 300).noreply(false).await
    ));
    log(format!(
        "touch noreply {:?}",
        client.touch(k("a"), 300).await
    ));
    log(format!("incr missing {:?}", client.incr(k("n"), 1).await));
    client.set(k("n"), "10").noreply(false).await.unwrap();
    log(format!("incr {:?}", client.incr(k("n"), 5).await));
    log(format!("decr {:?}", client.decr(k("n"), 100).await));
    log(format!(
        "incr wraps {:?}",
        client.incr(k("n"), u64::MAX).await
    ));
    log(format!(
        "incr noreply {:?}",
        client.incr(k("n"), 2).noreply(true).await
    ));
    log(format!("get n {:?}", client.get(k("n")).await.unwrap()));
    let bad = client.incr(k("a"), 1).await.unwrap_err();
    log(format!(
        "incr non-numeric {bad:?} server error {}",
        bad.is_server_error()
    ));
    let many: HashMap<String, _> = client
        .get_many([k("a"), k("b"), k("missing"), k("c")])
        .await
        .unwrap();
    let mut keys: Vec<_> = many.keys().map(|key| key.replacen(ns, "ns", 1)).collect();
    keys.sort();
    log(format!("get_many keys {keys:?}"));
    log(format!(
        "set_many {:?}",
        client
            .set_many([(k("m1"), "1"), (k("m2"), "2")])
            .noreply(false)
            .await
    ));
    log(format!(
        "set_many noreply {:?}",
        client.set_many([(k("m3"), "3")]).await
    ));
    log(format!("m3 {:?}", client.get(k("m3")).await.unwrap()));
    log(format!(
        "delete {:?}",
        client.delete(k("m1")).noreply(false).await
    ));
    log(format!(
        "delete missing {:?}",
        client.delete(k("m1")).noreply(false).await
    ));
    log(format!("delete noreply {:?}", client.delete(k("m2")).await));
    log(format!(
        "delete_many {:?}",
        client.delete_many([k("m3"), k("zz")]).noreply(false).await
    ));
    log(format!(
        "gone {:?}",
        client.get_many([k("m1"), k("m2"), k("m3")]).await.unwrap()
    ));
    log(format!(
        "unicode {:?}",
        client.set(k("caf\u{e9}"), "ok").noreply(false).await
    ));
    log(format!(
        "unicode get {:?}",
        client.get(k("caf\u{e9}")).await.unwrap()
    ));
    let empty = client.set(k("empty"), "").noreply(false).await;
    log(format!(
        "empty {empty:?} {:?}",
        client.get(k("empty")).await.unwrap()
    ));
    let crlf = client
        .set(k("crlf"), "a\r\nEND\r\nVA 1\r\n")
        .noreply(false)
        .await;
    log(format!(
        "crlf {crlf:?} {:?}",
        client.get(k("crlf")).await.unwrap()
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_meta_and_auto_agree_on_every_command() {
    let server = Memcached::start();
    let classic = transcript(&client(&server.addr(), Protocol::Classic), "classic").await;
    let meta = transcript(&client(&server.addr(), Protocol::Meta), "meta").await;
    let auto = transcript(&client(&server.addr(), Protocol::Auto), "auto").await;
    assert_eq!(classic, meta);
    assert_eq!(classic, auto);
    // Spot checks that the transcript says what it should.
    let find = |prefix: &str| {
        classic
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap()
            .clone()
    };
    assert_eq!(
        find("cas stale"),
        format!("cas stale {:?}", Ok::<_, ()>(CasOutcome::Exists))
    );
    assert_eq!(
        find("cas missing"),
        format!("cas missing {:?}", Ok::<_, ()>(CasOutcome::NotFound))
    );
    assert_eq!(
        find("incr wraps"),
        "incr wraps Ok(Some(18446744073709551615))"
    );
    // memcached keeps the item's length after a shrinking incr and pads with spaces
    assert!(find("get n").starts_with("get n Some(Value { data: b\"1 "));
    assert!(find("incr non-numeric").ends_with("server error true"));
    assert_eq!(
        find("get c"),
        "get c Some(Value { data: b\"<GAMMA!\", flags: 0 })"
    );
    assert_eq!(find("gone"), "gone {}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_noreply_failures_are_counted_and_the_stream_stays_in_step() {
    let server = Memcached::builder().max_item_size(1024 * 1024).start();
    let too_big = vec![b'x'; 2 * 1024 * 1024];
    for (protocol, counted) in [
        (Protocol::Meta, 1),
        (Protocol::Auto, 1),
        (Protocol::Classic, 0),
    ] {
        let client = client(&server.addr(), protocol);
        client.set("fine", "ok").noreply(false).await.unwrap();
        // noreply by default: the call itself cannot know the outcome
        assert!(client.set("too-big", &too_big).await.unwrap());
        assert_eq!(&client.get("fine").await.unwrap().unwrap().data[..], b"ok");
        assert_eq!(client.get("too-big").await.unwrap(), None);
        assert_eq!(
            client.noreply_errors(),
            counted,
            "{protocol:?}: meta quiet mode reports the failure, classic noreply cannot"
        );
        // quiet NS / NF outcomes are not failures
        client.add("fine", "again").await.unwrap();
        client.delete("never-there").await.unwrap();
        client.incr("never-there", 1).noreply(true).await.unwrap();
        assert_eq!(&client.get("fine").await.unwrap().unwrap().data[..], b"ok");
        assert_eq!(client.noreply_errors(), counted);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_mix_of_quiet_and_acknowledged_requests() {
    let server = Memcached::start();
    let client = client(&server.addr(), Protocol::Meta);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                let key = format!("mix:{t}:{i}");
                client.set(&key, &key).await.unwrap(); // quiet
                client.touch(&key, 600).await.unwrap(); // classic noreply
                client
                    .incr(format!("mix:{t}:n"), 1)
                    .noreply(true)
                    .await
                    .unwrap(); // quiet ma
                let got = client.get(&key).await.unwrap().unwrap();
                assert_eq!(got.data, key.as_bytes());
                assert!(client.touch(&key, 600).noreply(false).await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(client.noreply_errors(), 0);
    assert!(raw_get(&server.addr(), "mix:3:299").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_through_twemproxy_falls_back_to_classic_without_losing_a_request() {
    let server = Memcached::start();
    let proxy = Nutcracker::start(&[server.addr()]);
    let client = client(&proxy.addr(), Protocol::Auto);
    // The very first request goes through although the proxy hangs up on the `mn` probe.
    assert!(client
        .set("tw:a", "via proxy")
        .noreply(false)
        .await
        .unwrap());
    assert_eq!(
        &client.get("tw:a").await.unwrap().unwrap().data[..],
        b"via proxy"
    );
    assert_eq!(raw_get(&server.addr(), "tw:a").unwrap().1, b"via proxy");
    client.set("tw:b", "noreply").await.unwrap();
    let many = client.get_many(["tw:a", "tw:b"]).await.unwrap();
    assert_eq!(many.len(), 2);
    assert!(client.delete("tw:a").noreply(false).await.unwrap());
    assert_eq!(client.incr("tw:missing", 1).await.unwrap(), None);
}

/// Through twemproxy (classic only), many concurrent single-key gets: every caller gets its
/// own key's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_through_twemproxy_get_their_own_answers() {
    let server = Memcached::start();
    let proxy = Nutcracker::start(&[server.addr()]);
    let client = client(&proxy.addr(), Protocol::Auto);
    // tw2:0, tw2:2, .. are stored; the odd keys are missing
    for i in (0..50).step_by(2) {
        client
            .set(format!("tw2:{i}"), format!("v{i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32usize {
        let client = client.clone();
        tasks.spawn(async move {
            for round in 0..50usize {
                let i = (task * 13 + round * 7) % 50;
                let key = format!("tw2:{i}");
                let got = if round % 4 == 0 {
                    client
                        .gets(&key)
                        .await
                        .map(|hit| hit.map(|(value, _)| value))
                } else {
                    client.get(&key).await
                };
                let got = got.unwrap().map(|value| value.data);
                let expected = (i % 2 == 0).then(|| format!("v{i}"));
                assert_eq!(
                    got.as_deref(),
                    expected.as_deref().map(str::as_bytes),
                    "{key}"
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task failed");
    }
}

/// Through twemproxy over two servers, one of them down: a multi-key `get` holding a key of
/// the dead server is answered with `SERVER_ERROR` as a whole, and the proxy closes the
/// connection. With the default settings concurrent single-key gets are not joined into
/// such lines (`join_gets` is off): keys on the live server still read, and only the dead
/// server's keys fail, with the proxy's server error.
#[tokio::test(flavor = "current_thread")]
async fn gets_through_twemproxy_with_a_dead_server_fail_only_for_its_keys() {
    let live = Memcached::start();
    let dead = Memcached::start();
    let proxy = Nutcracker::start(&[live.addr(), dead.addr()]);
    let client = client(&proxy.addr(), Protocol::Classic);
    for i in 0..40 {
        client
            .set(format!("sh:{i}"), format!("v{i}"))
            .noreply(false)
            .await
            .unwrap();
    }
    let on_live: Vec<bool> = (0..40)
        .map(|i| raw_get(&live.addr(), &format!("sh:{i}")).is_some())
        .collect();
    assert!(
        on_live.contains(&true) && on_live.contains(&false),
        "{on_live:?}"
    );
    dead.kill();
    for round in 0..3 {
        // queued together on one thread: they share lines
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40usize {
            let client = client.clone();
            calls.spawn(async move {
                let key = format!("sh:{i}");
                // gets of the first 20 keys and gets of the others, or the other way round
                let got = match (i / 20 + round) % 2 {
                    0 => client.get(&key).await,
                    _ => client
                        .gets(&key)
                        .await
                        .map(|hit| hit.map(|(value, _)| value)),
                };
                (i, got)
            });
        }
        while let Some(done) = calls.join_next().await {
            let (i, got) = done.unwrap();
            match got {
                Ok(Some(value)) if on_live[i] => assert_eq!(value.data, format!("v{i}")),
                Err(error) if !on_live[i] => assert!(error.is_server_error(), "sh:{i}: {error}"),
                other => panic!("round {round}: sh:{i} (live: {}): {other:?}", on_live[i]),
            }
        }
    }
}
