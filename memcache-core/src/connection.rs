//! One socket carrying the requests of many callers, read by one driver task.
//!
//! A connection's state (its write queue and the FIFO of requests awaiting a reply) is a
//! [`Link`] shared by the callers and the connection's driver task:
//!
//! - a caller encodes its request, and under the link's lock registers its reply slot and
//!   queues the bytes; when nothing else is in flight it writes them to the socket itself
//!   (one `write`, no task hop: the common case of one request at a time), otherwise the
//!   driver writes everything queued with as few `writev` calls as the socket allows
//!   (auto-pipelining: no timer, no added delay; batches form under load by themselves);
//! - the driver reads; memcached answers the requests of one connection in order, so each
//!   complete response fills the oldest slot;
//! - a slot whose caller has gone (timed out, dropped its future) is completed all the same,
//!   the response discarded, so the stream never gets out of step;
//! - on any I/O or protocol error, or when the oldest caller request has waited longer than
//!   the request timeout, the driver fails every outstanding request with that error and
//!   ends; the next request opens a new connection.
//!
//! TCP and unix sockets share every line of this code through [`Stream`].

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::config::{Config, Protocol, ServerAddr};
use crate::error::{Error, Result, TimeoutKind};
use crate::protocol::response::{Decoder, Expect, Kind, Response};

/// Callers wait for room while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Most buffers handed to one `writev`.
const MAX_IOV: usize = 64;
/// Smallest free room in the read buffer before reading.
const READ_ROOM: usize = 8 * 1024;
/// Rounds of (write, read) one poll may do before yielding.
const ROUNDS_PER_POLL: usize = 32;

/// Where the reply to a request goes.
pub(crate) type ReplySlot = oneshot::Sender<Result<Response>>;

/// A request on its way to the server.
#[derive(Debug)]
pub(crate) struct Request {
    /// The complete encoded command(s).
    pub(crate) bytes: Bytes,
    /// The reply's shape and where it goes; `None` for noreply requests, which get none.
    pub(crate) reply: Option<(Expect, ReplySlot)>,
    /// A quiet meta request: no reply on success, an error line on failure. Each run of
    /// quiet requests is followed by `mn`, to learn where their replies end.
    pub(crate) quiet: bool,
    /// When the caller issued it: its reply is due by `since + timeout`.
    pub(crate) since: Instant,
}

/// How [`Connection::try_send`] handed a request over.
#[derive(Debug)]
pub(crate) enum Sent {
    /// To a connected link, whose driver answers or fails it by its deadline: the caller
    /// needs no timer of its own.
    Ready,
    /// To a link still connecting: the caller bounds its own wait.
    Connecting,
    /// Not at all: the write queue is full. Try again later, within the deadline.
    Full(Request),
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

/// The client side of one server's connection: hands requests to the current link,
/// opening a new connection (link and driver) when there is none or the last has ended.
#[derive(Debug)]
pub(crate) struct Connection {
    config: Arc<Config>,
    current: Mutex<Option<Arc<Link>>>,
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

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Link>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands `request` to the current link without waiting, opening a new connection when
    /// there is none or the last one has ended.
    pub(crate) fn try_send(&self, request: Request) -> Sent {
        let mut current = self.lock();
        let mut request = request;
        if let Some(link) = current.as_ref() {
            match link.enqueue(request) {
                Err(back) => request = back, // the link has closed: open the next one
                Ok(sent) => return sent,
            }
        }
        let link = Arc::new(Link::new());
        // Queued before the driver starts, so that a driver failing at once (connection
        // refused) fails this request with its own error.
        let sent = link.enqueue(request).unwrap_or(Sent::Connecting);
        tokio::spawn(run(
            Arc::clone(&self.config),
            Arc::clone(&self.shared),
            Arc::clone(&link),
        ));
        *current = Some(link);
        sent
    }

