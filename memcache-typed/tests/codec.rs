//! The MessagePack and JSON codecs: flags layout, mismatches, corrupt data and
//! schema evolution.

mod common;

use std::collections::BTreeMap;

use memcache_typed::codec::{layout_flags, JSON_CODEC_ID, MESSAGEPACK_CODEC_ID};
use memcache_typed::{Codec, DecodeError, Decoded, EncodeError, MessagePack};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
}

fn ann() -> User {
    User {
        id: 42,
        name: "Ann Lée".into(),
        tags: vec!["admin".into(), "🦀".into()],
        score: Some(0.5),
    }
}

const SCHEMA: u32 = 0x1234_5678;

fn decoded<C: Codec, T: serde::de::DeserializeOwned>(
    codec: &C,
    data: &[u8],
    flags: u32,
    schema: u32,
) -> T {
    match codec.decode::<T>(data, flags, schema) {
        Ok(Decoded::Value(v)) => v,
        Ok(Decoded::Mismatch {
            expected_flags,
            found_flags,
        }) => panic!("mismatch: expected {expected_flags:?}, found {found_flags:#x}"),
        Err(e) => panic!("decode error: {e}"),
    }
}

#[test]
fn flags_layout() {
    assert_eq!(MESSAGEPACK_CODEC_ID, 0x40);
    assert_eq!(JSON_CODEC_ID, 0x80);
    assert_eq!(layout_flags(0x40, 0), 0x40);
    assert_eq!(layout_flags(0x40, 1), 0x140);
    assert_eq!(layout_flags(0x80, 0x1234_5678), 0x3456_7880);
    assert_eq!(layout_flags(0x40, u32::MAX), 0xFFFF_FF40);
    // Bits 0-5 are clear: Python clients read these values as plain bytes.
    for id in [MESSAGEPACK_CODEC_ID, JSON_CODEC_ID] {
        assert_eq!(id & 0x3F, 0);
    }
}

#[test]
fn messagepack_round_trip_with_named_fields() {
    let encoded = MessagePack.encode(&ann(), SCHEMA).unwrap();
    assert_eq!(encoded.flags, 0x3456_7840);
    let back: User = decoded(&MessagePack, &encoded.data, encoded.flags, SCHEMA);
    assert_eq!(back, ann());

    // Named fields: a map keyed by field name (fixmap of 4, then "id").
    #[derive(Serialize)]
    struct Small {
        id: u8,
        ok: bool,
    }
    let small = MessagePack.encode(&Small { id: 7, ok: true }, 0).unwrap();
    assert_eq!(&small.data[..], b"\x82\xa2id\x07\xa2ok\xc3");
}

#[test]
fn messagepack_mismatches_other_schemas_and_codecs() {
    let encoded = MessagePack.encode(&ann(), SCHEMA).unwrap();
    let expected = Some(layout_flags(MESSAGEPACK_CODEC_ID, SCHEMA));
    for found in [
        layout_flags(MESSAGEPACK_CODEC_ID, SCHEMA + 1),
        layout_flags(JSON_CODEC_ID, SCHEMA),
        0,
        2,
        16,
        24,
        0x40,
    ] {
        let d = MessagePack
            .decode::<User>(&encoded.data, found, SCHEMA)
            .unwrap();
        assert_eq!(
            d,
            Decoded::Mismatch {
                expected_flags: expected,
                found_flags: found
            }
        );
    }
    // Only the low 24 bits of the schema are stored and compared.
    let high = SCHEMA ^ 0xFF00_0000;
    let back: User = decoded(&MessagePack, &encoded.data, encoded.flags, high);
    assert_eq!(back, ann());
}

