//! Cache keys: how a typed key becomes a memcached key.
//!
//! A [`Cacheable`](crate::Cacheable) type is stored under `"{PREFIX}:{encoded key}"`,
//! built by [`full_key`]. The encoding is a pure, specified function: the same key
//! gives the same memcached key on every machine, every Rust release and every
//! run, and two different keys of one type never give the same memcached key.
//!
//! # Encoding
//!
//! [`CacheKey::write_key`] writes a key through a [`KeyWriter`], which escapes
//! everything it is given:
//!
//! | key type                                   | encoded as                                   | example                     |
//! |--------------------------------------------|----------------------------------------------|-----------------------------|
//! | `u8`..`u128`, `usize`, `i8`..`i128`, `isize` | decimal, `-` for negatives                 | `-42` → `-42`               |
//! | `bool`                                     | `true` / `false`                             | `true` → `true`             |
//! | `str`, `String`, `Box<str>`, `char`, `Cow<str>` | UTF-8 bytes, escaped (below)            | `"a b"` → `a%20b`           |
//! | `&K`, `Box<K>`                             | as `K`                                       |                             |
//! | tuples `(A, B, ..)` up to 6 elements       | components joined by `:`                     | `(7, "x:y")` → `7:x%3Ay`    |
//!
//! Escaping: every byte that memcached does not accept in an ASCII key (0x00-0x20,
//! 0x7f and every non-ASCII byte 0x80-0xff), and also `%` and `:`, becomes `%`
//! followed by two **uppercase** hex digits (`"é"` → `%C3%A9`, `"%"` → `%25`,
//! `":"` → `%3A`). All other bytes are copied. So in an encoded key `%` is always
//! followed by two characters of `0-9A-F`, and `:` only ever separates the
//! components of a composite key; this is what makes the encoding injective
//! (`("a:b", "c")` → `a%3Ab:c`, `("a", "b:c")` → `a:b%3Ac`, `"a%3Ab"` → `a%253Ab`).
//!
//! Injectivity holds for the keys of one type (one prefix, one key type), and
//! across types as long as their prefixes differ: the prefix itself is not
//! escaped, so it may not contain `:` (two types whose prefixes were `a` and
//! `a:b` could meet, `a` with key `("b", "c")` and `a:b` with key `"c"`). The
//! first `:` of a memcached key therefore always ends the prefix; [`full_key`]
//! refuses a prefix with `:` in it.
//!
//! # Long keys
//!
//! memcached keys are at most 250 bytes, and the client's own key prefix (if any)
//! takes some of them, so [`full_key`] takes a `budget` (normally
//! `250 - client key prefix length`; values above 250 are treated as 250).
//!
//! If `"{prefix}:{encoded}"` is longer than `budget` bytes, the key becomes
//!
//! ```text
//! {prefix}:%H{base64url(sha256("{prefix}:{encoded}"))}
//! ```
//!
//! where base64url is the URL-safe alphabet of RFC 4648 §5 (`A-Z a-z 0-9 - _`)
//! *without* `=` padding: always 43 characters, so a hashed key is always
//! `prefix.len() + 46` bytes. The hash input is the whole unhashed key, prefix
//! included, exactly as it would have been sent.
//!
//! Why this form: base64url carries the full 256-bit digest (collisions are as
//! unlikely as SHA-256 collisions) in 43 characters, where hex would need 64; with
//! the longest prefix `#[derive(Cacheable)]` accepts (200 bytes) the hashed key
//! still fits memcached's 250 bytes. A hashed key can never equal an unhashed key
//! of the same prefix: in an unhashed key `%` is always followed by a hex digit,
//! and `H` is not one.
//!
//! If even the hashed form exceeds the budget, [`full_key`] returns
//! [`Error::KeyTooLong`] rather than a key memcached would refuse.
//!
//! # Composite and hand-written keys
//!
//! ```
//! use memcache_typed::{encode_key, CacheKey, KeyWriter};
//!
//! /// A tenant-scoped id, encoded like the tuple `(tenant, id)`.
//! struct OrderKey {
//!     tenant: String,
//!     id: u64,
//! }
//!
//! impl CacheKey for OrderKey {
//!     fn write_key(&self, out: &mut KeyWriter) {
//!         self.tenant.write_key(out);
//!         out.write_separator();
//!         self.id.write_key(out);
//!     }
//! }
//!
//! let key = OrderKey { tenant: "acme corp".into(), id: 7 };
//! assert_eq!(encode_key(&key), "acme%20corp:7");
//! assert_eq!(encode_key(&("acme corp", 7u64)), "acme%20corp:7");
//! ```
//!
//! A hand-written impl keeps the injectivity guarantee as long as the components
//! it writes determine the key (each component is escaped, so it cannot forge a
//! separator).

