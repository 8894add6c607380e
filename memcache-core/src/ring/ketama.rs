//! Ketama placement as libmemcached's `ketama_weighted` and twemproxy's `distribution:
//! ketama, hash: md5` build it (the same continuum, point for point):
//!
//! - each server gets `floor(weight / total_weight * 160 / 4 * servers + 1e-10) * 4`
//!   points, computed in `f32` (as both C sources do: `f64` places about 1% of the keys
//!   elsewhere with unequal weights);
//! - its points come from the MD5 of `"{name}-{i}"` for `i` in `0..points / 4`, four
//!   little-endian 32-bit words each, where `name` is the server's explicit node name if it
//!   has one, else `"{host}"` when its port is 11211 and `"{host}:{port}"` otherwise (the
//!   host as written, never resolved);
//! - a key's hash is the first four bytes of its MD5, little-endian; the key goes to the
//!   first point at or after it, wrapping around, with points of equal value in the order
//!   of their servers.

use md5::{Digest, Md5};

/// The points one server gets for every 1/n of the total weight.
const POINTS_PER_SERVER: f32 = 160.0;

/// One server as the continuum sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KetamaNode {
    /// What its points are named after (see the module docs).
    pub name: Vec<u8>,
    /// Its weight (at least 1).
    pub weight: u32,
}

/// The continuum: every point's value and the index of its server, sorted by value.
#[derive(Debug, Clone, Default)]
pub struct Continuum {
    points: Vec<(u32, u32)>,
}

/// The first four bytes of the MD5 of `parts` one after the other, little-endian: a key's
/// place on the ring (the parts: the client's key prefix, then the key).
pub fn key_hash(parts: &[&[u8]]) -> u32 {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    let digest = md5.finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl Continuum {
    /// The continuum of `nodes`, leaving out those `skip` says are out (their weights do not
    /// count either: the others share the ring, as after libmemcached's auto-eject).
    pub fn new(nodes: &[KetamaNode], skip: impl Fn(usize) -> bool) -> Self {
        let live: Vec<usize> = (0..nodes.len()).filter(|&i| !skip(i)).collect();
        let total: u64 = live.iter().map(|&i| u64::from(nodes[i].weight)).sum();
        let mut points = Vec::new();
        for &index in &live {
            let node = &nodes[index];
            let pct = node.weight as f32 / total as f32;
            // float arithmetic as in C: `pct * 160 / 4 * (float)n`, then `+ 0.0000000001`
            // (a double), converted back to float and floored
            let hashes =
                ((pct * POINTS_PER_SERVER / 4.0 * live.len() as f32) as f64 + 1e-10) as f32;
            let hashes = hashes.floor() as u32;
            let mut name = Vec::with_capacity(node.name.len() + 12);
            for i in 0..hashes {
                name.clear();
                name.extend_from_slice(&node.name);
                name.push(b'-');
                name.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                let digest = Md5::digest(&name);
                for word in digest.chunks_exact(4) {
                    let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                    points.push((value, index as u32));
                }
            }
        }
        // by value, then by server: a stable order for the (rare) equal values
        points.sort_unstable();
        Continuum { points }
    }

    /// The index of the server a key whose [`key_hash`] is `hash` goes to; `None` for an
    /// empty continuum.
    pub fn locate(&self, hash: u32) -> Option<usize> {
        let at = self.points.partition_point(|&(value, _)| value < hash);
        let (_, index) = self.points.get(at).or_else(|| self.points.first())?;
        Some(*index as usize)
    }

    /// How many points it has.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(specs: &[(&str, u32)]) -> Vec<KetamaNode> {
        specs
            .iter()
            .map(|&(name, weight)| KetamaNode {
                name: name.as_bytes().to_vec(),
                weight,
            })
            .collect()
    }

    #[test]
    fn md5_key_hash() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(key_hash(&[b""]), 0xd98c_1dd4);
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(key_hash(&[b"a"]), 0xb975_c10c);
        // the parts are hashed as one string
        assert_eq!(key_hash(&[b"app:", b"k"]), key_hash(&[b"app:k"]));
        assert_eq!(key_hash(&[b"", b"a"]), key_hash(&[b"a"]));
    }

    #[test]
    fn equal_weights_give_160_points_each() {
        let ring = Continuum::new(&nodes(&[("a", 1), ("b", 1), ("c", 1)]), |_| false);
        assert_eq!(ring.len(), 480);
        let ring = Continuum::new(&nodes(&[("a", 5), ("b", 5)]), |_| false);
        assert_eq!(ring.len(), 320);
    }

    /// Unequal weights, in f32 as the C code: 1, 3, 7, 7, 7 over 25 give 28, 92, 224, 224
    /// and 224 points (`0.04f32 * 160 / 4 * 5` is just under 8, floored to 7 hashes; in
    /// f64 it is just over, and the counts would be 32, 96, 224, 224, 224: the difference
    /// DESIGN §6 warns of).
    #[test]
    fn unequal_weights_share_the_points() {
        let ring = Continuum::new(
            &nodes(&[("a", 1), ("b", 3), ("c", 7), ("d", 7), ("e", 7)]),
            |_| false,
        );
        let mut counts = [0; 5];
        for &(_, index) in &ring.points {
            counts[index as usize] += 1;
        }
        assert_eq!(counts, [28, 92, 224, 224, 224]);
    }

    #[test]
    fn keys_go_to_the_first_point_at_or_after_them() {
        let ring = Continuum::new(&nodes(&[("a", 1), ("b", 1)]), |_| false);
        for i in 0..1000 {
            let key = format!("key-{i}");
            let hash = key_hash(&[key.as_bytes()]);
            let expected = ring
                .points
                .iter()
                .find(|&&(value, _)| value >= hash)
                .or(ring.points.first())
                .map(|&(_, index)| index as usize);
            assert_eq!(ring.locate(hash), expected, "{key}");
        }
        assert_eq!(Continuum::new(&[], |_| false).locate(7), None);
        // out of the ring: its keys move, the others stay
        let three = nodes(&[("a", 1), ("b", 1), ("c", 1)]);
        let all = Continuum::new(&three, |_| false);
        let without_b = Continuum::new(&three, |i| i == 1);
        for i in 0..1000 {
            let key = format!("key-{i}");
            let moved = without_b.locate(key_hash(&[key.as_bytes()])).unwrap();
            assert_ne!(moved, 1);
        }
        assert_eq!(without_b.len(), 320);
        assert!(all.len() > without_b.len());
    }
}
