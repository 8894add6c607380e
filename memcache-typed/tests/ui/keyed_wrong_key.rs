// A `KeyedCache<K, V>` is looked up and written by `&K` or a borrowed form of it, whether `V`
// is a plain serde type or derives `CacheValue` with `key_type`: a key of another type does
// not compile, and neither does a `KeyedCache` whose `K` is not the type's `key_type`.

use memcache_typed::{Cacheable, Client, KeyedCache};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "friends", key_type = u64)]
struct Friends(Vec<u64>);

async fn lookup(plain: &KeyedCache<u64, Vec<u64>>, derived: &KeyedCache<u64, Friends>) {
    let _ = plain.get(&42).await; // fine: the key type is u64
    let _ = derived.get(&42).await; // fine too
    let _ = plain.get(&"42").await;
    let _ = derived.get(&"42").await;
    let _ = derived.set(&"42", &Friends(vec![7]));
}

fn wrong_key_type(client: Client) {
    let _: KeyedCache<String, Friends> = KeyedCache::typed(client);
}

fn main() {
    let _ = (lookup, wrong_key_type);
}
