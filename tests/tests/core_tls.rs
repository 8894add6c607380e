//! TLS (feature `tls`) against real memcached servers serving TLS (`memcached -Z`), with
//! certificates made at run time: every command family over both protocols, many tasks
//! sharing one TLS connection, large values, every certificate failure (untrusted, wrong
//! name, expired), plain text on either side, mutual TLS, a killed server, authentication
//! over TLS, a slow handshake.

use std::time::{Duration, Instant};

use memcache_core::{
    CasOutcome, Client, ClientBuilder, Protocol, TimeoutKind, TlsConfig, TlsErrorKind,
};
use memcache_tests::{eventually, FaultMode, FaultProxy, Memcached, TestCa, LOOPBACK_NAMES};

const SECOND: Duration = Duration::from_secs(1);

/// A CA and a TLS server whose certificate it issued for the loopback names.
fn tls_server() -> (TestCa, Memcached) {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.server(&LOOPBACK_NAMES))
        .start();
    (ca, server)
}

/// A client of `server` that trusts `ca`.
fn builder(server: &Memcached, ca: &TestCa, protocol: Protocol) -> ClientBuilder {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(2 * SECOND)
        .connect_timeout(2 * SECOND)
        .tls(TlsConfig::new().ca_pem(ca.pem()))
}

/// The TLS failure of `error` (inside any server naming).
fn tls_kind(error: &memcache_core::Error) -> TlsErrorKind {
    assert!(error.is_tls_error(), "not a TLS error: {error:?}");
    assert!(error.is_connection_error(), "{error:?}");
    error.tls_kind().expect("a TLS error has a kind")
}