    /// Sends `quit` on the current connection, if any, and forgets it: later requests open
    /// a new connection. Requests already queued on it are answered first.
    pub(crate) async fn quit(&self, bytes: Bytes) -> Result<()> {
        let link = self.lock().take();
        if let Some(link) = link {
            let request = Request {
                bytes,
                reply: None,
                quiet: false,
                since: Instant::now(),
            };
            // A link that has already closed needs no quit; a full one gets none either.
            let _ = link.enqueue(request);
            link.abandon();
        }
        Ok(())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(link) = self.lock().take() {
            link.abandon();
        }
    }
}

/// The byte streams a connection runs over, used through `&self`: a caller may write
/// while the driver reads.
#[derive(Debug)]
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Stream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            Stream::Unix(s) => s.poll_write_ready(cx),
        }
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read_buf(buf),
            Stream::Unix(s) => s.try_read_buf(buf),
        }
    }
}

/// One connection's state, shared by its callers and its driver.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    /// The socket, once connected (and probed).
    stream: Option<Arc<Stream>>,
    /// Bytes waiting for the driver to write them.
    out: VecDeque<Bytes>,
    out_len: usize,
    /// The driver holds bytes taken from `out` that are not all written yet.
    writing: bool,
    /// Requests written or queued whose reply has not been read, oldest first.
    pending: VecDeque<Pending>,
    /// Quiet requests queued since the last `mn`.
    quiet_run: Vec<Bytes>,
    /// When the first of them was issued.
    quiet_since: Instant,
    /// The driver has ended: no request may be queued here any more.
    closed: bool,
    /// No client refers to this link any more: the driver ends once it is idle.
    abandoned: bool,
    /// The driver's waker, while it waits.
    driver: Option<Waker>,
}