use std::borrow::Cow;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::prefix::prefix_problem;

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// Length of the hashed part of a long key: `%H` and 43 base64url characters.
const HASHED_TAIL_LEN: usize = 2 + 43;

/// A value that can be the key of a [`Cacheable`](crate::Cacheable) type.
///
/// Implemented for the integers, `bool`, `char`, strings, references, boxes and
/// tuples of up to six keys. See the [module docs](crate::key) for the exact
/// encoding and how to implement it for your own types.
pub trait CacheKey {
    /// Appends this key's encoded form to `out`.
    ///
    /// Everything written through [`KeyWriter::write_str`] and
    /// [`KeyWriter::write_bytes`] is escaped, so an implementation cannot
    /// produce an invalid memcached key.
    fn write_key(&self, out: &mut KeyWriter);
}

/// The buffer a [`CacheKey`] writes its encoded form into.
///
/// It escapes everything written to it (see the [module docs](crate::key)); the
/// only unescaped byte it can produce is the component separator `:` of
/// [`KeyWriter::write_separator`].
#[derive(Debug)]
pub struct KeyWriter {
    buf: String,
}

impl KeyWriter {
    fn with_buffer(buf: String) -> Self {
        KeyWriter { buf }
    }

    /// Appends `s` (its UTF-8 bytes), escaping the bytes memcached forbids,
    /// `%` and `:`.
    pub fn write_str(&mut self, s: &str) {
        self.write_bytes(s.as_bytes());
    }

    /// Appends raw bytes, escaping the bytes memcached forbids, `%` and `:`.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        self.buf.reserve(bytes.len());
        for &b in bytes {
            if needs_escape(b) {
                self.buf.push('%');
                self.buf.push(char::from(HEX[usize::from(b >> 4)]));
                self.buf.push(char::from(HEX[usize::from(b & 0x0f)]));
            } else {
                self.buf.push(char::from(b));
            }
        }
    }

    /// Appends the separator `:` between two components of a composite key.
    pub fn write_separator(&mut self) {
        self.buf.push(':');
    }

    /// Appends an integer in decimal (digits and `-` never need escaping).
    fn write_integer(&mut self, n: impl itoa::Integer) {
        // Digits and '-' need no escaping.
        self.buf.push_str(itoa::Buffer::new().format(n));
    }
}

/// Whether `b` must be percent-escaped in an encoded key.
fn needs_escape(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || b == b'%' || b == b':'
}

/// The encoded form of `key` alone, without prefix or hashing.
///
/// Useful to test a hand-written [`CacheKey`] impl, or to log keys.
///
/// ```
/// assert_eq!(memcache_typed::encode_key(&("a:b", -3i32)), "a%3Ab:-3");
/// ```
pub fn encode_key<K: CacheKey + ?Sized>(key: &K) -> String {
    let mut out = KeyWriter::with_buffer(String::new());
    key.write_key(&mut out);
    out.buf
}

/// The memcached key for `key` under `prefix`: `"{prefix}:{encoded key}"`, or its
/// hashed form `"{prefix}:%H{base64url(sha256)}"` when that would be longer than
/// `budget` bytes (see the [module docs](crate::key) for the exact rule).
///
/// `budget` is the number of bytes available for the key: normally
/// [`MAX_KEY_LEN`] minus the length of the client's key prefix. A budget larger
/// than [`MAX_KEY_LEN`] is treated as [`MAX_KEY_LEN`].
///
/// ```
/// use memcache_typed::full_key;
///
/// assert_eq!(full_key("user", &42u64, 250).unwrap(), "user:42");
/// assert_eq!(full_key("user", "ann lee", 250).unwrap(), "user:ann%20lee");
/// let long = "x".repeat(1000);
/// let hashed = full_key("user", long.as_str(), 250).unwrap();
/// assert!(hashed.starts_with("user:%H") && hashed.len() == 4 + 46);
/// ```
///
/// # Errors
///
/// [`Error::InvalidPrefix`] if `prefix` breaks the rules of [`check_prefix`];
/// [`Error::KeyTooLong`] if even the hashed form does not fit in `budget`.
pub fn full_key<K: CacheKey + ?Sized>(
    prefix: &str,
    key: &K,
    budget: usize,
) -> Result<String, Error> {
    check_prefix(prefix)?;
    let budget = budget.min(MAX_KEY_LEN);

    let mut buf = String::with_capacity(prefix.len() + 1 + 24);
    buf.push_str(prefix);
    buf.push(':');
    let mut out = KeyWriter::with_buffer(buf);
    key.write_key(&mut out);
    let unhashed = out.buf;
    if unhashed.len() <= budget {
        return Ok(unhashed);
    }

    let hashed_len = prefix.len() + 1 + HASHED_TAIL_LEN;
    if hashed_len > budget {
        return Err(Error::KeyTooLong {
            prefix_len: prefix.len(),
            budget,
        });
    }
    let digest = Sha256::digest(unhashed.as_bytes());
    let mut hashed = String::with_capacity(hashed_len);
    hashed.push_str(prefix);
    hashed.push_str(":%H");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest, &mut hashed);
    debug_assert_eq!(hashed.len(), hashed_len);
    Ok(hashed)
}

