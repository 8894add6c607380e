//! Typed caching over memcached: derive [`Cacheable`] on your domain types and read and
//! write them through a [`Cache`] or a [`KeyedCache`], without ever writing a cache key, an
//! encoder or a flags value by hand, and without being able to mix up types.
//!
//! This crate re-exports the async client, [`memcache_core`] (whole, and [`Client`],
//! [`ClientBuilder`], [`CasToken`], [`CasOutcome`] and [`Value`] at the top level), and the
//! derive, so a service depends on this one crate.
//!
//! # Quick start: two forms
//!
//! A value either **carries its key** (a user and its id: a [`Cache`], `users.set(&user)`),
//! or is stored **under a key beside it** (the ids of a user's friends under the user's id, a
//! page under its path, a string a Python service wrote: a [`KeyedCache`],
//! `friends.set(&id, &ids)`). Both have the same commands, the same guarantees and one
//! implementation; only where a write finds its key differs.
//!
//! ```no_run
//! use std::time::Duration;
//! use memcache_typed::{Cache, Cacheable, Client, KeyedCache, Pymemcache};
//! use serde::{Deserialize, Serialize};
//!
//! // The key is a field: Cache<User>.
//! #[derive(Clone, Serialize, Deserialize, Cacheable)]
//! #[cacheable(prefix = "user", ttl = 300)]
//! struct User {
//!     #[cacheable(key)]
//!     id: u64,
//!     name: String,
//! }
//!
//! // The key is outside the value: KeyedCache<u64, Friends>.
//! #[derive(Clone, Serialize, Deserialize, Cacheable)]
//! #[cacheable(prefix = "friends", key_type = u64, ttl = 600)]
//! struct Friends(Vec<u64>);
//!
//! # async fn load_user_from_db(id: u64) -> Result<User, std::io::Error> {
//! #     Ok(User { id, name: String::new() })
//! # }
//! # async fn load_friends_from_db(id: u64) -> Result<Friends, std::io::Error> {
//! #     Ok(Friends(vec![id]))
//! # }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder()
//!     .server("127.0.0.1:11211")
//!     .connect_timeout(Duration::from_millis(500))
//!     .timeout(Duration::from_millis(200))
//!     .build()?; // lazy: no I/O yet
//!
//! let users: Cache<User> = Cache::new(client.clone()); // cheap to clone into every task
//! let ann = User { id: 42, name: "Ann".into() };
//! users.set(&ann).await?;                        // key "user:42", MessagePack, flags, ttl 300
//! let hit: Option<User> = users.get(&42).await?; // a &u64: the key type is checked
//! let user = users.get_or_load(&42, |id| load_user_from_db(*id)).await?; // read-through
//! users.update(&42, |mut u| { u.name.push('!'); u }).await?;            // gets + cas loop
//!
//! let friends: KeyedCache<u64, Friends> = KeyedCache::typed(client.clone());
//! friends.set(&42, &Friends(vec![7, 9])).await?;  // key "friends:42", ttl 600
//! let hit: Option<Friends> = friends.get(&42).await?; // a &u64 here too
//! let ids = friends.get_or_load(&42, |id| load_friends_from_db(*id)).await?;
//!
//! // No derive at all: a plain serde type, the prefix checked at run time.
//! let visits = KeyedCache::<String, u64>::new(client.clone(), "visits")?;
//! visits.set("/about", &17).await?;              // key "visits:/about"
//!
//! // What a Python service stores with pymemcache, read and written as plain Rust values.
//! let greetings = KeyedCache::<String, String, Pymemcache>::with_codec(
//!     client,
//!     "greeting",
//!     Pymemcache::new(),
//! )?;
//! let hello: Option<String> = greetings.get("en").await?; // Python: set("greeting:en", "hello")
//! # let _ = (hit, user, ids, hello);
//! # Ok(()) }
//! ```
//!
//! `examples/typed.rs` (both forms) and `examples/read_through.rs` in the repository are
//! complete programs (`./scripts/demo.sh` runs the latter against a memcached it starts).
//!
//! # Types and keys
//!
//! A [`Cacheable`] type names its key type, a key prefix, a default TTL and a schema
//! fingerprint, and finds its key in a value ([`Cacheable::cache_key`]). A [`CacheValue`]
//! type names the same except the last: its key is given beside it. The derive fills them in
//! from `#[cacheable(...)]` attributes (`#[cacheable(key)]` on a field for the first,
//! `key_type = ...` for the second; see the traits for every attribute, and for how to write
//! the impls by hand; see also [Hand-written impls](#hand-written-impls) below). A
//! [`KeyedCache`] of a plain serde type gets them at construction instead:
//! [`KeyedCache::new`] checks the prefix by the derive's rules, and derives the schema from
//! the value type's name (or takes one, [`KeyedCache::with_schema`]).
//!
//! A value is stored under `"{PREFIX}:{encoded key}"`. A prefix may not contain `:`, so the
//! first `:` ends it, and types with different prefixes never share a key. The encoding
//! ([`crate::key`]) maps every key to a valid memcached key, deterministically and without
//! collisions: integers in decimal, strings with the bytes memcached forbids (whitespace,
//! control bytes, non-ASCII) and `%` and `:` percent-escaped, composite keys (tuples) joined
//! by `:`. A key that would be longer than 250 bytes (minus the client's
//! [`key_prefix`](ClientBuilder::key_prefix)) becomes `"{PREFIX}:%H"` and the base64url
//! SHA-256 of the whole key. So a user name with spaces, a path with newlines or a
//! 1,000-byte string are all fine as keys.
//! [`Cache::memcached_key`] and [`KeyedCache::memcached_key`] show the key a lookup uses.
//!
//! Lookups take `&Key`, or a borrowed form of it (`&str` for a `String` key), as
//! `HashMap::get` does: `users.get(&"42")` on a `u64` key does not compile, and neither does
//! `friends.set(&"42", &ids)`.
//!
//! # Values and flags
//!
//! Values are encoded by a [`Codec`]: [`MessagePack`] (rmp-serde with named fields) by
//! default, [`Json`](codec) with the `json` feature, or [`Pymemcache`] to share `str`,
//! `bytes` and `int` values with Python services. The 32-bit memcached flags record which
//! codec wrote a value and, for MessagePack and JSON, the low 24 bits of the type's
//! [`SCHEMA`](Cacheable::SCHEMA): `flags = schema << 8 | codec id`, with the codec ids
//! `0x40` (MessagePack) and `0x80` (JSON) chosen so that Python clients read our values as
//! plain bytes. The [codec module](codec#flags-layout) documents the layout in full.
//!
//! When reading, a value whose flags are not exactly what this cache's codec writes for this
//! type (another codec, another version of the struct, a raw value someone else wrote) is a
//! **miss**: it is counted ([`Cache::stats`], [`Cache::mismatches`]), logged at debug level
//! with its key through `tracing`, and never decoded. Bytes that do not decode although the
//! flags match are an [`Error::Decode`], never a panic and never garbage.
//!
//! # Sharing values with Python services
//!
//! A `KeyedCache<K, V, Pymemcache>` reads and writes exactly what pymemcache's
//! `python_memcache_serializer` (and `CompressedSerde`) store, with no wrapper type:
//! `String` for `str` (flags 16), `i64`/`u64` (or any integer) for `int` (flags 2),
//! `Vec<u8>` for `bytes` (flags 0), and the zlib-compressed forms of each (flags + 8, read
//! always, written with [`Pymemcache::compressed`]). The keys must agree too: a
//! `KeyedCache` with prefix `greeting` stores key `"en"` under `greeting:en`, which a Python
//! client reads with `client.get("greeting:en")`, or with `key_prefix=b"greeting:"` and
//! `client.get("en")`. Keys that the [encoding](crate::key) escapes (spaces, `%`, `:`,
//! non-ASCII) are escaped on the wire, so keep shared keys to plain ASCII. The schema plays
//! no part: Python stores none.
//!
//! # Cache methods
//!
//! | method | does | returns |
//! |---|---|---|
//! | [`get`](Cache::get) | read one | `Option<T>` |
//! | [`get_many`](Cache::get_many) | read many in one round trip | `HashMap<Key, T>` of the hits |
//! | [`gets`](Cache::gets) | read one with its CAS token | `Option<(T, CasToken)>` |
//! | [`set`](Cache::set), [`add`](Cache::add), [`replace`](Cache::replace) | store one | `bool`: stored |
//! | [`set_many`](Cache::set_many) | store many in one round trip | the keys not stored |
//! | [`cas`](Cache::cas) | store if unchanged since `gets` | [`CasOutcome`] |
//! | [`update`](Cache::update) | `gets`, apply `f`, `cas`, retry on conflict (16 attempts) | `Option<T>`: the new value |
//! | [`delete`](Cache::delete), [`delete_many`](Cache::delete_many) | delete | `bool` / `()` |
//! | [`touch`](Cache::touch) | reset the TTL | `bool`: the key existed |
//! | [`get_or_load`](Cache::get_or_load) | read-through, single-flight | `T` |
//! | [`get_many_or_load`](Cache::get_many_or_load) | batch read-through | `HashMap<Key, T>` |
//!
//! A [`KeyedCache`] has every one of them, with the same outcomes; the writes take the key
//! beside the value: `set(&key, &value)` (and `add`, `replace`), `cas(&key, &value, token)`,
//! `set_many` of (key, value) pairs (a `&HashMap<K, V>`, a `Vec<(K, V)>`), and the loader of
//! `get_many_or_load` returns (key, value) pairs.
//!
//! Writes are builders, as in the core client: set per-call options, then `.await`:
//! `users.set(&u).ttl(60).noreply(false).await?`. `.ttl(seconds)` overrides the type's
//! [`TTL`](Cacheable::TTL) (the default of every write; `None` means no expiry), and
//! `.noreply(bool)` overrides the client's noreply default.
//!
//! Outcomes are values, failures are errors: a miss is `Ok(None)`, `NOT_STORED` is
//! `Ok(false)`. [`Error`] has predicates ([`is_timeout`](Error::is_timeout),
//! [`is_connection_error`](Error::is_connection_error), [`is_decode`](Error::is_decode), ...)
//! that look through to the client's error.
//!
//! # Read-through and single-flight
//!
//! [`Cache::get_or_load`] reads a key and, on a miss, runs the async loader you pass, stores
//! its value with the type's TTL and returns it:
//!
//! - **One load per key per process.** Concurrent calls for the same key, through one
//!   `Cache` and its clones, share one read and at most one loader run: the first call leads,
//!   the others wait for its outcome and get a clone of it (so `T: Clone`). Calls for
//!   different keys do not wait for each other. [`CacheStats::coalesced`] counts the calls
//!   that were answered this way.
//! - **One load per key across processes**, on servers with the meta protocol. The leading
//!   call reads with a [lease](memcache_core::Client::lease) ([`LEASE_TTL`] seconds): of all
//!   the processes that miss the key at once, the one whose lease wins loads and stores; the
//!   others serve the old value if the entry was invalidated (`md <key> I`), or ask again
//!   (every 2 to 50 ms) until the value appears, for at most the client's timeout, and then
//!   load it themselves. A winner that stores nothing (its loader fails, its value does not
//!   encode, the store fails, or the call is dropped) releases the lease. While the lease is
//!   held, memcached keeps an empty placeholder with flags 0 under the key, which every read
//!   takes for a miss, never for a value, even with a codec that writes flags 0 itself
//!   ([`Pymemcache`], for `bytes`): `get`, `gets` and `update` see the placeholder's lease
//!   flags in the meta reply; [`get_many`](Cache::get_many), whose classic reply does not
//!   carry them, reads such empty flags-0 values again one by one. Only over the classic
//!   protocol does an empty flags-0 value look the same as a placeholder.
//!   Without the meta protocol (old servers, twemproxy) processes cannot coordinate and each
//!   loads on a miss.
//! - **Cancellation.** If the leading call is dropped before it finishes, a waiting call
//!   takes over with its own loader: nobody waits for a task that is gone. (A loader that
//!   never finishes, on the other hand, is waited for: put a timeout in the loader.)
//! - **Loader errors** reach every waiting call as [`LoadError::Loader`], the error shared in
//!   an `Arc` (so it need not be `Clone`). Nothing is cached; the next call loads again.
//! - **Cache errors.** A failed read fails the call ([`LoadError::Cache`]) without running
//!   the loader; with [`ignore_exc`](ClientBuilder::ignore_exc) it is a miss instead, so the
//!   loader's value is served even while memcached is down. A failed store of the loaded
//!   value is logged (warn) and does not fail the call.
//!
//! [`Cache::get_many_or_load`] reads many keys in one round trip, calls the loader once with
//! exactly the keys that missed, stores what it returns with one `set_many`, and returns hits
//! and loaded values together. Batch loads are not shared between concurrent calls.
//!
//! # Stampede-free writes and hot keys
//!
//! After a write to what a cached value was loaded from, [`Cache::invalidate`] (and
//! [`KeyedCache::invalidate`]) marks the entry stale instead of deleting it (memcached's
//! meta `md <key> I`): the next [`get_or_load`](Cache::get_or_load) caller, of every
//! process, reloads it, once, while every other reader keeps getting the old value until
//! the new one is stored: no miss storm after a write. Over the classic protocol it is a
//! `delete`.
//!
//! [`Cache::refresh_ahead`] (and [`KeyedCache::refresh_ahead`]) makes a hot key never
//! expire under its readers: in the last `window` seconds of a value's life, one
//! `get_or_load` caller (meta `mg ... R<window>`) reloads and stores it while everyone else
//! keeps hitting.
//!
//! ```no_run
//! # use memcache_typed::{Cache, Cacheable, Client};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Serialize, Deserialize, Cacheable)]
//! # #[cacheable(prefix = "article", ttl = 300)]
//! # struct Article { #[cacheable(key)] id: u64, body: String }
//! # async fn load_article(id: u64) -> Result<Article, std::io::Error> {
//! #     Ok(Article { id, body: String::new() })
//! # }
//! # async fn save_article(_: &Article) -> Result<(), std::io::Error> { Ok(()) }
//! # async fn demo(client: Client, edited: Article) -> Result<(), Box<dyn std::error::Error>> {
//! let articles: Cache<Article> = Cache::new(client).refresh_ahead(30);
//! let article = articles.get_or_load(&7, |id| load_article(*id)).await?;
//!
//! save_article(&edited).await?;      // the database first,
//! articles.invalidate(&edited.id).await?; // then one reader reloads, the others read the old
//! # let _ = article;
//! # Ok(()) }
//! ```
//!
//! # Tracing and metrics
//!
//! `get_or_load` and `get_many_or_load` run in a `debug` span named `memcache_typed`
//! (target `memcache_typed`) with the fields `op` (`get_or_load`, `get_many_or_load`),
//! `prefix` and `keys` (how many); the commands they send run in memcache-core's command
//! spans inside it ([memcache-core's Tracing](memcache_core#tracing)). Events: a value
//! whose flags do not match (debug), a failed store of a loaded value (warn), refresh-ahead
//! reloads (debug).
//!
//! With the cargo feature `metrics` (which turns on memcache-core's per-server metrics
//! too), each cache counts through the [`metrics`](https://docs.rs/metrics) facade,
//! labelled `prefix` (the type's prefix: `Cache<User>` -> `user`). Install the recorder
//! before creating the caches (and the client): their handles are registered then.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `memcache_typed_hits_total` | counter | `prefix` | values read and decoded ([`CacheStats::hits`]) |
//! | `memcache_typed_misses_total` | counter | `prefix` | keys read and not found, mismatches included ([`CacheStats::misses`]) |
//! | `memcache_typed_schema_mismatches_total` | counter | `prefix` | values of another codec or schema, read as misses ([`CacheStats::mismatches`]) |
//! | `memcache_typed_loads_total` | counter | `prefix` | loader runs of the read-through methods ([`CacheStats::loads`]) |
//! | `memcache_typed_load_errors_total` | counter | `prefix` | loader runs that failed ([`CacheStats::load_errors`]) |
//! | `memcache_typed_coalesced_total` | counter | `prefix`, `via` | `get_or_load` calls that did not load: `via="single_flight"`, answered by another call of this process ([`CacheStats::coalesced`]); `via="lease"`, served while another process held the lease ([`CacheStats::leased`]) |
//! | `memcache_typed_load_duration_seconds` | histogram | `prefix` | how long each loader run took |
//!
//! # The client's settings: timeouts, noreply, ignore_exc
//!
//! A `Cache` goes through its [`Client`] for every command, so the client's settings hold:
//!
//! - **Timeouts.** Every command is bounded by the client's
//!   [`timeout`](ClientBuilder::timeout) (connecting by
//!   [`connect_timeout`](ClientBuilder::connect_timeout)); a command that takes longer
//!   fails with an error whose [`is_timeout`](Error::is_timeout) is true.
//! - **noreply.** `set`, `add`, `replace`, `set_many`, `delete`, `delete_many` and `touch`
//!   follow the client's [`default_noreply`](ClientBuilder::default_noreply), on by default
//!   as in pymemcache: such a write resolves once it is handed to the connection, returns
//!   `true`, and reports no failure. `cas`, and the `cas` inside `update`, wait for the reply.
//!   Reads that follow a noreply write on the same client see it (one connection answers in
//!   order).
//! - **ignore_exc.** With [`ignore_exc`](ClientBuilder::ignore_exc), a read against a dead
//!   or stuck server is a miss: `get` returns `Ok(None)`, `get_many` an empty map, `update`
//!   `Ok(None)`, and `get_or_load` the loader's value. Writes still report errors, and decode
//!   errors are still errors.
//!
//! # Hand-written impls
//!
//! The derive is a convenience; an impl by hand is five lines, and is the way to go for
//! generic types, for keys computed in another way, or for a schema number you manage
//! yourself:
//!
//! ```
//! use memcache_typed::Cacheable;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Session {
//!     token: String,
//!     user_id: u64,
//! }
//!
//! impl Cacheable for Session {
//!     type Key = String;                      // looked up by &String or &str
//!     const PREFIX: &'static str = "session"; // stored under "session:{token}"
//!     const TTL: Option<u32> = Some(1800);
//!     const SCHEMA: u32 = 1;                  // change it when the stored form changes
//!
//!     fn cache_key(&self) -> String {
//!         self.token.clone()
//!     }
//! }
//! # let _ = Session { token: String::new(), user_id: 0 }.user_id;
//! ```
//!
//! A [`CacheValue`] by hand is the same without `cache_key` (see the trait). A key type of
//! your own implements [`CacheKey`] (see [`crate::key`]).

