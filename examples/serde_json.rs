//! Storing structured values with the raw client and a JSON convention, as pymemcache's
//! serializer example does: strings are stored as they are with flags 1, every other value
//! as JSON with flags 2, and a value with any other flags is refused.
//!
//! ```text
//! MEMCACHED_ADDR=127.0.0.1:11211 cargo run -p memcache-examples --example serde_json
//! ```
//!
//! (For typed values, `memcache_typed::Cache<T>` does this for you with MessagePack.)

use memcache_core::{Bytes, Client, Value};
use serde_json::json;

const FLAG_STRING: u32 = 1;
const FLAG_JSON: u32 = 2;

/// Turns a value into the bytes and flags to store.
fn serialize(value: &serde_json::Value) -> (Bytes, u32) {
    match value {
        serde_json::Value::String(text) => (Bytes::from(text.clone()), FLAG_STRING),
        other => (Bytes::from(other.to_string()), FLAG_JSON),
    }
}

/// Turns stored bytes and flags back into a value.
fn deserialize(stored: &Value) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    match stored.flags {
        FLAG_STRING => Ok(serde_json::Value::String(
            std::str::from_utf8(&stored.data)?.to_owned(),
        )),
        FLAG_JSON => Ok(serde_json::from_slice(&stored.data)?),
        flags => Err(format!("unknown serialization format (flags {flags})").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("MEMCACHED_ADDR").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let client = Client::builder().server(addr).build()?;

    let values = [
        ("json:name", json!("Ada Lovelace")),
        (
            "json:user",
            json!({"id": 42, "name": "Ada", "langs": ["en", "fr"]}),
        ),
        ("json:answer", json!(42)),
    ];
    for (key, value) in &values {
        let (data, flags) = serialize(value);
        client.set(key, data).flags(flags).noreply(false).await?;
    }
    for (key, value) in &values {
        let stored = client.get(key).await?.ok_or("value vanished")?;
        let back = deserialize(&stored)?;
        assert_eq!(&back, value);
        println!("{key} (flags {}) = {back}", stored.flags);
    }

    // A value written by someone else, with flags this convention does not know.
    client
        .set("json:foreign", "???")
        .flags(99)
        .noreply(false)
        .await?;
    let foreign = client.get("json:foreign").await?.ok_or("value vanished")?;
    match deserialize(&foreign) {
        Ok(value) => println!("json:foreign unexpectedly decoded: {value}"),
        Err(error) => println!("json:foreign refused: {error}"),
    }
    Ok(())
}
