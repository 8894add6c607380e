//! Typed caching, both forms: a `User` that carries its key (a `Cache<User>`), and values
//! stored under a key beside them (a `KeyedCache`): a derived `Friends` under a user id, and
//! a plain `u64` with no derive at all. Set, get, get_many and update them without writing a
//! key, an encoder or a flags value by hand.
//!
//! ```text
//! MEMCACHED_ADDR=127.0.0.1:11211 cargo run -p memcache-examples --example typed
//! ```

use std::time::Duration;

use memcache_typed::{Cache, Cacheable, Client, KeyedCache};
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

/// A user's friends, stored under the user's id (the key is not part of the value) as
/// `"friends:{id}"` for 10 minutes.
#[derive(Debug, Clone, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
struct Friends(Vec<u64>);

#[tokio::main]
async fn main() -> Result<(), memcache_typed::Error> {
    let addr = std::env::var("MEMCACHED_ADDR").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let client = Client::builder()
        .server(&addr)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(200))
        .build()?;
    let users: Cache<User> = Cache::new(client.clone());

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

    // The key beside the value: a derived type ...
    let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client.clone());
    friends.set(&42, &Friends(vec![43, 44])).await?; // key "friends:42", ttl 600
    println!("friends(42)      -> {:?}", friends.get(&42).await?);

    // ... or a plain serde type, no derive: the prefix is checked here.
    let logins = KeyedCache::<(String, u32), u64>::new(client, "logins")?.with_ttl(3600)?;
    let day = ("2024-05-01".to_owned(), 42);
    logins.set(&day, &1).await?; // key "logins:2024-05-01:42"
    logins.update(&day, |n| n + 1).await?;
    println!("logins({day:?}) -> {:?}", logins.get(&day).await?);
    println!("as stored under  -> {:?}", logins.memcached_key(&day)?);
    Ok(())
}
