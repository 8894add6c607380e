use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "")]
struct Empty {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user profile")]
struct Space {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user\n")]
struct Newline {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user\x07")]
struct Control {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "utilisateur_é")]
struct NonAscii {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(
    prefix = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)]
struct TooLong {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = user)]
struct NotAString {
    #[cacheable(key)]
    id: u64,
}

#[derive(Serialize, Deserialize, Cacheable)]
struct Ünïcödé {
    #[cacheable(key)]
    id: u64,
}

fn main() {}
