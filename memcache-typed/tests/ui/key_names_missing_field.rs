use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "idd")]
struct User {
    id: u64,
    name: String,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "tenant, user_id")]
struct Membership {
    tenant: String,
    user: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "id, id")]
struct Twice {
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key = "")]
struct Empty {
    id: u64,
}

fn main() {}
