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

use std::fmt;

/// An error of the typed layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value could not be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),

    /// A value was read but could not be decoded although its flags say that
    /// this codec and this schema wrote it.
    #[error(transparent)]
    Decode(#[from] DecodeError),

    /// The key prefix is empty or contains a byte memcached does not accept in
    /// a key (ASCII whitespace, control bytes, DEL or non-ASCII).
    ///
    /// `#[derive(Cacheable)]` rejects such prefixes at compile time; this can
    /// only come from a hand-written [`Cacheable`](crate::Cacheable) impl.
    #[error("invalid key prefix {prefix:?}: it must be non-empty printable ASCII without spaces")]
    InvalidPrefix {
        /// The offending prefix.
        prefix: String,
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
    // Errors of the core client (`memcache_core::Error`) get their variant here
    // once memcache-typed depends on memcache-core.
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
