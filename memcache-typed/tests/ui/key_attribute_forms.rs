use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// `key` on a field takes no value.
#[derive(Serialize, Deserialize, Cacheable)]
struct User {
    #[cacheable(key = "id")]
    id: u64,
}

// `key` on the struct needs one.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key)]
struct Account {
    id: u64,
}

// `key = ...` on the struct must be a string.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = id)]
struct Order {
    id: u64,
}

fn main() {}