#[test]
fn messagepack_corrupt_bytes_are_errors() {
    let encoded = MessagePack.encode(&ann(), SCHEMA).unwrap();
    let flags = encoded.flags;
    // Every truncation.
    for cut in 0..encoded.data.len() {
        match MessagePack.decode::<User>(&encoded.data[..cut], flags, SCHEMA) {
            Err(DecodeError::Deserialize {
                codec: "MessagePack",
                ..
            }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Trailing bytes.
    let mut long = encoded.data.to_vec();
    long.push(0xc0);
    let err = MessagePack
        .decode::<User>(&long, flags, SCHEMA)
        .unwrap_err();
    assert!(err.to_string().contains("trailing bytes"), "{err}");
    // Trailing bytes that are not a value of their own (0xc1 is never used).
    let mut garbage = encoded.data.to_vec();
    garbage.push(0xc1);
    assert!(MessagePack.decode::<User>(&garbage, flags, SCHEMA).is_err());
    // Wrong shape.
    let number = MessagePack.encode(&5u8, SCHEMA).unwrap();
    assert!(matches!(
        MessagePack.decode::<User>(&number.data, flags, SCHEMA),
        Err(DecodeError::Deserialize { .. })
    ));
    // A huge announced length allocates nothing and fails.
    let huge_array = b"\xdd\xff\xff\xff\xff\x01";
    assert!(MessagePack
        .decode::<Vec<u8>>(huge_array, flags, SCHEMA)
        .is_err());
    let huge_str = b"\xdb\xff\xff\xff\xffabc";
    assert!(MessagePack
        .decode::<String>(huge_str, flags, SCHEMA)
        .is_err());
    // Deep nesting is refused, not a stack overflow.
    let deep = vec![0x91u8; 100_000];
    assert!(MessagePack
        .decode::<serde_json::Value>(&deep, flags, SCHEMA)
        .is_err());
    // 100 levels are fine.
    let mut nested = vec![0x91u8; 100];
    nested.push(0x01);
    let value: serde_json::Value = decoded(&MessagePack, &nested, flags, SCHEMA);
    assert_eq!(
        value.to_string(),
        format!("{}1{}", "[".repeat(100), "]".repeat(100))
    );
}

#[test]
fn messagepack_random_garbage_never_panics() {
    let mut next = common::xorshift(0x2545_F491_4F6C_DD1D);
    let valid = MessagePack.encode(&ann(), SCHEMA).unwrap().data.to_vec();
    for _ in 0..3000 {
        // Random bytes, and the valid encoding with a few bytes flipped.
        let len = (next() % 80) as usize;
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut flipped = valid.clone();
        for _ in 0..3 {
            let i = (next() as usize) % flipped.len();
            flipped[i] = next() as u8;
        }
        for data in [&random, &flipped] {
            let flags = layout_flags(MESSAGEPACK_CODEC_ID, SCHEMA);
            let _ = MessagePack.decode::<User>(data, flags, SCHEMA);
            let _ = MessagePack.decode::<BTreeMap<String, u64>>(data, flags, SCHEMA);
            let _ = MessagePack.decode::<Vec<String>>(data, flags, SCHEMA);
        }
    }
}

#[test]
fn messagepack_field_evolution_is_by_name() {
    #[derive(Serialize)]
    struct V1 {
        id: u64,
        name: String,
    }
    let old = MessagePack
        .encode(
            &V1 {
                id: 1,
                name: "a".into(),
            },
            0,
        )
        .unwrap();
    fn read<T: serde::de::DeserializeOwned>(old: &memcache_typed::Encoded) -> T {
        decoded(&MessagePack, &old.data, old.flags, 0)
    }

    // Reordered fields: read by name.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Reordered {
        name: String,
        id: u64,
    }
    let v: Reordered = read(&old);
    assert_eq!(
        v,
        Reordered {
            name: "a".into(),
            id: 1
        }
    );

    // Removed field: the stored value is skipped.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Removed {
        id: u64,
    }
    let v: Removed = read(&old);
    assert_eq!(v, Removed { id: 1 });

    // Added optional / defaulted fields: None / default.
    #[derive(Debug, PartialEq, Deserialize)]
    struct AddedOptional {
        id: u64,
        name: String,
        email: Option<String>,
        #[serde(default)]
        visits: u32,
    }
    let v: AddedOptional = read(&old);
    assert_eq!(v.email, None);
    assert_eq!(v.visits, 0);

    // Added required field: an error, not a guess.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct AddedRequired {
        id: u64,
        name: String,
        email: String,
    }
    let err = MessagePack
        .decode::<AddedRequired>(&old.data, old.flags, 0)
        .unwrap_err();
    assert!(err.to_string().contains("missing field `email`"), "{err}");

    // Renamed field: the new name is missing ...
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Renamed {
        id: u64,
        full_name: String,
    }
    let err = MessagePack
        .decode::<Renamed>(&old.data, old.flags, 0)
        .unwrap_err();
    assert!(
        err.to_string().contains("missing field `full_name`"),
        "{err}"
    );
    // ... unless the old name is an alias.
    #[derive(Debug, PartialEq, Deserialize)]
    struct RenamedWithAlias {
        id: u64,
        #[serde(alias = "name")]
        full_name: String,
    }
    let v: RenamedWithAlias = read(&old);
    assert_eq!(v.full_name, "a");

    // deny_unknown_fields turns a removed field into an error.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        id: u64,
    }
    assert!(MessagePack
        .decode::<Strict>(&old.data, old.flags, 0)
        .is_err());
}

