//! The `Pymemcache` codec against bytes written by pymemcache itself.
//!
//! `tests/fixtures/python_values.json` was produced by
//! `tests/fixtures/make_python_fixtures.py` with pymemcache's own serializer
//! functions (`python_memcache_serializer` and `CompressedSerde`).

mod common;

use std::io::Read;

use memcache_typed::{Codec, DecodeError, Decoded, EncodeError, MessagePack, Pymemcache};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Fixtures {
    pymemcache: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    value: Option<String>,
    serde: String,
    flags: u32,
    stored_hex: String,
    plain_hex: String,
}

fn fixtures() -> Fixtures {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/python_values.json"
    );
    let text = std::fs::read_to_string(path).expect("read python_values.json");
    serde_json::from_str(&text).expect("parse python_values.json")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid zlib");
    out
}

const COMPRESSED: u32 = 8;

fn value<T: serde::de::DeserializeOwned>(codec: &Pymemcache, data: &[u8], flags: u32) -> T {
    match codec.decode::<T>(data, flags, 0) {
        Ok(Decoded::Value(v)) => v,
        other => panic!(
            "expected a value for flags {flags}, got {:?}",
            other.map(|d| d.is_mismatch())
        ),
    }
}

/// The encoder a Python service would use for this case.
fn writer(case: &Case) -> Pymemcache {
    match case.serde.as_str() {
        "plain" => Pymemcache::new(),
        "compressed" => Pymemcache::compressed(),
        other => panic!("unknown serde {other}"),
    }
}

/// Checks that encoding gives pymemcache's flags and bytes. zlib output is
/// compared after decompression: flate2 (miniz_oxide) and CPython's zlib may
/// pick different (equally valid) deflate encodings of the same bytes.
fn check_encoded<T: Serialize + ?Sized>(case: &Case, value: &T) {
    let stored = unhex(&case.stored_hex);
    let encoded = writer(case)
        .encode(value, 0)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    assert_eq!(encoded.flags, case.flags, "{}: flags", case.name);
    if case.flags & COMPRESSED != 0 {
        assert_eq!(
            inflate(&encoded.data),
            unhex(&case.plain_hex),
            "{}: inflated",
            case.name
        );
    } else {
        assert_eq!(&encoded.data[..], &stored[..], "{}: bytes", case.name);
    }
}

#[test]
fn decodes_and_encodes_every_python_fixture() {
    let fixtures = fixtures();
    assert!(!fixtures.pymemcache.is_empty());
    assert!(fixtures.cases.len() >= 20, "fixture file lost cases");
    let reader = Pymemcache::new();
    for case in &fixtures.cases {
        let stored = unhex(&case.stored_hex);
        let plain = unhex(&case.plain_hex);
        if case.flags & COMPRESSED == 0 {
            assert_eq!(stored, plain, "{}: uncompressed plain bytes", case.name);
        } else {
            assert_eq!(inflate(&stored), plain, "{}: fixture zlib", case.name);
        }
        let carried = case.value.as_deref();
        match case.kind.as_str() {
            "bytes" => {
                let expected = unhex(carried.expect("bytes value"));
                let got: Vec<u8> = value(&reader, &stored, case.flags);
                assert_eq!(got, expected, "{}", case.name);
                check_encoded(case, &expected);
            }
            "str" => {
                let expected = carried.expect("str value");
                let got: String = value(&reader, &stored, case.flags);
                assert_eq!(got, expected, "{}", case.name);
                check_encoded(case, expected);
            }
            "int" => {
                let text = carried.expect("int value");
                let expected: i128 = text.parse().expect("fixture int fits i128");
                let got: i128 = value(&reader, &stored, case.flags);
                assert_eq!(got, expected, "{}", case.name);
                if let Ok(n) = i64::try_from(expected) {
                    assert_eq!(
                        value::<i64>(&reader, &stored, case.flags),
                        n,
                        "{}",
                        case.name
                    );
                    check_encoded(case, &n);
                }
                if let Ok(n) = u64::try_from(expected) {
                    assert_eq!(
                        value::<u64>(&reader, &stored, case.flags),
                        n,
                        "{}",
                        case.name
                    );
                    check_encoded(case, &n);
                }
                check_encoded(case, &expected);
            }
            "pickle" => {
                let err = reader
                    .decode::<Vec<u8>>(&stored, case.flags, 0)
                    .unwrap_err();
                assert_eq!(
                    err,
                    DecodeError::UnsupportedPickle {
                        codec: "pymemcache",
                        flags: case.flags
                    },
                    "{}",
                    case.name
                );
                assert!(err.to_string().contains("unsupported: pickle"), "{err}");
            }
            other => panic!("{}: unknown kind {other}", case.name),
        }
    }
}

#[test]
fn encodes_round_trip_through_own_decoder() {
    let codec = Pymemcache::compressed();
    let long = "héllo wörld ".repeat(100);
    let encoded = codec.encode(&long, 0).unwrap();
    assert_eq!(encoded.flags, 16 | 8);
    assert!(encoded.data.len() < long.len());
    assert_eq!(value::<String>(&codec, &encoded.data, encoded.flags), long);
    let big = u128::MAX;
    let encoded = codec.encode(&big, 0).unwrap();
    assert_eq!(
        (&encoded.data[..], encoded.flags),
        (big.to_string().as_bytes(), 2)
    );
    assert_eq!(value::<u128>(&codec, &encoded.data, encoded.flags), big);
}

