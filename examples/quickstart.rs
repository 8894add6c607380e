//! Quick start: connect with timeouts, set a value, read it back.
//!
//! ```text
//! MEMCACHED_ADDR=127.0.0.1:11211 cargo run -p memcache-examples --example quickstart
//! ```
//! (`./scripts/demo.sh` starts a memcached and runs this for you.)

use std::time::Duration;

use memcache_core::Client;

#[tokio::main]
async fn main() -> Result<(), memcache_core::Error> {
    let addr = std::env::var("MEMCACHED_ADDR").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let client = Client::builder()
        .server(&addr)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(200))
        .build()?; // no I/O yet: the first command connects

    client.set("some_key", "some_value").await?; // noreply by default
    let result = client.get("some_key").await?;
    match result {
        Some(value) => println!(
            "some_key = {:?} (flags {})",
            String::from_utf8_lossy(&value.data),
            value.flags
        ),
        None => println!("some_key is not there"),
    }
    println!(
        "server {addr} runs memcached {}",
        client.version().await?.single()?
    );
    Ok(())
}
