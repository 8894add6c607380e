use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// With `user:1` allowed, `UserPage { page: 2 }` and a `user` type with the composite key
// `(1, 2)` would both be stored under "user:1:2".
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user:1")]
struct UserPage {
    #[cacheable(key)]
    page: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "app:")]
struct TrailingColon {
    #[cacheable(key)]
    id: u64,
}

fn main() {}
