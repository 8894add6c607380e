//! The keys and values every workload reads and writes, and the code that stores them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::BenchResult;

/// Size of the small value (W1, W2, W3, W4, W4s), in bytes.
pub const SMALL_LEN: usize = 100;
/// Size of the large value (W5), in bytes: 100 KiB.
pub const LARGE_LEN: usize = 100 * 1024;
/// Number of keys in one get_many (W3).
pub const MANY: usize = 100;

/// The data set: fixed keys, and values with a per-key pattern so that a value read under
/// the wrong key, truncated or shifted, fails verification.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Key of the 100-byte value read by W1 and W4.
    pub small_key: String,
    /// The 100-byte value stored under `small_key`.
    pub small_value: Vec<u8>,
    /// Key of the 100 KiB value read by W5.
    pub large_key: String,
    /// The 100 KiB value stored under `large_key`.
    pub large_value: Vec<u8>,
    /// The 100 keys of W3.
    pub many_keys: Vec<String>,
    /// The 100-byte values stored under `many_keys`, in the same order.
    pub many_values: Vec<Vec<u8>>,
    /// Key written by the set workloads (W2, W4s).
    pub set_key: String,
    /// Value written by the set workloads (100 bytes).
    pub set_value: Vec<u8>,
}

/// `len` printable bytes whose pattern depends on `seed`.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((seed * 7 + i) % 26) as u8)
        .collect()
}

impl Fixture {
    /// The benchmark's data set.
    pub fn new() -> Self {
        Fixture {
            small_key: "bench:small".to_owned(),
            small_value: pattern(1, SMALL_LEN),
            large_key: "bench:large".to_owned(),
            large_value: pattern(2, LARGE_LEN),
            many_keys: (0..MANY).map(|i| format!("bench:many:{i:03}")).collect(),
            many_values: (0..MANY).map(|i| pattern(10 + i, SMALL_LEN)).collect(),
            set_key: "bench:set".to_owned(),
            set_value: pattern(3, SMALL_LEN),
        }
    }

    /// The value stored under `key` when it is one of `many_keys`.
    pub fn many_value(&self, key: &[u8]) -> Option<&[u8]> {
        self.many_keys
            .iter()
            .position(|k| k.as_bytes() == key)
            .map(|i| self.many_values[i].as_slice())
    }

    /// Stores every value the read workloads expect, with acknowledged `set`s on a plain
    /// socket (independent of the clients under test).
    ///
    /// # Errors
    /// On I/O errors or when memcached does not answer `STORED`.
    pub fn store(&self, addr: SocketAddr) -> BenchResult<()> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut items = vec![
            (self.small_key.as_str(), self.small_value.as_slice()),
            (self.large_key.as_str(), self.large_value.as_slice()),
            (self.set_key.as_str(), self.set_value.as_slice()),
        ];
        items.extend(
            self.many_keys
                .iter()
                .map(String::as_str)
                .zip(self.many_values.iter().map(Vec::as_slice)),
        );
        for (key, value) in items {
            let mut request = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
            stream.write_all(&request)?;
            let mut answer = [0u8; 8];
            stream.read_exact(&mut answer)?;
            if &answer != b"STORED\r\n" {
                return Err(format!("storing {key}: memcached answered {answer:?}").into());
            }
        }
        Ok(())
    }
}

/// Fails with a message naming the workload and client when `actual` is not `expected`.
///
/// # Errors
/// When the two differ (the message gives both lengths).
pub fn check_value(what: &str, actual: Option<&[u8]>, expected: &[u8]) -> BenchResult<()> {
    match actual {
        Some(actual) if actual == expected => Ok(()),
        Some(actual) => Err(format!(
            "{what}: wrong value: {} bytes, expected {} bytes of the stored pattern",
            actual.len(),
            expected.len()
        )
        .into()),
        None => Err(format!("{what}: miss, expected a hit").into()),
    }
}
