//! Per-server metrics on the [`metrics`](https://docs.rs/metrics) facade, with the cargo
//! feature `metrics` (without it every type here is empty and every call compiles to
//! nothing). The names, units and labels are listed in the crate documentation
//! ([Metrics](crate#metrics)).
//!
//! Each server's handles are registered once, when the client is built, with the
//! recorder installed at that time; recording is then a handle call, with no lookup.

use crate::address::ServerAddr;
#[cfg(feature = "metrics")]
use crate::error::{Error, TimeoutKind};

/// What a request was, for the `command` label (and the command spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Get,
    Gets,
    Gat,
    Gats,
    GetMany,
    GetsMany,
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
    SetMany,
    Delete,
    Invalidate,
    DeleteMany,
    Touch,
    Incr,
    Decr,
    Lease,
    ReleaseLease,
    Stats,
    Version,
    FlushAll,
    Verbosity,
    CacheMemlimit,
    Quit,
    /// The client's own `version`: a fresh connection's wait for the protocol probe, or
    /// the probe of a dead server.
    Probe,
}

impl Command {
    /// Every command, in the order of their index.
    #[cfg(feature = "metrics")]
    const ALL: [Command; 28] = [
        Command::Get,
        Command::Gets,
        Command::Gat,
        Command::Gats,
        Command::GetMany,
        Command::GetsMany,
        Command::Set,
        Command::Add,
        Command::Replace,
        Command::Append,
        Command::Prepend,
        Command::Cas,
        Command::SetMany,
        Command::Delete,
        Command::Invalidate,
        Command::DeleteMany,
        Command::Touch,
        Command::Incr,
        Command::Decr,
        Command::Lease,
        Command::ReleaseLease,
        Command::Stats,
        Command::Version,
        Command::FlushAll,
        Command::Verbosity,
        Command::CacheMemlimit,
        Command::Quit,
        Command::Probe,
    ];

    /// The command's name, as the `command` label and span field have it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Command::Get => "get",
            Command::Gets => "gets",
            Command::Gat => "gat",
            Command::Gats => "gats",
            Command::GetMany => "get_many",
            Command::GetsMany => "gets_many",
            Command::Set => "set",
            Command::Add => "add",
            Command::Replace => "replace",
            Command::Append => "append",
            Command::Prepend => "prepend",
            Command::Cas => "cas",
            Command::SetMany => "set_many",
            Command::Delete => "delete",
            Command::Invalidate => "invalidate",
            Command::DeleteMany => "delete_many",
            Command::Touch => "touch",
            Command::Incr => "incr",
            Command::Decr => "decr",
            Command::Lease => "lease",
            Command::ReleaseLease => "release_lease",
            Command::Stats => "stats",
            Command::Version => "version",
            Command::FlushAll => "flush_all",
            Command::Verbosity => "verbosity",
            Command::CacheMemlimit => "cache_memlimit",
            Command::Quit => "quit",
            Command::Probe => "probe",
        }
    }
}

/// The `kind` label of `memcache_errors_total`, for an error a request ended with.
#[cfg(feature = "metrics")]
fn error_kind(error: &Error) -> &'static str {
    match error.root() {
        Error::UnknownCommand => "unknown_command",
        Error::Client(_) => "client_error",
        Error::Server(_) => "server_error",
        Error::UnknownResponse(_) => "protocol",
        Error::ValueTooLarge { .. } => "value_too_large",
        Error::UnexpectedClose => "closed",
        Error::IllegalInput(_) => "illegal_input",
        Error::Timeout {
            kind: TimeoutKind::Connect,
            ..
        } => "connect_timeout",
        Error::Timeout { .. } => "timeout",
        Error::Io(_) => "io",
        Error::ServerDown { .. } => "server_down",
        Error::Auth(_) => "auth",
        Error::Address { .. } => "address",
        Error::Tls { .. } => "tls",
        _ => "other",
    }
}

#[cfg(feature = "metrics")]
mod on {
    use ::metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
    use tokio::time::Instant;

    use super::{error_kind, Command, ServerAddr};
    use crate::error::{Error, Result};

    /// The error kinds of [`error_kind`], registered up front.
    const KINDS: [&str; 15] = [
        "unknown_command",
        "client_error",
        "server_error",
        "protocol",
        "value_too_large",
        "closed",
        "illegal_input",
        "connect_timeout",
        "timeout",
        "io",
        "server_down",
        "auth",
        "address",
        "tls",
        "other",
    ];

    /// One server's handles.
    #[derive(Debug)]
    pub(crate) struct ServerMetrics {
        requests: Vec<Counter>,
        latency: Vec<Histogram>,
        errors: Vec<Counter>,
        in_flight: Gauge,
        timeouts: Counter,
        connections: Counter,
        connect_failures: Counter,
        up: Gauge,
        dead: Gauge,
        bytes_read: Counter,
        bytes_written: Counter,
        noreply_failures: Counter,
    }

