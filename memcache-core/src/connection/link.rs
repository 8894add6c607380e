//! One connection's state, shared by its callers and its driver ([`Link`]): callers queue
//! requests ([`Link::enqueue`]); whoever reads decodes the replies and hands each to its
//! caller ([`Link::dispatch`]); on any I/O error or desync the link closes
//! ([`Link::fail`]).
//!
//! Who reads: the driver task, whenever it is polled; and a *solo* caller, one that wrote
//! its request to an idle connection, while it is being polled and its request is the only
//! one outstanding. A caller that is not polled therefore holds nothing others need: once
//! other requests wait, the driver reads, and keeps the solo caller's reply for it. The
//! read side is a mutex that the driver only ever tries: when a solo caller holds it, the
//! driver asks for it ([`Link::read_wanted`]) and the solo caller wakes it on letting go.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::decode::Decoder;
use crate::protocol::lineup::KeyCheck;
use crate::protocol::response::Opaque;
use crate::protocol::response::{Expect, Kind, Response};

use super::pending::{Pending, Request, SoloWait, Waiter};
use super::queue::{advance, reuse, single_get, Carry, Queue, WRITE_HIGH_WATER};
use super::shared::Shared;
use super::transport::{ReadHalf, Stream};

mod reading;

/// Replies [`Link::dispatch`] decodes per look at the FIFO.
const DISPATCH_BATCH: usize = 64;

/// How [`Link::enqueue`] handed a request over.
#[derive(Debug)]
pub(crate) enum Handed<E> {
    /// To a connected link, which answers or fails it by its deadline.
    Ready(Option<Way>),
    /// To a link still connecting: the caller bounds its own wait.
    Connecting(Option<Way>),
    /// Not at all: the write queue is full.
    Full(Request<E>),
}

/// The way a request's reply comes back.
#[derive(Debug)]
pub(crate) enum Way {
    /// The reader sends it here.
    Slot(oneshot::Receiver<Result<Response>>),
    /// The caller (solo caller number `seq`) reads it itself, or finds it kept for it.
    Solo(u64),
}

/// One connection's state (see the module docs).
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<Queue>,
    /// The socket's reading side, the read buffer and the decoder: used by one reader at a
    /// time.
    read: Mutex<ReadSide>,
    /// The driver found the read side held by a solo caller.
    read_wanted: AtomicBool,
    /// Reads that brought bytes: the driver's measure of the server's progress.
    reads: AtomicU64,
    pub(crate) shared: Arc<Shared>,
    timeout: Duration,
    max_value: usize,
    join_gets: bool,
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
    done: Vec<(Waiter, KeyCheck, Response)>,
    /// [`Link::dispatch`] has taken at least one reply's waiter from the FIFO since this
    /// was last cleared.
    answered: bool,
    /// The connection has read a reply (the server's health was told).
    proven: bool,
}