mod cache;
mod cache_value;
mod cacheable;
pub mod codec;
mod commands;
mod engine;
mod error;
pub mod key;
mod keyed_cache;
mod prefix;
mod read_through;
mod single_flight;
mod stats;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cache::Cache;
pub use cache_value::CacheValue;
pub use cacheable::Cacheable;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, Decoded, Encoded, MessagePack, Pymemcache};
pub use commands::{
    CacheFuture, Cas, Delete, DeleteMany, Invalidate, SetMany, Store, Touch, Update,
    DEFAULT_UPDATE_ATTEMPTS,
};
pub use error::{DecodeError, EncodeError, Error, LoadError};
pub use key::{encode_key, full_key, CacheKey, KeyWriter};
pub use keyed_cache::KeyedCache;
/// The memcached client this crate is built on, re-exported whole so that a service
/// depends on one crate: `memcache_typed::memcache_core::Error`,
/// `memcache_typed::memcache_core::command`, ...
///
/// It keeps its own name on purpose: re-exported as `core`, a `use memcache_typed::*` would
/// shadow the standard `core` crate in the importing module.
pub use memcache_core;
pub use memcache_core::{CasOutcome, CasToken, Client, ClientBuilder, Lease, Protocol, Value};
/// Derives [`Cacheable`]; see the trait's documentation for the attributes.
pub use memcache_derive::Cacheable;
pub use read_through::LEASE_TTL;
pub use stats::CacheStats;

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
