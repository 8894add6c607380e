//! Deadlines that cannot overflow: a `Duration::MAX` setting means "no limit".

use std::time::Duration;

use tokio::time::Instant;

/// How far ahead "no limit" is: about 30 years.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `at + after`, or far in the future when that overflows.
pub(crate) fn deadline(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}
