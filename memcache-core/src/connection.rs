//! One socket carrying the requests of many callers.
//!
//! A connection's state (its write buffer and the FIFO of requests awaiting a reply) is a
//! [`Link`] shared by the callers and the connection's driver task:
//!
//! - a caller encodes its request straight into the link's write buffer, under the link's
//!   lock (no buffer of its own), and registers where its reply goes;
//! - when nothing else is in flight, the caller writes the request itself and then reads
//!   its reply itself ("solo": the common case of one request at a time costs no trip
//!   through another task, no reply channel and no allocation beyond the command future);
//! - otherwise the driver writes everything queued with as few `write` calls as the socket
//!   allows (auto-pipelining: no timer, no added delay; batches form under load by
//!   themselves) and reads; memcached answers the requests of one connection in order, so
//!   each complete response fills the oldest slot. Whoever holds the read role (the driver,
//!   or a solo caller until its reply is in) completes every response it decodes. After a
//!   read that answered callers the driver yields before writing again, so that the callers
//!   it woke queue their next requests first and those go out together;
//! - with [`ClientBuilder::join_gets`](crate::ClientBuilder::join_gets), classic single-key gets queued one behind the other
//!   share one multi-key line, and its reply is split among their callers by key (see
//!   [`Group`]);
//! - a slot whose caller has gone (timed out, dropped its future) is completed all the same,
//!   the response discarded, so the stream never gets out of step;
//! - on any I/O or protocol error, or when the oldest caller request has waited longer than
//!   the request timeout (the driver's timer watches that, for solo callers too), every
//!   outstanding request fails with that error and the link closes; the next request opens
//!   a new connection.
//!
//! TCP and unix sockets share every line of this code through [`Stream`] and [`ReadHalf`].

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_util::io::poll_read_buf;

use crate::config::{Config, Protocol, ServerAddr};
use crate::error::{Error, Result, TimeoutKind};
use crate::protocol::lineup::line_up;
use crate::protocol::response::{Decoder, Expect, Kind, Response};

/// Callers wait for room while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Initial capacity of a connection's write buffers.
const OUT_CAPACITY: usize = 16 * 1024;
/// A write buffer that held more than this (a large value, a large batch) is started over
/// small once emptied, so that a burst does not pin its size for the connection's life.
const OUT_KEEP: usize = 1024 * 1024;

/// Empties a write buffer that has been written out, for reuse; `held` is how many bytes
/// it held (its capacity no longer says so once it has been advanced through).
fn reuse(buf: &mut BytesMut, held: usize) {
    if held > OUT_KEEP {
        *buf = BytesMut::with_capacity(OUT_CAPACITY);
    } else {
        buf.clear();
    }
}
/// Smallest free room in the read buffer before reading.
const READ_ROOM: usize = 8 * 1024;
/// Replies [`Link::dispatch`] decodes per look at the FIFO.
const DISPATCH_BATCH: usize = 64;
/// Rounds of (write, read) one poll may do before yielding.
const ROUNDS_PER_POLL: usize = 32;
/// Most callers' keys one shared classic `get` line carries (see [`Group`]).
const GROUP_KEYS: usize = 64;
/// Longest shared classic `get` line, in bytes, before a new one is started.
const GROUP_LINE: usize = 4096;

/// Where the driver sends the reply to a request.
type ReplySlot = oneshot::Sender<Result<Response>>;

/// A request on its way to the server.
#[derive(Debug)]
pub(crate) struct Request<E> {
    /// Writes the complete command(s) into the connection's write buffer. It runs under
    /// the connection's lock, so requests need no buffer of their own.
    pub(crate) encode: E,
    /// The reply's shape; `None` for noreply requests, which get none.
    pub(crate) expect: Option<Expect>,
    /// A quiet meta request: no reply on success, an error line on failure. Each run of
    /// quiet requests is followed by `mn`, to learn where their replies end.
    pub(crate) quiet: bool,
    /// When the caller issued it: its reply is due by `since + timeout`.
    pub(crate) since: Instant,
}

/// How [`Connection::try_send`] handed a request over, with the way to its reply (`None`
/// for a noreply request).
#[derive(Debug)]
pub(crate) enum Sent<E> {
    /// To a connected link, which answers or fails it by its deadline: the caller needs no
    /// timer of its own.
    Ready(Option<Reply>),
    /// To a link still connecting: the caller bounds its own wait.
    Connecting(Option<Reply>),
    /// Not at all: the write queue is full. Try again later, within the deadline.
    Full(Request<E>),
}

