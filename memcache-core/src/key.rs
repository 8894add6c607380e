//! The one place keys are validated and prefixed.
//!
//! memcached's ASCII protocol separates tokens with spaces and ends commands with `\r\n`, so a
//! key with whitespace or control bytes would change the command itself (`"k\r\nflush_all"`
//! would run `flush_all`). Every key is checked here before any byte of its command is
//! encoded, and a batch is checked whole before any of it is encoded.

use crate::error::{Error, IllegalInput, KeyRule};

/// memcached's key length limit, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// [`BYTE_CLASS`] bit: whitespace, control byte or DEL, never allowed in a key.
const CONTROL: u8 = 1;
/// [`BYTE_CLASS`] bit: non-ASCII, allowed only with `allow_unicode_keys`.
const NON_ASCII: u8 = 2;

/// The class of every byte value, for the key check.
static BYTE_CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut b = 0;
    while b < 256 {
        class[b] = if b <= 0x20 || b == 0x7f {
            CONTROL
        } else if b >= 0x80 {
            NON_ASCII
        } else {
            0
        };
        b += 1;
    }
    class
};

/// Whether any of the eight bytes of `word` is refused in a key: whitespace or control
/// (`<= 0x20`), DEL, or (unless `allow_unicode`) non-ASCII. Exact as a yes/no answer (the
/// usual "has less than" and "has zero byte" word tricks, valid for bounds up to 0x80).
fn word_refused(word: u64, allow_unicode: bool) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_0x21 = word.wrapping_sub(ONES * 0x21) & !word & HIGHS;
    let xor_del = word ^ (ONES * 0x7f);
    let del = xor_del.wrapping_sub(ONES) & !xor_del & HIGHS;
    let high = if allow_unicode { 0 } else { word & HIGHS };
    below_0x21 | del | high != 0
}

/// The key rules of one client: its prefix and whether non-ASCII bytes are allowed.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRules {
    prefix: Box<[u8]>,
    allow_unicode: bool,
}

impl KeyRules {
    /// Rules with this prefix; the prefix itself must obey the byte rules.
    pub(crate) fn new(prefix: &[u8], allow_unicode: bool) -> Result<Self, Error> {
        let rules = KeyRules {
            prefix: Box::default(),
            allow_unicode,
        };
        if !prefix.is_empty() {
            rules.check(prefix)?;
        }
        Ok(KeyRules {
            prefix: prefix.into(),
            allow_unicode,
        })
    }

    /// The prefix put in front of every key.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Checks `key` (without the prefix) against every rule.
    pub(crate) fn check(&self, key: &[u8]) -> Result<(), Error> {
        let rule = if key.is_empty() {
            Some(KeyRule::Empty)
        } else if self.prefix.len() + key.len() > MAX_KEY_LEN {
            Some(KeyRule::TooLong {
                len: self.prefix.len() + key.len(),
            })
        } else {
            self.bad_byte(key)
        };
        match rule {
            None => Ok(()),
            Some(rule) => Err(Error::IllegalInput(IllegalInput::Key {
                key: String::from_utf8_lossy(key).into_owned(),
                rule,
            })),
        }
    }

    fn bad_byte(&self, key: &[u8]) -> Option<KeyRule> {
        let refused = if self.allow_unicode {
            CONTROL
        } else {
            CONTROL | NON_ASCII
        };
        // The common case of a good key: eight bytes at a time, then the tail through the
        // table, without branches per byte.
        let mut chunks = key.chunks_exact(8);
        let words_ok = chunks.by_ref().all(|chunk| {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            !word_refused(word, self.allow_unicode)
        });
        let tail = chunks.remainder();
        if words_ok
            && tail
                .iter()
                .fold(0, |seen, &b| seen | BYTE_CLASS[usize::from(b)])
                & refused
                == 0
        {
            return None;
        }
        let offset = key
            .iter()
            .position(|&b| BYTE_CLASS[usize::from(b)] & refused != 0)?;
        let byte = key[offset];
        Some(if byte >= 0x80 {
            KeyRule::NonAscii { byte, offset }
        } else {
            KeyRule::ForbiddenByte { byte, offset }
        })
    }

