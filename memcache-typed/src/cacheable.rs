//! The [`Cacheable`] trait: what makes a type storable in a [`Cache`](crate::Cache).

use crate::key::CacheKey;

/// A value that can be stored in memcached under a key derived from the value itself.
///
/// (A value stored under a key that is not part of it is a [`CacheValue`](crate::CacheValue).)
///
/// A `Cacheable` type says where its values live (`"{PREFIX}:{encoded key}"`), how long they
/// live by default ([`TTL`](Cacheable::TTL)), and which shape they have
/// ([`SCHEMA`](Cacheable::SCHEMA)), so that a value written by another version of the type
/// reads as a miss rather than as garbage. Values themselves are (de)serialised with serde,
/// hence the supertraits.
///
/// Usually the trait is derived; `use memcache_typed::Cacheable` brings both the trait and the
/// derive into scope (like serde's `Serialize`).
///
/// # Deriving
///
/// ```
/// use memcache_typed::Cacheable;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Cacheable)]
/// #[cacheable(prefix = "user", ttl = 300)]
/// struct User {
///     #[cacheable(key)]
///     id: u64,
///     name: String,
/// }
///
/// #[derive(Serialize, Deserialize, Cacheable)]
/// struct OrderLine {
///     #[cacheable(key)]
///     order: u64,
///     #[cacheable(key)]
///     line: u16,
///     sku: String,
/// }
///
/// assert_eq!(User::PREFIX, "user");
/// assert_eq!(User::TTL, Some(300));
/// assert_eq!(OrderLine::PREFIX, "order_line"); // the type name in snake_case
/// assert_eq!(OrderLine::TTL, None); // does not expire
///
/// let line = OrderLine { order: 7, line: 2, sku: "X-1".to_owned() };
/// let key: (u64, u16) = line.cache_key(); // a composite key is a tuple, in field order
/// assert_eq!(key, (7, 2));
/// # let _ = (User { id: 1, name: String::new() }.name, line.sku);
/// ```
///
/// Attributes on the struct, `#[cacheable(...)]`:
///
/// - `prefix = "user"`: the [`PREFIX`](Cacheable::PREFIX). Defaults to the type name in
///   snake_case (`UserProfile` → `"user_profile"`). Must be non-empty ASCII without
///   whitespace, control characters or `:`, at most 200 bytes.
/// - `ttl = 300`: the [`TTL`](Cacheable::TTL) in seconds, from 1 to 2592000 (30 days; memcached
///   reads larger values as a unix timestamp). Without it, `TTL` is `None`: entries do not
///   expire.
/// - `version = 2`: an input of the [`SCHEMA`](Cacheable::SCHEMA) fingerprint; defaults to 1.
///   Bump it when the stored form changes in a way the fingerprint cannot see (a type alias,
///   a field's own type, serde attributes).
/// - `key = "id"` or `key = "tenant, id"`: names the key field(s), as an alternative to
///   marking them; a name that is not a field is a compile error.
///
/// On fields: `#[cacheable(key)]` marks a key field. One key field makes [`Key`](Cacheable::Key)
/// that field's type; several make the tuple of their types in field order. Key fields must be
/// `Clone`: [`cache_key`](Cacheable::cache_key) clones them.
///
/// `SCHEMA` is the first four bytes (big-endian) of SHA-256 over
/// `"memcache-typed schema v1\0"`, the version as four big-endian bytes, then for each field in
/// declaration order its name, `:`, its type's tokens joined by single spaces, and a NUL byte.
/// The [memcache-derive](memcache_derive) crate documentation spells the recipe out.
///
/// The derive makes a `Cacheable` of a struct with named fields, and refuses generic types:
/// every instantiation would share one prefix and one schema. Every mistake is a compile
/// error at the offending token. For a type whose key is **not** one of its fields (a
/// newtype, a tuple struct, an enum, or a struct stored under an outside key),
/// `#[cacheable(key_type = u64)]` derives [`CacheValue`](crate::CacheValue) instead, whose
/// cache, a [`KeyedCache`](crate::KeyedCache), takes the key beside the value.
///
/// # Implementing by hand
///
/// A hand-written impl is as short as the derive, and is the way to go for generic types
/// (one impl per concrete type, each with its own prefix), for keys computed from several
/// fields in another way, or for a schema fingerprint you manage yourself:
///
/// ```
/// use memcache_typed::Cacheable;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Session {
///     token: String,
///     user_id: u64,
/// }
///
/// impl Cacheable for Session {
///     type Key = String;
///     const PREFIX: &'static str = "session";
///     const TTL: Option<u32> = Some(1800);
///     // Any value works; change it whenever the stored form of `Session` changes.
///     const SCHEMA: u32 = 1;
///
///     fn cache_key(&self) -> String {
///         self.token.clone()
///     }
/// }
///
/// let session = Session { token: "abc".to_owned(), user_id: 42 };
/// assert_eq!(session.cache_key(), "abc");
/// # let _ = session.user_id;
/// ```
///
/// `PREFIX` follows the derive's rules: non-empty printable ASCII without spaces or `:`. A
/// hand-written impl that breaks them compiles, but every command of a
/// [`Cache`](crate::Cache) of that type fails with
/// [`Error::InvalidPrefix`](crate::Error::InvalidPrefix), before anything is sent.
///
/// Only the low 24 bits of `SCHEMA` are stored (see the flags layout in the crate
/// documentation), so two schemas that agree on those bits are not told apart; the derive's
/// fingerprints make that a one-in-16-million accident.
pub trait Cacheable: serde::Serialize + serde::de::DeserializeOwned {
    /// The type of this value's cache key (a field, or a tuple of fields for a composite key).
    ///
    /// Lookups take a `&Key`, so asking for a user by the wrong kind of key does not compile.
    /// [`CacheKey`] turns it into the part of the memcached key after the
    /// prefix.
    type Key: CacheKey;

    /// Key prefix: full key is `"{PREFIX}:{encoded key}"`.
    ///
    /// Different types must have different prefixes, or their entries overwrite each other.
    /// Must be non-empty printable ASCII without spaces and without `:`: the first `:` of a
    /// memcached key ends the prefix, so that prefix `user` with the composite key `(1, 2)`
    /// and prefix `user:1` with key `2` cannot meet (both would be `user:1:2`). The derive
    /// refuses other prefixes at compile time; for a hand-written impl, every command of a
    /// [`Cache`](crate::Cache) fails with [`Error::InvalidPrefix`](crate::Error::InvalidPrefix)
    /// before anything is sent ([`Cache::memcached_key`](crate::Cache::memcached_key) shows it
    /// too).
    const PREFIX: &'static str;

    /// Default time to live in seconds; `None` = the entry does not expire.
    ///
    /// Individual writes can override it. memcached reads values above 2592000 (30 days) as
    /// an absolute unix time.
    const TTL: Option<u32>;

    /// Schema fingerprint; the flags layout stores its low 24 bits, so a value written by
    /// another version of the struct reads as a miss.
    ///
    /// Derived impls compute it from the version, field names and field types; hand-written
    /// impls pick any value and change it when the stored form changes.
    const SCHEMA: u32;

    /// This value's key: the value is stored under `"{PREFIX}:{encoded cache_key()}"`.
    fn cache_key(&self) -> Self::Key;
}
