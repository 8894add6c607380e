//! Matching the hits of a classic retrieval reply to the keys that were asked for, and the
//! check that a reply can belong to its request at all.
//!
//! Classic `VALUE` lines name their key; a hit for a key that was not asked for means the
//! stream is out of step (a desync) and the connection cannot be trusted any more. The
//! check is taken from the request line itself ([`KeyCheck::of_request`]), so every
//! retrieval command gets it whatever builds the line.

use super::response::{Item, Response};
use crate::error::{Error, Result};

/// What a classic retrieval reply must agree with: the keys its request asked for, as
/// sent (with the client's prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// Not a classic retrieval: nothing to check.
    None,
    /// One key: its hash (a hit for another key is refused; 64 bits leave no room for an
    /// accidental match).
    One(u64),
    /// Several keys: a hit must answer one of them, and the hits are lined up with them.
    Many(Box<KeyList>),
}

/// The keys of a multi-key request, end to end, and where each ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList {
    keys: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyList {
    /// Each key, in the order asked.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let key = &self.keys[start..end];
            start = end;
            key
        })
    }
}

impl KeyCheck {
    /// The check for the request line `line` (`get|gets <key>*\r\n` or
    /// `gat|gats <exptime> <key>*\r\n`), and how many keys it asks for. `None` when `line`
    /// is no classic retrieval.
    pub fn of_request(line: &[u8]) -> Option<(KeyCheck, u32)> {
        let line = line.strip_suffix(b"\r\n")?;
        let keys = match line {
            [b'g', b'e', b't', b' ', rest @ ..] => rest,
            [b'g', b'e', b't', b's', b' ', rest @ ..] => rest,
            [b'g', b'a', b't', b' ', rest @ ..] | [b'g', b'a', b't', b's', b' ', rest @ ..] => {
                let at = memchr::memchr(b' ', rest)?;
                &rest[at + 1..]
            }
            _ => return None,
        };
        if keys.is_empty() {
            return None;
        }
        // One key (the common case): no list to build.
        if !keys.contains(&b' ') {
            return Some((KeyCheck::One(key_hash(keys)), 1));
        }
        let mut list = KeyList {
            keys: Vec::with_capacity(keys.len()),
            ends: Vec::new(),
        };
        for key in keys.split(|&b| b == b' ') {
            list.keys.extend_from_slice(key);
            list.ends.push(list.keys.len());
        }
        let count = u32::try_from(list.ends.len()).ok()?;
        Some((KeyCheck::Many(Box::new(list)), count))
    }

    /// Turns `response` into what the caller receives: a single hit checked to be for the
    /// key asked; several hits lined up with the keys ([`Response::Found`]); a value that
    /// was over the client's limit (`max_value`) as [`Error::ValueTooLarge`]. Nothing to do
    /// for [`KeyCheck::None`] (the common case, which costs nothing).
    ///
    /// # Errors
    /// When the reply cannot belong to the request: a hit for a key that was not asked for,
    /// or a reply of another kind.
    #[inline]
    pub fn apply(&self, response: &mut Response, max_value: usize) -> Result<()> {
        match self {
            KeyCheck::None => Ok(()),
            check => check.verify(response, max_value),
        }
    }

    fn verify(&self, response: &mut Response, max_value: usize) -> Result<()> {
        let items = match (self, &mut *response) {
            (KeyCheck::None, _) | (_, Response::Failed(_)) => return Ok(()),
            (KeyCheck::One(hash), Response::Value(hit)) => {
                return match hit {
                    Some(item) if key_hash(&item.key) != *hash => Err(desync()),
                    Some(Item {
                        too_large: Some(size),
                        ..
                    }) => {
                        *response = too_large(*size, max_value);
                        Ok(())
                    }
                    _ => Ok(()),
                };
            }
            (KeyCheck::Many(_), Response::Value(hit)) => hit.take().into_iter().collect(),
            (KeyCheck::Many(_), Response::Values(items)) => std::mem::take(items),
            (_, other) => return Err(wrong_kind(other)),
        };
        let KeyCheck::Many(keys) = self else {
            return Err(wrong_kind(response));
        };
        let keys: Vec<&[u8]> = keys.iter().collect();
        let found = line_up(b"", &keys, items)?;
        *response = match found.iter().flatten().find_map(|item| item.too_large) {
            Some(size) => too_large(size, max_value),
            None => Response::Found(found),
        };
        Ok(())
    }
}

/// The hash a [`KeyCheck::One`] keeps of its key: 64 bits, eight bytes at a time (keys are
/// short; this runs for every classic single-key get). Not for adversaries: it tells a
/// reply for another key from the right one, which a server gets wrong by accident.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    let mut hash = mix(0, key.len() as u64);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = mix(hash, u64::from_le_bytes(word));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(hash, u64::from_le_bytes(tail))
}

fn too_large(size: u64, max: usize) -> Response {
    Response::Failed(Error::ValueTooLarge { size, max })
}

