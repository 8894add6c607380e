use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(version = -1)]
struct Negative {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(version = "2")]
struct Text {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(version = 4294967296)]
struct TooLarge {
    #[cacheable(key)]
    id: u64,
}

fn main() {}
