//! One socket, owned by one driver task, carrying the requests of many callers.
//!
//! Callers hand a [`Request`] (encoded bytes, and for a request that expects a reply: the
//! reply's shape and a oneshot slot) to the driver through a bounded channel. The driver:
//!
//! - pulls everything queued and writes it with as few `writev` calls as the socket allows
//!   (auto-pipelining: no timer, no added delay; batches form under load by themselves);
//! - keeps a FIFO of slots for the requests that expect a reply; memcached answers the
//!   requests of one connection in order, so each complete response fills the oldest slot;
//! - completes a slot whose caller has gone (timed out, dropped its future) all the same,
//!   discarding the response, so the stream never gets out of step;
//! - on any I/O or protocol error, or when the oldest slot has waited longer than the
//!   request timeout, fails every outstanding request with that error and ends; the next
//!   request opens a new connection.
//!
//! The driver is generic over the byte stream, so TCP and unix sockets share every line of
//! the pipelining code.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use crate::config::{Config, Protocol, ServerAddr};
use crate::error::{Error, Result, TimeoutKind};
use crate::protocol::response::{Decoder, Expect, Kind, Response};

/// How many requests may wait in a connection's channel before callers wait for room.
const CHANNEL_CAPACITY: usize = 1024;
/// Stop taking requests from the channel while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Most buffers handed to one `writev`.
const MAX_IOV: usize = 64;
/// Smallest free room in the read buffer before reading.
const READ_ROOM: usize = 8 * 1024;
/// Rounds of (take requests, write, read) one poll may do before yielding.
const ROUNDS_PER_POLL: usize = 32;

/// Where the reply to a request goes.
pub(crate) type ReplySlot = oneshot::Sender<Result<Response>>;

/// A request on its way to the driver.
#[derive(Debug)]
pub(crate) struct Request {
    /// The complete encoded command(s).
    pub(crate) bytes: Bytes,
    /// The reply's shape and where it goes; `None` for noreply requests, which get none.
    pub(crate) reply: Option<(Expect, ReplySlot)>,
    /// A quiet meta request: no reply on success, an error line on failure. The driver
    /// follows each run of quiet requests with `mn` to learn where their replies end.
    pub(crate) quiet: bool,
    /// When the caller issued it: its reply is due by `since + timeout`.
    pub(crate) since: Instant,
}

/// How [`Connection::try_send`] handed a request over.
#[derive(Debug)]
pub(crate) enum Sent {
    /// To a connected driver, which answers or fails it by its deadline: the caller needs
    /// no timer of its own.
    Ready,
    /// To a driver that is still connecting: the caller bounds its own wait.
    Connecting,
    /// Not at all: the channel is full. Send it with this sender, within the deadline.
    Full(mpsc::Sender<Request>, Request),
}

/// The client's handle on one driver.
#[derive(Debug)]
struct Handle {
    sender: mpsc::Sender<Request>,
    /// Set once the driver has connected (and probed) and enforces deadlines itself.
    ready: Arc<AtomicBool>,
}

/// What a server's connections have learned, shared by the client and every driver.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// [`UNKNOWN`], [`CLASSIC`] or [`META`]: what the last probe found.
    mode: AtomicU8,
    /// Failed quiet (noreply) meta requests.
    noreply_errors: AtomicU64,
}

const UNKNOWN: u8 = 0;
const CLASSIC: u8 = 1;
const META: u8 = 2;

impl Shared {
    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::Relaxed);
    }
}

/// The client side of one server's connection: hands requests to its driver, opening a
/// new connection (and driver) when there is none or the last one has ended.
#[derive(Debug)]
pub(crate) struct Connection {
    config: Arc<Config>,
    current: Mutex<Option<Handle>>,
    shared: Arc<Shared>,
}