impl<E> Sent<E> {
    /// The same outcome, with the encoder of a request that was not sent dropped (and with
    /// it whatever it borrowed).
    pub(crate) fn forget_encoder(self) -> Sent<()> {
        match self {
            Sent::Ready(reply) => Sent::Ready(reply),
            Sent::Connecting(reply) => Sent::Connecting(reply),
            Sent::Full(request) => Sent::Full(Request {
                encode: (),
                expect: request.expect,
                quiet: request.quiet,
                since: request.since,
            }),
        }
    }
}

/// The way to a request's reply: a future that resolves to it.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The driver reads the reply and sends it here.
    Slot(oneshot::Receiver<Result<Response>>),
    /// The caller wrote its request to an idle connection and reads the reply itself.
    Solo(SoloRead),
}

impl Future for Reply {
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Reply::Slot(slot) => Pin::new(slot)
                .poll(cx)
                .map(|reply| reply.unwrap_or(Err(Error::UnexpectedClose))),
            Reply::Solo(solo) => Pin::new(solo).poll(cx),
        }
    }
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
    pub(crate) fn try_send<E: FnOnce(&mut BytesMut)>(&self, request: Request<E>) -> Sent<E> {
        let mut current = self.lock();
        let mut request = request;
        if let Some(link) = current.as_ref() {
            match link.enqueue(request) {
                Err(back) => request = back, // the link has closed: open the next one
                Ok(sent) => return sent,
            }
        }
        let link = Arc::new(Link::new(Arc::clone(&self.shared), &self.config));
        // Queued before the driver starts, so that a driver failing at once (connection
        // refused) fails this request with its own error. A fresh link is open.
        let sent = match link.enqueue(request) {
            Ok(sent) => sent,
            Err(_) => Sent::Connecting(None),
        };
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
    pub(crate) async fn quit(&self) -> Result<()> {
        let link = self.lock().take();
        if let Some(link) = link {
            let request = Request {
                encode: |out: &mut BytesMut| out.extend_from_slice(b"quit\r\n"),
                expect: None,
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

/// A freshly opened socket.
#[derive(Debug)]
enum Socket {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Socket {
    /// The writing side (shared through `&self`: any caller may write, and poll the
    /// socket's readiness) and the reading side (used by one reader at a time).
    fn split(self) -> (Stream, ReadHalf) {
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

/// The byte streams a connection runs over, used through `&self`: a caller may write
/// while another task reads. TCP and unix sockets share every line of the code above this.
#[derive(Debug)]
enum Stream {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Unix(tokio::net::unix::OwnedWriteHalf),
}

impl Stream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.as_ref().poll_write_ready(cx),
            Stream::Unix(s) => s.as_ref().poll_write_ready(cx),
        }
    }

    /// Registers `cx` to be woken when the socket is readable (for whoever reads next).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.as_ref().poll_read_ready(cx),
            Stream::Unix(s) => s.as_ref().poll_read_ready(cx),
        }
    }
}

/// The reading side of a socket. Read through tokio's `AsyncRead`, which (unlike
/// `try_read`) knows a short read has drained the socket, so that the next wait for it
/// costs no extra `read` call.
#[derive(Debug)]
enum ReadHalf {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    Unix(tokio::net::unix::OwnedReadHalf),
}

/// One connection's state, shared by its callers and its driver.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<LinkState>,
    /// What has been read and not yet decoded. Used only by the holder of the read role
    /// ([`LinkState::reader`]), so never contended.
    read: Mutex<ReadSide>,
    shared: Arc<Shared>,
    /// The server's address, for logs.
    server: String,
    /// Classic single-key gets may share a line ([`ClientBuilder::join_gets`]).
    ///
    /// [`ClientBuilder::join_gets`]: crate::ClientBuilder::join_gets
    join_gets: bool,
}

#[derive(Debug)]
struct LinkState {
    /// The socket, once connected (and probed).
    stream: Option<Arc<Stream>>,
    /// Bytes waiting for the driver to write them: callers encode their requests here.
    out: BytesMut,
    /// The driver holds bytes taken from `out` that are not all written yet.
    writing: bool,
    /// Requests written or queued whose reply has not been read, oldest first.
    pending: VecDeque<Pending>,
    /// Numbers the requests, to tell a solo caller's own reply.
    next_seq: u64,
    /// Who may read the socket now.
    reader: Reader,
    /// A solo caller's waker, while it waits for its reply.
    solo: Option<Waker>,
    /// Quiet requests have been queued since the last `mn`.
    quiet_run: bool,
    /// Their keys (the first of each request), space-separated, for logging a failure.
    quiet_keys: Vec<u8>,
    /// When the first of them was issued.
    quiet_since: Instant,
    /// Why the link closed (the connection failed; a driver that simply ended reads as
    /// `UnexpectedClose`). Once set, no request may be queued here any more.
    closed: Option<Error>,
    /// No client refers to this link any more: the driver ends once it is idle.
    abandoned: bool,
    /// The driver's waker, while it waits.
    driver: Option<Waker>,
    /// The newest request is a classic `get`/`gets` still at the end of `out`, which the
    /// next one may join (see [`Group`]).
    tail: Option<Tail>,
}

/// Where the classic `get`/`gets` line at the end of a link's write buffer lies.
#[derive(Debug, Clone, Copy)]
struct Tail {
    /// Its first byte in `out`.
    start: usize,
    /// `out`'s length just after it: the line is still the last thing queued.
    end: usize,
    /// The length of its command word with the space (`get ` or `gets `).
    command: usize,
}

/// The callers of classic single-key `get`s (or `gets`) that were queued one behind the
/// other and went out as one multi-key line, `get k1 k2 ..`: memcached flushes a write
/// after every classic `get` (pipelined, they top out near 170k/s on one server thread),
/// while a multi-key `get` is its cheapest read. The reply's hits are handed to the callers
/// by key, as for `get_many`; a caller whose key has no hit gets a miss. A server error for
/// the line is every caller's (which is why joining is off by default: see
/// [`ClientBuilder::join_gets`](crate::ClientBuilder::join_gets)).
///
/// Only classic requests are joined: pipelined meta gets are answered without a flush each.
#[derive(Debug, Default)]
struct Group {
    /// The members' keys as sent (with the client's prefix), end to end.
    keys: Vec<u8>,
    /// Where each member's key ends in `keys`.
    ends: Vec<usize>,
    /// Each member's reply slot, in the order of the keys.
    slots: Vec<ReplySlot>,
}

impl Group {
    fn push(&mut self, key: &[u8], slot: ReplySlot) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
        self.slots.push(slot);
    }

    /// Hands each member its part of the reply to the shared line.
    fn answer(self, response: Response) {
        let items = match response {
            Response::Values(items) => items,
            Response::Value(hit) => hit.into_iter().collect(),
            // a server error (or a reply of the wrong shape) is every member's
            other => {
                for slot in self.slots {
                    let _ = slot.send(Ok(other.clone()));
                }
                return;
            }
        };
        let mut start = 0;
        let keys: Vec<&[u8]> = self
            .ends
            .iter()
            .map(|&end| {
                let key = &self.keys[start..end];
                start = end;
                key
            })
            .collect();
        match line_up(b"", &keys, items) {
            Ok(found) => {
                for (slot, hit) in self.slots.into_iter().zip(found) {
                    let _ = slot.send(Ok(Response::Value(hit)));
                }
            }
            Err(error) => self.fail(&error),
        }
    }

    fn fail(self, error: &Error) {
        for slot in self.slots {
            let _ = slot.send(Err(error.clone()));
        }
    }
}

