//! The byte streams a connection runs over, and opening one: TCP, unix sockets and TLS
//! (feature `tls`, in [`tls`](super::tls)) share every line of the code above this file
//! through [`Stream`] (the writing side, used through `&self` so that a caller may write
//! while another task reads) and [`ReadHalf`].
//!
//! One thing TLS adds: a write may leave bytes that the socket did not take inside the
//! stream (sealed records), which [`Stream::needs_flush`] tells, and
//! [`Stream::poll_write_ready`] writes out. TCP and unix sockets never have any.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio_util::io::poll_read_buf;

use crate::address::ServerAddr;
use crate::config::{Config, Protocol};
use crate::error::{Error, Result, TimeoutKind};

use super::handshake::{handshake, Outcome};

/// Smallest free room in the read buffer before reading.
const READ_ROOM: usize = 8 * 1024;

/// A freshly opened socket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Socket {
    /// The writing side (shared through `&self`: any caller may write, and poll the
    /// socket's readiness) and the reading side (used by one reader at a time).
    pub(crate) fn split(self) -> (Stream, ReadHalf) {
        match self {
            Socket::Tcp(s) => {
                let (read, write) = s.into_split();
                (Stream::Tcp(write), ReadHalf::Tcp(read))
            }
            Socket::Unix(s) => {
                let (read, write) = s.into_split();
                (Stream::Unix(write), ReadHalf::Unix(read))
            }
            #[cfg(feature = "tls")]
            Socket::Tls(s) => {
                let (write, read) = super::tls::split(*s);
                (Stream::Tls(write), ReadHalf::Tls(read))
            }
        }
    }
}

/// The writing side of a socket, used through `&self`.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Unix(tokio::net::unix::OwnedWriteHalf),
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsWrite),
}

impl Stream {
    /// Writes what the socket takes of `buf` now, without waiting (`WouldBlock` when it
    /// takes nothing). Over TLS, the bytes taken may still wait inside the stream: see
    /// [`needs_flush`](Self::needs_flush).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.try_write(buf),
        }
    }

    /// Ready when the stream can take more; over TLS, once the bytes waiting inside it are
    /// written. Otherwise `cx` is woken when it can.
    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.as_ref().poll_write_ready(cx),
            Stream::Unix(s) => s.as_ref().poll_write_ready(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.poll_flush(cx),
        }
    }

    /// Bytes taken by [`try_write`](Self::try_write) wait inside the stream (TLS only):
    /// [`poll_write_ready`](Self::poll_write_ready) must be polled until it is ready.
    #[inline]
    pub(crate) fn needs_flush(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.needs_flush(),
            _ => false,
        }
    }
}

/// The reading side of a socket. Read through tokio's `AsyncRead`, which (unlike
/// `try_read`) knows a short read has drained the socket, so that the next wait for it
/// costs no extra `read` call.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    Unix(tokio::net::unix::OwnedReadHalf),
    #[cfg(feature = "tls")]
    Tls(super::tls::TlsRead),
}

impl ReadHalf {
    /// A read left bytes to write inside the stream (TLS only: an answer to the server
    /// that the socket did not take): the writer must flush them
    /// ([`Stream::needs_flush`] says the same).
    #[inline]
    pub(crate) fn needs_flush(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            ReadHalf::Tls(s) => s.needs_flush(),
            _ => false,
        }
    }
}

/// Reads what the socket has into `input`: `Ok(0)` when the server closed the connection
/// (or there is no socket). The waker of `cx` is the one the socket wakes when it has more.
pub(crate) fn poll_fill(
    half: &mut Option<ReadHalf>,
    input: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if input.capacity() - input.len() < READ_ROOM {
        input.reserve(READ_ROOM * 4);
    }
    match half {
        Some(ReadHalf::Tcp(half)) => poll_read_buf(Pin::new(half), cx, input),
        Some(ReadHalf::Unix(half)) => poll_read_buf(Pin::new(half), cx, input),
        #[cfg(feature = "tls")]
        Some(ReadHalf::Tls(half)) => half.poll_fill(input, cx),
        None => Poll::Ready(Ok(0)),
    }
}

/// Opens a stream and runs its [handshake](super::handshake): under [`Protocol::Auto`]
/// (unless `classic`: the server is known to be classic) it asks `mn` before anything
/// else is written (`MN` means meta, `ERROR` classic), and it logs in when the server
/// asks for it. A server that hangs up on `mn` (twemproxy does) is classic: the
/// connection is opened again, so no request is lost to the probe. The probe costs one
/// round trip per connection; its answer is returned (`None` when none was asked).
pub(crate) async fn connect(
    config: &Config,
    addr: &ServerAddr,
    classic: bool,
) -> Result<(Socket, Option<bool>)> {
    let mut stream = open_stream(config, addr).await?;
    let probe = config.protocol == Protocol::Auto && !classic;
    let credentials = config.credentials.as_ref();
    if !probe && credentials.is_none() {
        return Ok((stream, None));
    }
    let outcome = match &mut stream {
        Socket::Tcp(tcp) => within_connect_timeout(config, handshake(tcp, probe, credentials))
            .await
            .map_err(plain_hint),
        Socket::Unix(unix) => {
            within_connect_timeout(config, handshake(unix, probe, credentials)).await
        }
        #[cfg(feature = "tls")]
        Socket::Tls(tls) => {
            within_connect_timeout(config, handshake(&mut **tls, probe, credentials)).await
        }
    };
    match outcome? {
        Outcome::Ready(answer) => {
            tracing::debug!(server = %addr, meta = ?answer, "connection ready");
            Ok((stream, answer))
        }
        Outcome::HungUp => {
            tracing::debug!(server = %addr, "the server hung up on the probe: classic");
            Ok((open_stream(config, addr).await?, Some(false)))
        }
    }
}

/// A plain connection reset at the probe: say what a server that requires TLS does.
fn plain_hint(error: Error) -> Error {
    match &error {
        Error::Io(io) if io.kind() == io::ErrorKind::ConnectionReset => {
            Error::from(io::Error::new(
                io::ErrorKind::ConnectionReset,
                format!(
                    "{io}, at the connection's first request: a server that requires TLS \
                 (memcached -Z) does this to plain text (see ClientBuilder::tls)"
                ),
            ))
        }
        _ => error,
    }
}

/// Opens a socket (and, with TLS, does the TLS handshake), all within the connect timeout.
async fn open_stream(config: &Config, addr: &ServerAddr) -> Result<Socket> {
    let connect = async {
        match addr {
            ServerAddr::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&stream, config)?;
                #[cfg(feature = "tls")]
                if let Some(tls) = &config.tls {
                    let stream = super::tls::handshake(tls, host, stream).await?;
                    return Ok(Socket::Tls(Box::new(stream)));
                }
                Ok(Socket::Tcp(stream))
            }
            ServerAddr::Unix(path) => {
                Ok(Socket::Unix(tokio::net::UnixStream::connect(path).await?))
            }
        }
    };
    within_connect_timeout(config, connect).await
}

/// Runs `work` within the connect timeout (`Duration::MAX`: no limit).
async fn within_connect_timeout<T>(
    config: &Config,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(Error::Timeout {
            kind: TimeoutKind::Connect,
            after: limit,
        }))
}

fn tune_tcp(stream: &tokio::net::TcpStream, config: &Config) -> Result<()> {
    stream.set_nodelay(config.no_delay)?;
    if let Some(idle) = config.tcp_keepalive {
        let keepalive = socket2::TcpKeepalive::new().with_time(idle);
        socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}