    impl ServerMetrics {
        pub(crate) fn new(server: &ServerAddr) -> Self {
            let server = server.to_string();
            let per_command = |name: &str| {
                (
                    counter!("memcache_requests_total", "server" => server.clone(), "command" => name.to_owned()),
                    histogram!("memcache_request_duration_seconds", "server" => server.clone(), "command" => name.to_owned()),
                )
            };
            let (requests, latency) = Command::ALL
                .iter()
                .map(|command| per_command(command.name()))
                .unzip();
            let errors = KINDS
                .iter()
                .map(|kind| counter!("memcache_errors_total", "server" => server.clone(), "kind" => *kind))
                .collect();
            let metrics = ServerMetrics {
                requests,
                latency,
                errors,
                in_flight: gauge!("memcache_requests_in_flight", "server" => server.clone()),
                timeouts: counter!("memcache_timeouts_total", "server" => server.clone()),
                connections: counter!("memcache_connections_opened_total", "server" => server.clone()),
                connect_failures: counter!("memcache_connect_failures_total", "server" => server.clone()),
                up: gauge!("memcache_server_up", "server" => server.clone()),
                dead: gauge!("memcache_server_dead", "server" => server.clone()),
                bytes_read: counter!("memcache_bytes_read_total", "server" => server.clone()),
                bytes_written: counter!("memcache_bytes_written_total", "server" => server.clone()),
                noreply_failures: counter!("memcache_noreply_failures_total", "server" => server),
            };
            metrics.up.set(1.0);
            metrics.dead.set(0.0);
            metrics
        }

        /// A request handed to this server: counted, and in flight until the returned
        /// [`Flight`] is dropped.
        pub(crate) fn begin(&self, command: Command) -> Flight<'_> {
            self.requests[command as usize].increment(1);
            self.in_flight.increment(1.0);
            Flight {
                metrics: self,
                command,
                since: Instant::now(),
            }
        }

        pub(crate) fn connected(&self) {
            self.connections.increment(1);
        }

        pub(crate) fn connect_failed(&self) {
            self.connect_failures.increment(1);
        }

        /// The server's health: answering (`up`), and out of the ring (`dead`).
        pub(crate) fn health(&self, up: bool, dead: bool) {
            self.up.set(if up { 1.0 } else { 0.0 });
            self.dead.set(if dead { 1.0 } else { 0.0 });
        }

        pub(crate) fn read(&self, bytes: usize) {
            self.bytes_read.increment(bytes as u64);
        }

        pub(crate) fn written(&self, bytes: usize) {
            self.bytes_written.increment(bytes as u64);
        }

        pub(crate) fn noreply_failed(&self) {
            self.noreply_failures.increment(1);
        }

        fn failed(&self, error: &Error) {
            let kind = error_kind(error);
            let index = KINDS
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(KINDS.len() - 1);
            self.errors[index].increment(1);
            if error.is_timeout() {
                self.timeouts.increment(1);
            }
        }
    }

    /// A request in flight (see [`ServerMetrics::begin`]).
    #[derive(Debug)]
    #[must_use]
    pub(crate) struct Flight<'a> {
        metrics: &'a ServerMetrics,
        command: Command,
        since: Instant,
    }

    impl Flight<'_> {
        /// The request ended with `result`: its latency, and its error if it failed.
        pub(crate) fn end<T>(self, result: &Result<T>) {
            let metrics = self.metrics;
            let seconds = self.since.elapsed().as_secs_f64();
            metrics.latency[self.command as usize].record(seconds);
            if let Err(error) = result {
                metrics.failed(error);
            }
        }
    }

    impl Drop for Flight<'_> {
        fn drop(&mut self) {
            self.metrics.in_flight.decrement(1.0);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod off {
    use super::{Command, ServerAddr};
    use crate::error::Result;

    /// Without the `metrics` feature: nothing.
    #[derive(Debug)]
    pub(crate) struct ServerMetrics;

    impl ServerMetrics {
        #[inline(always)]
        pub(crate) fn new(_: &ServerAddr) -> Self {
            ServerMetrics
        }
        #[inline(always)]
        pub(crate) fn begin(&self, _: Command) -> Flight<'_> {
            Flight(std::marker::PhantomData)
        }
        #[inline(always)]
        pub(crate) fn connected(&self) {}
        #[inline(always)]
        pub(crate) fn connect_failed(&self) {}
        #[inline(always)]
        pub(crate) fn health(&self, _up: bool, _dead: bool) {}
        #[inline(always)]
        pub(crate) fn read(&self, _: usize) {}
        #[inline(always)]
        pub(crate) fn written(&self, _: usize) {}
        #[inline(always)]
        pub(crate) fn noreply_failed(&self) {}
    }

    /// Without the `metrics` feature: nothing.
    #[derive(Debug)]
    pub(crate) struct Flight<'a>(std::marker::PhantomData<&'a ()>);

    impl Flight<'_> {
        #[inline(always)]
        pub(crate) fn end<T>(self, _: &Result<T>) {}
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::{Flight, ServerMetrics};

#[cfg(not(feature = "metrics"))]
pub(crate) use off::{Flight, ServerMetrics};
