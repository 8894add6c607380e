//! Helpers shared by the integration tests of this crate.

/// A small deterministic generator (xorshift64) for the randomized tests.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
