use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
struct Page<T> {
    #[cacheable(key)]
    id: u64,
    items: Vec<T>,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct Borrowed<'a> {
    #[cacheable(key)]
    id: u64,
    name: &'a str,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct Fixed<const N: usize> {
    #[cacheable(key)]
    id: u64,
}

fn main() {}
