use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
struct UserId(#[cacheable(key)] u64, String);

fn main() {}
