//! Typed caching: derive `Cacheable` on a `User`, then set, get, get_many and update it
//! without writing a key, an encoder or a flags value by hand.
//!
//! ```text
//! MEMCACHED_ADDR=127.0.0.1:11211 cargo run -p memcache-examples --example typed
//! ```

use std::time::Duration;

use memcache_typed::{Cache, Cacheable, Client};
use serde::{Deserialize, Serialize};

/// Stored under `"user:{id}"` as MessagePack, for 5 minutes.
#[derive(Debug, Clone, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
    logins: u32,
}

#[tokio::main]
async fn main() -> Result<(), memcache_typed::Error> {
    let addr = std::env::var("MEMCACHED_ADDR").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let client = Client::builder()
        .server(&addr)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(200))
        .build()?;
    let users: Cache<User> = Cache::new(client);

    let ann = User {
        id: 42,
        name: "Ann".into(),
        logins: 0,
    };
    let bob = User {
        id: 43,
        name: "Bob".into(),
        logins: 3,
    };
    users.set(&ann).await?; // key "user:42", ttl 300, noreply (the client's default)
    users.set(&bob).ttl(60).await?; // a per-call ttl
    println!("stored {} as {:?}", ann.name, users.memcached_key(&ann.id)?);

    let found: Option<User> = users.get(&42).await?; // a &u64: the key type is checked
    println!("get(42)          -> {found:?}");

    let many = users.get_many([42, 43, 44]).await?; // one round trip, hits only
    let mut ids: Vec<_> = many.keys().collect();
    ids.sort();
    println!("get_many(42..44) -> hits for {ids:?}");

    // gets + cas in a loop: safe against concurrent writers.
    let updated = users
        .update(&42, |mut user| {
            user.logins += 1;
            user
        })
        .await?;
    println!("update(42)       -> {updated:?}");

    users.delete_many([42u64, 43]).await?;
    println!("after delete     -> {:?}", users.get(&42).await?);
    println!("cache stats      -> {:?}", users.stats());
    Ok(())
}
