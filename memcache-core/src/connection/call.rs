//! A call on one server's connection: hands a request over and waits for its reply, within
//! the caller's deadline; learns the server's protocol first where a command needs it.

use std::future::Future;

use bytes::BytesMut;
use tokio::time::Instant;

use crate::error::{Error, Result, TimeoutKind};
use crate::metrics::Command;
use crate::protocol::request;
use crate::protocol::response::{Expect, Kind, Opaque, Response};

use super::clock::deadline;
use super::pending::Request;
use super::reply::Reply;
use super::{Connection, Sent};

impl Connection {
    /// Sends a request that expects a reply and waits for it, within the request timeout.
    /// Server-reported errors come back as `Err`.
    ///
    /// On a connected driver the caller sets no timer of its own: the driver fails every
    /// caller alone at `since + timeout`, which saves a timer registration per command.
    /// While the connection is still being opened, or its write queue is full, the caller
    /// bounds its own wait.
    ///
    /// `encode` writes the request into the connection's write buffer, given the opaque
    /// token of its first meta request; it writes `expect.count` requests.
    pub(crate) async fn request(
        &self,
        command: Command,
        expect: Expect,
        encode: impl FnOnce(&mut BytesMut, Opaque),
    ) -> Result<Response> {
        let flight = self.metrics().begin(command);
        let (sent, since) = self.start(Some(expect), false, expect.count, encode);
        // The slow paths are boxed so that the common one's future stays small: it is
        // moved into every command's boxed future, and a timer is large.
        let result = match sent {
            Sent::Ready(Some(reply)) => reply.await,
            // Cannot happen (see `reply_of`); awaited without that wrapper on the hot path.
            Sent::Ready(None) => Err(Error::UnexpectedClose),
            Sent::Connecting(reply) => Box::pin(self.within(since, reply_of(reply))).await,
            Sent::Full(request) => {
                let send_then_reply = async {
                    let reply = self.send_when_room(request).await?;
                    reply_of(reply).await
                };
                Box::pin(self.within(since, send_then_reply)).await
            }
            Sent::Down(error) => Err(error),
        };
        let result = self.settle(failed_as_err(result));
        flight.end(&result);
        result
    }

    /// What [`Connection::request`] and [`Connection::send_noreply`] do before they wait: hands the
    /// request (`expect`: the reply's shape, `None` for noreply; `quiet`: a noreply meta
    /// request in quiet mode; `count`: how many protocol requests `encode` writes) to the
    /// connection. Returns how it went, and when the request was issued. For command
    /// futures written out by hand.
    pub(crate) fn start<E: FnOnce(&mut BytesMut, Opaque)>(
        &self,
        expect: Option<Expect>,
        quiet: bool,
        count: u32,
        encode: E,
    ) -> (Sent<E>, Instant) {
        let since = Instant::now();
        let request = Request {
            encode,
            expect,
            quiet,
            count,
            since,
        };
        (self.try_send(request), since)
    }

    /// Hands a noreply request (`count` protocol requests) to the connection; resolves once
    /// the connection has it. `quiet`: meta requests in quiet mode, whose failure the server
    /// still reports.
    pub(crate) async fn send_noreply(
        &self,
        command: Command,
        quiet: bool,
        count: u32,
        encode: impl FnOnce(&mut BytesMut, Opaque),
    ) -> Result<()> {
        let flight = self.metrics().begin(command);
        let (sent, since) = self.start(None, quiet, count, encode);
        let result = match sent {
            Sent::Ready(_) | Sent::Connecting(_) => Ok(()),
            Sent::Full(request) => {
                let send = async {
                    self.send_when_room(request).await?;
                    Ok(())
                };
                Box::pin(self.within(since, send)).await
            }
            Sent::Down(error) => Err(error),
        };
        let result = self.settle(result);
        flight.end(&result);
        result
    }

    /// Runs `work` until `since + timeout`.
    pub(crate) async fn within<T>(
        &self,
        since: Instant,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline(since, self.slot.shared.config.timeout), work).await
        {
            Ok(result) => result,
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Under [`Protocol::Auto`](crate::Protocol::Auto), before the first connection's probe
    /// has been answered: waits for the answer (a `version` queued behind the probe), so
    /// that a command is encoded in the protocol the server speaks. Only a fresh client's
    /// first commands wait.
    ///
    /// # Errors
    /// When the connection the probe went out on failed (the command would have failed
    /// with it); a server's error for `version` is not the command's, and is ignored.
    pub(crate) async fn learn_protocol(&self) -> Result<()> {
        if !self.protocol_unknown() {
            return Ok(());
        }
        let encode = |buf: &mut BytesMut, _| request::simple(buf, "version", &[], false);
        match self
            .request(Command::Probe, Expect::one(Kind::Version), encode)
            .await
        {
            Err(error) if error.is_connection_error() => Err(error),
            _ => Ok(()),
        }
    }

    /// Probes a dead server (its `dead_timeout` has passed): a `version` in a task of its
    /// own, so that no caller's request is the one to find the server still down. Its
    /// answer brings the server back (the health hears of it as of any reply).
    ///
    /// Outside a tokio runtime nothing is spawned (the probe is due again later).
    pub(crate) fn probe(&self) {
        /// Ends the probe however its task ends (answered, failed, dropped with its
        /// runtime, or panicked): a probe left marked as running would keep the server
        /// out of the ring for good.
        struct Probing(Connection);
        impl Drop for Probing {
            fn drop(&mut self) {
                self.0.health().probe_done();
            }
        }
        let probing = Probing(self.clone());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // `probing` ends the probe here
        };
        runtime.spawn(async move {
            let connection = &probing.0;
            let encode = |buf: &mut BytesMut, _| request::simple(buf, "version", &[], false);
            let answer = connection.request(Command::Probe, Expect::one(Kind::Version), encode).await;
            tracing::debug!(server = %connection.addr(), ok = answer.is_ok(), "probed a dead server");
        });
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            kind: TimeoutKind::Request,
            after: self.slot.shared.config.timeout,
        }
    }
}

/// The reply to a request that expects one. A connection always gives such a request a
/// way to its reply; `None` cannot happen, and would read as a lost connection.
pub(crate) async fn reply_of(reply: Option<Reply>) -> Result<Response> {
    match reply {
        Some(reply) => reply.await,
        None => Err(Error::UnexpectedClose),
    }
}

/// A server-reported error (`Response::Failed`) as `Err`.
pub(crate) fn failed_as_err(result: Result<Response>) -> Result<Response> {
    match result {
        Ok(Response::Failed(error)) => Err(error),
        other => other,
    }
}
