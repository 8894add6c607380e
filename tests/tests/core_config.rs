//! Client settings seen from outside: `build()` does no I/O, the first command connects, and
//! `tcp_keepalive` arms the kernel's keepalive timer on the connection.

use std::time::Duration;

use memcache_core::Client;
use memcache_tests::{raw_stats, Memcached};

fn total_connections(server: &Memcached) -> u64 {
    raw_stats(&server.addr())["total_connections"]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn build_does_no_io_and_the_first_command_connects() {
    let server = Memcached::start();
    let before = total_connections(&server);
    let client = Client::builder().server(server.addr()).build().unwrap();
    // Time for a connection that build() might have started (none should come).
    tokio::time::sleep(Duration::from_millis(50)).await;
    // raw_stats itself opened one connection
    assert_eq!(total_connections(&server), before + 1, "build() connected");
    assert_eq!(client.get("k").await.unwrap(), None);
    assert_eq!(
        total_connections(&server),
        before + 3,
        "the first command connects once"
    );
    // a client to an address nobody listens on builds all the same
    assert!(Client::builder().server("127.0.0.1:1").build().is_ok());
}

/// The kernel's view of the client's end of its connection to `port`: the `tr` (timer kind)
/// and `tm->when` (jiffies, hex) columns of `/proc/net/tcp`.
fn client_socket_timer(port: u16) -> Option<(u8, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let remote_port = u16::from_str_radix(fields[2].rsplit(':').next()?, 16).ok()?;
        let established = fields[3] == "01";
        if remote_port != port || !established {
            return None;
        }
        let (kind, when) = fields[5].split_once(':')?;
        Some((kind.parse().ok()?, u64::from_str_radix(when, 16).ok()?))
    })
}

#[tokio::test]
async fn tcp_keepalive_arms_the_keepalive_timer() {
    let server = Memcached::start();
    let plain = Client::builder().server(server.addr()).build().unwrap();
    assert_eq!(plain.get("k").await.unwrap(), None);
    // timer kind 0: no timer on an idle connection without keepalive
    assert_eq!(
        client_socket_timer(server.port()).map(|(kind, _)| kind),
        Some(0)
    );

    let server = Memcached::start(); // its own server: only this client's socket matches
    let keepalive = Client::builder()
        .server(server.addr())
        .tcp_keepalive(Some(Duration::from_secs(7)))
        .build()
        .unwrap();
    assert_eq!(keepalive.get("k").await.unwrap(), None);
    // timer kind 2: keepalive, due within the 7 s of idle time asked for
    let (kind, when) = client_socket_timer(server.port()).expect("the client's connection");
    assert_eq!(kind, 2, "keepalive timer");
    assert!(when > 0, "keepalive due in {when} jiffies");
}

/// A connect slower than the request timeout (here: the protocol probe's round trip through
/// a delaying proxy): the first call times out, but the connection it opened is kept and
/// serves the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_connect_keeps_its_connection() {
    use memcache_tests::{FaultMode, FaultProxy};
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(250)));
    let client = Client::builder()
        .server(proxy.addr())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = client.get("k").await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    // The probe's answer is still on its way (delayed); requests from now on are not. A
    // call made before the answer is in waits for the connection, within its own deadline.
    proxy.set_mode(FaultMode::PassThrough);
    let hit =
        memcache_tests::eventually("the connection serves", Duration::from_secs(5), || async {
            client.get("k").await.ok()
        })
        .await;
    assert_eq!(hit, None);
    assert_eq!(proxy.connections(), 1, "the slow connection was kept");
}
