use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// `key_type` takes a type, not a string.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key_type = "u64")]
struct Friends(Vec<u64>);

// Given twice.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key_type = u64, key_type = u32)]
struct Count(u64);

// A key type that is not a CacheKey: the error points at it.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(key_type = f64)]
struct Reading(u32);

fn main() {}
