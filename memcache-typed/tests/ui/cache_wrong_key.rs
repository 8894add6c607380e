// A `Cache<User>` is looked up by `&User::Key` (here `&u64`) or a borrowed form of it:
// a key of another type does not compile.

use memcache_typed::{Cache, Cacheable};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user")]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

async fn lookup(users: &Cache<User>) {
    let _ = users.get(&42).await; // fine: the key type is u64
    let _ = users.get(&"42").await;
}

fn main() {
    let _ = lookup;
}
