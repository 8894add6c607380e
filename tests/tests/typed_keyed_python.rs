//! A Rust service and a Python service sharing keys and values through one real memcached:
//! what pymemcache stores (`str`, `int`, `bytes`, and their zlib-compressed forms) is read
//! through `KeyedCache<String, String | i64 | Vec<u8>, Pymemcache>` with no wrapper type, and
//! what those caches store is read back by pymemcache as the same Python values.
//!
//! Needs a Python with pymemcache (`Python::with_pymemcache` fails the test, saying how to
//! install it, when there is none).

use std::collections::HashMap;
use std::time::Duration;

use memcache_tests::{raw_get, Memcached, Python};
use memcache_typed::{Client, KeyedCache, Pymemcache};

/// Writes the Python side's values, as a Python service would: pymemcache's default pickle
/// serde (`python_memcache_serializer`) and `CompressedSerde`, every write waiting for
/// `STORED` so that it is on the server before the script ends.
const PYTHON_WRITES: &str = r#"
import sys
from pymemcache import serde
from pymemcache.client.base import Client

host, port = sys.argv[1].rsplit(":", 1)
server = (host, int(port))
plain = Client(server, serde=serde.pickle_serde)
compressed = Client(server, serde=serde.CompressedSerde())
greetings = Client(server, serde=serde.pickle_serde, key_prefix=b"greeting:")

plain.set("greeting:en", "héllo wörld", noreply=False)
greetings.set("fr", "bonjour", noreply=False)
compressed.set("greeting:long", "lorem ipsum dolor sit amet " * 40, noreply=False)
plain.set("counter:visits", 42, noreply=False)
plain.set("counter:debt", -12345678901234, noreply=False)
plain.set("counter:huge", 10**37, noreply=False)
plain.set("blob:raw", b"\x00\xff\x10raw", noreply=False)
compressed.set("blob:big", bytes(range(256)) * 8, noreply=False)
"#;

/// Reads the keys given after the address with `CompressedSerde` (which reads plain values
/// too) and prints one line per key: the key, the Python type and the value (bytes in hex).
const PYTHON_READS: &str = r#"
import sys
from pymemcache import serde
from pymemcache.client.base import Client

host, port = sys.argv[1].rsplit(":", 1)
client = Client((host, int(port)), serde=serde.CompressedSerde())
for key in sys.argv[2:]:
    value = client.get(key)
    shown = value.hex() if isinstance(value, bytes) else str(value)
    print(key, type(value).__name__, shown)
"#;

fn client(server: &Memcached) -> Client {
    Client::builder()
        .server(server.addr())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds")
}

