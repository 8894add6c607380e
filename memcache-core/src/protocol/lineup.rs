//! Matching the hits of a multi-key reply to the keys that were asked for.

use super::response::Item;
use crate::error::{Error, Result};

pub(crate) fn is_key(prefix: &[u8], key: &[u8], wire: &[u8]) -> bool {
    wire.len() == prefix.len() + key.len() && wire.starts_with(prefix) && wire.ends_with(key)
}

/// Puts each hit at the index of the key it answers. memcached answers in request order, so
/// a cursor finds each key in one pass; a hit for a key that was not asked for is an error.
pub(crate) fn line_up<K: AsRef<[u8]>>(
    prefix: &[u8],
    keys: &[K],
    items: Vec<Item>,
) -> Result<Vec<Option<Item>>> {
    let mut found: Vec<Option<Item>> = keys.iter().map(|_| None).collect();
    let mut cursor = 0;
    for item in items {
        let answers = |i: &usize| is_key(prefix, keys[*i].as_ref(), &item.key);
        // the next key in order, then the others (a key asked for twice, or a proxy that
        // reorders)
        let index = Some(cursor)
            .filter(|i| *i < keys.len() && answers(i))
            .or_else(|| (cursor..keys.len()).chain(0..cursor).find(answers))
            .ok_or_else(|| {
                Error::UnknownResponse("a value for a key that was not requested".into())
            })?;
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
}
