use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user")]
struct User {
    id: u64,
    name: String,
}

fn main() {}
