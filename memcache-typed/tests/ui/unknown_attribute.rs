use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(foo)]
struct User {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(expiry = 60, prefix = "account")]
struct Account {
    #[cacheable(key, index)]
    id: u64,
    #[cacheable(prefix = "name")]
    name: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable]
struct Bare {
    #[cacheable(key)]
    id: u64,
}

fn main() {}