#[test]
fn encode_errors_are_typed() {
    struct Failing;
    impl Serialize for Failing {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no way"))
        }
    }
    let err = MessagePack.encode(&Failing, 0).unwrap_err();
    assert_eq!(
        err,
        EncodeError::Serialize {
            codec: "MessagePack",
            message: "no way".into()
        }
    );
    assert_eq!(err.codec(), "MessagePack");
    assert_eq!(
        err.to_string(),
        "MessagePack: cannot serialize the value: no way"
    );
}

#[test]
fn errors_convert_into_the_crate_error() {
    let e: memcache_typed::Error = DecodeError::custom("Mine", "bad").into();
    assert!(e.is_decode() && !e.is_encode() && !e.is_key());
    assert_eq!(e.to_string(), "Mine: cannot deserialize the value: bad");
    let e: memcache_typed::Error = EncodeError::custom("Mine", "bad").into();
    assert!(e.is_encode());
}

#[test]
fn decoded_helpers() {
    assert_eq!(Decoded::Value(3).value(), Some(3));
    let m: Decoded<u8> = Decoded::Mismatch {
        expected_flags: Some(1),
        found_flags: 2,
    };
    assert!(m.is_mismatch());
    assert_eq!(m.value(), None);
}

#[cfg(feature = "json")]
mod json {
    use super::*;
    use memcache_typed::Json;

    #[test]
    fn json_round_trip_and_flags() {
        let encoded = Json.encode(&ann(), SCHEMA).unwrap();
        assert_eq!(encoded.flags, 0x3456_7880);
        assert_eq!(
            &encoded.data[..],
            r#"{"id":42,"name":"Ann Lée","tags":["admin","🦀"],"score":0.5}"#.as_bytes()
        );
        let back: User = decoded(&Json, &encoded.data, encoded.flags, SCHEMA);
        assert_eq!(back, ann());
    }

    #[test]
    fn json_mismatches_and_errors() {
        let encoded = Json.encode(&ann(), SCHEMA).unwrap();
        let msgpack_flags = layout_flags(MESSAGEPACK_CODEC_ID, SCHEMA);
        assert!(Json
            .decode::<User>(&encoded.data, msgpack_flags, SCHEMA)
            .unwrap()
            .is_mismatch());
        assert!(Json
            .decode::<User>(&encoded.data, encoded.flags, SCHEMA + 1)
            .unwrap()
            .is_mismatch());
        for cut in 0..encoded.data.len() {
            assert!(matches!(
                Json.decode::<User>(&encoded.data[..cut], encoded.flags, SCHEMA),
                Err(DecodeError::Deserialize { codec: "JSON", .. })
            ));
        }
        let mut trailing = encoded.data.to_vec();
        trailing.extend_from_slice(b" x");
        assert!(Json
            .decode::<User>(&trailing, encoded.flags, SCHEMA)
            .is_err());

        let mut map = BTreeMap::new();
        map.insert((1u8, 2u8), 3u8);
        assert!(matches!(
            Json.encode(&map, 0),
            Err(EncodeError::Serialize { codec: "JSON", .. })
        ));
    }
}
