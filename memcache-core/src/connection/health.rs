//! The health of one server: how many connection attempts (or connections) failed in a
//! row, and when the next may be made.
//!
//! A failure is a connect that fails, or a connection lost with requests outstanding; a
//! reply read on a connection resets the count. The first failure is retried at once (a
//! lost connection is usually just that); after the second in a row the server is in
//! backoff: the next attempt waits `initial`, then twice as long after each further
//! failure, up to `max`, each pause shortened by a random part of up to half (so that many
//! clients do not return at the same moment). Meanwhile calls fail at once with
//! [`Error::ServerDown`]. Only the changes of state are logged: the first failure (warn)
//! and the recovery (info); further failures at debug level.
//!
//! This state is what the several-server client reads to mark a server dead.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

use super::clock::deadline;

/// One server's health (see the module docs).
#[derive(Debug)]
pub(crate) struct Health {
    server: String,
    initial: Duration,
    max: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Failures in a row.
    failures: u32,
    /// No connection attempt before this.
    retry_at: Option<Instant>,
    /// The last failure.
    last: Option<Error>,
    /// The jitter's generator (xorshift64).
    seed: u64,
}

impl Health {
    /// A healthy server (never failed) with this backoff.
    pub(crate) fn new(server: String, initial: Duration, max: Duration) -> Self {
        let seed = RandomState::new().build_hasher().finish() | 1;
        Health {
            server,
            initial,
            max,
            state: Mutex::new(State {
                failures: 0,
                retry_at: None,
                last: None,
                seed,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a connection attempt may be made now; the error to fail a call with when not.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), Error> {
        let state = self.lock();
        match state.retry_at {
            Some(at) if at > now => Err(Error::ServerDown {
                server: self.server.clone(),
                failures: state.failures,
                retry_in: at - now,
                last: Box::new(state.last.clone().unwrap_or(Error::UnexpectedClose)),
            }),
            _ => Ok(()),
        }
    }

    /// A connect failed, or a connection was lost with `outstanding` requests (their
    /// callers get `error`).
    pub(crate) fn failed(&self, error: &Error, outstanding: usize, now: Instant) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        let pause = self.pause(&mut state);
        state.retry_at = Some(deadline(now, pause));
        state.last = Some(error.clone());
        if state.failures == 1 {
            tracing::warn!(
                server = %self.server,
                %error,
                outstanding,
                "connection to the server failed; reconnecting"
            );
        } else {
            tracing::debug!(
                server = %self.server,
                %error,
                outstanding,
                failures = state.failures,
                retry_in = ?pause,
                "the server is still failing"
            );
        }
    }

    /// A connection read a reply: the server is up.
    pub(crate) fn answered(&self) {
        let mut state = self.lock();
        if state.failures > 0 {
            tracing::info!(
                server = %self.server,
                failures = state.failures,
                "the server answers again"
            );
            state.failures = 0;
            state.retry_at = None;
            state.last = None;
        }
    }

    /// The pause before the next attempt after `state.failures` failures in a row.
    fn pause(&self, state: &mut State) -> Duration {
        if state.failures <= 1 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (state.failures - 2).min(31);
        let full = self
            .initial
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max);
        state.seed ^= state.seed << 13;
        state.seed ^= state.seed >> 7;
        state.seed ^= state.seed << 17;
        // between half and all of it, in integers (no rounding past `full`)
        let half = full.as_nanos() / 2;
        let nanos = half + ((half * u128::from(state.seed >> 32)) >> 32);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_ceiling() {
        let health = Health::new(
            "h:1".into(),
            Duration::from_millis(50),
            Duration::from_secs(5),
        );
        let now = Instant::now();
        assert!(health.admit(now).is_ok());
        let error = Error::UnexpectedClose;
        health.failed(&error, 1, now);
        assert!(
            health.admit(now).is_ok(),
            "the first failure is retried at once"
        );
        let mut full = Duration::from_millis(50);
        for failures in 2..40 {
            health.failed(&error, 1, now);
            let Err(Error::ServerDown {
                failures: counted,
                retry_in,
                last,
                ..
            }) = health.admit(now)
            else {
                panic!("not down after {failures} failures")
            };
            assert_eq!(counted, failures);
            assert!(matches!(*last, Error::UnexpectedClose));
            assert!(
                retry_in >= full / 2 && retry_in <= full,
                "{failures}: {retry_in:?} for {full:?}"
            );
            assert!(health.admit(now + full).is_ok());
            full = (full * 2).min(Duration::from_secs(5));
        }
        health.answered();
        assert!(health.admit(now).is_ok());
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let health = Health::new("h:1".into(), Duration::MAX, Duration::MAX);
        let now = Instant::now();
        for _ in 0..100 {
            health.failed(&Error::UnexpectedClose, 0, now);
        }
        assert!(health.admit(now).is_err());
        let off = Health::new("h:1".into(), Duration::ZERO, Duration::ZERO);
        for _ in 0..100 {
            off.failed(&Error::UnexpectedClose, 0, now);
        }
        assert!(off.admit(now).is_ok(), "no backoff when initial is zero");
    }
}
