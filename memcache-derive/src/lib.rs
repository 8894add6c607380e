//! `#[derive(Cacheable)]` for [memcache-typed](https://docs.rs/memcache-typed).
//!
//! Use it through `memcache_typed`, which re-exports it next to the trait of the same name:
//!
//! ```
//! use memcache_typed::Cacheable;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Cacheable)]
//! #[cacheable(prefix = "user", ttl = 300, version = 2)]
//! struct User {
//!     #[cacheable(key)]
//!     id: u64,
//!     name: String,
//! }
//!
//! assert_eq!(User::PREFIX, "user");
//! assert_eq!(User::TTL, Some(300));
//! assert_eq!(User::SCHEMA, 2234821164);
//! let user = User { id: 42, name: "Ada".to_owned() };
//! let key: u64 = user.cache_key();
//! assert_eq!(key, 42);
//! # let _ = user.name;
//! ```
//!
//! The derive works on structs with named fields and no generic parameters. The struct must
//! also implement `Serialize` and `Deserialize` (the trait's supertraits).
//!
//! # Keys outside the value: `key_type`
//!
//! For a value that does not carry its key (a user's friends under the user's id, a page
//! under its path), give the key's type instead of marking a field. The derive then
//! implements `memcache_typed::CacheValue` instead of `Cacheable`, on any struct (named
//! fields, tuple, newtype, unit) or enum, and the value is stored through a
//! `memcache_typed::KeyedCache`, whose writes take the key beside the value:
//!
//! ```
//! use memcache_typed::CacheValue;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, memcache_typed::Cacheable)]
//! #[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
//! struct Friends(Vec<u64>);
//!
//! assert_eq!(Friends::PREFIX, "friends");
//! assert_eq!(Friends::TTL, Some(600));
//! let key: <Friends as CacheValue>::Key = 42u64;
//! # let _ = (key, Friends(vec![]).0);
//! ```
//!
//! The spelling is `key_type`, not `key = u64`: `key = "id"` already names key *fields*, and
//! a `key` that meant a field when quoted and a type when not would be easy to misread (and
//! `key = id` to mistype). A type has its key in it or beside it, never both: `key_type`
//! together with `#[cacheable(key)]` or `key = "..."` is a compile error, as is `key_type`
//! written as a string. A `key_type` that is not a `CacheKey` is an error at that type.
//! Structs of other shapes than named fields, and enums, need `key_type`: they have no key
//! field to mark.
//!
//! # Attributes on the struct: `#[cacheable(...)]`
//!
//! | attribute | meaning | default |
//! |---|---|---|
//! | `prefix = "user"` | `PREFIX`: keys are `"{prefix}:{encoded key}"` | the type name in snake_case: `UserProfile` → `"user_profile"`, `HTTPServer` → `"http_server"` |
//! | `ttl = 300` | `TTL`: default time to live in seconds, `Some(300)` | `None`: entries do not expire |
//! | `version = 2` | schema version, one input of `SCHEMA` | `1` |
//! | `key = "id"` / `key = "tenant, id"` | names the key field(s) instead of marking them | none |
//! | `key_type = u64` | the key is not part of the value, and has this type: implements `CacheValue` | none: the key is a field |
//!
//! Rules, checked at compile time:
//! - `prefix` is a string literal, not empty, ASCII, without whitespace, control characters
//!   or `:`, at most 200 bytes (memcached keys are at most 250 bytes in all). `:` separates
//!   the prefix from the key, so a prefix `user:1` with the key `2` and a prefix `user` with
//!   the composite key `(1, 2)` would share `user:1:2`. The default prefix obeys the same
//!   rules.
//! - `ttl` is an integer literal from 1 to 2592000 (30 days): memcached reads larger values as
//!   an absolute unix time. Leave it out for entries that do not expire (`ttl = 0` is refused
//!   rather than silently meaning "never").
//! - `version` is an integer literal that fits in a `u32`.
//! - each attribute at most once; unknown attributes are errors.
//!
//! # Attributes on fields
//!
//! `#[cacheable(key)]` marks a key field. One key field makes `Key` that field's type; several
//! make a composite key, `Key` being the tuple of their types in field order. Alternatively,
//! `#[cacheable(key = "tenant, id")]` on the struct names the key fields (comma-separated, in
//! the tuple order given); a name that is not a field of the struct is an error. Use one form
//! or the other, not both. There must be at least one key field. Key fields must implement
//! `Clone` (`cache_key` clones them) and `CacheKey` (integers, `bool`, `char`, strings;
//! tuples of up to six keys, so at most six key fields); if one does not, the compiler's error
//! points at that field's type.
//!
//! # `SCHEMA`
//!
//! A fingerprint of the struct's shape, so that an entry written by another version of the
//! struct reads as a miss instead of as garbage. The recipe is fixed:
//!
//! ```text
//! input  = "memcache-typed schema v1" 0x00
//!          version as 4 bytes big-endian
//!          items (below), each followed by 0x00
//! SCHEMA = the first 4 bytes of SHA-256(input), big-endian
//!
//! items of a struct with named fields, for each field in declaration order:
//!              field name (without r#) ":" type tokens
//! items of a tuple struct:   "(", then for each field: its index ":" type tokens, then ")"
//! items of a unit struct:    ";"
//! items of an enum:          "enum", then for each variant in declaration order:
//!                            "variant " variant name, then the items of its fields as above
//! ```
//!
//! For a struct with named fields this is the recipe of the first release, unchanged (only
//! `key_type` types can be tuple structs, unit structs or enums).
//!
//! "Type tokens" is the field's type as written, each token written out and joined by
//! single spaces: identifiers and literals as in the source, each punctuation character a
//! token of its own, each bracket a token of its own; so `Vec<Option<u8>>` gives
//! `Vec < Option < u8 > >` and `std::string::String` gives `std : : string : : String`.
//! The fingerprint therefore changes when a field is added, removed, renamed, reordered or
//! given another type, and when `version` changes; it does not change when the struct is
//! renamed or reformatted. It sees tokens, not types: `String` and `std::string::String`
//! differ, while a change behind a type alias, inside a field's own type, or in serde
//! attributes goes unseen. Bump `version` for those.
//!
//! # Generic structs
//!
//! Refused: every instantiation (`Page<u32>`, `Page<String>`) would share one prefix and one
//! schema, so their entries would collide. Implement `Cacheable` by hand for each concrete
//! type instead; it is a few lines.
//!
//! # Errors
//!
//! Every problem is reported at the offending token, all at once: a struct with a bad `ttl`,
//! an unknown attribute and no key field gets three errors in one compilation. On error the
//! derive still emits a placeholder impl, so that code using the type does not add a second
//! error ("`Cacheable` is not implemented") on top of the real one.
//!
//! # Generated code
//!
//! For the `User` above, the derive emits exactly this (names are absolute, so the impl
//! compiles whatever the deriving module has in scope):
//!
//! ```text
//! #[allow(unused_qualifications)]
//! #[automatically_derived]
//! impl ::memcache_typed::__private::Cacheable for User {
//!     type Key = u64;
//!     const PREFIX: &'static ::core::primitive::str = "user";
//!     const TTL: ::core::option::Option<::core::primitive::u32> =
//!         ::core::option::Option::Some(300u32);
//!     const SCHEMA: ::core::primitive::u32 = 2234821164u32;
//!     #[inline]
//!     fn cache_key(&self) -> <Self as ::memcache_typed::__private::Cacheable>::Key {
//!         ::core::clone::Clone::clone(&self.id)
//!     }
//! }
//! ```
//!
//! With several key fields, `Key` is the tuple of their types and `cache_key` returns the
//! tuple of their clones. With `key_type`, the impl is of `CacheValue`: `type Key` is the
//! given type, the three constants as above, and no `cache_key`.

mod ast;
mod attr;
mod expand;
mod schema;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `memcache_typed::Cacheable`; see the [crate documentation](crate) for the
/// attributes.
#[proc_macro_derive(Cacheable, attributes(cacheable))]
pub fn derive_cacheable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
