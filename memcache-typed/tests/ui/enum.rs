use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
enum Shape {
    Circle { radius: u32 },
    Square { side: u32 },
}

fn main() {}