fn desync() -> Error {
    Error::UnknownResponse("a value for a key that was not requested".into())
}

fn wrong_kind(response: &Response) -> Error {
    let mut text = format!("{response:?}");
    text.truncate(120);
    Error::UnknownResponse(format!("a reply of the wrong kind for a retrieval: {text}"))
}

/// Puts each hit at the index of the key it answers. memcached answers in request order, so
/// a cursor finds each key in one pass; a hit for a key that was not asked for is an error.
pub fn line_up<K: AsRef<[u8]>>(
    prefix: &[u8],
    keys: &[K],
    items: Vec<Item>,
) -> Result<Vec<Option<Item>>> {
    let is_key = |key: &[u8], wire: &[u8]| {
        wire.len() == prefix.len() + key.len() && wire.starts_with(prefix) && wire.ends_with(key)
    };
    let mut found: Vec<Option<Item>> = keys.iter().map(|_| None).collect();
    let mut cursor = 0;
    for item in items {
        let answers = |i: &usize| is_key(keys[*i].as_ref(), &item.key);
        // the next key in order, then the others (a key asked for twice, or a proxy that
        // reorders)
        let index = Some(cursor)
            .filter(|i| *i < keys.len() && answers(i))
            .or_else(|| (cursor..keys.len()).chain(0..cursor).find(answers))
            .ok_or_else(desync)?;
        cursor = index + 1;
        found[index] = Some(item);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn item(key: &str) -> Item {
        Item {
            key: Bytes::copy_from_slice(key.as_bytes()),
            flags: 0,
            cas: None,
            data: Bytes::new(),
            lease: 0,
            too_large: None,
        }
    }

    #[test]
    fn hits_line_up_with_keys() {
        let keys = ["a", "b", "a", "c"];
        let found = line_up(b"p:", &keys, vec![item("p:a"), item("p:a"), item("p:c")]).unwrap();
        let present: Vec<bool> = found.iter().map(Option::is_some).collect();
        assert_eq!(present, [true, false, true, true]);
        // out of order still lines up
        let found = line_up(b"", &keys, vec![item("c"), item("b")]).unwrap();
        assert!(found[1].is_some() && found[3].is_some());
        // a key nobody asked for is an error
        assert!(line_up(b"", &keys, vec![item("zzz")]).is_err());
        assert!(line_up(b"p:", &keys, vec![item("a")]).is_err());
    }

    #[test]
    fn key_hashes_tell_keys_apart() {
        let keys: [&[u8]; 8] = [
            b"",
            b"k",
            b"k\0",
            b"k:12345678:abcdefgh",
            b"k:12345679:abcdefgh",
            b"abcdefgh",
            b"abcdefgi",
            b"abcdefgh\0",
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(key_hash(a), key_hash(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn checks_come_from_the_request_line() {
        let (one, n) = KeyCheck::of_request(b"get p:a\r\n").unwrap();
        assert_eq!((one.clone(), n), (KeyCheck::One(key_hash(b"p:a")), 1));
        assert_eq!(
            KeyCheck::of_request(b"gats 30 k\r\n").unwrap().0,
            KeyCheck::One(key_hash(b"k"))
        );
        let (many, n) = KeyCheck::of_request(b"gets a bb a\r\n").unwrap();
        assert_eq!(n, 3);
        let KeyCheck::Many(list) = &many else {
            panic!("{many:?}")
        };
        assert_eq!(list.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"a"]);
        for no in [
            &b"set k 0 0 1\r\n"[..],
            b"get\r\n",
            b"get \r\n",
            b"gat 1\r\n",
            b"get k",
        ] {
            assert_eq!(KeyCheck::of_request(no), None, "{no:?}");
        }

        let apply = |check: &KeyCheck, mut response: Response| {
            check.apply(&mut response, 1).map(|()| response)
        };
        // one key: its own hit passes, another's is a desync, an oversized one fails alone
        assert!(apply(&one, Response::Value(Some(item("p:a")))).is_ok());
        assert!(apply(&one, Response::Value(Some(item("p:b")))).is_err());
        let mut big = item("p:a");
        big.too_large = Some(99);
        assert!(matches!(
            apply(&one, Response::Value(Some(big.clone()))),
            Ok(Response::Failed(Error::ValueTooLarge { size: 99, max: 1 }))
        ));
        // many keys: lined up, or a desync, or too large
        let got = apply(&many, Response::Values(vec![item("a"), item("bb")])).unwrap();
        assert!(matches!(&got, Response::Found(f) if f.len() == 3 && f[2].is_none()));
        assert!(apply(&many, Response::Values(vec![item("c")])).is_err());
        big.key = Bytes::from_static(b"bb");
        assert!(matches!(
            apply(&many, Response::Value(Some(big))),
            Ok(Response::Failed(Error::ValueTooLarge { .. }))
        ));
        assert!(apply(&many, Response::Number(1)).is_err());
    }
}
