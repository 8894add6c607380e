//! The server commands: `stats`, `version`, `flush_all`, `verbosity`, `cache_memlimit`,
//! `quit`.

use std::future::IntoFuture;

use bytes::BytesMut;

use super::CommandFuture;
use crate::client::{mismatched, Client};
use crate::error::{Error, IllegalInput, Result};
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

impl FetchStats<'_> {
    /// Adds an argument (`"slabs"`, `"items"`, `"settings"`, `"conns"`, ...).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    async fn run(self) -> Result<Stats> {
        let inner = &self.client.inner;
        for arg in &self.args {
            if arg.is_empty() || arg.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Error::IllegalInput(IllegalInput::Argument(format!(
                    "stats argument {arg:?} is empty or contains whitespace or control bytes"
                ))));
            }
        }
        let args = &self.args;
        let encode = |buf: &mut BytesMut, _| request::stats(buf, args.iter().map(String::as_bytes));
        let result = match inner.request(Expect::one(Kind::Stats), encode).await {
            Ok(Response::Stats(entries)) => Ok(Stats::new(entries)),
            Ok(other) => Err(mismatched(&other)),
            Err(error) => Err(error),
        };
        inner.miss_on_error(result)
    }
}

impl<'a> IntoFuture for FetchStats<'a> {
    type Output = Result<Stats>;
    type IntoFuture = CommandFuture<'a, Stats>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A command without a key that answers `OK` (`flush_all`, `verbosity`, `cache_memlimit`)
/// or `VERSION`: see [`Client::flush_all`], [`Client::verbosity`],
/// [`Client::cache_memlimit`].
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Admin<'a> {
    client: &'a Client,
    name: &'static str,
    arg: Option<u64>,
    noreply: bool,
}

impl Admin<'_> {
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

    async fn run(self) -> Result<()> {
        let inner = &self.client.inner;
        let args: &[u64] = match &self.arg {
            Some(arg) => std::slice::from_ref(arg),
            None => &[],
        };
        let (name, noreply) = (self.name, self.noreply);
        let encode = |buf: &mut BytesMut, _| request::simple(buf, name, args, noreply);
        if noreply {
            return inner.send_noreply(false, 1, encode).await;
        }
        match inner.request(Expect::one(Kind::Ok), encode).await? {
            Response::Status(Status::Ok) => Ok(()),
            other => Err(mismatched(&other)),
        }
    }
}

impl<'a> IntoFuture for Admin<'a> {
    type Output = Result<()>;
    type IntoFuture = CommandFuture<'a, ()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl Client {
    /// The server's statistics; add arguments with [`FetchStats::arg`].
    ///
    /// # Errors
    /// Connection, timeout or server errors (an empty [`Stats`] with `ignore_exc`).
    pub fn stats(&self) -> FetchStats<'_> {
        FetchStats {
            client: self,
            args: Vec::new(),
        }
    }

    /// The server's version string.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub async fn version(&self) -> Result<String> {
        let encode = |buf: &mut BytesMut, _| request::simple(buf, "version", &[], false);
        match self
            .inner
            .request(Expect::one(Kind::Version), encode)
            .await?
        {
            Response::Version(version) => Ok(version),
            other => Err(mismatched(&other)),
        }
    }

    /// Invalidates every item, now or after [`Admin::delay`] seconds. noreply by default,
    /// following the client's `default_noreply`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn flush_all(&self) -> Admin<'_> {
        Admin {
            client: self,
            name: "flush_all",
            arg: None,
            noreply: self.inner.config.default_noreply,
        }
    }

    /// Sets the server's logging verbosity. Waits for `OK` unless `.noreply(true)`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn verbosity(&self, level: u32) -> Admin<'_> {
        Admin {
            client: self,
            name: "verbosity",
            arg: Some(u64::from(level)),
            noreply: false,
        }
    }

    /// Changes the server's memory limit to `megabytes` at run time. Waits for `OK`.
    ///
    /// # Errors
    /// Connection, timeout or server errors.
    pub fn cache_memlimit(&self, megabytes: u64) -> Admin<'_> {
        Admin {
            client: self,
            name: "cache_memlimit",
            arg: Some(megabytes),
            noreply: false,
        }
    }

    /// Asks the server to close the connection after answering what is already queued on
    /// it. The next command opens a new connection.
    ///
    /// # Errors
    /// None in practice; the signature leaves room for transports that report one.
    pub async fn quit(&self) -> Result<()> {
        self.inner.quit().await
    }
}