/// `Some(length of the command word with its space)` when `line` is a classic `get` or
/// `gets` of exactly one key.
fn single_get(line: &[u8]) -> Option<usize> {
    let command = if line.starts_with(b"get ") {
        4
    } else if line.starts_with(b"gets ") {
        5
    } else {
        return None;
    };
    let key = line.get(command..line.len().checked_sub(2)?)?;
    (line.ends_with(b"\r\n") && !key.is_empty() && !key.contains(&b' ')).then_some(command)
}

/// Who holds the right to read the socket (and to the read buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// Nobody: the driver takes it whenever it polls.
    Free,
    /// The driver, for the length of one poll.
    Driver,
    /// The caller of the request with this number, until its reply has been read: it wrote
    /// to an idle connection and waits for the socket itself, so the one-request-at-a-time
    /// case needs no trip through the driver task.
    Solo(u64),
}

/// The socket's reading side, the read buffer and the decoder's state.
#[derive(Debug)]
struct ReadSide {
    /// Set once connected; taken away when the connection ends.
    half: Option<ReadHalf>,
    input: BytesMut,
    decoder: Decoder,
    /// [`Link::dispatch`]'s working lists, kept for their room: the shapes of the replies
    /// due next, the responses decoded for them, and the waiters to complete.
    expects: Vec<Expect>,
    decoded: Vec<Response>,
    done: Vec<(Waiter, Response)>,
    /// [`Link::dispatch`] has taken at least one reply's waiter from the FIFO since this
    /// was last cleared.
    answered: bool,
}

impl ReadSide {
    /// Reads what the socket has into the buffer: `Ok(0)` when the server closed the
    /// connection.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.input.capacity() - self.input.len() < READ_ROOM {
            self.input.reserve(READ_ROOM * 4);
        }
        match &mut self.half {
            Some(ReadHalf::Tcp(half)) => poll_read_buf(Pin::new(half), cx, &mut self.input),
            Some(ReadHalf::Unix(half)) => poll_read_buf(Pin::new(half), cx, &mut self.input),
            None => Poll::Ready(Ok(0)),
        }
    }
}

