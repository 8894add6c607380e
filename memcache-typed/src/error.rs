//! The error types of the typed layer.
//!
//! [`Error`] is what the typed API returns. Encoding and decoding failures are
//! described in more detail by [`EncodeError`] and [`DecodeError`], which is also
//! what a [`Codec`](crate::Codec) returns, so a hand-written codec can build them
//! with [`EncodeError::custom`] and [`DecodeError::custom`].
//!
//! None of these types exposes a third-party error: the messages of the
//! underlying libraries (rmp-serde, serde_json, zlib) are kept as text.
//!
//! A value whose flags say that another codec or another schema wrote it is
//! *not* an error: codecs report it as [`Decoded::Mismatch`](crate::Decoded::Mismatch),
//! and the cache treats it as a miss.
//!
//! [`LoadError`] is what the read-through methods ([`Cache::get_or_load`](crate::Cache::get_or_load),
//! [`Cache::get_many_or_load`](crate::Cache::get_many_or_load)) return: either an [`Error`]
//! of the cache or the loader's own error.

use std::fmt;
use std::sync::Arc;

/// An error of the typed layer.
///
/// Prefer the predicates ([`is_timeout`](Error::is_timeout),
/// [`is_connection_error`](Error::is_connection_error), [`is_decode`](Error::is_decode), ...)
/// to matching on variants: new variants may be added. `Error` is `Clone`, so that one
/// failure can be handed to every task waiting on a shared load.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The memcached client failed: connection, timeout, server or illegal-input errors
    /// (see [`memcache_core::Error`]). The predicates below look through it.
    #[error(transparent)]
    Client(#[from] memcache_core::Error),

    /// [`Cache::update`](crate::Cache::update) lost the compare-and-swap race `attempts`
    /// times in a row (other writers kept changing the value) and gave up.
    #[error("update of {key:?} gave up after {attempts} conflicting attempts")]
    UpdateConflict {
        /// The memcached key (as sent, without the client's key prefix).
        key: String,
        /// How many `gets` + `cas` rounds were tried.
        attempts: u32,
    },

    /// A value could not be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),

    /// A value was read but could not be decoded although its flags say that
    /// this codec and this schema wrote it.
    #[error(transparent)]
    Decode(#[from] DecodeError),

    /// The key prefix breaks the rules of [`check_prefix`](crate::key::check_prefix): it is
    /// empty, contains a byte memcached does not accept in a key (ASCII whitespace, control
    /// bytes, DEL or non-ASCII), contains `:`, which separates the prefix from the key (with
    /// it, two types' keys could meet: prefix `user:1` with key `2`, prefix `user` with key
    /// `(1, 2)`), or is longer than [`MAX_PREFIX_LEN`](crate::key::MAX_PREFIX_LEN) bytes. The
    /// message says which.
    ///
    /// `#[derive(Cacheable)]` rejects such prefixes at compile time, and
    /// [`KeyedCache::new`](crate::KeyedCache::new) when it is called. A hand-written
    /// [`Cacheable`](crate::Cacheable) or [`CacheValue`](crate::CacheValue) impl with such a
    /// prefix compiles, and then every command of its cache fails with this error, before
    /// anything is sent.
    #[error(
        "invalid key prefix {prefix:?}: a prefix {}",
        crate::prefix::prefix_problem(.prefix).unwrap_or("must follow the prefix rules")
    )]
    InvalidPrefix {
        /// The offending prefix.
        prefix: String,
    },

    /// A default TTL for a [`KeyedCache`](crate::KeyedCache)
    /// ([`with_ttl`](crate::KeyedCache::with_ttl)) outside 1 to 2592000 seconds (30 days):
    /// memcached reads larger values as a unix timestamp, and 0 would silently mean "never
    /// expires" (which is the default without `with_ttl`). The same rule as the derive's
    /// `ttl`. Per-call `.ttl(seconds)` takes any value.
    #[error(
        "invalid default ttl {seconds}: it must be from 1 to 2592000 seconds (30 days); \
         leave it unset for entries that do not expire"
    )]
    InvalidTtl {
        /// The refused number of seconds.
        seconds: u32,
    },

    /// The key cannot fit in the key length budget even in its hashed form
    /// (`"{prefix}:%H" + 43 characters`), because the prefix is too long for the
    /// budget left by the client's own key prefix. See [`full_key`](crate::full_key).
    #[error(
        "key prefix of {prefix_len} bytes leaves no room for a hashed key \
         in a budget of {budget} bytes (needs {prefix_len} + 46)"
    )]
    KeyTooLong {
        /// Length of the prefix in bytes.
        prefix_len: usize,
        /// The key length budget that was given.
        budget: usize,
    },
}

