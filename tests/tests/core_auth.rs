//! memcached's ASCII authentication (`memcached -Y authfile`) against real servers: the
//! right password logs in on every new connection, over both protocols; a wrong one is an
//! auth error that fails the waiting calls without sending them and without a retry storm;
//! a server without authentication never receives the password; the password appears in
//! no `Debug`, log line or error.

use std::time::Duration;

use memcache_core::{Client, ClientBuilder, Protocol};
use memcache_tests::{eventually, raw_get, LogCapture, Memcached};

const USER: &str = "alice";
const PASSWORD: &str = "Tr0ub4dor-3";

fn auth_server() -> Memcached {
    Memcached::builder()
        .user(USER, PASSWORD)
        .user("bob", "hunter2")
        .start()
}

fn builder(server: &Memcached, protocol: Protocol) -> ClientBuilder {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn the_right_password_logs_in_over_every_protocol() {
    let server = auth_server();
    for protocol in [Protocol::Auto, Protocol::Meta, Protocol::Classic] {
        let client = builder(&server, protocol)
            .credentials(USER, PASSWORD)
            .build()
            .unwrap();
        let key = format!("k-{protocol:?}");
        assert!(client.set(&key, "v").noreply(false).await.unwrap());
        assert_eq!(client.get(&key).await.unwrap().unwrap().data, "v");
        assert_eq!(
            client.get_many([key.as_str(), "none"]).await.unwrap().len(),
            1
        );
        assert_eq!(client.incr("n", 1).await.unwrap(), None);
        assert!(client.delete(&key).noreply(false).await.unwrap());
        let stats = client.stats().await.unwrap().single().unwrap();
        assert!(stats.pid().is_some());
        // Another user of the same server.
        let bob = builder(&server, protocol)
            .credentials("bob", "hunter2")
            .build()
            .unwrap();
        assert!(bob.version().await.unwrap().single().is_ok());
    }
}

#[tokio::test]
async fn a_new_connection_logs_in_again() {
    let server = auth_server();
    let client = builder(&server, Protocol::Auto)
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    client.set("k", "1").noreply(false).await.unwrap();
    client.quit().await.unwrap().single().unwrap();
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "1");
    // The server restarts (empty): the client's next connection logs in again.
    server.restart();
    eventually("the client is back", Duration::from_secs(5), || async {
        client.set("k", "2").noreply(false).await.ok()
    })
    .await;
    assert_eq!(client.get("k").await.unwrap().unwrap().data, "2");
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_and_sends_nothing() {
    let logs = LogCapture::global();
    let server = auth_server();
    let client = builder(&server, Protocol::Auto)
        .credentials(USER, "wrong-password")
        .build()
        .unwrap();
    // Queued behind the connect: fails with it, unsent.
    let (a, b) = tokio::join!(client.get("k"), client.set("k", "x").noreply(false));
    for error in [a.unwrap_err(), b.unwrap_err()] {
        assert!(error.is_auth_error(), "{error:?}");
        let text = format!("{error} {error:?}");
        assert!(
            text.contains(USER) && !text.contains("wrong-password"),
            "{text}"
        );
    }
    // The next calls fail too, at once while the server is in backoff: no retry storm.
    for _ in 0..50 {
        let error = client.get("k").await.unwrap_err();
        assert!(error.is_auth_error() || error.is_server_down(), "{error:?}");
    }
    let connections = server_connections(&server).await;
    assert!(connections <= 6, "{connections} connections for 52 calls");
    // No credentials at all against a server that requires them: a clear auth error.
    let anonymous = builder(&server, Protocol::Auto).build().unwrap();
    let error = anonymous.get("k").await.unwrap_err();
    assert!(
        error.is_auth_error() && error.to_string().contains("credentials"),
        "{error}"
    );
    // Nothing was stored by the refused calls.
    let right = builder(&server, Protocol::Auto)
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    assert_eq!(right.get("k").await.unwrap(), None);
    let logged = logs
        .lines()
        .into_iter()
        .map(|line| line.text)
        .collect::<String>();
    assert!(!logged.contains("wrong-password") && !logged.contains(PASSWORD));
}

/// How many connections the server has seen, read by a client that logs in.
async fn server_connections(server: &Memcached) -> u64 {
    let reader = builder(server, Protocol::Classic)
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    let stats = reader.stats().await.unwrap().single().unwrap();
    stats.total_connections().unwrap()
}

#[tokio::test]
async fn a_server_without_authentication_never_receives_the_password() {
    let server = Memcached::builder().arg("-vv").start();
    let client = builder(&server, Protocol::Auto)
        .credentials(USER, PASSWORD)
        .build()
        .unwrap();
    assert!(client.set("k", "v").noreply(false).await.unwrap());
    assert_eq!(raw_get(&server.addr(), "k").unwrap().1, b"v");
    // memcached -vv logs every command it reads: no login among them, nothing stored
    // under the login's key.
    assert_eq!(raw_get(&server.addr(), "auth"), None);
    let seen = server.stderr();
    assert!(seen.contains("mn") && !seen.contains(PASSWORD), "{seen}");
}

#[test]
fn the_password_appears_in_no_debug() {
    let builder = Client::builder()
        .server("127.0.0.1:11211")
        .credentials(USER, PASSWORD);
    let shown = format!("{builder:?}");
    assert!(shown.contains(USER) && !shown.contains(PASSWORD), "{shown}");
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains(PASSWORD));
    let error = Client::builder()
        .server("127.0.0.1:11211")
        .credentials(USER, "has space")
        .build()
        .unwrap_err();
    assert!(error.is_illegal_input() && !error.to_string().contains("has space"));
}