/// What the Python side read for `keys`: key -> (Python type, value as printed).
fn python_reads(
    python: &Python,
    server: &Memcached,
    keys: &[&str],
) -> HashMap<String, (String, String)> {
    let addr = server.addr();
    let mut args = vec![addr.as_str()];
    args.extend_from_slice(keys);
    python
        .run(PYTHON_READS, &args)
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let key = parts.next().expect("key").to_owned();
            let kind = parts.next().expect("type").to_owned();
            let value = parts.next().unwrap_or_default().to_owned();
            (key, (kind, value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn values_written_by_pymemcache_read_as_plain_rust_values() {
    let python = Python::with_pymemcache();
    let server = Memcached::start();
    let addr = server.addr();
    python.run(PYTHON_WRITES, &[&addr]);

    // What pymemcache stored: its flags, for every kind.
    let flags = |key: &str| {
        raw_get(&addr, key)
            .unwrap_or_else(|| panic!("{key} stored"))
            .0
    };
    assert_eq!(flags("greeting:en"), 16, "str");
    assert_eq!(flags("greeting:fr"), 16, "str, through key_prefix");
    assert_eq!(flags("greeting:long"), 16 | 8, "compressed str");
    assert_eq!(flags("counter:visits"), 2, "int");
    // (pymemcache cannot compress an int: CompressedSerde fails on the text of one.)
    assert_eq!(flags("counter:huge"), 2, "int beyond 64 bits");
    assert_eq!(flags("blob:raw"), 0, "bytes");
    assert_eq!(flags("blob:big"), 8, "compressed bytes");

    let greetings = KeyedCache::<String, String, Pymemcache>::with_codec(
        client(&server),
        "greeting",
        Pymemcache::new(),
    )
    .unwrap();
    assert_eq!(
        greetings.get("en").await.unwrap().as_deref(),
        Some("héllo wörld")
    );
    assert_eq!(
        greetings.get("fr").await.unwrap().as_deref(),
        Some("bonjour")
    );
    assert_eq!(
        greetings.get("long").await.unwrap(),
        Some("lorem ipsum dolor sit amet ".repeat(40))
    );
    let many = greetings
        .get_many(["en".to_owned(), "fr".to_owned(), "xx".to_owned()])
        .await
        .unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many["fr"], "bonjour");

    let counters = KeyedCache::<String, i64, Pymemcache>::with_codec(
        client(&server),
        "counter",
        Pymemcache::new(),
    )
    .unwrap();
    assert_eq!(counters.get("visits").await.unwrap(), Some(42));
    assert_eq!(
        counters.get("debt").await.unwrap(),
        Some(-12_345_678_901_234)
    );
    let big = KeyedCache::<String, i128, Pymemcache>::with_codec(
        client(&server),
        "counter",
        Pymemcache::new(),
    )
    .unwrap();
    assert_eq!(big.get("huge").await.unwrap(), Some(10i128.pow(37)));

    let blobs = KeyedCache::<String, Vec<u8>, Pymemcache>::with_codec(
        client(&server),
        "blob",
        Pymemcache::new(),
    )
    .unwrap();
    assert_eq!(
        blobs.get("raw").await.unwrap(),
        Some(b"\x00\xff\x10raw".to_vec())
    );
    let expected: Vec<u8> = (0..8).flat_map(|_| 0..=255u8).collect();
    assert_eq!(blobs.get("big").await.unwrap(), Some(expected));
    assert_eq!(
        greetings.mismatches() + counters.mismatches() + blobs.mismatches(),
        0
    );

    // The same keys through a MessagePack cache: Python's flags are not ours, a counted miss.
    let msgpack = KeyedCache::<String, String>::new(client(&server), "greeting").unwrap();
    assert_eq!(msgpack.get("en").await.unwrap(), None);
    assert_eq!(msgpack.mismatches(), 1);

    // A Rust update of a Python counter, which Python then reads.
    let updated = counters.update("visits", |n| n + 1).await.unwrap();
    assert_eq!(updated, Some(43));
    let read = python_reads(&python, &server, &["counter:visits"]);
    assert_eq!(read["counter:visits"], ("int".to_owned(), "43".to_owned()));
}

#[tokio::test]
async fn values_written_through_keyed_caches_read_as_python_values() {
    let python = Python::with_pymemcache();
    let server = Memcached::start();
    let codec = Pymemcache::new();
    let compressing = Pymemcache::compressed();

    let greetings =
        KeyedCache::<String, String, Pymemcache>::with_codec(client(&server), "greeting", codec)
            .unwrap();
    let essays = KeyedCache::<String, String, Pymemcache>::with_codec(
        client(&server),
        "greeting",
        compressing,
    )
    .unwrap();
    let counters =
        KeyedCache::<String, i64, Pymemcache>::with_codec(client(&server), "counter", codec)
            .unwrap();
    let blobs =
        KeyedCache::<String, Vec<u8>, Pymemcache>::with_codec(client(&server), "blob", codec)
            .unwrap();
    let big_blobs =
        KeyedCache::<String, Vec<u8>, Pymemcache>::with_codec(client(&server), "blob", compressing)
            .unwrap();

    let essay = "grüß dich, wie geht's? ".repeat(50);
    let big: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    greetings
        .set("de", &"grüß dich".to_owned())
        .noreply(false)
        .await
        .unwrap();
    essays.set("essay", &essay).noreply(false).await.unwrap();
    counters.set("rust", &-7).noreply(false).await.unwrap();
    counters
        .set_many([("a".to_owned(), 1i64), ("b".to_owned(), 2)])
        .noreply(false)
        .await
        .unwrap();
    blobs
        .set("rust", &vec![0, 1, 2, 255])
        .noreply(false)
        .await
        .unwrap();
    big_blobs.set("big", &big).noreply(false).await.unwrap();
    let loaded = counters
        .get_or_load("loaded", |_| async { Ok::<_, std::io::Error>(99) })
        .await
        .unwrap();
    assert_eq!(loaded, 99);
    counters.client().version().await.unwrap().single().unwrap(); // the noreply store is done

    // The flags pymemcache gives these kinds.
    let addr = server.addr();
    let flags = |key: &str| {
        raw_get(&addr, key)
            .unwrap_or_else(|| panic!("{key} stored"))
            .0
    };
    assert_eq!(flags("greeting:de"), 16);
    assert_eq!(flags("greeting:essay"), 16 | 8);
    assert_eq!(flags("counter:rust"), 2);
    assert_eq!(flags("blob:rust"), 0);
    assert_eq!(flags("blob:big"), 8);

    let read = python_reads(
        &python,
        &server,
        &[
            "greeting:de",
            "greeting:essay",
            "counter:rust",
            "counter:a",
            "counter:b",
            "counter:loaded",
            "blob:rust",
            "blob:big",
        ],
    );
    let value = |key: &str| {
        read.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key}: {read:?}"))
    };
    let pair = |kind: &str, value: &str| (kind.to_owned(), value.to_owned());
    assert_eq!(value("greeting:de"), pair("str", "grüß dich"));
    assert_eq!(value("greeting:essay"), pair("str", &essay));
    assert_eq!(value("counter:rust"), pair("int", "-7"));
    assert_eq!(value("counter:a"), pair("int", "1"));
    assert_eq!(value("counter:b"), pair("int", "2"));
    assert_eq!(value("counter:loaded"), pair("int", "99"));
    assert_eq!(value("blob:rust"), pair("bytes", "000102ff"));
    assert_eq!(value("blob:big"), pair("bytes", &hex(&big)));
}