impl Link {
    fn new(shared: Arc<Shared>, config: &Config) -> Self {
        Link {
            state: Mutex::new(LinkState {
                stream: None,
                out: BytesMut::with_capacity(OUT_CAPACITY),
                writing: false,
                pending: VecDeque::new(),
                next_seq: 0,
                reader: Reader::Free,
                solo: None,
                quiet_run: false,
                quiet_keys: Vec::new(),
                quiet_since: Instant::now(),
                closed: None,
                abandoned: false,
                driver: None,
                tail: None,
            }),
            read: Mutex::new(ReadSide {
                half: None,
                input: BytesMut::with_capacity(READ_ROOM * 2),
                decoder: Decoder::new(config.max_value_size),
                expects: Vec::new(),
                decoded: Vec::new(),
                done: Vec::new(),
                answered: false,
            }),
            shared,
            server: config.server.to_string(),
            join_gets: config.join_gets,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_read(&self) -> MutexGuard<'_, ReadSide> {
        self.read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `request` (writing it at once when the connection is otherwise idle), or
    /// gives it back when the link has closed.
    fn enqueue<E: FnOnce(&mut BytesMut)>(
        self: &Arc<Self>,
        request: Request<E>,
    ) -> std::result::Result<Sent<E>, Request<E>> {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Err(request);
        }
        if state.out.len() >= WRITE_HIGH_WATER {
            return Ok(Sent::Full(request));
        }
        let Request {
            encode,
            expect,
            quiet,
            since,
        } = request;
        if !quiet && state.quiet_run {
            state.end_quiet_run();
        }
        let start = state.out.len();
        encode(&mut state.out);
        let tail = state.tail.take();
        let get = match expect {
            Some(expect) if self.join_gets && expect == Expect::one(Kind::Values) => {
                single_get(&state.out[start..])
            }
            _ => None,
        };
        if let (Some(command), Some(tail)) = (get, tail) {
            if let Some(reply) = state.join_group(tail, start, command) {
                let reply = Some(Reply::Slot(reply));
                return Ok(match state.stream {
                    Some(_) => Sent::Ready(reply),
                    None => Sent::Connecting(reply),
                });
            }
        }
        if quiet {
            if !state.quiet_run {
                state.quiet_run = true;
                state.quiet_since = since;
            }
            let state = &mut *state;
            if let Some(key) = request_key(&state.out[start..]) {
                state.quiet_keys.extend_from_slice(key);
                state.quiet_keys.push(b' ');
            }
        }
        let Some(stream) = state.stream.clone() else {
            let reply = expect.map(|expect| Reply::Slot(state.wait_for(expect, since)));
            state.set_tail(get, start);
            return Ok(Sent::Connecting(reply));
        };
        // Nothing else in flight: write it now, without a trip through the driver task, and
        // read the reply in the caller's task too. Otherwise the driver batches it with the
        // others and hands the reply over.
        let idle = !quiet
            && start == 0
            && !state.writing
            && state.pending.is_empty()
            && state.reader == Reader::Free;
        let written = if idle {
            stream.try_write(&state.out).unwrap_or(0)
        } else {
            0
        };
        let all = idle && written == state.out.len();
        if all {
            let held = state.out.len();
            reuse(&mut state.out, held);
        } else {
            state.out.advance(written);
            state.wake_driver();
        }
        let reply = match expect {
            Some(expect) if all => {
                let seq = state.next_seq;
                state.next_seq += 1;
                state.reader = Reader::Solo(seq);
                state.pending.push_back(Pending {
                    expect,
                    waiter: Waiter::Solo(seq),
                    since,
                });
                Some(Reply::Solo(SoloRead {
                    link: Arc::clone(self),
                    seq,
                    done: false,
                }))
            }
            Some(expect) => {
                let reply = state.wait_for(expect, since);
                if written == 0 {
                    state.set_tail(get, start);
                }
                Some(Reply::Slot(reply))
            }
            None => None,
        };
        Ok(Sent::Ready(reply))
    }

    /// No client refers to this link any more.
    fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.wake_driver();
    }

