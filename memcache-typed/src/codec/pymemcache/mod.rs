//! The pymemcache-compatible codec.

mod de;
mod ser;

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Codec, Decoded, Encoded};
use crate::error::{DecodeError, EncodeError};

/// pymemcache `FLAG_PICKLE`.
const FLAG_PICKLE: u32 = 1 << 0;
/// pymemcache `FLAG_INTEGER`.
const FLAG_INTEGER: u32 = 1 << 1;
/// pymemcache `FLAG_LONG` (Python 2 `long`; read like `FLAG_INTEGER`, never written).
const FLAG_LONG: u32 = 1 << 2;
/// pymemcache `FLAG_COMPRESSED` (zlib).
const FLAG_COMPRESSED: u32 = 1 << 3;
/// pymemcache `FLAG_TEXT` (UTF-8 `str`).
const FLAG_TEXT: u32 = 1 << 4;
/// Every flag bit pymemcache writes.
const PYMEMCACHE_BITS: u32 = FLAG_PICKLE | FLAG_INTEGER | FLAG_LONG | FLAG_COMPRESSED | FLAG_TEXT;

/// Values shared with Python services that use pymemcache's serializers.
///
/// Reads and writes what pymemcache's `python_memcache_serializer` (the
/// `PickleSerde`) writes for `bytes`, `str` and `int`, and what its
/// `CompressedSerde` writes on top of that (zlib):
///
/// | Python value         | flags        | bytes                  | Rust types                                              |
/// |----------------------|--------------|------------------------|---------------------------------------------------------|
/// | `bytes`              | 0            | the bytes              | `Vec<u8>`, `[u8; N]`, `serde_bytes` types               |
/// | `str`                | 16           | UTF-8                  | `String`, `&str` (write), `char`, unit enum variants    |
/// | `int`                | 2            | decimal ASCII (`"%d"`) | `u8`..`u128`, `i8`..`i128`                              |
/// | `int` (Python 2)     | 4            | decimal ASCII          | read only, like 2                                       |
/// | any of the above     | flags + 8    | zlib of the bytes      | as above, see [Compression](#compression)               |
/// | anything else        | 1 (+ 8)      | a pickle               | not supported: [`DecodeError::UnsupportedPickle`]       |
///
/// Newtype structs and `Option::Some` are transparent; other shapes (structs,
/// maps, floats, `bool`, `None`) are what pymemcache would pickle, and encoding
/// them is an [`EncodeError::Unsupported`].
///
/// An empty `bytes` (flags 0, no data) looks exactly like the placeholder memcached keeps
/// while another client holds a [lease](crate::Cache::get_or_load) on the key; a
/// [`Cache`](crate::Cache) reads the placeholder as a miss, not as an empty value (see
/// [`Cache::get_many`](crate::Cache::get_many) for how).
///
/// When reading, flags are interpreted in pymemcache's order: 0 is bytes, then
/// the text bit wins over the int bits, which win over the pickle bit. Flags with
/// any bit above the five pymemcache uses (`flags & !0x1F != 0`, for example a
/// [`MessagePack`](crate::MessagePack) value) are a [`Decoded::Mismatch`]. The
/// schema fingerprint is ignored: Python does not store one.
///
/// Reading is a little more lenient than the types above, in the direction
/// Python services actually write: flags 0 (what pymemcache writes when no
/// serializer is configured, for `str` and `int` values too) can be read as a
/// string if the bytes are UTF-8 and as an integer if they are decimal; text can
/// be read as bytes. Integers may carry ASCII whitespace around them (memcached's
/// `incr`/`decr` pad shortened numbers with spaces) and a leading `+`. Reading a
/// value of another kind (a `str` as an integer, an `int` as a `String`) is a
/// [`DecodeError::Deserialize`].
///
/// # Compression
///
/// Compressed values (flag 8) are always read. Writing is off by default, like
/// `python_memcache_serializer`, because a Python reader without
/// `CompressedSerde` cannot read compressed values; [`Pymemcache::compressed`]
/// matches `CompressedSerde()`'s defaults: a value longer than 400 bytes is
/// zlib-compressed (level 6, `zlib.compress`'s default), and the compressed form
/// is kept unless it is larger than the original. The zlib bytes may differ from
/// CPython's (another deflate implementation), but every zlib reader,
/// Python's included, reads them back to the same value.
///
/// A compressed value that inflates to more than
/// [`max_decompressed_len`](Pymemcache::max_decompressed_len) bytes (default
/// 64 MiB) is refused with [`DecodeError::DecompressedTooLarge`]; bytes after
/// the end of the zlib stream are ignored, as Python's `zlib.decompress` does.
///
/// ```
/// use memcache_typed::{Codec, Decoded, Pymemcache};
///
/// let codec = Pymemcache::new();
/// let encoded = codec.encode("héllo", 0).unwrap();
/// assert_eq!((&encoded.data[..], encoded.flags), ("héllo".as_bytes(), 16));
/// let n: Decoded<i64> = codec.decode(b"-5", 2, 0).unwrap();
/// assert_eq!(n, Decoded::Value(-5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pymemcache {
    min_compress_len: usize,
    compression_level: u32,
    max_decompressed_len: usize,
}

