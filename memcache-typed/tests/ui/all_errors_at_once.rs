use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

// Every problem is reported in one compilation, and nothing else: no cascade of
// "`Cacheable` is not implemented" errors where the type is used.
#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user profile", ttl = 0, colour = "blue")]
struct User {
    #[cacheable(primary)]
    id: u64,
    name: String,
}

fn needs_cacheable<T: Cacheable>() -> &'static str {
    T::PREFIX
}

fn main() {
    let _ = needs_cacheable::<User>();
}
