//! `#[derive(Cacheable)]` with `key_type`: a `CacheValue` impl for structs of every shape and
//! enums, whose key is not part of the value.

// The types below exist only for their derived impls and are never built.
#![allow(dead_code)]

use memcache_typed::{CacheKey, CacheValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
#[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
struct Friends(Vec<u64>);

#[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
#[cacheable(key_type = (String, u32), version = 3)]
struct SearchResult(Vec<String>, u32);

#[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
#[cacheable(key_type = String)]
struct RenderedPage {
    html: String,
    etag: u64,
}

#[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
#[cacheable(key_type = u64)]
struct Seen;

#[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
#[cacheable(prefix = "page_state", key_type = String)]
enum PageState {
    Live { version: u32 },
    Moved(String),
    Gone,
}

/// The key type is exactly the one given: this only compiles if it is.
fn key_type_of<V: CacheValue<Key = K>, K: CacheKey>() {}

#[test]
fn constants_and_key_types() {
    assert_eq!(Friends::PREFIX, "friends");
    assert_eq!(Friends::TTL, Some(600));
    assert_eq!(SearchResult::PREFIX, "search_result");
    assert_eq!(SearchResult::TTL, None);
    assert_eq!(RenderedPage::PREFIX, "rendered_page");
    assert_eq!(Seen::PREFIX, "seen");
    assert_eq!(PageState::PREFIX, "page_state");
    key_type_of::<Friends, u64>();
    key_type_of::<SearchResult, (String, u32)>();
    key_type_of::<RenderedPage, String>();
    key_type_of::<Seen, u64>();
    key_type_of::<PageState, String>();
}

/// The documented recipe, computed independently of the macro: the tag, the version, then
/// each item followed by a NUL byte.
fn recipe(version: u32, items: &[&str]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(b"memcache-typed schema v1\0");
    hasher.update(version.to_be_bytes());
    for item in items {
        hasher.update(item.as_bytes());
        hasher.update(b"\0");
    }
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[test]
fn schema_follows_the_documented_recipe() {
    assert_eq!(Friends::SCHEMA, recipe(1, &["(", "0:Vec < u64 >", ")"]));
    assert_eq!(
        SearchResult::SCHEMA,
        recipe(3, &["(", "0:Vec < String >", "1:u32", ")"])
    );
    // Named fields: the recipe of key-field types, unchanged.
    assert_eq!(
        RenderedPage::SCHEMA,
        recipe(1, &["html:String", "etag:u64"])
    );
    assert_eq!(Seen::SCHEMA, recipe(1, &[";"]));
    assert_eq!(
        PageState::SCHEMA,
        recipe(
            1,
            &[
                "enum",
                "variant Live",
                "version:u32",
                "variant Moved",
                "(",
                "0:String",
                ")",
                "variant Gone",
                ";",
            ]
        )
    );
}
