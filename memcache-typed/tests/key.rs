//! Key encoding through the public API: golden strings, injectivity, long keys.

mod common;

use std::collections::HashMap;

use memcache_typed::key::MAX_KEY_LEN;
use memcache_typed::{encode_key, full_key, CacheKey, Error, KeyWriter};

/// A memcached key as the ASCII protocol accepts it.
fn assert_valid_key(key: &str) {
    assert!(key.len() <= MAX_KEY_LEN, "{} bytes: {key}", key.len());
    assert!(!key.is_empty());
    assert!(
        key.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "forbidden byte in {key:?}"
    );
}

#[test]
fn golden_keys() {
    let crab_1000 = "🦀".repeat(250);
    let cases: Vec<(String, &str)> = vec![
        (full_key("user", &42u64, 250).unwrap(), "user:42"),
        (full_key("user", &-7i32, 250).unwrap(), "user:-7"),
        (full_key("user", "ann lee", 250).unwrap(), "user:ann%20lee"),
        (
            full_key("user", "a\nb\tc\r\0", 250).unwrap(),
            "user:a%0Ab%09c%0D%00",
        ),
        (full_key("user", "50%", 250).unwrap(), "user:50%25"),
        (full_key("user", "a:b", 250).unwrap(), "user:a%3Ab"),
        (full_key("user", "café", 250).unwrap(), "user:caf%C3%A9"),
        (full_key("user", "🦀", 250).unwrap(), "user:%F0%9F%A6%80"),
        (full_key("user", "", 250).unwrap(), "user:"),
        (
            full_key("order_line", &(7u64, 2u16), 250).unwrap(),
            "order_line:7:2",
        ),
        (
            full_key("t", &("a b", -1i8, true, 'x'), 250).unwrap(),
            "t:a%20b:-1:true:x",
        ),
        (full_key("t", &String::from("s"), 250).unwrap(), "t:s"),
        (full_key("t", &Box::<str>::from("b"), 250).unwrap(), "t:b"),
        (full_key("t", &&&5u8, 250).unwrap(), "t:5"),
        // 1,000 bytes: hashed. Golden value computed with Python:
        // base64.urlsafe_b64encode(hashlib.sha256(("user:" + "%F0%9F%A6%80" * 250).encode()).digest()).rstrip(b"=")
        (
            full_key("user", crab_1000.as_str(), 250).unwrap(),
            "user:%HE3cQtCcNoI1vkHEBfa_tSO_Ktx9YVFZ4QFed8cY04q4",
        ),
    ];
    for (got, expected) in &cases {
        assert_eq!(got, expected);
        assert_valid_key(got);
    }
}

#[test]
fn long_keys_are_hashed_within_budget() {
    let long = "k ".repeat(500); // 1,000 bytes, 1,500 once escaped
    for budget in [250, 240, 100, 50] {
        let key = full_key("user", long.as_str(), budget).unwrap();
        assert!(key.len() <= budget, "{budget}: {key}");
        assert_eq!(key.len(), "user".len() + 46);
        assert!(key.starts_with("user:%H"));
        assert_valid_key(&key);
    }
    // Deterministic, and the hash depends on the prefix and on every byte.
    let a = full_key("user", long.as_str(), 250).unwrap();
    assert_eq!(a, full_key("user", long.as_str(), 250).unwrap());
    let b = full_key("usr", long.as_str(), 250).unwrap();
    assert_ne!(a["user:%H".len()..], b["usr:%H".len()..]);
    let mut other = long.clone();
    other.push('!');
    assert_ne!(a, full_key("user", other.as_str(), 250).unwrap());
    // Too small a budget for even the hashed form.
    assert!(matches!(
        full_key("user", long.as_str(), 49),
        Err(Error::KeyTooLong {
            prefix_len: 4,
            budget: 49
        })
    ));
    let err = full_key("user", long.as_str(), 49).unwrap_err();
    assert!(err.is_key());
}

#[test]
fn invalid_prefixes_are_refused() {
    for prefix in ["", "a b", "a\n", "é", "\x7f", ":", "user:1", "user:"] {
        let err = full_key(prefix, &1u8, 250).unwrap_err();
        assert!(matches!(err, Error::InvalidPrefix { .. }), "{prefix:?}");
        assert!(err.is_key());
    }
}

#[test]
fn encoding_is_injective_on_tricky_values() {
    let strings = [
        "", " ", "%", "%25", ":", "%3A", "a:b", "a%3Ab", "a b", "a%20b", "a_b", "é", "%C3%A9",
        "\u{0}", "%00", "%H", "%Habc", "true", "1", "-1", "01",
    ];
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut record = |key: String, what: String| {
        if let Some(previous) = seen.insert(key.clone(), what.clone()) {
            panic!("{what} and {previous} both encode to {key}");
        }
    };
    for s in strings {
        record(full_key("p", s, 250).unwrap(), format!("str {s:?}"));
    }
    let mut seen_pairs: HashMap<String, String> = HashMap::new();
    for a in strings {
        for b in strings {
            let key = full_key("p", &(a, b), 250).unwrap();
            assert_valid_key(&key);
            if let Some(previous) = seen_pairs.insert(key.clone(), format!("({a:?}, {b:?})")) {
                panic!("({a:?}, {b:?}) and {previous} both encode to {key}");
            }
        }
    }
    assert_ne!(encode_key(&("a:b", "c")), encode_key(&("a", "b:c")));
    assert_ne!(encode_key("a%3Ab"), encode_key("a:b"));
}

#[test]
fn hashed_keys_never_equal_unhashed_keys() {
    // An unhashed key never contains "%H": '%' is always followed by a hex digit.
    for s in ["%H", "%h", "H", "%%HH", "x%Hy"] {
        let key = full_key("p", s, 250).unwrap();
        assert!(!key.contains("%H"), "{key}");
    }
}

#[test]
fn every_value_gives_a_valid_key() {
    let mut next = common::xorshift(0x0123_4567_89AB_CDEF);
    for _ in 0..2000 {
        let len = (next() % 400) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let s = String::from_utf8_lossy(&bytes).into_owned();
        assert_valid_key(&full_key("p", s.as_str(), 250).unwrap());
        assert_valid_key(&full_key("p", &(s.as_str(), next() as i64), 230).unwrap());
    }
    for n in [i128::MIN, -1, 0, 1, i128::MAX] {
        assert_valid_key(&full_key("n", &n, 250).unwrap());
    }
}

/// A hand-written key type, encoded as the tuple `(region, id)`.
struct RegionKey {
    region: &'static str,
    id: u32,
}

impl CacheKey for RegionKey {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(self.region);
        out.write_separator();
        self.id.write_key(out);
    }
}

#[test]
fn hand_written_keys() {
    let key = RegionKey {
        region: "eu west",
        id: 9,
    };
    assert_eq!(full_key("order", &key, 250).unwrap(), "order:eu%20west:9");
    assert_eq!(encode_key(&key), encode_key(&("eu west", 9u32)));
    let mut bytes_key = String::new();
    struct Raw<'a>(&'a [u8]);
    impl CacheKey for Raw<'_> {
        fn write_key(&self, out: &mut KeyWriter) {
            out.write_bytes(self.0);
        }
    }
    bytes_key.push_str(&encode_key(&Raw(b"\x00\xff:%")));
    assert_eq!(bytes_key, "%00%FF%3A%25");
}