impl Link {
    /// A link still connecting, starting with what a closed one left (`carry`).
    pub(crate) fn new(shared: Arc<Shared>, carry: Option<Carry>) -> Self {
        let config = &shared.config;
        Link {
            state: Mutex::new(Queue::new(carry)),
            read: Mutex::new(ReadSide {
                half: None,
                input: BytesMut::with_capacity(16 * 1024),
                decoder: Decoder::new(config.max_value_size),
                expects: Vec::new(),
                decoded: Vec::new(),
                done: Vec::new(),
                answered: false,
                proven: false,
            }),
            read_wanted: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            timeout: config.timeout,
            max_value: config.max_value_size,
            join_gets: config.join_gets,
            shared,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection is open: requests queued meanwhile go out from now on.
    pub(crate) fn connected(&self, stream: Arc<Stream>, half: ReadHalf) {
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.half = Some(half);
        drop(read);
        let mut state = self.lock();
        state.stream = Some(stream);
        state.wake_driver();
    }

    /// Queues `request` (writing it at once when the connection is otherwise idle), or
    /// gives it back when the link has closed.
    pub(crate) fn enqueue<E: FnOnce(&mut BytesMut, Opaque)>(
        &self,
        request: Request<E>,
    ) -> std::result::Result<Handed<E>, Request<E>> {
        let mut state = self.lock();
        if state.closed.is_some() {
            return Err(request);
        }
        if state.out.len() >= WRITE_HIGH_WATER {
            state.full = true;
            return Ok(Handed::Full(request));
        }
        let Request {
            encode,
            mut expect,
            quiet,
            count,
            since,
        } = request;
        if !quiet && state.quiet.is_some() {
            state.end_quiet_run();
        }
        let start = state.out.len();
        let at = state.out_at + start as u64;
        let opaque = state.next_opaque;
        encode(&mut state.out, opaque);
        state.next_opaque = opaque.wrapping_add(count as Opaque);
        let tail = state.tail.take();
        let check = match &mut expect {
            Some(expect) => {
                if expect.kind.is_meta() {
                    expect.opaque = Some(opaque);
                }
                state.key_check(start, expect)
            }
            None => KeyCheck::None,
        };
        let get = match expect {
            Some(e) if self.join_gets && e.kind == Kind::Values && e.count == 1 && e.items == 1 => {
                single_get(&state.out[start..])
            }
            _ => None,
        };
        if let (Some(command), Some(tail)) = (get, tail) {
            if let Some(reply) = state.join_group(tail, start, command, since) {
                let way = Some(Way::Slot(reply));
                return Ok(match state.stream {
                    Some(_) => Handed::Ready(way),
                    None => Handed::Connecting(way),
                });
            }
        }
        if quiet {
            let state = &mut *state;
            let run = state.quiet.get_or_insert_with(|| super::pending::QuietRun {
                first_opaque: opaque,
                count: 0,
                since,
                keys: Vec::new(),
            });
            run.count = run.count.saturating_add(count);
            if let Some(key) = request_key(&state.out[start..]) {
                run.keys.extend_from_slice(key);
                run.keys.push(b' ');
            }
        }
        let Some(stream) = state.stream.clone() else {
            let way = expect.map(|expect| Way::Slot(state.wait_for(expect, since, at, check)));
            state.set_tail(get, start);
            return Ok(Handed::Connecting(way));
        };
        // Nothing else in flight: write it now, without a trip through the driver task, and
        // read the reply in the caller's task too. Otherwise the driver batches it with the
        // others and hands the reply over.
        let idle = !quiet
            && start == 0
            && !state.writing
            && state.pending.is_empty()
            && state.solo.is_none();
        let written = if idle {
            let written = stream.try_write(&state.out).unwrap_or(0);
            self.shared.metrics.written(written);
            written
        } else {
            0
        };
        let all = idle && written == state.out.len();
        if all {
            let held = state.out.len();
            reuse(&mut state.out, held);
            state.out_at += held as u64;
            if stream.needs_flush() {
                state.wake_driver(); // TLS: records the socket did not take
            }
        } else {
            advance(&mut state, written);
            state.wake_driver();
        }
        let way = match expect {
            Some(expect) if all => {
                let seq = state.next_seq;
                state.next_seq += 1;
                let end = state.out_at;
                state.pending.push_back(Pending {
                    expect,
                    waiter: Waiter::Solo(seq),
                    since,
                    at,
                    end,
                    check,
                });
                state.solo = Some(SoloWait {
                    seq,
                    waker: None,
                    reply: None,
                });
                Some(Way::Solo(seq))
            }
            Some(expect) => {
                let reply = state.wait_for(expect, since, at, check);
                if written == 0 {
                    state.set_tail(get, start);
                }
                Some(Way::Slot(reply))
            }
            None => None,
        };
        Ok(Handed::Ready(way))
    }

    /// No client refers to this link any more.
    pub(crate) fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.wake_driver();
    }

    /// Decodes every complete response in `read` and completes its waiter. A solo caller
    /// (`solo`) gets its own response back.
    ///
    /// With several replies due, the link's lock is held only to look at their shapes and,
    /// once they are decoded, to take their waiters from the FIFO: decoding and waking the
    /// callers happen outside it, so callers queueing requests meanwhile (on other threads)
    /// do not wait for a whole batch. The entries at the front of the FIFO stay put
    /// meanwhile: only the holder of the read side removes them, or [`Link::fail`], which
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
            self.answered(read);
            let mut response = response;
            if let Err(error) = entry.check.apply(&mut response, self.max_value) {
                drop(state);
                entry.waiter.fail(&error);
                return Err(error);
            }
            let mine = match entry.waiter {
                Waiter::Solo(seq) if Some(seq) == solo => {
                    state.solo = None;
                    hand_over_reading(&mut state);
                    Some(response)
                }
                Waiter::Solo(seq) => {
                    keep_for_solo(&mut state, seq, response);
                    None
                }
                waiter => {
                    drop(state);
                    self.complete(waiter, response)?;
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
        let mut popped = 0;
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
                popped += 1;
                match entry.waiter {
                    Waiter::Solo(seq) => {
                        let mut response = response;
                        if let Err(error) = entry.check.apply(&mut response, self.max_value) {
                            failure = Some(error);
                            break;
                        }
                        if Some(seq) == solo {
                            state.solo = None;
                            mine = Some(response);
                        } else {
                            keep_for_solo(&mut state, seq, response);
                        }
                    }
                    waiter => done.push((waiter, entry.check, response)),
                }
            }
            if mine.is_some() && failure.is_none() {
                hand_over_reading(&mut state);
            }
            state.pending.is_empty() && !input.is_empty()
        };
        for (waiter, check, response) in done.drain(..) {
            if let Some(error) = &failure {
                // The stream is out of step: the replies after the bad one are not trusted.
                waiter.fail(error);
                continue;
            }
            let mut response = response;
            match check.apply(&mut response, self.max_value) {
                Ok(()) => {
                    // a shared line's members are failed by `Group::answer` itself
                    if let Err(error) = self.complete(waiter, response) {
                        failure = Some(error);
                    }
                }
                Err(error) => {
                    waiter.fail(&error);
                    failure = Some(error);
                }
            }
        }
        if popped > 0 {
            self.answered(read);
        }
        // A burst of replies does not pin its lists' size.
        if read.decoded.capacity() > 16 * DISPATCH_BATCH {
            read.decoded.shrink_to(DISPATCH_BATCH);
            read.done.shrink_to(DISPATCH_BATCH);
        }
        match failure {
            Some(error) => Err(error),
            None if stray => Err(stray_data(&read.input)),
            None => Ok(mine),
        }
    }

