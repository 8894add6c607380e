//! The task that serves one connection: it connects (probing for the meta protocol), then
//! writes what callers could not write themselves, reads whenever no solo caller does,
//! fails each caller alone at its deadline, and closes the connection when the server has
//! sent nothing for the timeout while requests were outstanding.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Result};

use super::clock::deadline;
use super::link::Link;
use super::pending::timed_out;
use super::queue::OUT_CAPACITY;
use super::transport::{connect, Stream};

/// Rounds of (write, read) one poll may do before yielding.
const ROUNDS_PER_POLL: usize = 32;
/// A wait with nothing to wait for.
const FAR: Duration = Duration::from_secs(24 * 3600);
/// Connects (probing for the meta protocol first under `Protocol::Auto`), then drives
/// the connection until it ends.
pub(crate) async fn run(link: Arc<Link>) {
    let shared = Arc::clone(&link.shared);
    let connecting = connect(&shared.config, &shared.addr, shared.known_classic());
    tokio::pin!(connecting);
    // Requests a closed connection left here have no timer of their own: their deadlines
    // are kept while this one connects. (Callers queued here meanwhile bound their waits.)
    let tick = tokio::time::sleep_until(deadline(Instant::now(), FAR));
    tokio::pin!(tick);
    let mut look = true;
    let connected = std::future::poll_fn(|cx| {
        if let Poll::Ready(connected) = connecting.as_mut().poll(cx) {
            return Poll::Ready(connected);
        }
        {
            // Woken, as the driver is, when what a closed connection left comes in.
            let mut state = link.lock();
            state.driver = Some(cx.waker().clone());
            look |= std::mem::take(&mut state.rearm);
        }
        loop {
            if std::mem::take(&mut look) {
                let next = link.expire(Instant::now());
                tick.as_mut()
                    .reset(next.unwrap_or_else(|| deadline(Instant::now(), FAR)));
            }
            if tick.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            look = true;
        }
    })
    .await;
    match connected {
        Ok((socket, probe)) => {
            if let Some(meta) = probe {
                shared.set_meta(meta);
            }
            shared.metrics.connected();
            tracing::debug!(server = %shared.server, meta = shared.meta(), "connected");
            let (stream, half) = socket.split();
            let stream = Arc::new(stream);
            link.connected(Arc::clone(&stream), half);
            Driver::new(stream, link, shared.config.timeout).await;
        }
        Err(error) => {
            link.fail(&error);
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

/// The future that serves one connected socket (see the module docs).
struct Driver {
    stream: Arc<Stream>,
    link: Arc<Link>,
    /// Bytes taken from the link's queue, being written. It changes places with the
    /// link's emptied queue, so neither is allocated again.
    batch: BytesMut,
    /// How many bytes `batch` held when taken.
    batch_held: usize,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    /// When the timer fires next.
    check_at: Instant,
    /// The link's read count when last looked at, and since when it has not moved while
    /// requests were outstanding.
    last_reads: u64,
    quiet_since: Instant,
    /// Requests were outstanding at the timer's last tick.
    was_outstanding: bool,
    /// The last poll found nothing to do: the next one (a caller's request woke this task)
    /// yields once before it writes.
    idle: bool,
}

impl Driver {
    fn new(stream: Arc<Stream>, link: Arc<Link>, timeout: Duration) -> Self {
        let now = Instant::now();
        // The first check comes by the earliest deadline of what is queued already.
        let check_at = match link.expire(now) {
            Some(at) => at.min(deadline(now, timeout)),
            None => deadline(now, timeout),
        };
        Driver {
            stream,
            link,
            batch: BytesMut::with_capacity(OUT_CAPACITY),
            batch_held: 0,
            timeout,
            timer: Box::pin(tokio::time::sleep_until(deadline(now, timeout))),
            timer_armed: false,
            check_at,
            last_reads: 0,
            quiet_since: now,
            was_outstanding: false,
            idle: false,
        }
    }

    /// Writes what callers queued. Returns whether it wrote anything.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        let mut wrote = false;
        loop {
            if self.batch.is_empty() {
                let (taken, room) = {
                    let mut state = self.link.lock();
                    let taken = state.take_batch(&mut self.batch, self.batch_held);
                    (taken, std::mem::take(&mut state.full))
                };
                if room {
                    self.link.shared.room.notify_waiters();
                }
                if !taken {
                    if self.stream.needs_flush() {
                        // TLS: records a write left in the stream (a caller's, this task's
                        // or a reader's) go out as the socket takes them; `Pending` has
                        // registered for its room.
                        if let Poll::Ready(Err(e)) = self.stream.poll_write_ready(cx) {
                            return Err(e.into());
                        }
                    }
                    return Ok(wrote);
                }
                self.batch_held = self.batch.len();
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
                    self.link.shared.metrics.written(written);
                    self.batch.advance(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn read(&mut self, cx: &mut Context<'_>) -> Result<Progress> {
        Ok(match self.link.read(cx)? {
            None => Progress::Waiting,
            Some(false) => Progress::Read,
            Some(true) => Progress::Answered,
        })
    }

    /// Fails each caller whose deadline has passed, alone, and the connection when the
    /// server has sent nothing for the timeout while requests were outstanding.
    ///
    /// The timer is always armed: for the earliest caller deadline, the time the stalled
    /// connection would be given up, or, when nothing is outstanding, one timeout ahead (a
    /// request a caller writes itself does not wake this task, so the timer must already be
    /// running to catch its deadline). It is re-armed only when it fires: one-at-a-time
    /// traffic does not reset it per request.
    fn check_timer(&mut self, cx: &mut Context<'_>) -> Result<()> {
        loop {
            if !self.timer_armed {
                self.timer.as_mut().reset(self.check_at);
                self.timer_armed = true;
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            self.timer_armed = false;
            // Look at the socket: a solo caller may have left it registered to itself, and a
            // server closing an idle connection is noticed here.
            if self.read(cx)? != Progress::Waiting {
                cx.waker().wake_by_ref();
            }
            let now = Instant::now();
            let next_deadline = self.link.expire(now);
            let reads = self.link.reads();
            let outstanding = self.link.lock().outstanding();
            // Silence counts from the first tick that saw requests outstanding, and only
            // while nothing at all is read: a request written just before a tick that
            // follows an idle spell is not taken for a stall.
            if !outstanding || !self.was_outstanding || reads != self.last_reads {
                self.last_reads = reads;
                self.quiet_since = now;
            } else if deadline(self.quiet_since, self.timeout) <= now {
                tracing::debug!(
                    server = %self.link.shared.server,
                    silent = ?now.duration_since(self.quiet_since),
                    "no reply from the server for the timeout: closing the connection"
                );
                return Err(timed_out(self.timeout));
            }
            self.was_outstanding = outstanding;
            let mut next = deadline(now, self.timeout);
            if outstanding {
                next = next.min(deadline(self.quiet_since, self.timeout));
            }
            if let Some(at) = next_deadline {
                next = next.min(at);
            }
            self.check_at = next.max(now + Duration::from_millis(1));
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
            if std::mem::take(&mut state.rearm) {
                // What a closed connection left came in: its deadlines are looked at now.
                self.check_at = Instant::now();
                self.timer_armed = false;
            }
        }
        if std::mem::take(&mut self.idle) {
            // Woken from idle, most likely by a caller's request: yield once, so that the
            // callers running on this worker meanwhile queue theirs too, to go out in one
            // write. Writing at once sends each request alone when several connections
            // share the callers (64 tasks over 3 servers: 2.9 requests per write).
            cx.waker().wake_by_ref();
            return Ok(false);
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
                    self.idle = true;
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
