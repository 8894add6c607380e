//! The rules of a key prefix, on their own so that both the error type (whose message says
//! which rule a prefix breaks) and the key module (which checks them) can use them.

/// The longest key prefix accepted, in bytes: a memcached key is at most 250 bytes, and a
/// [hashed](crate::key#long-keys) key needs 46 of them after the prefix and its `:`.
pub const MAX_PREFIX_LEN: usize = 200;

/// Which rule of [`check_prefix`](crate::key::check_prefix) `prefix` breaks, as a phrase ("must ..."), if any.
///
/// The derive (`memcache-derive`'s `valid::prefix_problem`) applies the same rules at compile
/// time; a test there checks that both accept exactly the same prefixes.
pub(crate) fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        Some("must not be empty")
    } else if prefix.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if prefix.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if !prefix.is_ascii() {
        Some("must be ASCII")
    } else if prefix.contains(':') {
        Some("must not contain `:`, which separates the prefix from the key")
    } else if prefix.len() > MAX_PREFIX_LEN {
        Some("must be at most 200 bytes")
    } else {
        None
    }
}
