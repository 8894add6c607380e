//! The health of one server: how many connection attempts (or connections) failed in a
//! row, and when the next may be made.
//!
//! A failure is a connect that fails, or a connection lost with requests outstanding (a
//! timeout that closed a silent connection among them); a reply read on a connection resets
//! the count. The first failure is retried at once (a lost connection is usually just that).
//! What follows depends on the [`Retry`] policy:
//!
//! - [`Retry::Backoff`] (a client of one server): the next attempt waits `initial`, then
//!   twice as long after each further failure, up to `max`, each pause shortened by a
//!   random part of up to half (so that many clients do not return at the same moment).
//! - [`Retry::Dead`] (a client of several servers, pymemcache's settings): the server is
//!   retried every `retry_timeout` until `retry_attempts` retries have failed; then it is
//!   *dead* for `dead_timeout` (its keys fail fast, or move to the other servers with
//!   failover), after which one attempt probes it; it rejoins when that attempt answers.
//!
//! Meanwhile calls fail at once with [`Error::ServerDown`]. Only the changes of state are
//! logged: the first failure (warn), a server marked dead (warn), the recovery (info);
//! further failures at debug level.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

use super::clock::deadline;

/// When a failing server is tried again (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Exponential backoff with jitter, from `initial` up to `max`.
    Backoff { initial: Duration, max: Duration },
    /// `attempts` retries `timeout` apart, then dead for `dead`.
    Dead {
        attempts: u32,
        timeout: Duration,
        dead: Duration,
    },
}

/// What a server's health is, as [`Client::servers`](crate::Client::servers) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerState {
    /// Answering (or not tried yet).
    Up,
    /// Failing: `failures` in a row; the next attempt is allowed in `retry_in` (zero: now).
    Failing {
        /// Failed attempts (or connections) in a row.
        failures: u32,
        /// How long until the next attempt is allowed.
        retry_in: Duration,
    },
    /// Dead (a client of several servers, after its retries failed): no attempt until
    /// `retry_in` has passed; then one probes it.
    Dead {
        /// Failed attempts (or connections) in a row.
        failures: u32,
        /// How long until the server is probed.
        retry_in: Duration,
    },
}

