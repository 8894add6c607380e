use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{layout_encoded, layout_mismatch, Codec, Decoded, Encoded, JSON_CODEC_ID};
use crate::error::{DecodeError, EncodeError};

/// JSON (serde_json), for values other programs read as text. Feature `json`.
///
/// Flags follow the [layout](crate::codec#flags-layout) with codec id `0x80`.
/// Schema changes behave as for [`MessagePack`](crate::MessagePack): fields are
/// matched by name. Invalid JSON, trailing characters and values of another
/// shape are a [`DecodeError::Deserialize`]. Maps with non-string keys cannot be
/// encoded ([`EncodeError::Serialize`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl Codec for Json {
    const NAME: &'static str = "JSON";

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        schema: u32,
    ) -> Result<Encoded, EncodeError> {
        let serialized = serde_json::to_vec(value);
        layout_encoded(Self::NAME, JSON_CODEC_ID, schema, serialized)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        data: &[u8],
        flags: u32,
        schema: u32,
    ) -> Result<Decoded<T>, DecodeError> {
        if let Some(mismatch) = layout_mismatch(JSON_CODEC_ID, schema, flags) {
            return Ok(mismatch);
        }
        serde_json::from_slice(data)
            .map(Decoded::Value)
            .map_err(|e| DecodeError::Deserialize {
                codec: Self::NAME,
                message: e.to_string(),
            })
    }
}
