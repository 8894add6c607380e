//! Codecs: how a value becomes the bytes and flags stored in memcached, and back.
//!
//! A [`Codec`] turns a `Serialize` value into [`Encoded`] bytes plus the 32-bit
//! memcached flags, and turns bytes plus flags back into a value, or into
//! [`Decoded::Mismatch`] when the flags say the bytes were written by another
//! codec or for another schema. A mismatch is an ordinary outcome (the cache
//! counts it as a miss), never garbage and never a panic.
//!
//! | codec            | format                                   | flags                                  |
//! |------------------|------------------------------------------|----------------------------------------|
//! | [`MessagePack`]  | MessagePack, structs as maps (named fields) | layout below, codec id `0x40`       |
//! | `Json` (`json` feature) | JSON                            | layout below, codec id `0x80`          |
//! | [`Pymemcache`]   | pymemcache's `python_memcache_serializer` (+ zlib) | pymemcache's own flags       |
//!
//! # Flags layout
//!
//! [`MessagePack`] and `Json` write these flags, and read a value only if its
//! flags are exactly the ones they would write for the expected schema:
//!
//! | bits  | meaning                                                                  |
//! |-------|--------------------------------------------------------------------------|
//! | 0-7   | codec id: `0x40` MessagePack, `0x80` JSON (`0xC0` reserved)              |
//! | 8-31  | the low 24 bits of the type's schema fingerprint (`Cacheable::SCHEMA`)   |
//!
//! In numbers: `flags = (schema & 0xFF_FFFF) << 8 | codec_id`, see [`layout_flags`].
//!
//! The codec ids keep bits 0-5 clear on purpose. Python clients give those bits a
//! meaning: pymemcache and python-memcached use 1 pickle, 2 int, 4 long, 8 zlib,
//! 16 text; pylibmc uses 16 for bool. Bit 5 is kept clear too, as a margin for
//! other clients' type bits. With bits 0-5 clear, a Python
//! service that reads one of our values sees an untyped byte string and returns
//! it as `bytes`: it never tries to unpickle, `int()` or decompress it. (An id
//! like `0x4D`, "M", would have the pickle, long and zlib bits set, and
//! pymemcache would raise on every read.) Conversely a value written by Python
//! has zero in bits 6-31 or a codec id our codecs do not use, so it is a
//! mismatch for [`MessagePack`] and `Json`.
//!
//! Only 24 bits of the fingerprint are stored, so two schemas collide with
//! probability 2⁻²⁴; a collision means an old entry is decoded with the new
//! type, which then fails as a [`DecodeError`] (or succeeds when the data fits),
//! never as a panic.
//!
//! [`Pymemcache`] uses pymemcache's flags instead (0 bytes, 2 int, 16 str, 8 zlib,
//! 1 pickle) and ignores the schema: it exists to share values with Python
//! services.
//!
//! # Writing a codec
//!
//! Implement [`Codec`]; use [`layout_flags`] with an id that has bits 0-5 clear
//! (`0xC0` is free) if the codec should follow the layout above, and build errors
//! with [`EncodeError::custom`] and [`DecodeError::custom`].

#[cfg(feature = "json")]
mod json;
mod msgpack;
mod pymemcache;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DecodeError, EncodeError};

#[cfg(feature = "json")]
pub use self::json::Json;
pub use self::msgpack::MessagePack;
pub use self::pymemcache::Pymemcache;

/// Codec id of [`MessagePack`] in bits 0-7 of the flags.
pub const MESSAGEPACK_CODEC_ID: u8 = 0x40;

/// Codec id of `Json` (feature `json`) in bits 0-7 of the flags.
pub const JSON_CODEC_ID: u8 = 0x80;

/// The flags of the [layout](self#flags-layout): `codec_id` in bits 0-7 and the
/// low 24 bits of `schema` in bits 8-31.
///
/// ```
/// use memcache_typed::codec::{layout_flags, MESSAGEPACK_CODEC_ID};
///
/// assert_eq!(layout_flags(MESSAGEPACK_CODEC_ID, 0xDEAD_BEEF), 0xAD_BEEF_40);
/// ```
pub const fn layout_flags(codec_id: u8, schema: u32) -> u32 {
    (schema & 0x00FF_FFFF) << 8 | codec_id as u32
}

/// The [`Encoded`] form of bytes serialized by a codec that follows the
/// [layout](self#flags-layout), or that codec's serialize error.
fn layout_encoded<E: std::fmt::Display>(
    codec: &'static str,
    codec_id: u8,
    schema: u32,
    serialized: Result<Vec<u8>, E>,
) -> Result<Encoded, EncodeError> {
    let data = serialized.map_err(|e| EncodeError::Serialize {
        codec,
        message: e.to_string(),
    })?;
    Ok(Encoded {
        data: Bytes::from(data),
        flags: layout_flags(codec_id, schema),
    })
}

/// [`Decoded::Mismatch`] when `flags` are not the [layout](self#flags-layout)'s for
/// `codec_id` and `schema`; `None` when they are.
fn layout_mismatch<T>(codec_id: u8, schema: u32, flags: u32) -> Option<Decoded<T>> {
    let expected = layout_flags(codec_id, schema);
    (flags != expected).then_some(Decoded::Mismatch {
        expected_flags: Some(expected),
        found_flags: flags,
    })
}

/// A value encoded by a [`Codec`]: the bytes to store and their flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The bytes to store.
    pub data: Bytes,
    /// The memcached flags to store with them.
    pub flags: u32,
}

/// The outcome of [`Codec::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// The value was written by this codec with the expected schema, and
    /// decoded.
    Value(T),
    /// The flags say the value was written by another codec or for another
    /// schema. The bytes were not looked at; the cache treats this as a miss.
    Mismatch {
        /// The flags this codec writes for the expected schema, or `None` when
        /// the codec accepts several flag values ([`Pymemcache`]).
        expected_flags: Option<u32>,
        /// The flags the value was stored with.
        found_flags: u32,
    },
}

impl<T> Decoded<T> {
    /// The decoded value, or `None` on a mismatch.
    pub fn value(self) -> Option<T> {
        match self {
            Decoded::Value(value) => Some(value),
            Decoded::Mismatch { .. } => None,
        }
    }

    /// Whether this is a [`Decoded::Mismatch`].
    pub fn is_mismatch(&self) -> bool {
        matches!(self, Decoded::Mismatch { .. })
    }
}

/// Turns values into bytes and flags, and back.
///
/// A codec is a plain value (usually a unit struct or a small configuration),
/// shared by every task that uses a cache, so it must be `Send + Sync + 'static`.
/// See the [module docs](self) for the flags each codec writes.
pub trait Codec: Send + Sync + 'static {
    /// A short name for errors and logs, such as `"MessagePack"`.
    const NAME: &'static str;

    /// Encodes `value`, written by a type whose schema fingerprint is `schema`.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] if the value cannot be represented by this codec or its
    /// `Serialize` impl fails.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, schema: u32)
        -> Result<Encoded, EncodeError>;

    /// Decodes `data` stored with `flags`, expecting a value of a type whose
    /// schema fingerprint is `schema`.
    ///
    /// Returns [`Decoded::Mismatch`] without looking at `data` when `flags` are
    /// not ones this codec writes for `schema`. Never panics, whatever `data` and
    /// `flags` are.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] if the flags match but the bytes are not a valid
    /// encoding of a `T` (corrupt or truncated data, a different shape).
    fn decode<T: DeserializeOwned>(
        &self,
        data: &[u8],
        flags: u32,
        schema: u32,
    ) -> Result<Decoded<T>, DecodeError>;
}