    /// Decodes every complete response in `read` and completes its waiter. A solo caller
    /// (`solo`) gets its own response back, and gives up the read role with it.
    ///
    /// With several replies due, the link's lock is held only to look at their shapes and,
    /// once they are decoded, to take their waiters from the FIFO: decoding and waking the
    /// callers happen outside it, so callers queueing requests meanwhile (on other threads)
    /// do not wait for a whole batch. The entries at the front of the FIFO stay put
    /// meanwhile: only the holder of the read role removes them, or [`Link::fail`], which
    /// closes the link (checked before they are taken).
    fn dispatch(&self, read: &mut ReadSide, solo: Option<u64>) -> Result<Option<Response>> {
        let mut state = self.lock();
        if state.pending.len() == 1 {
            // One reply due (one request at a time): decoded under the lock, which no other
            // reply's caller waits for, with one look at the FIFO instead of two.
            let Some(response) = read
                .decoder
                .decode(&mut read.input, state.pending[0].expect)?
            else {
                return Ok(None);
            };
            let Some(entry) = state.pending.pop_front() else {
                return Ok(None);
            };
            read.answered = true;
            let mine = match entry.waiter {
                Waiter::Solo(seq) if Some(seq) == solo => {
                    state.hand_over_reading();
                    Some(response)
                }
                waiter => {
                    drop(state);
                    self.complete(waiter, response);
                    None
                }
            };
            return match read.input.is_empty() {
                true => Ok(mine),
                false => Err(stray_data(&read.input)),
            };
        }
        drop(state);
        let ReadSide {
            input,
            decoder,
            expects,
            decoded,
            done,
            answered,
            ..
        } = read;
        let mut failure = None;
        'decode: loop {
            {
                let state = self.lock();
                expects.clear();
                expects.extend(
                    state
                        .pending
                        .iter()
                        .skip(decoded.len())
                        .take(DISPATCH_BATCH)
                        .map(|p| p.expect),
                );
            }
            for &expect in expects.iter() {
                match decoder.decode(input, expect) {
                    Ok(Some(response)) => decoded.push(response),
                    Ok(None) => break 'decode,
                    Err(error) => {
                        failure = Some(error);
                        break 'decode;
                    }
                }
            }
            if expects.len() < DISPATCH_BATCH {
                break;
            }
        }
        let mut mine = None;
        let stray = {
            let mut state = self.lock();
            if let Some(error) = &state.closed {
                decoded.clear();
                return Err(error.clone());
            }
            for response in decoded.drain(..) {
                let Some(entry) = state.pending.pop_front() else {
                    break;
                };
                *answered = true;
                match entry.waiter {
                    Waiter::Solo(seq) if Some(seq) == solo => mine = Some(response),
                    waiter => done.push((waiter, response)),
                }
            }
            if mine.is_some() && failure.is_none() {
                state.hand_over_reading();
            }
            state.pending.is_empty() && !input.is_empty()
        };
        for (waiter, response) in done.drain(..) {
            self.complete(waiter, response);
        }
        // A burst of replies does not pin its lists' size.
        if decoded.capacity() > 16 * DISPATCH_BATCH {
            decoded.shrink_to(DISPATCH_BATCH);
            done.shrink_to(DISPATCH_BATCH);
        }
        match failure {
            Some(error) => Err(error),
            None if stray => Err(stray_data(input)),
            None => Ok(mine),
        }
    }

    fn complete(&self, waiter: Waiter, response: Response) {
        match waiter {
            // The caller may have given up; the response is then dropped.
            Waiter::Caller(slot) => {
                let _ = slot.send(Ok(response));
            }
            // A solo caller that gave up.
            Waiter::Solo(_) => {}
            Waiter::Group(group) => group.answer(response),
            Waiter::Quiet(keys) => {
                let Response::Quiet(errors) = response else {
                    return;
                };
                for error in errors {
                    self.shared.noreply_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        server = %self.server,
                        %error,
                        keys = %String::from_utf8_lossy(keys.trim_ascii_end()),
                        "a noreply request failed (one of the keys listed)"
                    );
                }
            }
        }
    }

    /// Closes the link for good with `error`: nothing more can be queued, every outstanding
    /// request fails with it (the next request opens a new connection), and the driver
    /// ends. Logged unless the server merely closed an idle connection.
    ///
    /// Returns the error the link failed with: this one, or an earlier one.
    fn fail(&self, error: &Error) -> Error {
        let (waiters, solo, driver) = {
            let mut state = self.lock();
            if let Some(earlier) = &state.closed {
                return earlier.clone();
            }
            state.closed = Some(error.clone());
            state.out.clear();
            state.tail = None;
            state.quiet_run = false;
            state.quiet_keys.clear();
            let waiters: Vec<Waiter> = state.pending.drain(..).map(|p| p.waiter).collect();
            (waiters, state.solo.take(), state.driver.take())
        };
        let outstanding: usize = waiters
            .iter()
            .map(|waiter| match waiter {
                Waiter::Quiet(_) => 0,
                Waiter::Group(group) => group.slots.len(),
                Waiter::Caller(_) | Waiter::Solo(_) => 1,
            })
            .sum();
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
            match waiter {
                Waiter::Caller(slot) => {
                    let _ = slot.send(Err(error.clone()));
                }
                Waiter::Group(group) => group.fail(error),
                Waiter::Solo(_) | Waiter::Quiet(_) => {}
            }
        }
        for waker in [solo, driver].into_iter().flatten() {
            waker.wake();
        }
        error.clone()
    }

    /// A solo caller's wait for its reply: reads the socket until its response is decoded
    /// (completing any others that arrive with it).
    fn poll_solo(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<Response>> {
        {
            let mut state = self.lock();
            if let Some(error) = &state.closed {
                // The connection failed meanwhile (the driver enforces the deadline).
                return Poll::Ready(Err(error.clone()));
            }
            match &state.solo {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.solo = Some(cx.waker().clone()),
            }
        }
        let mut read = self.lock_read();
        loop {
            let error = match read.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => Error::UnexpectedClose,
                Poll::Ready(Ok(_)) => match self.dispatch(&mut read, Some(seq)) {
                    Ok(Some(response)) => return Poll::Ready(Ok(response)),
                    Ok(None) => continue,
                    Err(error) => error,
                },
                Poll::Ready(Err(e)) => e.into(),
            };
            drop(read);
            return Poll::Ready(Err(self.fail(&error)));
        }
    }

    /// Closes the link of a driver that has finished (abandoned and idle, or already
    /// failed): nothing more can be queued.
    fn close(&self) {
        self.lock().closed.get_or_insert(Error::UnexpectedClose);
    }

    /// Lets the socket go once the driver has ended (it closes when the last solo caller
    /// still holding the writing side lets go too).
    fn release_socket(&self) {
        self.lock_read().half = None;
        self.lock().stream = None;
    }

    /// A solo caller gave up before its reply came: the driver reads from now on, and
    /// discards that reply.
    fn solo_gone(&self, seq: u64) {
        let mut state = self.lock();
        if state.reader == Reader::Solo(seq) {
            state.reader = Reader::Free;
            state.solo = None;
            state.wake_driver();
        }
    }
}