    /// Length of `key` on the wire, prefix included.
    pub(crate) fn wire_len(&self, key: &[u8]) -> usize {
        self.prefix.len() + key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time check agrees with the byte table for every byte value at every
    /// position of a word, with and without unicode keys, among good neighbours of every
    /// kind (the word tricks must not be fooled by borrows from high or low bytes).
    #[test]
    fn word_check_agrees_with_the_table() {
        for allow_unicode in [false, true] {
            let refused = if allow_unicode {
                CONTROL
            } else {
                CONTROL | NON_ASCII
            };
            for filler in [b'a', b'~', b'!', 0xc3, 0xff] {
                for byte in 0..=255u8 {
                    for at in 0..8 {
                        let mut word = [filler; 8];
                        word[at] = byte;
                        let expected = word
                            .iter()
                            .any(|&b| BYTE_CLASS[usize::from(b)] & refused != 0);
                        let got = word_refused(u64::from_le_bytes(word), allow_unicode);
                        assert_eq!(got, expected, "{word:02x?} unicode={allow_unicode}");
                    }
                }
            }
        }
    }

    fn rule(rules: &KeyRules, key: &[u8]) -> Option<KeyRule> {
        match rules.check(key) {
            Ok(()) => None,
            Err(Error::IllegalInput(IllegalInput::Key { rule, .. })) => Some(rule),
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn key_rules_table() {
        let plain = KeyRules::new(b"", false).unwrap();
        let long = vec![b'a'; 250];
        let too_long = vec![b'a'; 251];
        let cases: &[(&[u8], Option<KeyRule>)] = &[
            (b"user:42", None),
            (&long, None),
            (&too_long, Some(KeyRule::TooLong { len: 251 })),
            (b"", Some(KeyRule::Empty)),
            (
                b"a b",
                Some(KeyRule::ForbiddenByte {
                    byte: b' ',
                    offset: 1,
                }),
            ),
            (
                b"a\tb",
                Some(KeyRule::ForbiddenByte {
                    byte: b'\t',
                    offset: 1,
                }),
            ),
            (
                b"a\rb",
                Some(KeyRule::ForbiddenByte {
                    byte: b'\r',
                    offset: 1,
                }),
            ),
            (
                b"a\nb",
                Some(KeyRule::ForbiddenByte {
                    byte: b'\n',
                    offset: 1,
                }),
            ),
            (b"\0", Some(KeyRule::ForbiddenByte { byte: 0, offset: 0 })),
            (
                b"a\x7f",
                Some(KeyRule::ForbiddenByte {
                    byte: 0x7f,
                    offset: 1,
                }),
            ),
            (
                b"k\r\nflush_all",
                Some(KeyRule::ForbiddenByte {
                    byte: b'\r',
                    offset: 1,
                }),
            ),
            (
                "caf\u{e9}".as_bytes(),
                Some(KeyRule::NonAscii {
                    byte: 0xc3,
                    offset: 3,
                }),
            ),
            (b"~!@#$%^&*()_+{}|:\"<>?", None),
        ];
        for (key, want) in cases {
            assert_eq!(
                rule(&plain, key),
                *want,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn prefix_counts_towards_the_limit() {
        let rules = KeyRules::new(b"app:", false).unwrap();
        assert_eq!(rule(&rules, &[b'a'; 246]), None);
        assert_eq!(
            rule(&rules, &[b'a'; 247]),
            Some(KeyRule::TooLong { len: 251 })
        );
        assert_eq!(rules.wire_len(b"abc"), 7);
    }

    #[test]
    fn unicode_allowed_when_asked() {
        let rules = KeyRules::new(b"", true).unwrap();
        assert_eq!(rule(&rules, "caf\u{e9}".as_bytes()), None);
        assert!(rule(&rules, "caf\u{e9} x".as_bytes()).is_some());
    }

    #[test]
    fn bad_prefix_is_refused() {
        assert!(KeyRules::new(b"a b", false).is_err());
    }
}
