//! The [`CacheValue`] trait: a type stored in a [`KeyedCache`](crate::KeyedCache), under a
//! key given beside the value.

use crate::key::CacheKey;

/// A value stored in memcached under a key that is **not** part of it: the ids of a user's
/// friends under the user's id, a rendered page under its path, a count under a date.
///
/// It says everything [`Cacheable`](crate::Cacheable) says except how to find the key in a
/// value: the key type, the prefix, the default TTL and the schema fingerprint. Its cache is a
/// [`KeyedCache`](crate::KeyedCache), made with
/// [`KeyedCache::typed`](crate::KeyedCache::typed), whose writes take the key beside the
/// value (`friends.set(&42, &ids)`); lookups take `&Key`, so the wrong kind of key does not
/// compile, exactly as with [`Cache`](crate::Cache).
///
/// A plain serde type (`Vec<u64>`, `String`) needs no impl at all:
/// [`KeyedCache::new`](crate::KeyedCache::new) takes the prefix at run time. The trait is
/// for your own types, where the derive checks the prefix and TTL at compile time and
/// fingerprints the type's shape.
///
/// # Deriving
///
/// `#[cacheable(key_type = ...)]` on a struct (named fields, tuple, newtype or unit) or an
/// enum derives `CacheValue` instead of `Cacheable`; the other attributes (`prefix`, `ttl`,
/// `version`) are as for `Cacheable`:
///
/// ```
/// use memcache_typed::CacheValue;
/// use serde::{Deserialize, Serialize};
///
/// /// A user's friends, stored under the user's id.
/// #[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
/// #[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
/// struct Friends(Vec<u64>);
///
/// /// Where a page is, stored under its path.
/// #[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
/// #[cacheable(key_type = String)]
/// enum PageState {
///     Live { version: u32 },
///     Moved(String),
///     Gone,
/// }
///
/// assert_eq!(Friends::PREFIX, "friends");
/// assert_eq!(Friends::TTL, Some(600));
/// assert_eq!(PageState::PREFIX, "page_state"); // the type name in snake_case
/// let key: <Friends as CacheValue>::Key = 42u64;
/// # let _ = (key, Friends(vec![]).0, PageState::Live { version: 1 }, PageState::Moved(String::new()), PageState::Gone);
/// ```
///
/// Why `key_type` and not `key = u64`: on a struct, `key = "id"` already names the key
/// *field*; `key_type` says in its name that what follows is a type, and that the key is
/// outside the value. A type cannot have both: `key_type` with a `#[cacheable(key)]` field
/// or `key = "..."` is a compile error.
///
/// The derived [`SCHEMA`](CacheValue::SCHEMA) follows the recipe of `Cacheable` (version,
/// field names and type tokens) extended to tuple fields (named by their index), unit
/// structs and enum variants; the [memcache-derive](memcache_derive) crate documentation
/// spells it out. As for `Cacheable`, generic types are refused.
///
/// # Implementing by hand
///
/// ```
/// use memcache_typed::CacheValue;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Rendered(String);
///
/// impl CacheValue for Rendered {
///     type Key = String; // the page's path
///     const PREFIX: &'static str = "page";
///     const TTL: Option<u32> = Some(60);
///     const SCHEMA: u32 = 1; // change it when the stored form changes
/// }
/// # let _ = Rendered(String::new()).0;
/// ```
///
/// A hand-written `PREFIX` that breaks the rules (non-empty printable ASCII without spaces
/// or `:`, at most 200 bytes) compiles, but every command of its cache fails with
/// [`Error::InvalidPrefix`](crate::Error::InvalidPrefix) before anything is sent.
pub trait CacheValue: serde::Serialize + serde::de::DeserializeOwned {
    /// The type of the keys values are stored under. Lookups and writes take a `&Key` (or a
    /// borrowed form of it, `&str` for `String`); [`CacheKey`] encodes it.
    type Key: CacheKey;

    /// Key prefix: full key is `"{PREFIX}:{encoded key}"`. Different types must have
    /// different prefixes; the rules are those of [`Cacheable::PREFIX`](crate::Cacheable::PREFIX).
    const PREFIX: &'static str;

    /// Default time to live in seconds; `None` = the entry does not expire. Individual
    /// writes can override it.
    const TTL: Option<u32>;

    /// Schema fingerprint; the flags layout stores its low 24 bits, so a value written by
    /// another version of the type (or another type under the same prefix) reads as a miss.
    const SCHEMA: u32;
}