impl Link {
    fn new() -> Self {
        Link {
            state: Mutex::new(LinkState {
                stream: None,
                out: VecDeque::new(),
                out_len: 0,
                writing: false,
                pending: VecDeque::new(),
                quiet_run: Vec::new(),
                quiet_since: Instant::now(),
                closed: false,
                abandoned: false,
                driver: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `request` (writing it at once when the connection is otherwise idle), or
    /// gives it back when the link has closed.
    fn enqueue(&self, request: Request) -> std::result::Result<Sent, Request> {
        let mut state = self.lock();
        if state.closed {
            return Err(request);
        }
        if state.out_len >= WRITE_HIGH_WATER {
            return Ok(Sent::Full(request));
        }
        let Request {
            bytes,
            reply,
            quiet,
            since,
        } = request;
        if quiet {
            if state.quiet_run.is_empty() {
                state.quiet_since = since;
            }
            state.quiet_run.push(bytes.clone());
        } else if !state.quiet_run.is_empty() {
            state.end_quiet_run();
        }
        let expects_reply = reply.is_some();
        if let Some((expect, slot)) = reply {
            state.pending.push_back(Pending {
                expect,
                waiter: Waiter::Caller(slot),
                since,
            });
        }
        let Some(stream) = state.stream.clone() else {
            state.push(bytes);
            return Ok(Sent::Connecting);
        };
        // Nothing else in flight: write it now, without a trip through the driver task,
        // which is already waiting for the socket to be readable. Otherwise the driver
        // batches it with the others.
        let idle = !quiet
            && !state.writing
            && state.out.is_empty()
            && state.pending.len() == usize::from(expects_reply);
        let written = if idle {
            stream.try_write(&bytes).unwrap_or(0)
        } else {
            0
        };
        if written < bytes.len() {
            state.push(bytes.slice(written..));
            state.wake_driver();
        }
        Ok(Sent::Ready)
    }

    /// No client refers to this link any more.
    fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.wake_driver();
    }
}

impl LinkState {
    fn push(&mut self, bytes: Bytes) {
        self.out_len += bytes.len();
        self.out.push_back(bytes);
    }

    fn wake_driver(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.wake();
        }
    }

    /// Ends a run of quiet requests with `mn`, whose `MN` marks where their failure
    /// reports (if any) end.
    fn end_quiet_run(&mut self) {
        self.push(Bytes::from_static(b"mn\r\n"));
        let run = std::mem::take(&mut self.quiet_run);
        self.pending.push_back(Pending {
            expect: Expect::one(Kind::Quiet),
            waiter: Waiter::Quiet(run),
            since: self.quiet_since,
        });
    }
}

/// Connects (probing for the meta protocol first under [`Protocol::Auto`]), then drives
/// the connection until it ends.
async fn run(config: Arc<Config>, shared: Arc<Shared>, link: Arc<Link>) {
    let error = match connect(&config, &shared).await {
        Ok(stream) => {
            let stream = Arc::new(stream);
            {
                let mut state = link.lock();
                state.stream = Some(Arc::clone(&stream));
                // Requests queued while connecting are bounded by their callers' own timers;
                // the connection's deadline for them starts now, so that a slow connect
                // does not condemn the fresh connection.
                let now = Instant::now();
                for pending in &mut state.pending {
                    pending.since = pending.since.max(now);
                }
            }
            return Driver::new(stream, link, &config, shared).await;
        }
        Err(error) => error,
    };
    tracing::debug!(server = %config.server, %error, "connect failed");
    for waiter in link.close() {
        if let Waiter::Caller(slot) = waiter {
            let _ = slot.send(Err(error.clone()));
        }
    }
}

impl Link {
    /// Closes the link: nothing more can be queued. Returns the waiters to fail.
    fn close(&self) -> Vec<Waiter> {
        let mut state = self.lock();
        state.closed = true;
        state.out.clear();
        state.out_len = 0;
        state.quiet_run.clear();
        state.pending.drain(..).map(|p| p.waiter).collect()
    }
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

/// The future that reads one socket, and writes what callers could not write themselves.
struct Driver {
    stream: Arc<Stream>,
    link: Arc<Link>,
    /// Bytes taken from the link's queue, being written.
    batch: VecDeque<Bytes>,
    input: BytesMut,
    decoder: Decoder,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    server: String,
    shared: Arc<Shared>,
}

impl Driver {
    fn new(stream: Arc<Stream>, link: Arc<Link>, config: &Config, shared: Arc<Shared>) -> Self {
        Driver {
            stream,
            link,
            batch: VecDeque::new(),
            input: BytesMut::with_capacity(READ_ROOM * 2),
            decoder: Decoder::new(config.max_value_size),
            timeout: config.timeout,
            timer: Box::pin(tokio::time::sleep(config.timeout)),
            timer_armed: false,
            server: config.server.to_string(),
            shared,
        }
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            kind: TimeoutKind::Request,
            after: self.timeout,
        }
    }

    /// Writes what callers queued. Returns whether it wrote anything.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        let mut wrote = false;
        loop {
            if self.batch.is_empty() {
                let mut state = self.link.lock();
                if !state.quiet_run.is_empty() {
                    state.end_quiet_run();
                }
                if state.out.is_empty() {
                    state.writing = false;
                    return Ok(wrote);
                }
                self.batch = std::mem::take(&mut state.out);
                state.out_len = 0;
                state.writing = true;
            }
            match self.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => return Ok(wrote),
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.batch.iter()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(mut written) => {
                    wrote = true;
                    while written > 0 {
                        let Some(front) = self.batch.front_mut() else {
                            break;
                        };
                        if front.len() <= written {
                            written -= front.len();
                            self.batch.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads what the socket has and completes every response it finishes.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => return Ok(false),
            }
            if self.input.capacity() - self.input.len() < READ_ROOM {
                self.input.reserve(READ_ROOM * 4);
            }
            match self.stream.try_read_buf(&mut self.input) {
                Ok(0) => return Err(Error::UnexpectedClose),
                Ok(_) => {
                    self.dispatch()?;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn dispatch(&mut self) -> Result<()> {
        let mut state = self.link.lock();
        while let Some(oldest) = state.pending.front() {
            match self.decoder.decode(&mut self.input, oldest.expect)? {
                Some(response) => {
                    if let Some(done) = state.pending.pop_front() {
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

    fn complete(&self, waiter: Waiter, response: Response) {
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

    /// Fails the connection when its oldest caller request has waited longer than the
    /// timeout.
    ///
    /// The timer is always armed: for the oldest caller request's deadline, or, when none
    /// is outstanding, one timeout ahead (a request a caller writes itself does not wake
    /// this task, so the timer must already be running to catch its deadline). It is re-armed
    /// only when it fires: one-at-a-time traffic does not reset it per request.
    ///
    /// Only callers' requests count: the `mn` after a run of quiet (noreply) requests is the
    /// driver's own bookkeeping, and a connection carrying only noreply writes survives a
    /// stalled server as it does over the classic protocol.
    fn check_timer(&mut self, cx: &mut Context<'_>) -> Result<()> {
        loop {
            let oldest = {
                let state = self.link.lock();
                state
                    .pending
                    .iter()
                    .find(|p| matches!(p.waiter, Waiter::Caller(_)))
                    .map(|p| p.since)
            };
            let deadline = oldest.map(|since| since + self.timeout);
            if !self.timer_armed {
                let at = deadline.unwrap_or_else(|| Instant::now() + self.timeout);
                self.timer.as_mut().reset(at);
                self.timer_armed = true;
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(self.timed_out());
            }
            self.timer_armed = false;
        }
    }

    /// One poll's worth of work. `Ok(true)`: the connection is finished.
    ///
    /// The waker is registered with the link first, so that whatever a caller queues from
    /// then on wakes this task again. A socket side that answered `Pending` has registered
    /// the waker too and is not polled again in this call.
    fn drive(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        {
            let mut state = self.link.lock();
            match &state.driver {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.driver = Some(cx.waker().clone()),
            }
        }
        let mut poll_read = true;
        for _ in 0..ROUNDS_PER_POLL {
            let wrote = self.write(cx)?;
            let read = poll_read && self.read(cx)?;
            {
                let state = self.link.lock();
                if state.abandoned
                    && state.pending.is_empty()
                    && state.out.is_empty()
                    && self.batch.is_empty()
                {
                    return Ok(true);
                }
            }
            if !(wrote || read) {
                self.check_timer(cx)?;
                return Ok(false);
            }
            poll_read = read;
        }
        cx.waker().wake_by_ref();
        self.check_timer(cx)?;
        Ok(false)
    }

    fn fail(&mut self, error: &Error) {
        // The link is closed first: a caller woken by the failure below must not be able to
        // queue its next request here; it opens a new connection instead.
        let waiters = self.link.close();
        let outstanding = waiters
            .iter()
            .filter(|w| matches!(w, Waiter::Caller(_)))
            .count();
        if outstanding == 0 && matches!(error, Error::UnexpectedClose) {
            tracing::debug!(server = %self.server, "connection closed by the server while idle");
        } else {
            tracing::warn!(
                server = %self.server,
                %error,
                outstanding,
                "connection failed; failing its outstanding requests"
            );
        }
        for waiter in waiters {
            if let Waiter::Caller(slot) = waiter {
                let _ = slot.send(Err(error.clone()));
            }
        }
    }
}

impl Drop for Driver {
    /// A driver that goes away without having closed its link (its task was dropped with
    /// the runtime, or panicked) fails what is left, so that no caller waits forever.
    fn drop(&mut self) {
        for waiter in self.link.close() {
            if let Waiter::Caller(slot) = waiter {
                let _ = slot.send(Err(Error::UnexpectedClose));
            }
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.drive(cx) {
            Ok(false) => Poll::Pending,
            Ok(true) => {
                this.link.close();
                Poll::Ready(())
            }
            Err(error) => {
                this.fail(&error);
                Poll::Ready(())
            }
        }
    }
}
