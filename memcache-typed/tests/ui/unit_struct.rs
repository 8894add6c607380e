use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
struct Marker;

fn main() {}
