//! The byte streams a connection runs over, and opening one: TCP and unix sockets share
//! every line of the code above this file through [`Stream`] (the writing side, used
//! through `&self` so that a caller may write while another task reads) and [`ReadHalf`].
//! A new transport (TLS) goes here and nowhere else.

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
        }
    }
}

/// The writing side of a socket, used through `&self`.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Unix(tokio::net::unix::OwnedWriteHalf),
}

impl Stream {
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.as_ref().poll_write_ready(cx),
            Stream::Unix(s) => s.as_ref().poll_write_ready(cx),
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
        Socket::Tcp(tcp) => {
            within_connect_timeout(config, handshake(tcp, probe, credentials)).await
        }
        Socket::Unix(unix) => {
            within_connect_timeout(config, handshake(unix, probe, credentials)).await
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

async fn open_stream(config: &Config, addr: &ServerAddr) -> Result<Socket> {
    let connect = async {
        match addr {
            ServerAddr::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&stream, config)?;
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