#[tokio::test]
async fn every_command_family_over_tls() {
    let (ca, server) = tls_server();
    for protocol in [Protocol::Auto, Protocol::Meta, Protocol::Classic] {
        let client = builder(&server, &ca, protocol).build().unwrap();
        let k = |name: &str| format!("{protocol:?}-{name}");
        assert!(client.set(k("a"), "1").noreply(false).await.unwrap());
        assert_eq!(client.get(k("a")).await.unwrap().unwrap().data, "1");
        let (_, token) = client.gets(k("a")).await.unwrap().unwrap();
        assert_eq!(
            client.cas(k("a"), "2", token).await.unwrap(),
            CasOutcome::Stored
        );
        assert_eq!(
            client.cas(k("a"), "3", token).await.unwrap(),
            CasOutcome::Exists
        );
        assert!(!client.add(k("a"), "x").noreply(false).await.unwrap());
        assert!(client.add(k("b"), "b").noreply(false).await.unwrap());
        assert!(client.replace(k("b"), "bb").noreply(false).await.unwrap());
        assert!(client.append(k("b"), ">").noreply(false).await.unwrap());
        assert!(client.prepend(k("b"), "<").noreply(false).await.unwrap());
        assert_eq!(client.get(k("b")).await.unwrap().unwrap().data, "<bb>");
        assert!(client.set(k("n"), "10").noreply(false).await.unwrap());
        assert_eq!(client.incr(k("n"), 5).await.unwrap(), Some(15));
        assert_eq!(client.decr(k("n"), 3).await.unwrap(), Some(12));
        assert!(client.touch(k("n"), 60).noreply(false).await.unwrap());
        assert!(client.gat(k("n"), 120).await.unwrap().is_some());
        let missed = client
            .set_many([(k("m1"), "x"), (k("m2"), "y")])
            .noreply(false)
            .await
            .unwrap();
        assert!(missed.is_empty());
        let hits = client
            .get_many([k("m1"), k("m2"), k("none")])
            .await
            .unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[&k("m2")].data, "y");
        assert_eq!(client.gets_many([k("m1")]).await.unwrap().len(), 1);
        client
            .delete_many([k("m1"), k("m2")])
            .noreply(false)
            .await
            .unwrap();
        assert!(client.delete(k("a")).noreply(false).await.unwrap());
        assert!(!client.delete(k("a")).noreply(false).await.unwrap());
        // noreply writes (quiet meta, or classic noreply) go out over TLS too
        client.set(k("q"), "quiet").await.unwrap();
        assert_eq!(client.get(k("q")).await.unwrap().unwrap().data, "quiet");
        let stats = client.stats().await.unwrap().single().unwrap();
        assert!(stats.pid().is_some());
        let version = client.version().await.unwrap().single().unwrap();
        assert!(version.starts_with("1."), "{version}");
        client
            .flush_all()
            .noreply(false)
            .await
            .unwrap()
            .single()
            .unwrap();
        assert_eq!(client.get(k("b")).await.unwrap(), None);
        assert_eq!(client.noreply_errors(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_one_tls_connection_without_a_mismatch() {
    let (ca, server) = tls_server();
    let client = builder(&server, &ca, Protocol::Auto).build().unwrap();
    client.version().await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut mismatches = 0;
                for i in 0..200 {
                    let key = format!("t{task}-{}", i % 7);
                    let value = format!("{task}:{i}:{}", "v".repeat(i % 50));
                    assert!(client.set(&key, &value).noreply(i % 2 == 0).await.unwrap());
                    match client.get(&key).await.unwrap() {
                        Some(hit) if hit.data == value.as_bytes() => {}
                        _ => mismatches += 1,
                    }
                    if i % 20 == 0 {
                        let keys = [format!("t{task}-0"), format!("t{task}-1")];
                        let hits = client.get_many(&keys).await.unwrap();
                        mismatches += hits.keys().filter(|k| !keys.contains(k)).count();
                    }
                }
                mismatches
            })
        })
        .collect();
    let mut mismatches = 0;
    for task in tasks {
        mismatches += task.await.unwrap();
    }
    assert_eq!(mismatches, 0);
    let stats = client.stats().await.unwrap().single().unwrap();
    // this client's one connection (and none before it)
    assert_eq!(stats.curr_connections(), Some(1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_span_many_tls_records() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.server(&LOOPBACK_NAMES))
        .memory_mb(64)
        .max_item_size(4 << 20)
        .start();
    let client = builder(&server, &ca, Protocol::Auto)
        .max_value_size(4 << 20)
        .timeout(10 * SECOND)
        .build()
        .unwrap();
    let value = |n: usize, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    let big = value(3 << 20, 7);
    assert!(client.set("big", big.clone()).noreply(false).await.unwrap());
    assert_eq!(client.get("big").await.unwrap().unwrap().data, big);
    // several 1 MiB values in flight at once, written and read concurrently
    let tasks: Vec<_> = (0..8u8)
        .map(|seed| {
            let client = client.clone();
            tokio::spawn(async move {
                let data = value(1 << 20, seed);
                let key = format!("mib-{seed}");
                client.set(&key, data.clone()).await.unwrap();
                let hit = client.get(&key).await.unwrap().unwrap();
                hit.data == data
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    let keys: Vec<String> = (0..8).map(|seed| format!("mib-{seed}")).collect();
    let hits = client.get_many(&keys).await.unwrap();
    assert_eq!(hits.len(), 8);
    assert!(hits.iter().all(|(key, hit)| {
        let seed: u8 = key[4..].parse().unwrap();
        hit.data == value(1 << 20, seed)
    }));
}

/// memcached 1.6.18 reads the end of a value straight into the item; requests that share
/// a TLS record with that end would wait inside OpenSSL until more bytes come. The client
/// ends its records at request boundaries, so nothing stalls.
#[tokio::test]
async fn requests_after_a_value_spanning_records_do_not_stall() {
    let (ca, server) = tls_server();
    for protocol in [Protocol::Meta, Protocol::Classic] {
        let client = builder(&server, &ca, protocol).build().unwrap();
        for size in [16_300, 16_400, 17_000, 40_000, 200_000] {
            let key = format!("{protocol:?}-{size}");
            let value = vec![b'x'; size];
            // noreply: the get is written right behind the value
            client.set(&key, value.clone()).await.unwrap();
            let hit = client.get(&key).await.unwrap().unwrap();
            assert_eq!(hit.data.len(), size, "{protocol:?}");
            client
                .set_many([
                    (format!("{key}-a"), value.clone()),
                    (format!("{key}-b"), value),
                ])
                .await
                .unwrap();
            assert_eq!(
                client.get_many([format!("{key}-b")]).await.unwrap().len(),
                1
            );
        }
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_without_a_retry_storm() {
    let (ca, server) = tls_server();
    let stranger = TestCa::new("another CA");
    let client = Client::builder()
        .server(server.addr())
        .tls(TlsConfig::new().ca_file(stranger.file()))
        .build()
        .unwrap();
    let (a, b) = tokio::join!(client.get("k"), client.set("k", "v").noreply(false));
    for error in [a.unwrap_err(), b.unwrap_err()] {
        assert_eq!(
            tls_kind(&error),
            TlsErrorKind::UntrustedCertificate,
            "{error}"
        );
    }
    // Later calls fail at once while the server is in backoff, each still saying why.
    let started = Instant::now();
    for _ in 0..50 {
        let error = client.get("k").await.unwrap_err();
        assert!(error.is_tls_error() || error.is_server_down(), "{error:?}");
        assert_eq!(
            error.tls_kind(),
            Some(TlsErrorKind::UntrustedCertificate),
            "{error}"
        );
    }
    assert!(started.elapsed() < 2 * SECOND);
    // The server saw a handful of handshakes for 52 calls: the backoff held them back.
    let trusted = builder(&server, &ca, Protocol::Auto).build().unwrap();
    let stats = trusted.stats().await.unwrap().single().unwrap();
    let handshakes = stats.get_u64("ssl_handshake_errors").unwrap();
    assert!(
        (1..=6).contains(&handshakes),
        "{handshakes} failed handshakes for 52 calls"
    );
    // Mozilla's roots do not know the test CA either.
    let public = Client::builder()
        .server(server.addr())
        .tls(TlsConfig::new())
        .build()
        .unwrap();
    let error = public.get("k").await.unwrap_err();
    assert_eq!(
        tls_kind(&error),
        TlsErrorKind::UntrustedCertificate,
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_unless_that_name_is_asked() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.server(&["cache.internal"]))
        .start();
    let client = builder(&server, &ca, Protocol::Auto).build().unwrap();
    let error = client.get("k").await.unwrap_err();
    assert_eq!(tls_kind(&error), TlsErrorKind::NameMismatch, "{error}");
    // The name the certificate has, verified in place of the address.
    let named = Client::builder()
        .server(server.addr())
        .tls(
            TlsConfig::new()
                .ca_pem(ca.pem())
                .server_name("cache.internal"),
        )
        .build()
        .unwrap();
    assert!(named.set("k", "v").noreply(false).await.unwrap());
    assert_eq!(named.get("k").await.unwrap().unwrap().data, "v");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.expired_server(&LOOPBACK_NAMES))
        .start();
    let client = builder(&server, &ca, Protocol::Auto).build().unwrap();
    let error = client.get("k").await.unwrap_err();
    assert_eq!(
        tls_kind(&error),
        TlsErrorKind::ExpiredCertificate,
        "{error}"
    );
}

#[tokio::test]
async fn a_tls_client_against_a_plain_server_fails_at_once() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::start();
    let client = builder(&server, &ca, Protocol::Auto).build().unwrap();
    let started = Instant::now();
    let error = client.get("k").await.unwrap_err();
    assert_eq!(tls_kind(&error), TlsErrorKind::NotTls, "{error}");
    assert!(error.to_string().contains("-Z"), "{error}");
    assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_plain_client_against_a_tls_server_fails_at_once() {
    let (_ca, server) = tls_server();
    for protocol in [Protocol::Auto, Protocol::Meta, Protocol::Classic] {
        let client = Client::builder()
            .server(server.addr())
            .protocol(protocol)
            .connect_timeout(5 * SECOND)
            .timeout(5 * SECOND)
            .build()
            .unwrap();
        let started = Instant::now();
        let error = client.get("k").await.unwrap_err();
        assert!(
            error.is_connection_error() && !error.is_timeout(),
            "{protocol:?}: {error:?}"
        );
        assert!(
            started.elapsed() < SECOND,
            "{protocol:?}: {:?}",
            started.elapsed()
        );
        if protocol == Protocol::Auto {
            // the probe's reset names the likely cause
            assert!(error.to_string().contains("requires TLS"), "{error}");
        }
    }
}

#[tokio::test]
async fn mutual_tls_accepts_the_right_client_certificate_and_refuses_none() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.server(&LOOPBACK_NAMES))
        .require_client_cert(&ca)
        .start();
    let client_cert = ca.client("app");
    for protocol in [Protocol::Auto, Protocol::Meta] {
        let by_files = Client::builder()
            .server(server.addr())
            .protocol(protocol)
            .tls(
                TlsConfig::new()
                    .ca_file(ca.file())
                    .client_cert_files(&client_cert.cert_file, &client_cert.key_file),
            )
            .build()
            .unwrap();
        assert!(by_files.set("k", "mtls").noreply(false).await.unwrap());
        let by_pem = Client::builder()
            .server(server.addr())
            .protocol(protocol)
            .tls(
                TlsConfig::new()
                    .ca_pem(ca.pem())
                    .client_cert_pem(&client_cert.cert_pem, &client_cert.key_pem),
            )
            .build()
            .unwrap();
        assert_eq!(by_pem.get("k").await.unwrap().unwrap().data, "mtls");
    }
    // No client certificate: the server refuses (after the client's side of the handshake,
    // in TLS 1.3: the first read finds its alert).
    for protocol in [Protocol::Auto, Protocol::Meta] {
        let anonymous = builder(&server, &ca, protocol).build().unwrap();
        let error = anonymous.get("k").await.unwrap_err();
        assert_eq!(
            tls_kind(&error),
            TlsErrorKind::Refused,
            "{protocol:?}: {error}"
        );
        assert!(error.to_string().contains("CertificateRequired"), "{error}");
    }
    // A certificate from another CA is refused too.
    let stranger = TestCa::new("another CA").client("intruder");
    let intruder = Client::builder()
        .server(server.addr())
        .tls(
            TlsConfig::new()
                .ca_pem(ca.pem())
                .client_cert_pem(&stranger.cert_pem, &stranger.key_pem),
        )
        .build()
        .unwrap();
    let error = intruder.get("k").await.unwrap_err();
    assert_eq!(tls_kind(&error), TlsErrorKind::Refused, "{error}");
}

#[tokio::test]
async fn a_killed_tls_server_and_its_return() {
    let (ca, server) = tls_server();
    let client = builder(&server, &ca, Protocol::Auto)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(client.set("k", "1").noreply(false).await.unwrap());
    server.kill();
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_connection_error(), "{error:?}");
    server.restart();
    eventually("the client is back over TLS", 5 * SECOND, || async {
        client.set("k", "2").noreply(false).await.ok()
    })
    .await;
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "2");
}

#[tokio::test]
async fn a_corrupt_record_closes_the_connection_with_a_tls_error() {
    let (ca, server) = tls_server();
    let proxy = FaultProxy::start(&server.addr());
    let client = Client::builder()
        .server(proxy.addr())
        .timeout(2 * SECOND)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .tls(TlsConfig::new().ca_pem(ca.pem()))
        .build()
        .unwrap();
    assert!(client.set("k", "v").noreply(false).await.unwrap());
    proxy.set_mode(FaultMode::Garble); // the server's records become a plain-text line
    let error = client.get("k").await.unwrap_err();
    assert_eq!(tls_kind(&error), TlsErrorKind::Protocol, "{error}");
    proxy.set_mode(FaultMode::PassThrough);
    eventually("a new TLS connection", 5 * SECOND, || async {
        client.get("k").await.ok().flatten()
    })
    .await;
    // quit over TLS, then the next call opens another connection
    client.quit().await.unwrap().single().unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
}

#[tokio::test]
async fn authentication_over_tls() {
    let ca = TestCa::new("memcache-tests CA");
    let server = Memcached::builder()
        .tls(&ca.server(&LOOPBACK_NAMES))
        .user("alice", "s3cret-pw")
        .start();
    for protocol in [Protocol::Auto, Protocol::Classic] {
        let client = builder(&server, &ca, protocol)
            .credentials("alice", "s3cret-pw")
            .build()
            .unwrap();
        assert!(client.set("k", "v").noreply(false).await.unwrap());
        assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");
        let wrong = builder(&server, &ca, protocol)
            .credentials("alice", "wrong-pw")
            .build()
            .unwrap();
        let error = wrong.get("k").await.unwrap_err();
        assert!(error.is_auth_error(), "{error:?}");
        assert!(!format!("{error:?}").contains("wrong-pw"));
    }
}

#[tokio::test]
async fn a_handshake_slower_than_the_connect_timeout_is_a_connect_timeout() {
    let (ca, server) = tls_server();
    server.pause(); // the kernel accepts; nobody answers the ClientHello
    let client = builder(&server, &ca, Protocol::Meta)
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.get("k").await.unwrap_err();
    assert!(
        matches!(
            error.root(),
            memcache_core::Error::Timeout {
                kind: TimeoutKind::Connect,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < 2 * SECOND);
    server.resume();
    eventually("the server answers once resumed", 5 * SECOND, || async {
        client.get("k").await.ok()
    })
    .await;
}

#[tokio::test]
async fn a_cluster_of_tls_servers() {
    let ca = TestCa::new("memcache-tests CA");
    let servers: Vec<Memcached> = (0..3)
        .map(|_| {
            Memcached::builder()
                .tls(&ca.server(&LOOPBACK_NAMES))
                .start()
        })
        .collect();
    let client = Client::builder()
        .servers(servers.iter().map(Memcached::addr))
        .tls(TlsConfig::new().ca_pem(ca.pem()))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("key-{i}")).collect();
    let missed = client
        .set_many(keys.iter().map(|k| (k.clone(), k.clone())))
        .noreply(false)
        .await
        .unwrap();
    assert!(missed.is_empty());
    let hits = client.get_many(&keys).await.unwrap();
    assert_eq!(hits.len(), keys.len());
    assert!(hits.iter().all(|(k, v)| v.data == k.as_bytes()));
    let per_server = client.stats().await.unwrap();
    let mut total = 0;
    for (server, stats) in &per_server {
        let items = stats.as_ref().unwrap().curr_items().unwrap();
        assert!(items > 0, "{server} holds none of 60 keys");
        total += items;
    }
    assert_eq!(total, 60);
    // One server's certificate failure stays that server's.
    let stranger = TestCa::new("another CA");
    let mixed = Client::builder()
        .servers(servers.iter().map(Memcached::addr))
        .tls(TlsConfig::new().ca_pem(stranger.pem()))
        .build()
        .unwrap();
    let error = mixed.get("key-1").await.unwrap_err();
    assert!(error.server().is_some(), "{error}");
    assert_eq!(tls_kind(&error), TlsErrorKind::UntrustedCertificate);
}

#[tokio::test]
async fn a_memcaches_url_end_to_end() {
    let (ca, server) = tls_server();
    let ca_file = ca.file();
    let url = format!(
        "memcaches://{}/?tls_ca_file={}&timeout=2s",
        server.addr(),
        percent_encode(&ca_file.display().to_string())
    );
    let client = ClientBuilder::from_url(&url).unwrap().build().unwrap();
    assert!(client.set("k", "url").noreply(false).await.unwrap());
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "url");
    // memcache:// to the same server is plain text, refused by it
    let plain = format!("memcache://{}/?protocol=meta", server.addr());
    let error = ClientBuilder::from_url(&plain)
        .unwrap()
        .build()
        .unwrap()
        .get("k")
        .await;
    assert!(error.unwrap_err().is_connection_error());
}

#[test]
fn unix_sockets_and_bad_pem_are_refused_by_build() {
    let error = Client::builder()
        .server("/run/memcached.sock")
        .tls(TlsConfig::new())
        .build()
        .unwrap_err();
    assert!(
        error.is_illegal_input() && error.to_string().contains("unix socket"),
        "{error}"
    );
    let ca = TestCa::new("memcache-tests CA");
    let client_cert = ca.client("app");
    let error = Client::builder()
        .server("127.0.0.1:11211")
        .tls(TlsConfig::new().client_cert_pem(&client_cert.cert_pem, "not a key"))
        .build()
        .unwrap_err();
    assert!(
        error.is_illegal_input() && error.to_string().contains("private key"),
        "{error}"
    );
    let shown = format!(
        "{:?}",
        TlsConfig::new().client_cert_pem(&client_cert.cert_pem, &client_cert.key_pem)
    );
    let key_body = client_cert.key_pem.lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "{shown}");
}

/// Percent-encodes what a URL query value cannot hold as is.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
