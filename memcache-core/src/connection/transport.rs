//! The byte streams a connection runs over, and opening one: TCP and unix sockets share
//! every line of the code above this file through [`Stream`] (the writing side, used
//! through `&self` so that a caller may write while another task reads) and [`ReadHalf`].
//! A new transport (TLS) goes here and nowhere else.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::poll_read_buf;

use crate::address::ServerAddr;
use crate::config::{Config, Protocol};
use crate::error::{Error, Result, TimeoutKind};

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

/// Opens a stream and, under [`Protocol::Auto`] (unless `classic`: the server is known to
/// be classic), asks `mn` before anything else is written: `MN` means meta, `ERROR`
/// classic. A server that hangs up on `mn` (twemproxy does) is classic: the connection is
/// opened again, so no request is lost to the probe. The probe costs one round trip per
/// connection; its answer is returned (`None` when none was asked).
pub(crate) async fn connect(
    config: &Config,
    addr: &ServerAddr,
    classic: bool,
) -> Result<(Socket, Option<bool>)> {
    let mut stream = open_stream(config, addr).await?;
    if config.protocol != Protocol::Auto || classic {
        return Ok((stream, None));
    }
    let answer = match &mut stream {
        Socket::Tcp(tcp) => probe(tcp, config).await?,
        Socket::Unix(unix) => probe(unix, config).await?,
    };
    tracing::debug!(server = %addr, meta = ?answer, "protocol probe answered");
    if answer.is_none() {
        stream = open_stream(config, addr).await?;
    }
    Ok((stream, Some(answer == Some(true))))
}

/// Sends `mn` and reads one line: `Some(true)` for `MN`, `Some(false)` for anything else
/// (`ERROR`), `None` when the server closed the connection.
async fn probe<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &Config,
) -> Result<Option<bool>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        stream.write_all(b"mn\r\n").await?;
        let mut line = [0u8; 64];
        let mut len = 0;
        loop {
            let n = stream.read(&mut line[len..]).await?;
            if n == 0 {
                return Ok(None);
            }
            len += n;
            if let Some(end) = memchr::memchr(b'\n', &line[..len]) {
                return Ok(Some(&line[..=end] == b"MN\r\n"));
            }
            if len == line.len() {
                return Ok(Some(false));
            }
        }
    };
    within_connect_timeout(config, exchange).await
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
