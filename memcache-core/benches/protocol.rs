//! Micro-benchmarks of the sans-IO protocol code: request encoding and response decoding.
//!
//! ```text
//! cargo bench -p memcache-core --features bench-internals --bench protocol
//! ```

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memcache_core::__bench::decode::Decoder;
use memcache_core::__bench::request::{self, StoreCommand};
use memcache_core::__bench::response::{Expect, Kind};

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let value = vec![b'v'; 100];
    group.bench_function("get", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(64);
            request::retrieve(&mut buf, false, None, b"", [black_box(&b"user:12345"[..])]);
            buf
        })
    });
    group.bench_function("mg", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(64);
            request::meta_get(
                &mut buf,
                b"",
                black_box(b"user:12345"),
                true,
                false,
                None,
                None,
                7,
            );
            buf
        })
    });
    group.bench_function("set_100B", |b| {
        b.iter(|| {
            let mut buf = BytesMut::new();
            let key = black_box(&b"user:12345"[..]);
            request::store(&mut buf, StoreCommand::Set, b"", key, 0, 300, &value, false);
            buf
        })
    });
    group.bench_function("ms_100B", |b| {
        b.iter(|| {
            let mut buf = BytesMut::new();
            let key = black_box(&b"user:12345"[..]);
            request::meta_store(
                &mut buf,
                StoreCommand::Set,
                b"",
                key,
                0,
                300,
                &value,
                false,
                7,
            );
            buf
        })
    });
    let keys: Vec<String> = (0..100).map(|i| format!("user:{i}")).collect();
    group.throughput(Throughput::Elements(100));
    group.bench_function("get_100_keys", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(1200);
            request::retrieve(
                &mut buf,
                false,
                None,
                b"",
                keys.iter().map(|k| k.as_bytes()),
            );
            buf
        })
    });
    group.finish();
}

/// Decodes `input` (repeated to fill a read buffer) once per iteration.
fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let mut value_100 = b"VALUE user:12345 0 100\r\n".to_vec();
    value_100.extend_from_slice(&[b'v'; 100]);
    value_100.extend_from_slice(b"\r\nEND\r\n");
    let mut va_100 = b"VA 100 f0\r\n".to_vec();
    va_100.extend_from_slice(&[b'v'; 100]);
    va_100.extend_from_slice(b"\r\n");
    let mut many = Vec::new();
    for i in 0..100 {
        many.extend_from_slice(format!("VALUE user:{i} 0 100\r\n").as_bytes());
        many.extend_from_slice(&[b'v'; 100]);
        many.extend_from_slice(b"\r\n");
    }
    many.extend_from_slice(b"END\r\n");
    let mut big = b"VALUE big 0 102400\r\n".to_vec();
    big.extend_from_slice(&vec![b'v'; 102_400]);
    big.extend_from_slice(b"\r\nEND\r\n");

    let cases: [(&str, &[u8], Kind, u64); 6] = [
        ("VALUE_100B", &value_100, Kind::Values, 1),
        ("VA_100B", &va_100, Kind::MetaGet, 1),
        ("STORED", b"STORED\r\n", Kind::Store, 1),
        ("HD", b"HD\r\n", Kind::MetaStore, 1),
        ("VALUE_100x100B", &many, Kind::Values, 100),
        ("VALUE_100KiB", &big, Kind::Values, 1),
    ];
    for (name, input, kind, elements) in cases {
        group.throughput(Throughput::Elements(elements));
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            let mut decoder = Decoder::new(1 << 20);
            b.iter(|| {
                let mut buf = BytesMut::from(input);
                let expect = Expect {
                    items: elements as u32,
                    ..Expect::one(kind)
                };
                let response = decoder.decode(&mut buf, expect).unwrap();
                assert!(response.is_some() && buf.is_empty());
                response
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
