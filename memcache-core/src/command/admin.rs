//! The server commands: `stats`, `version`, `flush_all`, `verbosity`, `cache_memlimit`,
//! `quit`.

use std::future::IntoFuture;

use bytes::BytesMut;
use tracing::Instrument;

use super::multi::every_server;
use super::{span, CommandFuture};
use crate::client::{mismatched, Client};
use crate::cluster::PerServer;
use crate::connection::Connection;
use crate::error::{Error, IllegalInput, Result};
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Expect, Kind, Response, Status};
use crate::value::Stats;

/// `stats [args]`: see [`Client::stats`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct FetchStats<'a> {
    client: &'a Client,
    args: Vec<String>,
}

impl<'a> FetchStats<'a> {
    /// Adds an argument (`"slabs"`, `"items"`, `"settings"`, `"conns"`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    async fn run(self) -> Result<PerServer<Stats>> {
        let inner = &self.client.inner;
        for arg in &self.args {
            if arg.is_empty() || arg.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Error::IllegalInput(IllegalInput::Argument(format!(
                    "stats argument {arg:?} is empty or contains whitespace or control bytes"
                ))));
            }
        }
        let args = &self.args;
        let stats = |connection: &'a Connection| async move {
            let encode =
                |buf: &mut BytesMut, _| request::stats(buf, args.iter().map(String::as_bytes));
            let request = connection.request(Command::Stats, Expect::one(Kind::Stats), encode);
            let result = match request.await {
                Ok(Response::Stats(entries)) => Ok(Stats::new(entries)),
                Ok(other) => Err(connection.name(mismatched(&other))),
                Err(error) => Err(error),
            };
            inner.miss_on_error(result)
        };
        span::spread(false, inner.cluster.connections().iter());
        Ok(every_server(inner.cluster.connections(), stats).await)
    }
}

impl<'a> IntoFuture for FetchStats<'a> {
    type Output = Result<PerServer<Stats>>;
    type IntoFuture = CommandFuture<'a, PerServer<Stats>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = span::many(Command::Stats, 0);
        Box::pin(self.run().instrument(span))
    }
}

/// A command without a key that answers `OK` (`flush_all`, `verbosity`, `cache_memlimit`)
/// or `VERSION`: see [`Client::flush_all`], [`Client::verbosity`],
/// [`Client::cache_memlimit`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Admin<'a> {
    client: &'a Client,
    command: Command,
    arg: Option<u64>,
    noreply: bool,
}

impl<'a> Admin<'a> {
    /// Sends with or without `noreply` (the default depends on the command: see the
    /// method that made this builder).
    pub fn noreply(mut self, on: bool) -> Self {
        self.noreply = on;
        self
    }

    /// For `flush_all`: invalidate items after this many seconds instead of now.
    pub fn delay(mut self, seconds: u32) -> Self {
        self.arg = Some(u64::from(seconds));
        self
    }

    async fn run(self) -> Result<PerServer<()>> {
        let inner = &self.client.inner;
        let args: &[u64] = match &self.arg {
            Some(arg) => std::slice::from_ref(arg),
            None => &[],
        };
        let (command, noreply) = (self.command, self.noreply);
        let name = command.name();
        let admin = |connection: &'a Connection| async move {
            let encode = |buf: &mut BytesMut, _| request::simple(buf, name, args, noreply);
            if noreply {
                return connection.send_noreply(command, false, 1, encode).await;
            }
            match connection
                .request(command, Expect::one(Kind::Ok), encode)
                .await?
            {
                Response::Status(Status::Ok) => Ok(()),
                other => Err(connection.name(mismatched(&other))),
            }
        };
        span::spread(false, inner.cluster.connections().iter());
        Ok(every_server(inner.cluster.connections(), admin).await)
    }
}

impl<'a> IntoFuture for Admin<'a> {
    type Output = Result<PerServer<()>>;
    type IntoFuture = CommandFuture<'a, PerServer<()>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = span::many(self.command, 0);
        Box::pin(self.run().instrument(span))
    }
}

/// One server's version string.
async fn version_of(connection: &Connection) -> Result<String> {
    let encode = |buf: &mut BytesMut, _| request::simple(buf, "version", &[], false);
    match connection
        .request(Command::Version, Expect::one(Kind::Version), encode)
        .await?
    {
        Response::Version(version) => Ok(version),
        other => Err(connection.name(mismatched(&other))),
    }
}

impl Client {
    /// Every server's statistics (see [`PerServer`]; `.single()` for a client of one);
    /// add arguments with [`FetchStats::arg`].
    ///
    /// # Errors
    /// An illegal argument, before anything is sent. Each server's connection, timeout or
    /// server error is in its entry (an empty [`Stats`] with `ignore_exc`).
    pub fn stats(&self) -> FetchStats<'_> {
        FetchStats {
            client: self,
            args: Vec::new(),
        }
    }

    /// Each server's version string.
    ///
    /// # Errors
    /// None for the call itself: each server's connection, timeout or server error is in
    /// its entry.
    pub async fn version(&self) -> Result<PerServer<String>> {
        let connections = self.inner.cluster.connections();
        let version = async {
            span::spread(false, connections.iter());
            every_server(connections, version_of).await
        };
        Ok(version.instrument(span::many(Command::Version, 0)).await)
    }

    /// Invalidates every item on every server, now or after [`Admin::delay`] seconds.
    /// noreply by default, following the client's `default_noreply`.
    ///
    /// # Errors
    /// None for the call itself: each server's connection, timeout or server error is in
    /// its entry (see [`PerServer`]).
    pub fn flush_all(&self) -> Admin<'_> {
        Admin {
            client: self,
            command: Command::FlushAll,
            arg: None,
            noreply: self.inner.config.default_noreply,
        }
    }

    /// Sets every server's logging verbosity. Waits for `OK` unless `.noreply(true)`.
    ///
    /// # Errors
    /// As [`flush_all`](Self::flush_all).
    pub fn verbosity(&self, level: u32) -> Admin<'_> {
        Admin {
            client: self,
            command: Command::Verbosity,
            arg: Some(u64::from(level)),
            noreply: false,
        }
    }

    /// Changes every server's memory limit to `megabytes` at run time. Waits for `OK`.
    ///
    /// # Errors
    /// As [`flush_all`](Self::flush_all).
    pub fn cache_memlimit(&self, megabytes: u64) -> Admin<'_> {
        Admin {
            client: self,
            command: Command::CacheMemlimit,
            arg: Some(megabytes),
            noreply: false,
        }
    }

    /// Asks every server to close its connection after answering what is already queued
    /// on it. The next command opens a new connection.
    ///
    /// # Errors
    /// None in practice; the signature leaves room for transports that report one.
    pub async fn quit(&self) -> Result<PerServer<()>> {
        let connections = self.inner.cluster.connections();
        let quit = async {
            span::spread(false, connections.iter());
            every_server(connections, Connection::quit).await
        };
        Ok(quit.instrument(span::many(Command::Quit, 0)).await)
    }
}
