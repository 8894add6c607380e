use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", prefix = "person")]
struct User {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 60)]
#[cacheable(ttl = 120, version = 2, version = 3)]
struct Account {
    #[cacheable(key, key)]
    id: u64,
    #[cacheable(key)]
    #[cacheable(key)]
    region: String,
}

fn main() {}
