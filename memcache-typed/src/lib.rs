//! memcache-typed (being written)

mod cacheable;
pub use cacheable::Cacheable;
pub mod codec;
mod error;
pub mod key;
pub use codec::{Codec, Decoded, Encoded, MessagePack, Pymemcache};
#[cfg(feature = "json")]
pub use codec::Json;
pub use error::{DecodeError, EncodeError, Error};
pub use key::{encode_key, full_key, CacheKey, KeyWriter};
/// Derives [`Cacheable`]; see the trait's documentation for the attributes.
pub use memcache_derive::Cacheable;
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