impl Default for Pymemcache {
    fn default() -> Self {
        Pymemcache::new()
    }
}

impl Pymemcache {
    /// pymemcache `CompressedSerde`'s default `min_compress_len`.
    pub const DEFAULT_MIN_COMPRESS_LEN: usize = 400;

    /// Default zlib level: `zlib.compress`'s default (`Z_DEFAULT_COMPRESSION`, 6).
    pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

    /// Default maximum size of a decompressed value: 64 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_LEN: usize = 64 << 20;

    /// Like pymemcache's `python_memcache_serializer`: never compresses on write
    /// (compressed values are still read).
    pub const fn new() -> Self {
        Pymemcache {
            min_compress_len: 0,
            compression_level: Self::DEFAULT_COMPRESSION_LEVEL,
            max_decompressed_len: Self::DEFAULT_MAX_DECOMPRESSED_LEN,
        }
    }

    /// Like pymemcache's `CompressedSerde()` with its defaults: compresses
    /// values longer than [`Self::DEFAULT_MIN_COMPRESS_LEN`] bytes.
    pub const fn compressed() -> Self {
        Pymemcache::new().min_compress_len(Self::DEFAULT_MIN_COMPRESS_LEN)
    }

    /// Compress values longer than `len` bytes (strictly), as `CompressedSerde`'s
    /// `min_compress_len`; 0 turns compression off on write.
    pub const fn min_compress_len(mut self, len: usize) -> Self {
        self.min_compress_len = len;
        self
    }

    /// The zlib level, 0 (store) to 9 (best); larger values are treated as 9.
    /// Default [`Self::DEFAULT_COMPRESSION_LEVEL`].
    pub const fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = if level > 9 { 9 } else { level };
        self
    }

    /// Refuse to decompress values that inflate to more than `len` bytes.
    /// Default [`Self::DEFAULT_MAX_DECOMPRESSED_LEN`].
    pub const fn max_decompressed_len(mut self, len: usize) -> Self {
        self.max_decompressed_len = len;
        self
    }

    fn compress(&self, data: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let mut encoder = ZlibEncoder::new(
            Vec::with_capacity(data.len() / 2),
            Compression::new(self.compression_level),
        );
        encoder
            .write_all(data)
            .and_then(|()| encoder.finish())
            .map_err(|e| EncodeError::Compress {
                codec: Self::NAME,
                message: e.to_string(),
            })
    }

    fn decompress(&self, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let limit = self.max_decompressed_len;
        let mut out = Vec::new();
        ZlibDecoder::new(data)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| DecodeError::Decompress {
                codec: Self::NAME,
                message: e.to_string(),
            })?;
        if out.len() > limit {
            return Err(DecodeError::DecompressedTooLarge {
                codec: Self::NAME,
                limit,
            });
        }
        Ok(out)
    }
}

impl Codec for Pymemcache {
    const NAME: &'static str = "pymemcache";

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _schema: u32,
    ) -> Result<Encoded, EncodeError> {
        let (data, mut flags) = value
            .serialize(ser::PySerializer)
            .map_err(|e| e.into_encode_error(Self::NAME))?;
        let mut data = data;
        if self.min_compress_len > 0 && data.len() > self.min_compress_len {
            let compressed = self.compress(&data)?;
            // pymemcache keeps the original only when it is strictly shorter.
            if compressed.len() <= data.len() {
                data = compressed;
                flags |= FLAG_COMPRESSED;
            }
        }
        Ok(Encoded {
            data: Bytes::from(data),
            flags,
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        data: &[u8],
        flags: u32,
        _schema: u32,
    ) -> Result<Decoded<T>, DecodeError> {
        if flags & !PYMEMCACHE_BITS != 0 {
            return Ok(Decoded::Mismatch {
                expected_flags: None,
                found_flags: flags,
            });
        }
        let kind = if flags & FLAG_TEXT != 0 {
            de::Kind::Text
        } else if flags & (FLAG_INTEGER | FLAG_LONG) != 0 {
            de::Kind::Int
        } else if flags & FLAG_PICKLE != 0 {
            return Err(DecodeError::UnsupportedPickle {
                codec: Self::NAME,
                flags,
            });
        } else {
            de::Kind::Bytes
        };
        let decompressed;
        let data = if flags & FLAG_COMPRESSED != 0 {
            decompressed = self.decompress(data)?;
            &decompressed[..]
        } else {
            data
        };
        T::deserialize(de::PyDeserializer::new(kind, data))
            .map(Decoded::Value)
            .map_err(|e| DecodeError::Deserialize {
                codec: Self::NAME,
                message: e.to_string(),
            })
    }
}
