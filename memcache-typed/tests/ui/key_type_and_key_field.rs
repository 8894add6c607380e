use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// A type declares its key in the value or beside it, not both.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key_type = u64)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "id", key_type = u64)]
struct Account {
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key_type = String)]
enum Page {
    Live(#[cacheable(key)] String),
    Gone,
}

fn main() {}
