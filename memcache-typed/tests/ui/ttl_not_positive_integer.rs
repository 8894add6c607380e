use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 0)]
struct Zero {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = -5)]
struct Negative {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = "300")]
struct Text {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 1.5)]
struct Float {
    #[cacheable(key)]
    id: u64,
}

const FIVE_MINUTES: u32 = 300;

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = FIVE_MINUTES)]
struct Constant {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 2592001)]
struct TooLong {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(ttl = 99999999999999999999999)]
struct Overflow {
    #[cacheable(key)]
    id: u64,
}

fn main() {
    let _ = FIVE_MINUTES;
}
