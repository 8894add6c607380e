use memcache_typed::{CacheKey, Cacheable, KeyWriter};
use serde::{Deserialize, Serialize};

// A key type that is a CacheKey but not Clone: the error points at the field's type.
#[derive(Serialize, Deserialize)]
struct Tag(String);

impl CacheKey for Tag {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(&self.0);
    }
}

#[derive(Serialize, Deserialize, Cacheable)]
struct Tagged {
    #[cacheable(key)]
    tag: Tag,
    count: u32,
}

fn main() {}