#[test]
fn compression_threshold_and_level_are_configurable() {
    let data = vec![b'z'; 100];
    let plain = Pymemcache::new().encode(&data, 0).unwrap();
    assert_eq!(plain.flags, 0);
    let compressed = Pymemcache::new()
        .min_compress_len(50)
        .encode(&data, 0)
        .unwrap();
    assert_eq!(compressed.flags, 8);
    assert_eq!(inflate(&compressed.data), data);
    let at_limit = Pymemcache::new()
        .min_compress_len(100)
        .encode(&data, 0)
        .unwrap();
    assert_eq!(
        at_limit.flags, 0,
        "only values longer than min_compress_len compress"
    );
    let stored = Pymemcache::new()
        .min_compress_len(50)
        .compression_level(0)
        .encode(&data, 0)
        .unwrap();
    // Level 0 stores: larger than the original, so the original is kept.
    assert_eq!((stored.flags, &stored.data[..]), (0, &data[..]));
}

#[test]
fn flags_of_other_codecs_are_mismatches() {
    let codec = Pymemcache::new();
    let msgpack = MessagePack.encode(&42u32, 7).unwrap();
    for flags in [msgpack.flags, 0x40, 0x80, 0x20, 1 << 31] {
        let decoded = codec.decode::<Vec<u8>>(&msgpack.data, flags, 0).unwrap();
        assert_eq!(
            decoded,
            Decoded::Mismatch {
                expected_flags: None,
                found_flags: flags
            }
        );
    }
}

#[test]
fn reads_python_flag_combinations_like_pymemcache() {
    let codec = Pymemcache::new();
    // FLAG_LONG (Python 2 long) reads as an integer.
    assert_eq!(value::<i64>(&codec, b"123", 4), 123);
    // Text wins over int, int over pickle (pymemcache's order).
    assert_eq!(value::<String>(&codec, b"12", 16 | 2), "12");
    assert_eq!(value::<i32>(&codec, b"12", 2 | 1), 12);
    // memcached pads numbers shortened by decr with spaces.
    assert_eq!(value::<u64>(&codec, b"99 ", 2), 99);
    assert_eq!(value::<i64>(&codec, b" +7\r\n", 2), 7);
    // Flags 0 (pymemcache without a serializer) reads as str or int when it can.
    assert_eq!(value::<String>(&codec, "héllo".as_bytes(), 0), "héllo");
    assert_eq!(value::<i64>(&codec, b"-42", 0), -42);
    // Text reads as bytes.
    assert_eq!(value::<Vec<u8>>(&codec, b"abc", 16), b"abc");
}

