use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{layout_encoded, layout_mismatch, Codec, Decoded, Encoded, MESSAGEPACK_CODEC_ID};
use crate::error::{DecodeError, EncodeError};

/// How deeply arrays and maps may nest in a decoded value. rmp-serde's own
/// default (1024) can overflow a 2 MiB thread stack with recursive types such as
/// `serde_json::Value` in debug builds; values this deep do not belong in a cache.
const MAX_DEPTH: usize = 128;

/// MessagePack with named fields (rmp-serde's `to_vec_named`): the default codec.
///
/// Structs are written as maps from field name to value, not as arrays, so an
/// entry never silently lands in the wrong field. Flags follow the
/// [layout](crate::codec#flags-layout) with codec id `0x40`.
///
/// # Schema changes
///
/// A changed struct normally gets a new schema fingerprint, and old entries are
/// then mismatches (misses) before any byte is read. If old bytes are decoded
/// with a changed type anyway (same fingerprint, or a hand-written impl that
/// keeps it), the usual serde rules apply, by name:
///
/// - a field **added** to the type: `DecodeError` ("missing field"), unless it
///   is an `Option` (read as `None`) or has `#[serde(default)]`;
/// - a field **removed** from the type: the stored value is skipped, unless the
///   type has `#[serde(deny_unknown_fields)]`;
/// - a field **renamed**: both of the above: the old name is skipped and the new
///   one is missing (`#[serde(alias = "old")]` reads the old name);
/// - fields **reordered**: no effect, fields are matched by name.
///
/// Corrupt, truncated or over-long data (trailing bytes) is a
/// [`DecodeError::Deserialize`], never a panic. Nesting deeper than 128 levels
/// is refused: such data is an error, not a stack overflow.
///
/// Note that rmp-serde writes `Vec<u8>` as an array of integers; fields marked
/// for `serde_bytes` are written as MessagePack `bin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagePack;

impl Codec for MessagePack {
    const NAME: &'static str = "MessagePack";

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        schema: u32,
    ) -> Result<Encoded, EncodeError> {
        let serialized = rmp_serde::to_vec_named(value);
        layout_encoded(Self::NAME, MESSAGEPACK_CODEC_ID, schema, serialized)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        data: &[u8],
        flags: u32,
        schema: u32,
    ) -> Result<Decoded<T>, DecodeError> {
        if let Some(mismatch) = layout_mismatch(MESSAGEPACK_CODEC_ID, schema, flags) {
            return Ok(mismatch);
        }
        let corrupt = |message: String| DecodeError::Deserialize {
            codec: Self::NAME,
            message,
        };
        // Read straight from the slice: strings and bytes are not copied through an
        // intermediate reader buffer.
        let mut de = rmp_serde::Deserializer::from_read_ref(data);
        de.set_max_depth(MAX_DEPTH);
        let value = T::deserialize(&mut de).map_err(|e| corrupt(e.to_string()))?;
        // Anything after the value is corruption: reading on must meet the end of the data.
        match <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de) {
            Err(rmp_serde::decode::Error::InvalidMarkerRead(end))
                if end.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                Ok(Decoded::Value(value))
            }
            _ => Err(corrupt("trailing bytes after the value".to_owned())),
        }
    }
}