impl Connection {
    /// A connection that opens on first use.
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Connection {
            config,
            current: Mutex::new(None),
            shared: Arc::default(),
        }
    }

    /// Whether requests should be encoded in the meta protocol now. Under
    /// [`Protocol::Auto`] that is known once a connection's probe has been answered; until
    /// then requests are classic, which every server understands, and both kinds mix on one
    /// connection.
    pub(crate) fn meta(&self) -> bool {
        match self.config.protocol {
            Protocol::Meta => true,
            Protocol::Classic => false,
            Protocol::Auto => self.shared.mode.load(Ordering::Relaxed) == META,
        }
    }

    /// `true` under [`Protocol::Auto`] until a probe has been answered.
    pub(crate) fn protocol_unknown(&self) -> bool {
        self.config.protocol == Protocol::Auto
            && self.shared.mode.load(Ordering::Relaxed) == UNKNOWN
    }

    /// How many quiet (noreply) meta requests the server reported as failed.
    pub(crate) fn noreply_errors(&self) -> u64 {
        self.shared.noreply_errors.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Handle>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `request` to the current driver without waiting, opening a new connection
    /// (and driver) when there is none or the last one has ended.
    pub(crate) fn try_send(&self, request: Request) -> Sent {
        let mut current = self.lock();
        let request = match current.as_ref() {
            Some(handle) => match handle.sender.try_send(request) {
                Ok(()) if handle.ready.load(Ordering::Acquire) => return Sent::Ready,
                Ok(()) => return Sent::Connecting,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    return Sent::Full(handle.sender.clone(), back)
                }
                // The driver has ended: this request opens the next connection.
                Err(mpsc::error::TrySendError::Closed(back)) => back,
            },
            None => request,
        };
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        // Queued before the driver starts, so that a driver failing at once (connection
        // refused) fails this request with its own error.
        let _ = sender.try_send(request);
        let ready = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(
            Arc::clone(&self.config),
            Arc::clone(&self.shared),
            Arc::clone(&ready),
            receiver,
        ));
        *current = Some(Handle { sender, ready });
        Sent::Connecting
    }

    /// Sends `quit` on the current connection, if any, and forgets it: later requests open
    /// a new connection. Requests already queued on it are answered first.
    pub(crate) async fn quit(&self, bytes: Bytes) -> Result<()> {
        let handle = self.lock().take();
        if let Some(Handle { sender, .. }) = handle {
            // A driver that has already ended needs no quit.
            let request = Request {
                bytes,
                reply: None,
                quiet: false,
                since: Instant::now(),
            };
            let _ = sender.send(request).await;
        }
        Ok(())
    }
}

/// Connects (probing for the meta protocol first under [`Protocol::Auto`]), then drives
/// the connection until it ends.
async fn run(
    config: Arc<Config>,
    shared: Arc<Shared>,
    ready: Arc<AtomicBool>,
    mut requests: mpsc::Receiver<Request>,
) {
    let stream = connect(&config, &shared).await;
    ready.store(true, Ordering::Release);
    let error = match stream {
        Ok(Stream::Tcp(stream)) => return Driver::new(stream, requests, &config, shared).await,
        Ok(Stream::Unix(stream)) => return Driver::new(stream, requests, &config, shared).await,
        Err(error) => error,
    };
    tracing::debug!(server = %config.server, %error, "connect failed");
    fail_queued(&mut requests, &error);
}

/// The transports a connection can run over.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Opens a stream and, under [`Protocol::Auto`] (unless the server is known to be classic),
/// asks `mn` before anything else is written: `MN` means meta, `ERROR` classic. A server
/// that hangs up on `mn` (twemproxy does) is classic: the connection is opened again, so no
/// request is lost to the probe. The probe costs one round trip per connection.
async fn connect(config: &Config, shared: &Shared) -> Result<Stream> {
    let mut stream = open_stream(config).await?;
    if config.protocol != Protocol::Auto || shared.mode.load(Ordering::Relaxed) == CLASSIC {
        return Ok(stream);
    }
    let answer = match &mut stream {
        Stream::Tcp(tcp) => probe(tcp, config).await?,
        Stream::Unix(unix) => probe(unix, config).await?,
    };
    tracing::debug!(server = %config.server, meta = ?answer, "protocol probe answered");
    shared.set_mode(if answer == Some(true) { META } else { CLASSIC });
    if answer.is_none() {
        stream = open_stream(config).await?;
    }
    Ok(stream)
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
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or(Err(Error::Timeout {
            kind: TimeoutKind::Connect,
            after: limit,
        }))
}

async fn open_stream(config: &Config) -> Result<Stream> {
    let connect = async {
        match &config.server {
            ServerAddr::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&stream, config)?;
                Ok(Stream::Tcp(stream))
            }
            ServerAddr::Unix(path) => {
                Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?))
            }
        }
    };
    let limit = config.connect_timeout;
    tokio::time::timeout(limit, connect)
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

/// Closes the channel and fails every request still in it.
fn fail_queued(requests: &mut mpsc::Receiver<Request>, error: &Error) {
    requests.close();
    while let Ok(request) = requests.try_recv() {
        if let Some((_, slot)) = request.reply {
            let _ = slot.send(Err(error.clone()));
        }
    }
}

/// The key of an encoded request (its second token), for logging.
fn request_key(request: &Bytes) -> Option<String> {
    let line = &request[..memchr::memchr(b'\r', request)?];
    let key = line.split(|&b| b == b' ').nth(1)?;
    Some(String::from_utf8_lossy(key).into_owned())
}

