//! [`Client`] and the shared machinery its commands use.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::time::Instant;

use crate::config::{ClientBuilder, Config};
use crate::connection::{deadline, Connection, Reply, Request, Sent};
use crate::error::{Error, Result, TimeoutKind};
use crate::protocol::response::Opaque;
use crate::protocol::response::{Expect, Kind, Response};

/// A memcached client: cheap to clone, safe to share between tasks.
///
/// Every clone talks through the same connection, which pipelines the requests of all
/// callers (see the crate docs, *Pipelining*). Each command is a builder: set its
/// options, then `.await` it.
///
/// ```no_run
/// # async fn demo() -> Result<(), memcache_core::Error> {
/// let client = memcache_core::Client::builder().server("127.0.0.1:11211").build()?;
/// client.set("greeting", "hello").ttl(60).await?;
/// let hit = client.get("greeting").await?;
/// assert_eq!(hit.map(|v| v.data), Some("hello".into()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Arc<Config>,
    connection: Connection,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .field("timeout", &self.inner.config.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with every setting at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let config = Arc::new(config);
        Client {
            inner: Arc::new(Inner {
                connection: Connection::new(Arc::clone(&config)),
                config,
            }),
        }
    }

    /// The prefix put in front of every key (empty when none is set).
    pub fn key_prefix(&self) -> &[u8] {
        self.inner.config.keys.prefix()
    }

    /// Whether errors on the read path become misses (see [`ClientBuilder::ignore_exc`]).
    pub fn ignore_exc(&self) -> bool {
        self.inner.config.ignore_exc
    }

    /// Whether the store commands use `noreply` unless told otherwise
    /// (see [`ClientBuilder::default_noreply`]).
    pub fn default_noreply(&self) -> bool {
        self.inner.config.default_noreply
    }

    /// How many noreply writes the server reported as failed. Only the meta protocol's quiet
    /// mode reports them (each is also logged with `tracing` at warn level, with the keys of
    /// its batch); with the classic protocol memcached answers nothing to a noreply request,
    /// failures included.
    pub fn noreply_errors(&self) -> u64 {
        self.inner.connection.noreply_errors()
    }

    /// The per-command timeout (see [`ClientBuilder::timeout`]).
    pub fn timeout(&self) -> std::time::Duration {
        self.inner.config.timeout
    }
}

impl ClientBuilder {
    /// Builds the client. No I/O happens here.
    ///
    /// # Errors
    /// [`Error::Address`] when no server is set or its address does not parse;
    /// [`Error::IllegalInput`] when the key prefix breaks the key rules.
    pub fn build(self) -> Result<Client> {
        Ok(Client::from_config(self.into_config()?))
    }
}

impl Inner {
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
        expect: Expect,
        encode: impl FnOnce(&mut BytesMut, Opaque),
    ) -> Result<Response> {
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
                    let reply = self.connection.send_when_room(request).await?;
                    reply_of(reply).await
                };
                Box::pin(self.within(since, send_then_reply)).await
            }
            Sent::Down(error) => Err(error),
        };
        failed_as_err(result)
    }

    /// What [`Inner::request`] and [`Inner::send_noreply`] do before they wait: hands the
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
        (self.connection.try_send(request), since)
    }

    /// Hands a noreply request (`count` protocol requests) to the connection; resolves once
    /// the connection has it. `quiet`: meta requests in quiet mode, whose failure the server
    /// still reports.
    pub(crate) async fn send_noreply(
        &self,
        quiet: bool,
        count: u32,
        encode: impl FnOnce(&mut BytesMut, Opaque),
    ) -> Result<()> {
        let (sent, since) = self.start(None, quiet, count, encode);
        match sent {
            Sent::Ready(_) | Sent::Connecting(_) => Ok(()),
            Sent::Full(request) => {
                let send = async {
                    self.connection.send_when_room(request).await?;
                    Ok(())
                };
                Box::pin(self.within(since, send)).await
            }
            Sent::Down(error) => Err(error),
        }
    }

    /// Runs `work` until `since + timeout`.
    pub(crate) async fn within<T>(
        &self,
        since: Instant,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline(since, self.config.timeout), work).await {
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
        let encode =
            |buf: &mut BytesMut, _| crate::protocol::request::simple(buf, "version", &[], false);
        match self.request(Expect::one(Kind::Version), encode).await {
            Err(error) if error.is_connection_error() => Err(error),
            _ => Ok(()),
        }
    }

    /// `true` under [`Protocol::Auto`](crate::Protocol::Auto) until a connection's probe
    /// has been answered.
    pub(crate) fn protocol_unknown(&self) -> bool {
        self.connection.protocol_unknown()
    }

    /// Whether to encode data commands in the meta protocol now.
    pub(crate) fn meta(&self) -> bool {
        self.connection.meta()
    }

    pub(crate) async fn quit(&self) -> Result<()> {
        self.connection.quit().await
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            kind: TimeoutKind::Request,
            after: self.config.timeout,
        }
    }

    /// On the read path with `ignore_exc`, an error (other than illegal input) is a miss.
    pub(crate) fn miss_on_error<T: Default>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(error) if self.config.ignore_exc && !error.is_illegal_input() => {
                tracing::debug!(%error, "ignore_exc: treating the error as a miss");
                Ok(T::default())
            }
            other => other,
        }
    }

    /// The noreply setting for a store-like command: the call's own, else the client's.
    pub(crate) fn noreply(&self, call: Option<bool>) -> bool {
        call.unwrap_or(self.config.default_noreply)
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

/// The error for a response whose shape does not fit the command (a bug on one side or the
/// other; reported, never guessed at).
pub(crate) fn mismatched(response: &Response) -> Error {
    let mut text = format!("{response:?}");
    text.truncate(120);
    Error::UnknownResponse(format!("response does not fit the command: {text}"))
}