impl Error {
    /// Whether this error comes from encoding a value (nothing was sent).
    pub fn is_encode(&self) -> bool {
        matches!(self, Error::Encode(_))
    }

    /// Whether this error comes from decoding a value that was read.
    pub fn is_decode(&self) -> bool {
        matches!(self, Error::Decode(_))
    }

    /// Whether this error comes from building the key (nothing was sent).
    pub fn is_key(&self) -> bool {
        matches!(self, Error::InvalidPrefix { .. } | Error::KeyTooLong { .. })
    }

    /// The memcached client's error, if this is one.
    pub fn client_error(&self) -> Option<&memcache_core::Error> {
        match self {
            Error::Client(error) => Some(error),
            _ => None,
        }
    }

    /// Whether a command timed out (connecting or waiting for the reply): see
    /// [`memcache_core::Error::is_timeout`].
    pub fn is_timeout(&self) -> bool {
        self.client_error()
            .is_some_and(memcache_core::Error::is_timeout)
    }

    /// Whether the connection failed or was closed: see
    /// [`memcache_core::Error::is_connection_error`].
    pub fn is_connection_error(&self) -> bool {
        self.client_error()
            .is_some_and(memcache_core::Error::is_connection_error)
    }

    /// Whether the server answered with an error (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`):
    /// see [`memcache_core::Error::is_server_error`].
    pub fn is_server_error(&self) -> bool {
        self.client_error()
            .is_some_and(memcache_core::Error::is_server_error)
    }

    /// Whether the request was refused before anything was sent: an illegal key or
    /// argument reported by the client, a key this crate could not build
    /// ([`is_key`](Error::is_key)), a value it could not encode
    /// ([`is_encode`](Error::is_encode)), or a refused default TTL
    /// ([`Error::InvalidTtl`]).
    pub fn is_illegal_input(&self) -> bool {
        self.is_key()
            || self.is_encode()
            || matches!(self, Error::InvalidTtl { .. })
            || self
                .client_error()
                .is_some_and(memcache_core::Error::is_illegal_input)
    }

    /// Whether [`Cache::update`](crate::Cache::update) gave up after too many conflicts.
    pub fn is_update_conflict(&self) -> bool {
        matches!(self, Error::UpdateConflict { .. })
    }
}

/// The error of a read-through call ([`Cache::get_or_load`](crate::Cache::get_or_load),
/// [`Cache::get_many_or_load`](crate::Cache::get_many_or_load)): the cache failed, or the
/// loader did.
///
/// The loader's error is shared in an [`Arc`]: when several tasks wait for one load
/// (single-flight), every one of them receives the same error, so `E` need not be `Clone`.
/// [`LoadError::loader_error`] borrows it; [`Arc::try_unwrap`] takes it back when you are the
/// only holder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// Reading the cache failed (without [`ignore_exc`](memcache_core::ClientBuilder::ignore_exc)),
    /// or a value under the right flags could not be decoded. The loader did not run.
    #[error(transparent)]
    Cache(Error),

    /// The loader returned an error. Nothing was stored.
    #[error("the loader failed: {0}")]
    Loader(Arc<E>),
}

impl<E> LoadError<E> {
    /// The loader's error, if the loader failed.
    pub fn loader_error(&self) -> Option<&E> {
        match self {
            LoadError::Loader(error) => Some(error),
            LoadError::Cache(_) => None,
        }
    }

    /// The cache's error, if the cache failed.
    pub fn cache_error(&self) -> Option<&Error> {
        match self {
            LoadError::Cache(error) => Some(error),
            LoadError::Loader(_) => None,
        }
    }

