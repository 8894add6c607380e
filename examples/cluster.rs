//! Several servers: where each key lives, a multi-key read over all of them, and a server
//! going away (its keys fail, are misses with `ignore_exc`, or move with `failover`).
//!
//! ```text
//! MEMCACHED_SERVERS=127.0.0.1:11211,127.0.0.1:11212,127.0.0.1:11213 \
//!     cargo run -p memcache-examples --example cluster
//! ```
//!
//! The last server is stopped with memcached's `shutdown` command, so it must run with
//! `-A` (`scripts/demo.sh` starts three that way).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use memcache_core::{Client, ClientBuilder, Distribution, Error};

fn builder(servers: &[String]) -> ClientBuilder {
    Client::builder()
        .servers(servers.iter().cloned())
        .distribution(Distribution::Ketama) // libmemcached's and twemproxy's ring
        .timeout(Duration::from_millis(500))
        .retry_attempts(1)
        .retry_timeout(Duration::from_millis(100))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let servers: Vec<String> = std::env::var("MEMCACHED_SERVERS")
        .unwrap_or_else(|_| "127.0.0.1:11211,127.0.0.1:11212,127.0.0.1:11213".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let client = builder(&servers).build()?;

    // Where keys live: no I/O, the same answer pylibmc and nutcracker give.
    let keys: Vec<String> = (1..=12).map(|id| format!("user:{id}")).collect();
    for key in &keys[..4] {
        println!("{key:<8} lives on {}", client.server_for(key)?);
    }

    // One write and one read per server, all servers at once.
    let items: Vec<(&String, String)> = keys
        .iter()
        .map(|k| (k, format!("profile of {k}")))
        .collect();
    let not_stored = client.set_many(items).noreply(false).await?;
    assert!(not_stored.is_empty());
    let found = client.get_many(&keys).await?;
    let mut per_server = BTreeMap::new();
    for key in found.keys() {
        *per_server
            .entry(client.server_for(key)?.to_string())
            .or_insert(0) += 1;
    }
    println!("get_many: {} hits, per server {per_server:?}", found.len());
    for (server, stats) in &client.stats().await? {
        println!(
            "  {server}: {:?} items",
            stats.as_ref().map(|s| s.curr_items())
        );
    }

    // A server goes away.
    let gone = servers.last().expect("at least one server").clone();
    TcpStream::connect(&gone)
        .and_then(|mut socket| socket.write_all(b"shutdown\r\n"))
        .expect("memcached started with -A accepts shutdown");
    // It exits shortly after: once it refuses connections, it has.
    while TcpStream::connect(&gone).is_ok() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("stopped {gone}");

    match client.get_many(&keys).await {
        Err(error) => println!("get_many fails, naming the server: {error}"),
        Ok(found) => println!(
            "get_many: {} hits (the server had not gone yet)",
            found.len()
        ),
    }
    let partial = client.get_many(&keys).partial().await?;
    println!(
        "partial: {} hits, errors from {:?}",
        partial.hits.len(),
        partial
            .errors
            .iter()
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
    );
    let lenient = builder(&servers).ignore_exc(true).build()?;
    println!(
        "ignore_exc: {} hits, its keys are misses",
        lenient.get_many(&keys).await?.len()
    );

    // With failover a dead server leaves the ring: its keys move to the others.
    let moving = builder(&servers).failover(true).build()?;
    let victim = keys
        .iter()
        .find(|key| moving.server_for(key).ok().map(|s| s.to_string()) == Some(gone.clone()))
        .expect("a key on the stopped server");
    for attempt in 1..=5 {
        match moving.get(victim).await {
            Err(error) if error.is_connection_error() => {
                println!("  attempt {attempt}: {error}");
            }
            other => {
                println!("  attempt {attempt}: {other:?}");
                break;
            }
        }
        if moving.server_for(victim)?.to_string() != gone {
            break;
        }
    }
    println!(
        "failover: {victim} now lives on {} ({:?})",
        moving.server_for(victim)?,
        moving.servers().last().map(|s| s.state.clone())
    );
    moving.set(victim, "recomputed").noreply(false).await?;
    println!("{victim} = {:?}", moving.get(victim).await?.map(|v| v.data));
    Ok(())
}