/// One server's health (see the module docs).
#[derive(Debug)]
pub(crate) struct Health {
    server: String,
    retry: Retry,
    /// Dead (read without the lock, by the ring on every key).
    dead: AtomicBool,
    /// A probe of the dead server is on its way.
    probing: AtomicBool,
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
    /// A healthy server (never failed) retried as `retry` says.
    pub(crate) fn new(server: String, retry: Retry) -> Self {
        let seed = RandomState::new().build_hasher().finish() | 1;
        Health {
            server,
            retry,
            dead: AtomicBool::new(false),
            probing: AtomicBool::new(false),
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

    /// Whether the server is dead ([`Retry::Dead`] only): its keys move elsewhere under
    /// failover. Cheap: read for every key.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// For a dead server whose `dead_timeout` has passed and that no probe is trying yet:
    /// `true` once, for the caller to send the probe.
    pub(crate) fn probe_due(&self, now: Instant) -> bool {
        if !self.is_dead() || self.probing.load(Ordering::Relaxed) {
            return false;
        }
        let due = self.lock().retry_at.map_or(true, |at| at <= now);
        due && !self.probing.swap(true, Ordering::AcqRel)
    }

    /// A probe ended (answered or not: `answered` and `failed` have recorded which).
    pub(crate) fn probe_done(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// The state, as [`ServerState`].
    pub(crate) fn state(&self, now: Instant) -> ServerState {
        let state = self.lock();
        let retry_in = state
            .retry_at
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        match (state.failures, self.is_dead()) {
            (0, _) => ServerState::Up,
            (failures, true) => ServerState::Dead { failures, retry_in },
            (failures, false) => ServerState::Failing { failures, retry_in },
        }
    }

    /// A connect failed, or a connection was lost with `outstanding` requests (their
    /// callers get `error`).
    pub(crate) fn failed(&self, error: &Error, outstanding: usize, now: Instant) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        let (pause, dead) = self.pause(&mut state);
        state.retry_at = Some(deadline(now, pause));
        state.last = Some(error.clone());
        let newly_dead = dead && !self.dead.swap(true, Ordering::Relaxed);
        if state.failures == 1 {
            tracing::warn!(
                server = %self.server,
                %error,
                outstanding,
                "connection to the server failed; reconnecting"
            );
        } else if newly_dead {
            tracing::warn!(
                server = %self.server,
                %error,
                failures = state.failures,
                dead_for = ?pause,
                "the server is dead"
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
            self.dead.store(false, Ordering::Relaxed);
        }
    }

    /// The pause before the next attempt after `state.failures` failures in a row, and
    /// whether the server is dead now.
    fn pause(&self, state: &mut State) -> (Duration, bool) {
        match self.retry {
            Retry::Dead {
                attempts,
                timeout,
                dead,
            } => {
                let retries_failed = state.failures - 1;
                if retries_failed >= attempts {
                    (dead, true)
                } else if state.failures == 1 {
                    (Duration::ZERO, false)
                } else {
                    (timeout, false)
                }
            }
            Retry::Backoff { initial, max } => {
                if state.failures <= 1 || initial.is_zero() {
                    return (Duration::ZERO, false);
                }
                let doublings = (state.failures - 2).min(31);
                let full = initial.checked_mul(1 << doublings).unwrap_or(max).min(max);
                state.seed ^= state.seed << 13;
                state.seed ^= state.seed >> 7;
                state.seed ^= state.seed << 17;
                // between half and all of it, in integers (no rounding past `full`)
                let half = full.as_nanos() / 2;
                let nanos = half + ((half * u128::from(state.seed >> 32)) >> 32);
                let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
                (Duration::new(secs, (nanos % 1_000_000_000) as u32), false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(initial: Duration, max: Duration) -> Health {
        Health::new("h:1".into(), Retry::Backoff { initial, max })
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_ceiling() {
        let health = backoff(Duration::from_millis(50), Duration::from_secs(5));
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
        assert!(!health.is_dead(), "a single server is never dead");
        health.answered();
        assert!(health.admit(now).is_ok());
        assert_eq!(health.state(now), ServerState::Up);
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let health = backoff(Duration::MAX, Duration::MAX);
        let now = Instant::now();
        for _ in 0..100 {
            health.failed(&Error::UnexpectedClose, 0, now);
        }
        assert!(health.admit(now).is_err());
        let off = backoff(Duration::ZERO, Duration::ZERO);
        for _ in 0..100 {
            off.failed(&Error::UnexpectedClose, 0, now);
        }
        assert!(off.admit(now).is_ok(), "no backoff when initial is zero");
        let dead = Health::new(
            "h:1".into(),
            Retry::Dead {
                attempts: u32::MAX,
                timeout: Duration::MAX,
                dead: Duration::MAX,
            },
        );
        for _ in 0..100 {
            dead.failed(&Error::UnexpectedClose, 0, now);
        }
        assert!(dead.admit(now).is_err() && !dead.is_dead());
    }

    /// pymemcache's settings: retried at once, then `retry_timeout` apart, until
    /// `retry_attempts` retries have failed: then dead for `dead_timeout`, probed once,
    /// and up again when it answers.
    #[test]
    fn a_server_dies_after_its_retries_and_is_probed_after_dead_timeout() {
        let (timeout, dead_for) = (Duration::from_secs(1), Duration::from_secs(60));
        let health = Health::new(
            "h:1".into(),
            Retry::Dead {
                attempts: 2,
                timeout,
                dead: dead_for,
            },
        );
        let now = Instant::now();
        let error = Error::UnexpectedClose;
        health.failed(&error, 1, now);
        assert!(health.admit(now).is_ok(), "the first retry is at once");
        assert!(matches!(
            health.state(now),
            ServerState::Failing { failures: 1, .. }
        ));
        health.failed(&error, 1, now);
        assert!(health.admit(now).is_err() && health.admit(now + timeout).is_ok());
        assert!(!health.is_dead());
        health.failed(&error, 1, now);
        assert!(health.is_dead(), "its two retries failed");
        assert!(matches!(
            health.state(now),
            ServerState::Dead { failures: 3, retry_in } if retry_in == dead_for
        ));
        assert!(health.admit(now + timeout).is_err());
        assert!(!health.probe_due(now + timeout));
        assert!(health.probe_due(now + dead_for), "due once");
        assert!(!health.probe_due(now + dead_for), "one probe at a time");
        health.probe_done();
        health.answered();
        assert!(!health.is_dead() && health.admit(now).is_ok());

        let no_retries = Health::new(
            "h:1".into(),
            Retry::Dead {
                attempts: 0,
                timeout,
                dead: dead_for,
            },
        );
        no_retries.failed(&error, 1, now);
        assert!(
            no_retries.is_dead(),
            "retry_attempts 0: dead at the first failure"
        );
    }
}