    /// A reply was taken from the FIFO: the first on this connection tells the server's
    /// health it is up.
    fn answered(&self, read: &mut ReadSide) {
        read.answered = true;
        if !read.proven {
            read.proven = true;
            self.shared.health.answered();
            self.shared.metrics.health(true, false);
        }
    }

    /// Hands `response` to `waiter`. Fails when a shared line's reply cannot be its.
    fn complete(&self, waiter: Waiter, response: Response) -> Result<()> {
        match waiter {
            // The caller may have given up; the response is then dropped.
            Waiter::Caller(slot) => {
                let _ = slot.send(Ok(response));
            }
            Waiter::Group(group) => group.answer(response, self.max_value)?,
            Waiter::Quiet(run) => {
                let Response::Quiet(errors) = response else {
                    return Ok(());
                };
                for error in errors {
                    self.shared.count_noreply_error();
                    tracing::warn!(
                        server = %self.shared.server,
                        %error,
                        keys = %String::from_utf8_lossy(run.keys.trim_ascii_end()),
                        "a noreply request failed (one of the keys listed: the first of \
                         each request of the run)"
                    );
                }
            }
            Waiter::Solo(_) | Waiter::Gone => {}
        }
        Ok(())
    }

    /// Closes the link for good with `error`: nothing more can be queued, every request
    /// written to it fails with it, and the driver ends. What was queued and never written
    /// is kept for the next connection (unless the connection never opened: then its
    /// callers get the connect error). Tells the server's health when the connect failed or
    /// requests were outstanding.
    ///
    /// Returns the error the link failed with: this one, or an earlier one.
    pub(crate) fn fail(&self, error: &Error) -> Error {
        let (written, wakers, connect_failed) = {
            let mut state = self.lock();
            if let Some(earlier) = &state.closed {
                return earlier.clone();
            }
            let connected = state.stream.is_some();
            let keep = connected && !self.shared.gone.load(Ordering::Relaxed);
            let written = state.close(error, keep);
            // A solo caller's request was written (by the caller itself): it fails too.
            if let Some(solo) = state.solo.as_mut() {
                solo.reply
                    .get_or_insert_with(|| Box::new(Err(error.clone())));
            }
            let solo_waker = state.solo.as_mut().and_then(|solo| solo.waker.take());
            (written, [solo_waker, state.driver.take()], !connected)
        };
        let outstanding: usize = written.iter().map(|p| p.waiter.callers()).sum();
        let lost = !written.is_empty();
        // The health first: a caller that sees the error then sees the server's new state
        // (with failover, a server its failure made dead no longer has its keys).
        if connect_failed || lost {
            self.shared
                .health
                .failed(error, outstanding, Instant::now());
            let dead = self.shared.health.is_dead();
            self.shared.metrics.health(false, dead);
            if connect_failed {
                self.shared.metrics.connect_failed();
            }
        } else {
            tracing::debug!(server = %self.shared.server, %error, "connection closed while idle");
        }
        for entry in written {
            entry.waiter.fail(error);
        }
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
        // Callers waiting for room here try the next connection.
        self.shared.room.notify_waiters();
        error.clone()
    }

    /// Fails the callers whose deadline is past, each alone; the earliest deadline left.
    pub(crate) fn expire(&self, now: Instant) -> Option<Instant> {
        self.lock().expire(now, self.timeout)
    }

    /// Closes the link of a driver that has finished (abandoned and idle, or already
    /// failed): nothing more can be queued.
    pub(crate) fn close(&self) {
        self.lock().closed.get_or_insert(Error::UnexpectedClose);
    }

    /// Lets the socket go once the driver has ended (it closes when the last solo caller
    /// still holding the writing side lets go too).
    pub(crate) fn release_socket(&self) {
        self.read.lock().unwrap_or_else(|p| p.into_inner()).half = None;
        self.lock().stream = None;
    }
}

/// A solo caller's reply decoded by someone else: kept for it, and the caller woken.
fn keep_for_solo(state: &mut Queue, seq: u64, response: Response) {
    if let Some(solo) = state.solo.as_mut().filter(|solo| solo.seq == seq) {
        solo.reply = Some(Box::new(Ok(response)));
        if let Some(waker) = solo.waker.take() {
            waker.wake();
        }
    }
}

/// A solo caller has its reply: the driver reads from now on, and is woken when others'
/// replies are still to come. (When none are, nobody is registered with the idle socket:
/// the next solo caller registers itself when it reads, and the driver looks at the socket
/// at its timer's next tick, so that a server closing an idle connection is still noticed.
/// Registering the driver after every reply instead costs a sixth of the client's work
/// per request.)
fn hand_over_reading(state: &mut Queue) {
    if !state.pending.is_empty() {
        state.wake_driver();
    }
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
