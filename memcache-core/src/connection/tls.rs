//! TLS over TCP (feature `tls`): the handshake, and the two sides of an open TLS
//! connection, shaped as [`transport`](super::transport) wants them: a writing side used
//! through `&self` by any caller ([`TlsWrite`]) and a reading side used by one reader at a
//! time ([`TlsRead`]).
//!
//! The TLS handshake, the protocol probe and the login run on a tokio-rustls stream;
//! then the stream is taken apart into its TCP socket, split in two, and its rustls
//! session, which both sides share under a mutex ([`Session`]):
//!
//! - **Writing** (a caller writing its own request, or the driver a batch) seals the
//!   plaintext into records under the lock and writes them to the socket with
//!   `try_write`, all of them in one vectored write where the socket takes them. Records
//!   end at request boundaries (see [`Framing`]: memcached stalls on requests that share
//!   a record with the end of a large value). Records
//!   the socket did not take stay in the session, *unflushed*: the next write sends them
//!   first, and until then [`TlsWrite::needs_flush`] says so, so that the driver (woken by
//!   whoever left them) flushes them as soon as the socket has room
//!   ([`TlsWrite::poll_flush`]). The driver alone waits for the socket's write readiness.
//! - **Reading** reads ciphertext from the socket into a buffer of its own (outside the
//!   lock), then, under the lock, hands it to rustls, which decrypts it, and moves the
//!   plaintext into the connection's read buffer. A `close_notify` reads as the end of
//!   the stream; an alert or a bad record is an [`Error::Tls`](crate::Error::Tls). Messages
//!   after the handshake (TLS 1.3 session tickets, key updates) are taken in stride; any
//!   answer they need is written at once, or left unflushed for the driver.
//!
//! So pipelining, and a caller writing and reading for itself when alone, work over TLS
//! as over TCP, for the price of the lock (taken once per write and once per read) and
//! the cipher.

use std::io::{self, BufRead, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use rustls::ClientConnection;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, OpenTlsError, Result, TlsErrorKind};
use crate::protocol::framing::{Framing, RECORD};
use crate::tls::Tls;

/// Ciphertext read from the socket at a time: four full records.
const CIPHER_READ: usize = 4 * (16 * 1024 + 256);
/// Plaintext sealed per write at most (then the records must go out before more are
/// sealed: what waits in the session stays under this, plus a record).
const PLAIN_WRITE: usize = 64 * 1024;

/// Does the TLS handshake on `tcp` with the server at `host`.
///
/// # Errors
/// [`Error::Tls`] for a certificate that is not trusted, has expired or names another
/// server, and for a server that does not speak TLS (it answers something else, or closes
/// the connection) or refuses the client; I/O errors.
pub(crate) async fn handshake(
    tls: &Tls,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>> {
    let name = tls.name_for(host)?;
    let connector = TlsConnector::from(Arc::clone(&tls.config));
    connector.connect(name, tcp).await.map_err(|e| {
        match e.kind() {
            // A plain-text server that closes on the ClientHello (or resets).
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) =>
            {
                Error::Tls {
                    kind: TlsErrorKind::NotTls,
                    message: format!(
                        "the server closed the connection during the TLS handshake ({e}): \
                         does it speak TLS (memcached serves it with -Z)?"
                    ),
                }
            }
            _ => Error::from(e),
        }
    })
}

/// The two sides of a TLS stream whose handshake (and probe) is done.
pub(crate) fn split(stream: TlsStream<TcpStream>) -> (TlsWrite, TlsRead) {
    let (tcp, mut conn) = stream.into_inner();
    // Records are sealed whole (see `TlsWrite::try_write`, which bounds what waits).
    conn.set_buffer_limit(None);
    // Anything the handshake left unsent goes out with the first write, or the driver's.
    let unflushed = AtomicBool::new(conn.wants_write());
    let session = Arc::new(Session {
        conn: Mutex::new(Sealing {
            conn,
            framing: Framing::default(),
        }),
        unflushed,
    });
    let (read, write) = tcp.into_split();
    (
        TlsWrite {
            socket: write,
            session: Arc::clone(&session),
        },
        TlsRead {
            socket: read,
            session,
            cipher: vec![0; CIPHER_READ].into_boxed_slice(),
        },
    )
}

/// The rustls session both sides share.
#[derive(Debug)]
struct Session {
    conn: Mutex<Sealing>,
    /// Records wait in the session that the socket has not taken yet.
    unflushed: AtomicBool,
}

/// The rustls connection, and where the requests written through it begin and end.
#[derive(Debug)]
struct Sealing {
    conn: ClientConnection,
    framing: Framing,
}

impl Session {
    fn lock(&self) -> MutexGuard<'_, Sealing> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the session's records to `socket` until it has none left (`Ok`) or the
    /// socket takes no more (`WouldBlock`); notes whether some are left.
    fn flush(&self, conn: &mut ClientConnection, socket: &TcpStream) -> io::Result<()> {
        let outcome = flush(conn, socket);
        self.unflushed.store(conn.wants_write(), Ordering::Relaxed);
        outcome
    }
}