impl LinkState {
    fn wake_driver(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.wake();
        }
    }

    /// Registers a caller's wait for the reply to a request queued for the driver.
    fn wait_for(&mut self, expect: Expect, since: Instant) -> oneshot::Receiver<Result<Response>> {
        let (slot, reply) = oneshot::channel();
        self.pending.push_back(Pending {
            expect,
            waiter: Waiter::Caller(slot),
            since,
        });
        reply
    }

    /// A solo caller has its reply: the driver reads from now on. It is woken when others'
    /// replies are still to come; otherwise its waker is registered for the socket again
    /// (a solo caller's wait took that place), so that it still notices the server closing
    /// an idle connection. Done under the lock: no new solo caller can register meanwhile.
    fn hand_over_reading(&mut self) {
        self.reader = Reader::Free;
        self.solo = None;
        if !self.pending.is_empty() {
            self.wake_driver();
            return;
        }
        let (Some(stream), Some(driver)) = (&self.stream, &self.driver) else {
            return;
        };
        if stream
            .poll_read_ready(&mut Context::from_waker(driver))
            .is_ready()
        {
            self.wake_driver();
        }
    }

    /// Remembers the classic single-key get (`command`: [`single_get`]'s answer) just
    /// queued at `start`, whose reply goes to the newest FIFO entry, for the next one to
    /// join.
    fn set_tail(&mut self, command: Option<usize>, start: usize) {
        self.tail = command.map(|command| Tail {
            start,
            end: self.out.len(),
            command,
        });
    }

    /// Joins the classic single-key get just encoded at `start` (`command`: its command
    /// word's length) to the line before it, `tail`, when that line is one of the same
    /// command and still queued: `get a\r\nget b\r\n` becomes `get a b\r\n`, and the
    /// caller's slot is added to the [`Group`] waiting for that line's reply. `None` (nothing
    /// changed) when it cannot join.
    fn join_group(
        &mut self,
        tail: Tail,
        start: usize,
        command: usize,
    ) -> Option<oneshot::Receiver<Result<Response>>> {
        if tail.end != start || tail.command != command || start - tail.start > GROUP_LINE {
            return None;
        }
        let mut entry = self.pending.pop_back()?;
        let mut group = match entry.waiter {
            Waiter::Group(group) if group.slots.len() < GROUP_KEYS => group,
            Waiter::Caller(slot) => {
                let mut group = Box::<Group>::default();
                group.push(&self.out[tail.start + command..start - 2], slot);
                group
            }
            waiter => {
                entry.waiter = waiter;
                self.pending.push_back(entry);
                return None;
            }
        };
        let len = self.out.len();
        let (slot, reply) = oneshot::channel();
        group.push(&self.out[start + command..len - 2], slot);
        // `..a\r\nget b\r\n` -> `..a b\r\n`
        self.out[start - 2] = b' ';
        self.out.copy_within(start + command..len, start - 1);
        self.out.truncate(len - command - 1);
        entry.waiter = Waiter::Group(group);
        self.pending.push_back(entry);
        self.tail = Some(Tail {
            end: self.out.len(),
            ..tail
        });
        Some(reply)
    }

    /// Ends a run of quiet requests with `mn`, whose `MN` marks where their failure
    /// reports (if any) end.
    fn end_quiet_run(&mut self) {
        self.tail = None;
        self.out.extend_from_slice(b"mn\r\n");
        self.quiet_run = false;
        let keys = std::mem::take(&mut self.quiet_keys);
        self.pending.push_back(Pending {
            expect: Expect::one(Kind::Quiet),
            waiter: Waiter::Quiet(keys),
            since: self.quiet_since,
        });
    }
}

