//! Rendezvous (highest random weight) placement, as pymemcache's `HashClient` does it: each
//! key goes to the node whose MurmurHash3 (x86, 32 bits, seed 0) of `"{node}-{key}"` is
//! highest; on equal scores the node whose name sorts last wins, so the order of the list
//! does not matter.
//!
//! pymemcache hashes a Python `str`, taking each character's code point modulo 256 (its
//! `ord() & 0xff`): for ASCII keys that is the key's bytes. A non-ASCII key is hashed the
//! same way from its UTF-8 text, so that a Rust and a Python service agree on `str` keys
//! too; bytes that are not UTF-8 are hashed as they are.

/// MurmurHash3 x86_32 of `data` with `seed`, the reference algorithm.
#[cfg(test)]
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut hash = Murmur3::new(seed);
    hash.write(data);
    hash.finish()
}

/// MurmurHash3 x86_32 fed in parts (no buffer: `"{node}-{key}"` is hashed without being
/// built; a node's `"{node}-"` is hashed once, and its state copied for each key).
#[derive(Debug, Clone, Copy)]
struct Murmur3 {
    h1: u32,
    /// Bytes waiting for a whole 4-byte block.
    tail: [u8; 4],
    tail_len: usize,
    len: u32,
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix_k1(k1: u32) -> u32 {
    k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

impl Murmur3 {
    fn new(seed: u32) -> Self {
        Murmur3 {
            h1: seed,
            tail: [0; 4],
            tail_len: 0,
            len: 0,
        }
    }

    fn block(&mut self, block: [u8; 4]) {
        self.h1 ^= mix_k1(u32::from_le_bytes(block));
        self.h1 = self
            .h1
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    fn write_byte(&mut self, byte: u8) {
        self.tail[self.tail_len] = byte;
        self.tail_len += 1;
        self.len = self.len.wrapping_add(1);
        if self.tail_len == 4 {
            self.block(self.tail);
            self.tail_len = 0;
        }
    }

    fn write(&mut self, mut data: &[u8]) {
        while self.tail_len != 0 && !data.is_empty() {
            self.write_byte(data[0]);
            data = &data[1..];
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            self.block([block[0], block[1], block[2], block[3]]);
            self.len = self.len.wrapping_add(4);
        }
        for &byte in blocks.remainder() {
            self.write_byte(byte);
        }
    }

    fn finish(mut self) -> u32 {
        if self.tail_len > 0 {
            let mut k1 = 0u32;
            for (i, &byte) in self.tail[..self.tail_len].iter().enumerate() {
                k1 |= u32::from(byte) << (8 * i);
            }
            self.h1 ^= mix_k1(k1);
        }
        let mut h = self.h1 ^ self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// One node of the ring: its name (as pymemcache's `"{host}:{port}"`) and the hash of
/// `"{name}-"`, the start of every key's score.
#[derive(Debug, Clone)]
pub struct Node {
    name: Vec<u8>,
    start: Murmur3,
}

impl Node {
    /// The node named `name`.
    pub fn new(name: Vec<u8>) -> Self {
        let mut start = Murmur3::new(0);
        start.write(&name);
        start.write(b"-");
        Node { name, start }
    }

    /// Its score for `key` (hashed as pymemcache hashes a `str`: see [`Hashed`]).
    fn score(&self, key: &Hashed<'_>) -> u32 {
        let mut hash = self.start;
        match key {
            Hashed::Bytes(bytes) => hash.write(bytes),
            Hashed::Chars(text) => {
                for c in text.chars() {
                    hash.write_byte(c as u32 as u8);
                }
            }
        }
        hash.finish()
    }
}

/// A key as its scores hash it: its bytes (ASCII, or not UTF-8), or the characters of a
/// non-ASCII text, each as its code point modulo 256 (see the module docs). Decided once
/// per key, not once per node.
enum Hashed<'k> {
    Bytes(&'k [u8]),
    Chars(&'k str),
}

impl<'k> Hashed<'k> {
    fn new(key: &'k [u8]) -> Self {
        if key.is_ascii() {
            return Hashed::Bytes(key);
        }
        match std::str::from_utf8(key) {
            Ok(text) => Hashed::Chars(text),
            Err(_) => Hashed::Bytes(key),
        }
    }
}

/// The score of the node named `node` for `key`: MurmurHash3 of `"{node}-{key}"`, the key
/// hashed as pymemcache hashes a `str` (see the module docs).
#[cfg(test)]
pub fn score(node: &[u8], key: &[u8]) -> u32 {
    Node::new(node.to_vec()).score(&Hashed::new(key))
}

/// The index of the node `key` goes to among `nodes`, skipping those `skip` says are out
/// of the ring. `None` when no node is left.
pub fn locate(nodes: &[Node], key: &[u8], skip: impl Fn(usize) -> bool) -> Option<usize> {
    let key = Hashed::new(key);
    let mut best: Option<(u32, usize)> = None;
    for (index, node) in nodes.iter().enumerate() {
        if skip(index) {
            continue;
        }
        let score = node.score(&key);
        best = match best {
            Some((high, winner))
                if high > score || (high == score && nodes[winner].name >= node.name) =>
            {
                Some((high, winner))
            }
            _ => Some((score, index)),
        };
    }
    best.map(|(_, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of MurmurHash3 x86_32 (from its test suite and the ones
    /// widely published), and pymemcache's own `murmur3_32` for the same inputs.
    #[test]
    fn murmur3_reference_vectors() {
        let cases: [(&[u8], u32, u32); 10] = [
            (b"", 0, 0),
            (b"", 1, 0x514e_28b7),
            (b"", 0xffff_ffff, 0x81f1_6f39),
            (b"\0\0\0\0", 0, 0x2362_f9de),
            (b"aaaa", 0x9747_b28c, 0x5a97_808a),
            (b"aaa", 0x9747_b28c, 0x283e_0130),
            (b"aa", 0x9747_b28c, 0x5d21_1726),
            (b"a", 0x9747_b28c, 0x7fa0_9ea6),
            (b"Hello, world!", 0x9747_b28c, 0x2488_4cba),
            (
                b"The quick brown fox jumps over the lazy dog",
                0x9747_b28c,
                0x2fa8_26cd,
            ),
        ];
        for (data, seed, want) in cases {
            assert_eq!(murmur3_32(data, seed), want, "{data:?} seed {seed:#x}");
        }
    }

    #[test]
    fn fed_in_parts_is_the_same_hash() {
        let data = b"127.0.0.1:11211-some:longer/key_0123456789";
        let whole = murmur3_32(data, 0);
        for split in 0..=data.len() {
            let mut hash = Murmur3::new(0);
            hash.write(&data[..split]);
            hash.write(&data[split..]);
            assert_eq!(hash.finish(), whole, "split at {split}");
        }
        assert_eq!(
            score(b"127.0.0.1:11211", b"some:longer/key_0123456789"),
            murmur3_32(data, 0)
        );
    }

    #[test]
    fn the_highest_score_wins_whatever_the_order() {
        let nodes: Vec<Node> = ["a:1", "b:2", "c:3"]
            .iter()
            .map(|n| Node::new(n.as_bytes().to_vec()))
            .collect();
        let mut reversed = nodes.clone();
        reversed.reverse();
        for i in 0..1000 {
            let key = format!("key-{i}");
            let one = locate(&nodes, key.as_bytes(), |_| false).unwrap();
            let other = locate(&reversed, key.as_bytes(), |_| false).unwrap();
            assert_eq!(nodes[one].name, reversed[other].name, "{key}");
            let best = nodes
                .iter()
                .map(|n| score(&n.name, key.as_bytes()))
                .max()
                .unwrap();
            assert_eq!(score(&nodes[one].name, key.as_bytes()), best);
        }
        assert_eq!(locate(&nodes, b"k", |_| true), None);
        // Skipping the winner hands the key to the next best.
        let winner = locate(&nodes, b"k", |_| false).unwrap();
        let next = locate(&nodes, b"k", |i| i == winner).unwrap();
        assert_ne!(next, winner);
    }

    /// A non-ASCII `str` key is hashed as pymemcache's pure-Python murmur3 hashes it: each
    /// character's code point modulo 256.
    #[test]
    fn unicode_keys_hash_like_pymemcache() {
        let by_chars: Vec<u8> = "caf\u{e9}-\u{1f600}"
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        let mut expected = b"n-".to_vec();
        expected.extend_from_slice(&by_chars);
        assert_eq!(
            score(b"n", "caf\u{e9}-\u{1f600}".as_bytes()),
            murmur3_32(&expected, 0)
        );
        // bytes that are not UTF-8 are hashed as they are
        assert_eq!(score(b"n", b"\xff\xfe"), murmur3_32(b"n-\xff\xfe", 0));
    }
}