pub use crate::prefix::MAX_PREFIX_LEN;

/// Checks a key prefix against the rules every typed cache applies, and that
/// `#[derive(Cacheable)]` applies at compile time: not empty, printable ASCII
/// without whitespace or control characters, no `:` (the first `:` of a key ends
/// its prefix, so that prefix `user:1` with key `2` cannot meet prefix `user`
/// with key `(1, 2)`), at most [`MAX_PREFIX_LEN`] bytes.
///
/// ```
/// use memcache_typed::key::check_prefix;
///
/// assert!(check_prefix("app.user-v2").is_ok());
/// let error = check_prefix("user:1").unwrap_err();
/// assert!(error.to_string().contains("must not contain `:`"), "{error}");
/// ```
///
/// # Errors
///
/// [`Error::InvalidPrefix`], whose message says which rule the prefix breaks.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    match prefix_problem(prefix) {
        None => Ok(()),
        Some(_) => Err(Error::InvalidPrefix {
            prefix: prefix.to_owned(),
        }),
    }
}

macro_rules! integer_keys {
    ($($t:ty)*) => {$(
        impl CacheKey for $t {
            fn write_key(&self, out: &mut KeyWriter) {
                out.write_integer(*self);
            }
        }
    )*};
}

integer_keys!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

impl CacheKey for bool {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(if *self { "true" } else { "false" });
    }
}

impl CacheKey for char {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(self.encode_utf8(&mut [0; 4]));
    }
}

impl CacheKey for str {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(self);
    }
}

impl CacheKey for String {
    fn write_key(&self, out: &mut KeyWriter) {
        out.write_str(self);
    }
}

impl<K: CacheKey + ?Sized> CacheKey for &K {
    fn write_key(&self, out: &mut KeyWriter) {
        (**self).write_key(out);
    }
}

impl<K: CacheKey + ?Sized> CacheKey for Box<K> {
    fn write_key(&self, out: &mut KeyWriter) {
        (**self).write_key(out);
    }
}

impl<K: CacheKey + ToOwned + ?Sized> CacheKey for Cow<'_, K> {
    fn write_key(&self, out: &mut KeyWriter) {
        (**self).write_key(out);
    }
}

macro_rules! tuple_keys {
    ($($first:ident $($rest:ident)*;)*) => {$(
        impl<$first: CacheKey, $($rest: CacheKey),*> CacheKey for ($first, $($rest,)*) {
            #[allow(non_snake_case)]
            fn write_key(&self, out: &mut KeyWriter) {
                let ($first, $($rest,)*) = self;
                $first.write_key(out);
                $(
                    out.write_separator();
                    $rest.write_key(out);
                )*
            }
        }
    )*};
}

