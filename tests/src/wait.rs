//! Waiting for a condition instead of sleeping.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`eventually`] looks again.
const RETRY: Duration = Duration::from_millis(5);

/// Runs `check` until it returns `Some`, looking again every few milliseconds, and returns
/// its value.
///
/// # Panics
/// After `limit` without one, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not so after {limit:?}");
        tokio::time::sleep(RETRY).await;
    }
}
