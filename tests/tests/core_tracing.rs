//! Spans and events: every command runs in a `memcache` span (target
//! `memcache_core::command`) with its name, key count, server and protocol; keys only at
//! trace level, values never; the connection's life (connect, probe, failure, recovery,
//! a failed noreply write) is told in events under `memcache_core`.

use std::time::Duration;

use memcache_core::{Client, Protocol};
use memcache_tests::{eventually, LogCapture, Memcached, SpanLine};
use tracing::Level;

const VALUE: &str = "the-value-must-never-be-logged";

fn client(server: &Memcached, protocol: Protocol) -> Client {
    Client::builder()
        .server(server.addr())
        .protocol(protocol)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client builds")
}

/// The command spans captured, in order.
fn commands(logs: &LogCapture) -> Vec<SpanLine> {
    logs.spans()
        .into_iter()
        .filter(|span| span.target == "memcache_core::command" && span.name == "memcache")
        .collect()
}

fn command<'a>(spans: &'a [SpanLine], name: &str) -> &'a SpanLine {
    spans
        .iter()
        .find(|span| span.field("command") == Some(name))
        .unwrap_or_else(|| panic!("no span for {name} in {spans:#?}"))
}

/// No span field and no event says the value.
fn assert_value_never_logged(logs: &LogCapture) {
    for span in logs.spans() {
        assert!(
            span.fields.values().all(|field| !field.contains(VALUE)),
            "a span holds the value: {span:?}"
        );
    }
    assert!(!logs.contains(VALUE), "an event holds the value");
}

#[tokio::test]
async fn single_key_commands_have_a_span_with_command_server_and_protocol_but_no_key() {
    let server = Memcached::start();
    let logs = LogCapture::up_to(Level::DEBUG);
    let _guard = logs.install();
    for protocol in [Protocol::Meta, Protocol::Classic] {
        let client = client(&server, protocol);
        client.set("k", VALUE).noreply(false).await.expect("set");
        assert!(client.get("k").await.expect("get").is_some());
        client.incr("n", 1).await.expect("incr");
        client.delete("k").noreply(false).await.expect("delete");
    }
    let spans = commands(&logs);
    let expected = ["set", "get", "incr", "delete"];
    let names: Vec<_> = spans.iter().filter_map(|s| s.field("command")).collect();
    assert_eq!(names, [expected, expected].concat(), "{spans:#?}");
    for (span, protocol) in spans
        .iter()
        .zip(["meta"; 4].into_iter().chain(["classic"; 4]))
    {
        assert_eq!(span.level, Level::DEBUG);
        assert_eq!(span.field("keys"), Some("1"));
        assert_eq!(span.field("server"), Some(server.addr().as_str()));
        assert_eq!(span.field("protocol"), Some(protocol), "{span:?}");
        assert_eq!(
            span.field("key"),
            None,
            "keys only at trace level: {span:?}"
        );
    }
    assert_value_never_logged(&logs);
}

#[tokio::test]
async fn at_trace_level_the_span_names_the_key() {
    let server = Memcached::start();
    let logs = LogCapture::up_to(Level::TRACE);
    let _guard = logs.install();
    let client = client(&server, Protocol::Auto);
    client
        .set("the:key", VALUE)
        .noreply(false)
        .await
        .expect("set");
    assert!(client.get("the:key").await.expect("get").is_some());
    let spans = commands(&logs);
    assert_eq!(command(&spans, "set").field("key"), Some("the:key"));
    let get = command(&spans, "get");
    assert_eq!(get.field("key"), Some("the:key"));
    assert_eq!(get.field("protocol"), Some("meta"));
    assert_value_never_logged(&logs);
}

#[tokio::test]
async fn a_fresh_clients_first_read_records_the_protocol_the_probe_found() {
    let server = Memcached::start();
    let logs = LogCapture::up_to(Level::DEBUG);
    let _guard = logs.install();
    let client = client(&server, Protocol::Auto);
    assert!(client.get("nothing").await.expect("get").is_none());
    let spans = commands(&logs);
    assert_eq!(command(&spans, "get").field("protocol"), Some("meta"));
    let probe = logs
        .lines()
        .into_iter()
        .find(|line| line.text.contains("connection ready"))
        .expect("the probe's answer is told");
    assert!(probe.text.contains("meta=Some(true)"), "{probe:?}");
    assert!(probe.target.starts_with("memcache_core"), "{probe:?}");
}