/// A request written (or being written) whose reply has not been read yet.
#[derive(Debug)]
struct Pending {
    expect: Expect,
    waiter: Waiter,
    since: Instant,
}

/// Who is waiting for a reply.
#[derive(Debug)]
enum Waiter {
    /// A caller.
    Caller(ReplySlot),
    /// The driver itself: the `mn` closing a run of quiet requests (kept for logging).
    Quiet(Vec<Bytes>),
}

/// The future that owns one socket.
struct Driver<S> {
    stream: S,
    requests: mpsc::Receiver<Request>,
    /// `false` once every handle is gone (the channel returned `None`).
    open: bool,
    out: VecDeque<Bytes>,
    out_len: usize,
    needs_flush: bool,
    input: BytesMut,
    pending: VecDeque<Pending>,
    decoder: Decoder,
    timeout: std::time::Duration,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    server: String,
    shared: Arc<Shared>,
    /// Quiet requests taken since the last `mn`.
    quiet_run: Vec<Bytes>,
    /// When the first of them was issued.
    quiet_since: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    fn new(
        stream: S,
        requests: mpsc::Receiver<Request>,
        config: &Config,
        shared: Arc<Shared>,
    ) -> Self {
        Driver {
            stream,
            requests,
            open: true,
            out: VecDeque::new(),
            out_len: 0,
            needs_flush: false,
            input: BytesMut::with_capacity(READ_ROOM * 2),
            pending: VecDeque::new(),
            decoder: Decoder::new(config.max_value_size),
            timeout: config.timeout,
            timer: Box::pin(tokio::time::sleep(config.timeout)),
            timer_armed: false,
            server: config.server.to_string(),
            shared,
            quiet_run: Vec::new(),
            quiet_since: Instant::now(),
        }
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            kind: TimeoutKind::Request,
            after: self.timeout,
        }
    }

    fn push(&mut self, bytes: Bytes) {
        self.out_len += bytes.len();
        self.out.push_back(bytes);
    }

    /// Ends a run of quiet requests with `mn`, whose `MN` marks where their failure
    /// reports (if any) end.
    fn end_quiet_run(&mut self, since: Instant) {
        self.push(Bytes::from_static(b"mn\r\n"));
        self.pending.push_back(Pending {
            expect: Expect::one(Kind::Quiet),
            waiter: Waiter::Quiet(std::mem::take(&mut self.quiet_run)),
            since,
        });
    }

    /// Takes queued requests into the write queue. Returns whether it took any.
    fn intake(&mut self, cx: &mut Context<'_>) -> bool {
        let mut took = false;
        let mut now = None;
        while self.open && self.out_len < WRITE_HIGH_WATER {
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => {
                    took = true;
                    let since = request.since;
                    if request.reply.is_some()
                        && since + self.timeout <= *now.get_or_insert_with(Instant::now)
                    {
                        // Overdue before it was written (it waited for the connection):
                        // fail it alone rather than the connection.
                        if let Some((_, slot)) = request.reply {
                            let _ = slot.send(Err(self.timed_out()));
                        }
                        continue;
                    }
                    if request.quiet {
                        if self.quiet_run.is_empty() {
                            self.quiet_since = since;
                        }
                        self.quiet_run.push(request.bytes.clone());
                    } else if !self.quiet_run.is_empty() {
                        self.end_quiet_run(since);
                    }
                    if let Some((expect, slot)) = request.reply {
                        let waiter = Waiter::Caller(slot);
                        self.pending.push_back(Pending {
                            expect,
                            waiter,
                            since,
                        });
                    }
                    self.push(request.bytes);
                }
                Poll::Ready(None) => self.open = false,
                Poll::Pending => break,
            }
        }
        if !self.quiet_run.is_empty() {
            self.end_quiet_run(self.quiet_since);
        }
        took
    }

    /// Writes as much of the write queue as the socket takes.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        let mut wrote = false;
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.out.iter()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into())
                }
                Poll::Ready(Ok(mut written)) => {
                    wrote = true;
                    self.needs_flush = true;
                    self.out_len -= written;
                    while written > 0 {
                        let Some(front) = self.out.front_mut() else {
                            break;
                        };
                        if front.len() <= written {
                            written -= front.len();
                            self.out.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => break,
            }
        }
        if self.needs_flush && self.out.is_empty() {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => {}
            }
        }
        Ok(wrote)
    }

    /// Reads what the socket has and completes every response it finishes.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        if self.input.capacity() - self.input.len() < READ_ROOM {
            self.input.reserve(READ_ROOM * 4);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.input) {
            Poll::Ready(Ok(0)) => Err(Error::UnexpectedClose),
            Poll::Ready(Ok(_)) => {
                self.dispatch()?;
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(e.into()),
            Poll::Pending => Ok(false),
        }
    }

    fn dispatch(&mut self) -> Result<()> {
        while let Some(oldest) = self.pending.front() {
            match self.decoder.decode(&mut self.input, oldest.expect)? {
                Some(response) => {
                    if let Some(done) = self.pending.pop_front() {
                        self.complete(done.waiter, response);
                    }
                }
                None => return Ok(()),
            }
        }
        if self.input.is_empty() {
            Ok(())
        } else {
            let shown: String = String::from_utf8_lossy(&self.input[..self.input.len().min(80)])
                .chars()
                .collect();
            Err(Error::UnknownResponse(format!(
                "data with no request waiting for it: {shown:?}"
            )))
        }
    }

    fn complete(&mut self, waiter: Waiter, response: Response) {
        match waiter {
            // The caller may have given up; the response is then dropped.
            Waiter::Caller(slot) => {
                let _ = slot.send(Ok(response));
            }
            Waiter::Quiet(requests) => {
                let Response::Quiet(errors) = response else {
                    return;
                };
                for error in errors {
                    self.shared.noreply_errors.fetch_add(1, Ordering::Relaxed);
                    let keys: Vec<_> = requests.iter().filter_map(request_key).collect();
                    tracing::warn!(
                        server = %self.server,
                        %error,
                        keys = ?keys,
                        "a noreply request failed (one of the keys listed)"
                    );
                }
            }
        }
    }

    /// Fails the connection when its oldest request has waited longer than the timeout.
    ///
    /// The timer is re-armed lazily: when it fires early (the request it was set for has
    /// been answered) it is set for the new oldest request, and it stays armed while no
    /// request is outstanding, so that one-at-a-time traffic does not reset it per request.
    ///
    /// Only callers' requests count: the `mn` after a run of quiet (noreply) requests is the
    /// driver's own bookkeeping, and a connection carrying only noreply writes survives a
    /// stalled server as it does over the classic protocol.
    fn check_timer(&mut self, cx: &mut Context<'_>) -> Result<()> {
        let oldest_caller = |pending: &VecDeque<Pending>| {
            pending
                .iter()
                .find(|p| matches!(p.waiter, Waiter::Caller(_)))
                .map(|p| p.since)
        };
        while let Some(since) = oldest_caller(&self.pending) {
            let deadline = since + self.timeout;
            if !self.timer_armed {
                self.timer.as_mut().reset(deadline);
                self.timer_armed = true;
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out());
            }
            self.timer_armed = false;
        }
        Ok(())
    }

    /// One poll's worth of work. `Ok(true)`: the connection is finished.
    ///
    /// Each round takes queued requests, writes, and reads. A source that answered
    /// `Pending` has registered this task's waker, so it is not polled again in this call:
    /// the channel only after a write made room (it is left unpolled while the write queue
    /// is over its high-water mark), the socket's read side not until it wakes the task.
    fn drive(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        let (mut poll_intake, mut poll_read) = (true, true);
        for _ in 0..ROUNDS_PER_POLL {
            let took = poll_intake && self.intake(cx);
            let wrote = (!self.out.is_empty() || self.needs_flush) && self.write(cx)?;
            let read = poll_read && self.read(cx)?;
            if !self.open && self.pending.is_empty() && self.out.is_empty() {
                return Ok(true);
            }
            if !(took || wrote || read) {
                self.check_timer(cx)?;
                return Ok(false);
            }
            poll_intake = took || wrote;
            poll_read = read;
        }
        cx.waker().wake_by_ref();
        self.check_timer(cx)?;
        Ok(false)
    }

    fn fail(&mut self, error: &Error) {
        // Closed first: a caller woken by the failure below must not be able to queue its
        // next request here; it opens a new connection instead.
        self.requests.close();
        if self.pending.is_empty() && matches!(error, Error::UnexpectedClose) {
            tracing::debug!(server = %self.server, "connection closed by the server while idle");
        } else {
            tracing::warn!(
                server = %self.server,
                %error,
                outstanding = self.pending.len(),
                "connection failed; failing its outstanding requests"
            );
        }
        for pending in self.pending.drain(..) {
            if let Waiter::Caller(slot) = pending.waiter {
                let _ = slot.send(Err(error.clone()));
            }
        }
        fail_queued(&mut self.requests, error);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Driver<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.drive(cx) {
            Ok(false) => Poll::Pending,
            Ok(true) => Poll::Ready(()),
            Err(error) => {
                this.fail(&error);
                Poll::Ready(())
            }
        }
    }
}