/// Connects (probing for the meta protocol first under [`Protocol::Auto`]), then drives
/// the connection until it ends.
async fn run(config: Arc<Config>, shared: Arc<Shared>, link: Arc<Link>) {
    let error = match connect(&config, &shared).await {
        Ok(socket) => {
            let (stream, half) = socket.split();
            let stream = Arc::new(stream);
            link.lock_read().half = Some(half);
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
            return Driver::new(stream, link, &config).await;
        }
        Err(error) => error,
    };
    link.fail(&error);
}

/// Opens a stream and, under [`Protocol::Auto`] (unless the server is known to be classic),
/// asks `mn` before anything else is written: `MN` means meta, `ERROR` classic. A server
/// that hangs up on `mn` (twemproxy does) is classic: the connection is opened again, so no
/// request is lost to the probe. The probe costs one round trip per connection.
async fn connect(config: &Config, shared: &Shared) -> Result<Socket> {
    let mut stream = open_stream(config).await?;
    if config.protocol != Protocol::Auto || shared.mode.load(Ordering::Relaxed) == CLASSIC {
        return Ok(stream);
    }
    let answer = match &mut stream {
        Socket::Tcp(tcp) => probe(tcp, config).await?,
        Socket::Unix(unix) => probe(unix, config).await?,
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

async fn open_stream(config: &Config) -> Result<Socket> {
    let connect = async {
        match &config.server {
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

/// The error for bytes read when no request waits for them.
fn stray_data(input: &[u8]) -> Error {
    let shown = String::from_utf8_lossy(&input[..input.len().min(80)]);
    Error::UnknownResponse(format!("data with no request waiting for it: {shown:?}"))
}

/// The key of an encoded request (its second token), for logging.
fn request_key(request: &[u8]) -> Option<&[u8]> {
    let line = &request[..memchr::memchr(b'\r', request)?];
    line.split(|&b| b == b' ').nth(1)
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
    /// A caller, through its slot.
    Caller(ReplySlot),
    /// The callers of classic gets that share one line.
    Group(Box<Group>),
    /// A solo caller (it reads the reply itself while it holds the read role; once it has
    /// given up, whoever reads discards the reply).
    Solo(u64),
    /// The driver itself: the `mn` closing a run of quiet requests (their keys are kept
    /// for logging).
    Quiet(Vec<u8>),
}

/// A solo caller's wait for its reply (see [`Reader::Solo`]).
#[derive(Debug)]
pub(crate) struct SoloRead {
    link: Arc<Link>,
    seq: u64,
    done: bool,
}

impl Future for SoloRead {
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let poll = this.link.poll_solo(this.seq, cx);
        this.done = poll.is_ready();
        poll
    }
}

impl Drop for SoloRead {
    fn drop(&mut self) {
        if !self.done {
            self.link.solo_gone(self.seq);
        }
    }
}

/// What one read of the driver's came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Nothing to read (the socket has nothing, or a solo caller reads).
    Waiting,
    /// Bytes read, no reply complete yet.
    Read,
    /// At least one request answered.
    Answered,
}

/// The future that reads one socket when no solo caller does, writes what callers could
/// not write themselves, and enforces the request deadline.
struct Driver {
    stream: Arc<Stream>,
    link: Arc<Link>,
    /// Bytes taken from the link's queue, being written. It changes places with the
    /// link's emptied queue, so neither is allocated again (unless it grew large, see
    /// [`reuse`]).
    batch: BytesMut,
    /// How many bytes `batch` held when taken.
    batch_held: usize,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
}

impl Driver {
    fn new(stream: Arc<Stream>, link: Arc<Link>, config: &Config) -> Self {
        Driver {
            stream,
            link,
            batch: BytesMut::with_capacity(OUT_CAPACITY),
            batch_held: 0,
            timeout: config.timeout,
            timer: Box::pin(tokio::time::sleep(config.timeout)),
            timer_armed: false,
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
                if state.quiet_run {
                    state.end_quiet_run();
                }
                if state.out.is_empty() {
                    state.writing = false;
                    return Ok(wrote);
                }
                reuse(&mut self.batch, self.batch_held);
                std::mem::swap(&mut self.batch, &mut state.out);
                state.tail = None;
                self.batch_held = self.batch.len();
                state.writing = true;
            }
            match self.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => return Ok(wrote),
            }
            match self.stream.try_write(&self.batch) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(written) => {
                    wrote = true;
                    self.batch.advance(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads what the socket has and completes every response it finishes, unless a solo
    /// caller holds the read role (it wakes this task when it gives the role up).
    fn read(&mut self, cx: &mut Context<'_>) -> Result<Progress> {
        {
            let mut state = self.link.lock();
            if state.reader != Reader::Free {
                return Ok(Progress::Waiting);
            }
            state.reader = Reader::Driver;
        }
        let result = self.read_owned(cx);
        self.link.lock().reader = Reader::Free;
        result
    }

    fn read_owned(&mut self, cx: &mut Context<'_>) -> Result<Progress> {
        let mut read = self.link.lock_read();
        match read.poll_fill(cx) {
            Poll::Pending => Ok(Progress::Waiting),
            Poll::Ready(Ok(0)) => Err(Error::UnexpectedClose),
            Poll::Ready(Ok(_)) => {
                read.answered = false;
                self.link.dispatch(&mut read, None)?;
                Ok(match read.answered {
                    true => Progress::Answered,
                    false => Progress::Read,
                })
            }
            Poll::Ready(Err(e)) => Err(e.into()),
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
                    .find(|p| !matches!(p.waiter, Waiter::Quiet(_)))
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
            if state.closed.is_some() {
                return Ok(true);
            }
            match &state.driver {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.driver = Some(cx.waker().clone()),
            }
        }
        let mut poll_read = true;
        for _ in 0..ROUNDS_PER_POLL {
            let wrote = self.write(cx)?;
            let read = match poll_read {
                true => self.read(cx)?,
                false => Progress::Waiting,
            };
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
            match read {
                // Yield (below): the callers just answered run before this task's next
                // poll, and those on this worker queue their next requests meanwhile, to go
                // out in one write. Writing at once instead sends one or two requests at a
                // time, and on a multi-thread runtime the workers then wake each other for
                // every small batch (64 tasks, 2 workers: 0.56M -> 1.05M gets/s).
                Progress::Answered => break,
                // more may be waiting in the socket
                Progress::Read => {}
                Progress::Waiting if wrote => {}
                Progress::Waiting => {
                    self.check_timer(cx)?;
                    return Ok(false);
                }
            }
            poll_read = read != Progress::Waiting;
        }
        cx.waker().wake_by_ref();
        self.check_timer(cx)?;
        Ok(false)
    }
}

impl Drop for Driver {
    /// A driver that goes away without having closed its link (its task was dropped with
    /// the runtime, or panicked) fails what is left, so that no caller waits forever.
    fn drop(&mut self) {
        let _ = self.link.fail(&Error::UnexpectedClose);
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.drive(cx) {
            Ok(false) => return Poll::Pending,
            Ok(true) => this.link.close(),
            Err(error) => {
                this.link.fail(&error);
            }
        }
        this.link.release_socket();
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write buffer that held a burst is started over small; an ordinary one keeps its
    /// room (and its allocation).
    #[test]
    fn emptied_write_buffers_do_not_keep_a_burst() {
        let mut big = BytesMut::with_capacity(4 * OUT_KEEP);
        big.extend_from_slice(&vec![b'x'; 2 * OUT_KEEP]);
        let held = big.len();
        big.advance(held);
        reuse(&mut big, held);
        assert!(big.is_empty());
        assert_eq!(big.capacity(), OUT_CAPACITY);

        let mut small = BytesMut::with_capacity(OUT_CAPACITY);
        small.extend_from_slice(b"mg key v f\r\n");
        let (held, at) = (small.len(), small.as_ptr());
        reuse(&mut small, held);
        assert!(small.is_empty());
        assert_eq!(small.as_ptr(), at, "the same allocation, from its start");
        assert!(small.capacity() >= OUT_CAPACITY);
    }
}