tuple_keys! {
    A;
    A B;
    A B C;
    A B C D;
    A B C D E;
    A B C D E F;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_single_keys() {
        let cases: &[(&dyn Fn() -> String, &str)] = &[
            (&|| encode_key("plain-key_1.2"), "plain-key_1.2"),
            (&|| encode_key("a b"), "a%20b"),
            (&|| encode_key("line\nbreak\r"), "line%0Abreak%0D"),
            (&|| encode_key("tab\there"), "tab%09here"),
            (&|| encode_key("nul\0"), "nul%00"),
            (&|| encode_key("del\x7f"), "del%7F"),
            (&|| encode_key("100%"), "100%25"),
            (&|| encode_key("a:b"), "a%3Ab"),
            (&|| encode_key("a%3Ab"), "a%253Ab"),
            (&|| encode_key("é"), "%C3%A9"),
            (&|| encode_key("🦀"), "%F0%9F%A6%80"),
            (&|| encode_key(""), ""),
            (&|| encode_key(&'é'), "%C3%A9"),
            (&|| encode_key(&' '), "%20"),
            (&|| encode_key(&String::from("x y")), "x%20y"),
            (&|| encode_key(&Box::<str>::from("b:x")), "b%3Ax"),
            (&|| encode_key(&Cow::Borrowed("c d")), "c%20d"),
            (&|| encode_key(&0u8), "0"),
            (&|| encode_key(&u64::MAX), "18446744073709551615"),
            (&|| encode_key(&i64::MIN), "-9223372036854775808"),
            (&|| encode_key(&-5i8), "-5"),
            (
                &|| encode_key(&u128::MAX),
                "340282366920938463463374607431768211455",
            ),
            (
                &|| encode_key(&i128::MIN),
                "-170141183460469231731687303715884105728",
            ),
            (&|| encode_key(&42usize), "42"),
            (&|| encode_key(&-42isize), "-42"),
            (&|| encode_key(&true), "true"),
            (&|| encode_key(&false), "false"),
            (&|| encode_key(&&&7u16), "7"),
        ];
        for (i, (encode, expected)) in cases.iter().enumerate() {
            assert_eq!(encode(), *expected, "case {i}");
        }
    }

    #[test]
    fn encodes_composite_keys() {
        assert_eq!(encode_key(&(1u8,)), "1");
        assert_eq!(encode_key(&("a:b", "c")), "a%3Ab:c");
        assert_eq!(encode_key(&("a", "b:c")), "a:b%3Ac");
        assert_eq!(encode_key(&("", "")), ":");
        assert_eq!(encode_key(&("", "a")), ":a");
        assert_eq!(encode_key(&("a", "")), "a:");
        assert_eq!(
            encode_key(&(1u8, -2i16, "x y", 'z', true, 6u128)),
            "1:-2:x%20y:z:true:6"
        );
        assert_eq!(encode_key(&((1u8, 2u8), "c")), "1:2:c");
    }

    #[test]
    fn every_byte_is_escaped_or_allowed() {
        for b in 0u8..=255 {
            let encoded = {
                let mut w = KeyWriter::with_buffer(String::new());
                w.write_bytes(&[b]);
                w.buf
            };
            let allowed = (0x21..0x7f).contains(&b) && b != b'%' && b != b':';
            if allowed {
                assert_eq!(encoded.as_bytes(), [b]);
            } else {
                assert_eq!(encoded, format!("%{b:02X}"));
            }
            assert!(encoded.bytes().all(|c| (0x21..0x7f).contains(&c)));
        }
    }

    #[test]
    fn full_key_prefixes_and_hashes() {
        assert_eq!(full_key("user", &42u64, 250).unwrap(), "user:42");
        assert_eq!(full_key("user", "", 250).unwrap(), "user:");
        // Exactly at the budget: not hashed; one byte over: hashed.
        let k = "k".repeat(245);
        assert_eq!(full_key("user", k.as_str(), 250).unwrap().len(), 250);
        let k = "k".repeat(246);
        let hashed = full_key("user", k.as_str(), 250).unwrap();
        assert!(hashed.starts_with("user:%H"));
        assert_eq!(hashed.len(), 4 + 46);
        // The budget shrinks with the client's prefix.
        let k = "k".repeat(245);
        assert!(full_key("user", k.as_str(), 240)
            .unwrap()
            .starts_with("user:%H"));
        // Budgets above 250 are capped.
        let k = "k".repeat(300);
        assert!(full_key("user", k.as_str(), 10_000)
            .unwrap()
            .starts_with("user:%H"));
    }

    #[test]
    fn hashed_key_golden() {
        // sha256("user:" + "x" * 1000) in base64url, checked with Python:
        // base64.urlsafe_b64encode(hashlib.sha256(b"user:" + b"x" * 1000).digest()).rstrip(b"=")
        let long = "x".repeat(1000);
        assert_eq!(
            full_key("user", long.as_str(), 250).unwrap(),
            "user:%HEcDEQbKPoyziTB76RRX2G94P7u1dY9ygWSHL4gNsXbY"
        );
    }

    #[test]
    fn full_key_errors() {
        assert!(matches!(
            full_key("", &1u8, 250),
            Err(Error::InvalidPrefix { .. })
        ));
        assert!(matches!(
            full_key("a b", &1u8, 250),
            Err(Error::InvalidPrefix { .. })
        ));
        assert!(matches!(
            full_key("é", &1u8, 250),
            Err(Error::InvalidPrefix { .. })
        ));
        assert!(matches!(
            full_key("user:1", &2u8, 250),
            Err(Error::InvalidPrefix { .. })
        ));
        let prefix = "p".repeat(200);
        // 200 + 46 = 246 fits in 250 ...
        assert_eq!(
            full_key(&prefix, "x".repeat(60).as_str(), 250)
                .unwrap()
                .len(),
            246
        );
        // ... but not in 240.
        assert!(matches!(
            full_key(&prefix, "x".repeat(60).as_str(), 240),
            Err(Error::KeyTooLong {
                prefix_len: 200,
                budget: 240
            })
        ));
        // A short key still fits without hashing.
        assert_eq!(full_key(&prefix, &1u8, 240).unwrap().len(), 202);
    }
}
