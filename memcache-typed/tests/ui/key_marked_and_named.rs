use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "id")]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

fn main() {}