#[tokio::test]
async fn multi_key_and_server_wide_commands_count_keys_and_servers() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let logs = LogCapture::up_to(Level::DEBUG);
    let _guard = logs.install();
    let cluster = Client::builder()
        .servers(servers.iter().map(Memcached::addr))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("cluster builds");
    let keys: Vec<String> = (0..30).map(|i| format!("key:{i}")).collect();
    let items: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), VALUE)).collect();
    cluster
        .set_many(items)
        .noreply(false)
        .await
        .expect("set_many");
    assert_eq!(cluster.get_many(&keys).await.expect("get_many").len(), 30);
    cluster.delete_many(&keys).await.expect("delete_many");
    cluster.stats().await.expect("stats");
    cluster.version().await.expect("version");

    let one = client(&servers[0], Protocol::Auto);
    one.get_many(["a", "b"]).await.expect("get_many");

    let spans = commands(&logs);
    for name in ["set_many", "get_many", "delete_many"] {
        let span = command(&spans, name);
        assert_eq!(span.field("keys"), Some("30"), "{span:?}");
        assert_eq!(span.field("servers"), Some("3"), "{span:?}");
        assert_eq!(span.field("server"), None, "{span:?}");
    }
    for name in ["stats", "version"] {
        let span = command(&spans, name);
        assert_eq!(span.field("keys"), Some("0"), "{span:?}");
        assert_eq!(span.field("servers"), Some("3"), "{span:?}");
    }
    let single = spans
        .iter()
        .rfind(|span| span.field("command") == Some("get_many"))
        .expect("the single server's get_many");
    assert_eq!(single.field("keys"), Some("2"));
    assert_eq!(single.field("server"), Some(servers[0].addr().as_str()));
    // Multi-key reads are classic `get`s, on every server.
    assert_eq!(single.field("protocol"), Some("classic"));
    assert_value_never_logged(&logs);
}

#[tokio::test]
async fn events_inside_a_command_belong_to_its_span() {
    // ignore_exc turns the error into a miss and says so, inside the get's span.
    let server = Memcached::start();
    let addr = server.addr();
    let logs = LogCapture::up_to(Level::DEBUG);
    let _guard = logs.install();
    let client = Client::builder()
        .server(&addr)
        .ignore_exc(true)
        .timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("client builds");
    client.set("k", "v").noreply(false).await.expect("set");
    server.kill();
    assert_eq!(client.get("k").await.expect("a miss"), None);
    let spans = logs.spans();
    let line = logs
        .lines()
        .into_iter()
        .find(|line| {
            line.text
                .contains("ignore_exc: treating the error as a miss")
        })
        .expect("ignore_exc says what it hid");
    let span = &spans[line.span.expect("inside a span")];
    assert_eq!(span.field("command"), Some("get"), "{span:?}");
}

#[tokio::test]
async fn connect_failure_and_recovery_are_told_once_each() {
    let server = Memcached::start();
    let addr = server.addr();
    let logs = LogCapture::global();
    let about = |level: Level, text: &str| {
        logs.at(level, "memcache_core")
            .into_iter()
            .filter(|line| {
                line.text.contains(&format!("server={addr}")) && line.text.contains(text)
            })
            .count()
    };
    let client = Client::builder()
        .server(&addr)
        .timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(20))
        .build()
        .expect("client builds");
    client.version().await.expect("version");
    assert_eq!(about(Level::DEBUG, "connected"), 1);

    server.kill();
    assert!(client.get("k").await.is_err());
    server.restart();
    eventually("the client reconnects", Duration::from_secs(10), || async {
        client.get("k").await.ok()
    })
    .await;
    assert_eq!(about(Level::WARN, "connection to the server failed"), 1);
    assert_eq!(about(Level::INFO, "the server answers again"), 1);
    assert!(about(Level::DEBUG, "connected") >= 2);
}

#[tokio::test]
async fn a_failed_noreply_write_is_an_event() {
    let server = Memcached::builder().max_item_size(1024 * 1024).start();
    let logs = LogCapture::up_to(Level::WARN);
    let _guard = logs.install();
    let client = client(&server, Protocol::Meta);
    let too_large = vec![b'x'; 2 * 1024 * 1024];
    client.set("big", &too_large).await.expect("handed over");
    eventually(
        "the failure is reported",
        Duration::from_secs(5),
        || async {
            client.version().await.ok();
            (client.noreply_errors() == 1).then_some(())
        },
    )
    .await;
    let line = logs
        .at(Level::WARN, "memcache_core")
        .into_iter()
        .find(|line| line.text.contains("a noreply request failed"))
        .expect("the failure is told");
    assert!(line.text.contains("keys=big"), "{line:?}");
}
