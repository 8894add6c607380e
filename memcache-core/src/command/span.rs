//! The span of a command (see [Tracing](crate#tracing) in the crate documentation): target
//! `memcache_core::command`, name `memcache`, at debug level, with the fields `command`,
//! `keys` (how many), `server`, `servers` (multi-key commands over several servers),
//! `protocol` (`meta` or `classic`) and, at trace level only, `key` (single-key commands).
//! Never the value.
//!
//! With no subscriber interested, creating and entering a span costs a few loads: the
//! fields are not even evaluated.

use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Span};

use crate::connection::Connection;
use crate::metrics::Command;

/// The target of every command span.
const TARGET: &str = "memcache_core::command";

fn protocol(meta: bool) -> &'static str {
    if meta {
        "meta"
    } else {
        "classic"
    }
}

/// The span of a single-key command going to `connection`, in the protocol `meta` says
/// (`None`: not known yet; [`learned`] records it later). `None` when no subscriber wants
/// it: the command's future then carries no span at all (nothing to enter or drop on the
/// hot path).
#[inline(always)]
pub(crate) fn one(
    command: Command,
    connection: &Connection,
    meta: Option<bool>,
    key: &[u8],
) -> Option<Span> {
    // The cheapest test first (one load), inlined into the command's future: no
    // subscriber, or none that wants debug spans of anything.
    if Level::DEBUG > LevelFilter::current() {
        return None;
    }
    wanted(command, connection, meta, key)
}

/// [`one`], once the level may be wanted.
fn wanted(
    command: Command,
    connection: &Connection,
    meta: Option<bool>,
    key: &[u8],
) -> Option<Span> {
    let span = tracing::debug_span!(
        target: TARGET,
        "memcache",
        command = command.name(),
        keys = 1u64,
        server = %connection.addr(),
        protocol = meta.map(protocol),
        key = Empty,
    );
    if span.is_disabled() {
        return None;
    }
    if tracing::enabled!(target: TARGET, Level::TRACE) {
        span.record("key", String::from_utf8_lossy(key).as_ref());
    }
    Some(span)
}

/// Records on the current span the protocol `connection` turned out to speak.
pub(crate) fn learned(connection: &Connection) {
    let span = Span::current();
    if !span.is_disabled() {
        span.record("protocol", protocol(connection.meta()));
    }
}

/// The span of a command over `keys` keys (none: a server-wide command); the servers it
/// goes to are recorded by [`spread`] once they are known.
pub(crate) fn many(command: Command, keys: usize) -> Span {
    tracing::debug_span!(
        target: TARGET,
        "memcache",
        command = command.name(),
        keys = keys as u64,
        server = Empty,
        servers = Empty,
        protocol = Empty,
    )
}

/// Records on the current span (a command's, from [`many`]) where the command goes: the
/// server and its protocol when there is one (`meta`: whether the command is sent in the
/// meta protocol to a server that speaks it), how many servers when there are several.
pub(crate) fn spread<'c>(meta: bool, mut servers: impl ExactSizeIterator<Item = &'c Connection>) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    match (servers.len(), servers.next()) {
        (1, Some(one)) => {
            span.record("server", tracing::field::display(one.addr()));
            span.record("protocol", protocol(meta && one.meta()));
        }
        (several, _) => {
            span.record("servers", several as u64);
        }
    }
}