    /// Whether the loader failed (rather than the cache).
    pub fn is_loader(&self) -> bool {
        matches!(self, LoadError::Loader(_))
    }
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        match self {
            LoadError::Cache(error) => LoadError::Cache(error.clone()),
            LoadError::Loader(error) => LoadError::Loader(Arc::clone(error)),
        }
    }
}

impl<E> From<Error> for LoadError<E> {
    fn from(error: Error) -> Self {
        LoadError::Cache(error)
    }
}

/// Why a value could not be encoded by a [`Codec`](crate::Codec).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The serializer failed: a `Serialize` impl returned an error, or the
    /// format cannot represent the value (for example a JSON map whose keys
    /// are not strings).
    #[error("{codec}: cannot serialize the value: {message}")]
    Serialize {
        /// Name of the codec ([`Codec::NAME`](crate::Codec::NAME)).
        codec: &'static str,
        /// The serializer's message.
        message: String,
    },

    /// The value has a shape this codec does not write at all (for example a
    /// struct given to [`Pymemcache`](crate::Pymemcache), which only writes
    /// strings, bytes and integers).
    #[error("{codec}: unsupported value: {message}")]
    Unsupported {
        /// Name of the codec.
        codec: &'static str,
        /// What was unsupported.
        message: String,
    },

    /// Compressing the encoded value failed.
    #[error("{codec}: compression failed: {message}")]
    Compress {
        /// Name of the codec.
        codec: &'static str,
        /// The compressor's message.
        message: String,
    },
}

impl EncodeError {
    /// An [`EncodeError::Serialize`] with the given codec name and message,
    /// for hand-written codecs.
    pub fn custom(codec: &'static str, message: impl fmt::Display) -> Self {
        EncodeError::Serialize {
            codec,
            message: message.to_string(),
        }
    }

    /// Name of the codec that failed.
    pub fn codec(&self) -> &'static str {
        match self {
            EncodeError::Serialize { codec, .. }
            | EncodeError::Unsupported { codec, .. }
            | EncodeError::Compress { codec, .. } => codec,
        }
    }
}

/// Why a value whose flags match a [`Codec`](crate::Codec) could not be decoded.
///
/// These are never produced for a value written by another codec or with
/// another schema: that is [`Decoded::Mismatch`](crate::Decoded::Mismatch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a valid encoding of the requested type: corrupt or
    /// truncated data, trailing bytes, or data of another shape (for example a
    /// missing field, or a Python `str` read as an integer).
    #[error("{codec}: cannot deserialize the value: {message}")]
    Deserialize {
        /// Name of the codec ([`Codec::NAME`](crate::Codec::NAME)).
        codec: &'static str,
        /// The deserializer's message.
        message: String,
    },

    /// The value is flagged as compressed but is not valid zlib data.
    #[error("{codec}: cannot decompress the value: {message}")]
    Decompress {
        /// Name of the codec.
        codec: &'static str,
        /// The decompressor's message.
        message: String,
    },

    /// The value decompresses to more than the configured maximum, so it was
    /// not decompressed (protection against compression bombs).
    #[error("{codec}: the value decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// Name of the codec.
        codec: &'static str,
        /// The configured maximum, in bytes.
        limit: usize,
    },

    /// The value is a pickled Python object (pymemcache flag 1). Pickle is not
    /// supported: reading it would mean executing Python's object model.
    /// Store such values as `str`, `bytes` or `int` on the Python side, or as
    /// JSON text.
    #[error("{codec}: unsupported: pickle (flags {flags:#x}); only bytes, str and int values can be read")]
    UnsupportedPickle {
        /// Name of the codec.
        codec: &'static str,
        /// The value's flags.
        flags: u32,
    },
}

impl DecodeError {
    /// A [`DecodeError::Deserialize`] with the given codec name and message,
    /// for hand-written codecs.
    pub fn custom(codec: &'static str, message: impl fmt::Display) -> Self {
        DecodeError::Deserialize {
            codec,
            message: message.to_string(),
        }
    }

    /// Name of the codec that failed.
    pub fn codec(&self) -> &'static str {
        match self {
            DecodeError::Deserialize { codec, .. }
            | DecodeError::Decompress { codec, .. }
            | DecodeError::DecompressedTooLarge { codec, .. }
            | DecodeError::UnsupportedPickle { codec, .. } => codec,
        }
    }
}
