use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// A key type that is not a CacheKey: the error points at the field's type.
#[derive(Clone, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct Tile {
    #[cacheable(key)]
    at: Point,
    colour: String,
}

fn main() {}