/// Writes `conn`'s records to `socket` until none is left, or `WouldBlock`.
fn flush(conn: &mut ClientConnection, socket: &TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        if conn.write_tls(&mut Sink(socket))? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// A socket as `io::Write`, without waiting: `WouldBlock` when it is full.
struct Sink<'a>(&'a TcpStream);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing side of a TLS connection, used through `&self`.
#[derive(Debug)]
pub(crate) struct TlsWrite {
    socket: OwnedWriteHalf,
    session: Arc<Session>,
}

impl TlsWrite {
    /// Seals up to 64 KiB of `buf` and writes the records (after any left unflushed);
    /// how much of `buf` was taken. The records the socket did not take are sent by the
    /// next write or by [`poll_flush`](Self::poll_flush) (see [`needs_flush`](Self::needs_flush)).
    /// `WouldBlock` when records left from before still wait for the socket.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let socket = self.socket.as_ref();
        let mut sealing = self.session.lock();
        let Sealing { conn, framing } = &mut *sealing;
        self.session.flush(conn, socket)?;
        let mut taken = 0;
        while taken < buf.len() && taken < PLAIN_WRITE {
            let record = framing.next_record(&buf[taken..], RECORD);
            // One record: rustls seals each write of at most a record's size as one.
            conn.writer().write_all(&buf[taken..taken + record])?;
            taken += record;
        }
        match self.session.flush(conn, socket) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        match taken {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            taken => Ok(taken),
        }
    }

    /// Ready once no record waits for the socket (writing them as the socket takes them);
    /// otherwise registers `cx` for the socket's room.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = self.socket.as_ref();
        loop {
            {
                let mut sealing = self.session.lock();
                match self.session.flush(&mut sealing.conn, socket) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(socket.poll_write_ready(cx))?;
        }
    }

    /// Records wait that the socket has not taken: someone must
    /// [`poll_flush`](Self::poll_flush).
    #[inline]
    pub(crate) fn needs_flush(&self) -> bool {
        self.session.unflushed.load(Ordering::Relaxed)
    }
}

/// The reading side of a TLS connection, used by one reader at a time.
pub(crate) struct TlsRead {
    socket: OwnedReadHalf,
    session: Arc<Session>,
    /// Ciphertext read from the socket.
    cipher: Box<[u8]>,
}

impl TlsRead {
    /// Reads plaintext into `input`: `Ok(0)` when the server closed the connection
    /// (`close_notify`, or the socket's end).
    pub(crate) fn poll_fill(
        &mut self,
        input: &mut BytesMut,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        loop {
            // What the session decrypted already (during the handshake's last read, say).
            match plaintext(&mut self.session.lock().conn, input)? {
                Plain::Some(n) => return Poll::Ready(Ok(n)),
                Plain::Closed => return Poll::Ready(Ok(0)),
                Plain::None => {}
            }
            let mut buf = ReadBuf::new(&mut self.cipher);
            ready!(Pin::new(&mut self.socket).poll_read(cx, &mut buf))?;
            let read = buf.filled().len();
            if read == 0 {
                return Poll::Ready(Ok(0));
            }
            let mut sealing = self.session.lock();
            let conn = &mut sealing.conn;
            let mut rest = &self.cipher[..read];
            let mut got = 0;
            let mut closed = false;
            while !rest.is_empty() && !closed {
                if conn.read_tls(&mut rest)? == 0 {
                    break; // close_notify: nothing more is read
                }
                if let Err(error) = conn.process_new_packets() {
                    // rustls queued an alert for the server: sent if the socket takes it.
                    let _ = flush(conn, self.socket.as_ref());
                    let error = OpenTlsError(error);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
                }
                match plaintext(conn, input)? {
                    Plain::Some(n) => got += n,
                    Plain::Closed => closed = true,
                    Plain::None => {}
                }
            }
            if conn.wants_write() {
                // An answer to a key update: sent now, or left for the driver.
                match self.session.flush(conn, self.socket.as_ref()) {
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                        return Poll::Ready(Err(e));
                    }
                    _ => {}
                }
            }
            if got > 0 {
                return Poll::Ready(Ok(got));
            }
            if closed {
                return Poll::Ready(Ok(0));
            }
        }
    }

    /// Records wait that the socket has not taken (an answer the reader could not send):
    /// the driver must flush them.
    #[inline]
    pub(crate) fn needs_flush(&self) -> bool {
        self.session.unflushed.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for TlsRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRead")
            .field("socket", &self.socket)
            .field("session", &self.session)
            .finish_non_exhaustive() // not the ciphertext buffer
    }
}

/// What [`plaintext`] found.
enum Plain {
    /// This many bytes, moved into the read buffer.
    Some(usize),
    /// None yet.
    None,
    /// None, and none will come: the server sent `close_notify`.
    Closed,
}

/// Moves the plaintext `conn` holds into `input`.
fn plaintext(conn: &mut ClientConnection, input: &mut BytesMut) -> io::Result<Plain> {
    let mut reader = conn.reader();
    let mut moved = 0;
    loop {
        let len = match reader.fill_buf() {
            Ok([]) if moved == 0 => return Ok(Plain::Closed),
            Ok([]) => break,
            Ok(chunk) => {
                input.extend_from_slice(chunk);
                chunk.len()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        };
        reader.consume(len);
        moved += len;
    }
    Ok(match moved {
        0 => Plain::None,
        n => Plain::Some(n),
    })
}