fn deserialize_error<T>(result: Result<Decoded<T>, DecodeError>) -> String {
    match result {
        Err(DecodeError::Deserialize { codec, message }) => {
            assert_eq!(codec, "pymemcache");
            message
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(d) => panic!("unexpected success (mismatch: {})", d.is_mismatch()),
    }
}

#[test]
fn wrong_kinds_are_typed_errors() {
    let codec = Pymemcache::new();
    let m = deserialize_error(codec.decode::<i64>(b"hello", 16, 0));
    assert!(m.contains("invalid type"), "{m}");
    let m = deserialize_error(codec.decode::<String>(b"42", 2, 0));
    assert!(m.contains("invalid type"), "{m}");
    let m = deserialize_error(codec.decode::<i64>(b"4x2", 2, 0));
    assert!(m.contains("expected a decimal integer"), "{m}");
    let m = deserialize_error(codec.decode::<i64>(b"", 2, 0));
    assert!(m.contains("expected a decimal integer"), "{m}");
    let m = deserialize_error(codec.decode::<u8>(b"300", 2, 0));
    assert!(m.contains("300"), "{m}");
    let m = deserialize_error(codec.decode::<u64>(b"-1", 2, 0));
    assert!(m.contains("-1"), "{m}");
    let m = deserialize_error(codec.decode::<i128>(&[b'9'; 60], 2, 0));
    assert!(m.contains("out of the range"), "{m}");
    let m = deserialize_error(codec.decode::<String>(b"\xff\xfe", 16, 0));
    assert!(m.contains("UTF-8"), "{m}");
    let m = deserialize_error(codec.decode::<String>(b"\xff\xfe", 0, 0));
    assert!(m.contains("UTF-8"), "{m}");
    let m = deserialize_error(codec.decode::<[u8; 3]>(b"ab", 0, 0));
    assert!(!m.is_empty());
    let _ = deserialize_error(codec.decode::<bool>(b"1", 2, 0));
    let _ = deserialize_error(codec.decode::<f64>(b"1.5", 0, 0));
}

#[test]
fn corrupt_and_oversized_zlib_are_errors() {
    let codec = Pymemcache::new();
    let good = Pymemcache::compressed()
        .encode(&"x".repeat(5000), 0)
        .unwrap();
    assert_eq!(good.flags, 24);
    for cut in 0..good.data.len() {
        match codec.decode::<String>(&good.data[..cut], good.flags, 0) {
            Err(DecodeError::Decompress { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut flipped = good.data.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55; // breaks the adler32 checksum
    assert!(matches!(
        codec.decode::<String>(&flipped, good.flags, 0),
        Err(DecodeError::Decompress { .. })
    ));
    assert!(matches!(
        codec.decode::<Vec<u8>>(b"not zlib at all", 8, 0),
        Err(DecodeError::Decompress { .. })
    ));
    // Bytes after the zlib stream are ignored, as by Python's zlib.decompress.
    let mut trailing = good.data.to_vec();
    trailing.extend_from_slice(b"junk");
    assert_eq!(value::<String>(&codec, &trailing, good.flags).len(), 5000);

    let limited = Pymemcache::new().max_decompressed_len(4999);
    assert_eq!(
        limited
            .decode::<String>(&good.data, good.flags, 0)
            .unwrap_err(),
        DecodeError::DecompressedTooLarge {
            codec: "pymemcache",
            limit: 4999
        }
    );
    let exact = Pymemcache::new().max_decompressed_len(5000);
    assert_eq!(value::<String>(&exact, &good.data, good.flags).len(), 5000);
}

#[test]
fn garbage_never_panics() {
    let codec = Pymemcache::new();
    let mut next = common::xorshift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let flags = (next() % 32) as u32;
        let _ = codec.decode::<String>(&data, flags, 0);
        let _ = codec.decode::<Vec<u8>>(&data, flags, 0);
        let _ = codec.decode::<i64>(&data, flags, 0);
        let _ = codec.decode::<u128>(&data, flags, 0);
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Html(String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Color {
    Red,
    Green,
}

#[test]
fn serde_shapes_that_map_to_python_values() {
    let codec = Pymemcache::new();
    let roundtrip = |encoded: memcache_typed::Encoded| (encoded.data.to_vec(), encoded.flags);

    assert_eq!(
        roundtrip(codec.encode(&Html("<p>".into()), 0).unwrap()),
        (b"<p>".to_vec(), 16)
    );
    assert_eq!(value::<Html>(&codec, b"<p>", 16), Html("<p>".into()));

    assert_eq!(
        roundtrip(codec.encode(&Some(5u8), 0).unwrap()),
        (b"5".to_vec(), 2)
    );
    assert_eq!(value::<Option<u8>>(&codec, b"5", 2), Some(5));

    assert_eq!(
        roundtrip(codec.encode(&'é', 0).unwrap()),
        ("é".as_bytes().to_vec(), 16)
    );
    assert_eq!(value::<char>(&codec, "é".as_bytes(), 16), 'é');

    assert_eq!(
        roundtrip(codec.encode(&Color::Green, 0).unwrap()),
        (b"Green".to_vec(), 16)
    );
    assert_eq!(value::<Color>(&codec, b"Red", 16), Color::Red);
    assert!(codec.decode::<Color>(b"Blue", 16, 0).is_err());

    assert_eq!(
        roundtrip(codec.encode(&[1u8, 2, 3], 0).unwrap()),
        (vec![1, 2, 3], 0)
    );
    assert_eq!(value::<[u8; 3]>(&codec, &[1, 2, 3], 0), [1, 2, 3]);

    assert_eq!(
        roundtrip(codec.encode(&-17i8, 0).unwrap()),
        (b"-17".to_vec(), 2)
    );
    assert_eq!(
        roundtrip(codec.encode(&i128::MIN, 0).unwrap()).0,
        i128::MIN.to_string().into_bytes()
    );
}

#[test]
fn values_pymemcache_would_pickle_are_unsupported() {
    #[derive(Serialize)]
    struct User {
        id: u64,
    }
    let codec = Pymemcache::new();
    let unsupported = |r: Result<memcache_typed::Encoded, EncodeError>| match r {
        Err(EncodeError::Unsupported { codec, message }) => {
            assert_eq!(codec, "pymemcache");
            message
        }
        other => panic!("expected Unsupported, got {other:?}"),
    };
    assert!(unsupported(codec.encode(&User { id: 1 }, 0)).contains("struct User"));
    assert!(unsupported(codec.encode(&true, 0)).contains("bool"));
    assert!(unsupported(codec.encode(&1.5f64, 0)).contains("floating-point"));
    assert!(unsupported(codec.encode(&None::<u8>, 0)).contains("None"));
    assert!(unsupported(codec.encode(&vec![1u16, 2], 0)).contains("not u8"));
    assert!(unsupported(codec.encode(&vec!["a"], 0)).contains("not u8"));
    assert!(unsupported(codec.encode(&(1u8, "x"), 0)).contains("not u8"));
    assert!(
        unsupported(codec.encode(&std::collections::BTreeMap::<u8, u8>::new(), 0)).contains("map")
    );
    assert!(unsupported(codec.encode(&(), 0)).contains("unit"));
}
