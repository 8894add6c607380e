//! A client configured by a URL (`ClientBuilder::from_url`, `FromStr`), against real
//! memcacheds: the servers of the URL are the client's, each key lands on the server
//! `server_for` names (read back from that server directly), and the URL's settings take
//! effect.

use std::path::Path;
use std::time::{Duration, Instant};

use memcache_core::{Client, ClientBuilder, Error, ServerAddr};
use memcache_tests::{raw_get, Memcached};

/// How late a timed-out call may return (scheduling on a busy machine).
const MARGIN: Duration = Duration::from_millis(300);

/// A client from `url`, which must parse and build.
fn client_from(url: &str) -> Client {
    ClientBuilder::from_url(url)
        .and_then(ClientBuilder::build)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// `text` percent-encoded but for ASCII letters, digits and `-._~`.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The address `raw_get` takes for the server the client calls `addr`.
fn raw_addr(addr: &ServerAddr) -> String {
    match addr {
        ServerAddr::Unix(path) => path.display().to_string(),
        tcp => tcp.to_string(),
    }
}

/// Stores 60 keys through `client` and checks that each is on the server `server_for`
/// names, and only there, read with a raw `get`; that every server got some; and that the
/// client reads each back. `servers` are the raw addresses, in the URL's order.
async fn keys_land_where_server_for_says(client: &Client, servers: &[String]) {
    let mut per_server = vec![0; servers.len()];
    for i in 0..60 {
        let key = format!("key-{i}");
        let value = format!("value {i}");
        assert!(client.set(&key, &value).noreply(false).await.unwrap());
        let home = raw_addr(&client.server_for(&key).unwrap());
        let index = servers
            .iter()
            .position(|server| *server == home)
            .unwrap_or_else(|| panic!("{key}: server_for named {home}, not one of {servers:?}"));
        per_server[index] += 1;
        for server in servers {
            let found = raw_get(server, &key);
            if *server == home {
                assert_eq!(
                    found,
                    Some((0, value.clone().into_bytes())),
                    "{key} on {home}"
                );
            } else {
                assert_eq!(found, None, "{key} is on {server} as well as on {home}");
            }
        }
        let hit = client.get(&key).await.unwrap().expect("a hit");
        assert_eq!(hit.data, value);
    }
    assert!(
        per_server.iter().all(|&n| n > 0),
        "a server got no key: {per_server:?}"
    );
}

#[tokio::test]
async fn three_servers_rendezvous() {
    let servers = [Memcached::start(), Memcached::start(), Memcached::start()];
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let url = format!("memcache://{}/?timeout=2s", addrs.join(","));
    let client = client_from(&url);
    let configured: Vec<String> = client
        .servers()
        .iter()
        .map(|s| s.addr.to_string())
        .collect();
    assert_eq!(configured, addrs);
    keys_land_where_server_for_says(&client, &addrs).await;
}

#[tokio::test]
async fn three_servers_ketama_with_weights() {
    let servers = [Memcached::start(), Memcached::start(), Memcached::start()];
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let url = format!(
        "memcache://{}:1,{}:3,{}:2?distribution=ketama",
        addrs[0], addrs[1], addrs[2]
    );
    // FromStr is the same parser
    let client = url.parse::<ClientBuilder>().unwrap().build().unwrap();
    let weights: Vec<u32> = client.servers().iter().map(|s| s.weight).collect();
    assert_eq!(weights, [1, 3, 2]);
    keys_land_where_server_for_says(&client, &addrs).await;
}

/// With node names, placement hashes the names: the same names over servers listed in
/// another order place every key on the server of the same name.
#[tokio::test]
async fn two_servers_ketama_with_names() {
    let servers = [Memcached::start(), Memcached::start()];
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let url = format!(
        "memcache://{},{}/?distribution=ketama&names=alpha,beta",
        addrs[0], addrs[1]
    );
    let client = client_from(&url);
    let names: Vec<Option<String>> = client.servers().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [Some("alpha".into()), Some("beta".into())]);
    keys_land_where_server_for_says(&client, &addrs).await;

    let swapped = client_from(&format!(
        "memcache://{},{}/?distribution=ketama&names=beta,alpha",
        addrs[1], addrs[0]
    ));
    for i in 0..60 {
        let key = format!("key-{i}");
        assert_eq!(
            swapped.server_for(&key).unwrap(),
            client.server_for(&key).unwrap(),
            "{key}"
        );
    }
}

/// TCP over IPv6 and a unix socket in one URL, and a unix socket alone as the URL's path.
#[tokio::test]
async fn ipv6_and_unix_sockets() {
    let v6 = Memcached::builder().ipv6(true).start();
    let unix = Memcached::builder().unix_socket(true).start();
    let socket = unix.socket_path().unwrap().display().to_string();
    let url = format!("memcache://{},{}:2", v6.addr(), encoded(&socket));
    let client = client_from(&url);
    let servers = client.servers();
    assert_eq!(servers[1].addr, ServerAddr::Unix(Path::new(&socket).into()));
    assert_eq!(servers[1].weight, 2);
    keys_land_where_server_for_says(&client, &[v6.addr(), socket.clone()]).await;

    let path: Vec<String> = socket.split('/').map(encoded).collect();
    let alone = client_from(&format!("memcache://{}?protocol=classic", path.join("/")));
    assert!(alone.set("solo", "yes").noreply(false).await.unwrap());
    assert_eq!(raw_get(&socket, "solo"), Some((0, b"yes".to_vec())));
}

/// `key_prefix` goes on the wire (percent-decoded), `timeout` bounds a call to a server
/// that stopped answering, far below the default 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefix_and_timeout_take_effect() {
    let server = Memcached::start();
    let timeout = Duration::from_millis(150);
    let url = format!(
        "memcache://{}/?key_prefix=app%3Av1%3A&timeout=150ms",
        server.addr()
    );
    let client = client_from(&url);
    assert_eq!(client.key_prefix(), b"app:v1:");
    assert_eq!(client.timeout(), timeout);

    assert!(client.set("k", "v").noreply(false).await.unwrap());
    assert_eq!(
        raw_get(&server.addr(), "app:v1:k"),
        Some((0, b"v".to_vec()))
    );
    assert_eq!(raw_get(&server.addr(), "k"), None);
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "v");

    server.pause();
    let started = Instant::now();
    let result = client.get("k").await;
    let took = started.elapsed();
    server.resume();
    match result {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + MARGIN,
        "timed out after {took:?}"
    );
}

/// A URL that parses but whose settings are out of range fails at `build()`, clearly; a
/// URL that does not parse names its part.
#[test]
fn bad_urls_fail_at_parse_or_at_build() {
    let error = ClientBuilder::from_url("memcache://127.0.0.1:1,127.0.0.1:1")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("listed twice"), "{error}");

    let error = ClientBuilder::from_url("memcache://127.0.0.1:1?timeout=0s")
        .unwrap()
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("timeout"), "{error}");

    let error = ClientBuilder::from_url("memcache://127.0.0.1:1?timeout=soon").unwrap_err();
    assert!(error.is_illegal_input());
    assert!(
        error.to_string().contains(r#"query parameter "timeout""#),
        "{error}"
    );
}
