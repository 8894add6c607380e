//! One server: the connection its callers share, and how it is kept.
//!
//! - [`transport`]: the byte streams (TCP, unix sockets, and TLS in `tls`) and opening
//!   them.
//! - [`pending`] and [`queue`]: what waits to be written and what waits for a reply.
//! - [`link`]: one connection's shared state: callers queue requests and, when alone, read
//!   their own replies; whoever reads hands each reply to its caller.
//! - [`driver`]: the task that writes, reads, enforces deadlines and closes a stalled
//!   connection.
//! - [`handshake`]: the protocol probe and the login on a new connection.
//! - [`health`]: backoff after failures, so that a server that is down is not hammered.
//! - [`reply`]: the future a caller awaits; [`call`]: a request and its reply within the
//!   caller's deadline.
//!
//! [`Connection`] is the client's handle: it hands each request to the current link,
//! opening a new connection (link and driver) when there is none or the last has closed
//! and the server's health allows it. When a link closes, what was queued on it and never
//! written goes out on the next one: a request never receives the error of a connection
//! it was not written to.
//!
//! The driver owns the link's socket; callers talk to the link only through
//! [`Link::enqueue`], [`Reply`] and the waker they leave. The link never calls the driver:
//! it wakes it.

mod call;
mod clock;
mod driver;
mod handshake;
mod health;
mod link;
mod pending;
mod queue;
mod reply;
mod shared;
#[cfg(feature = "tls")]
mod tls;
mod transport;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use tokio::time::Instant;

use crate::address::ServerAddr;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{Command, ServerMetrics};
use crate::protocol::response::Opaque;

pub(crate) use call::failed_as_err;
pub(crate) use health::Retry;
pub use health::ServerState;
pub(crate) use pending::Request;
pub(crate) use reply::Reply;

use link::{Handed, Link};
use shared::Shared;

/// How [`Connection::try_send`] handed a request over, with the way to its reply (`None`
/// for a noreply request).
#[derive(Debug)]
pub(crate) enum Sent<E> {
    /// To a connected link, which answers or fails it by its deadline: the caller needs no
    /// timer of its own.
    Ready(Option<Reply>),
    /// To a link still connecting: the caller bounds its own wait.
    Connecting(Option<Reply>),
    /// Not at all: the write queue is full. Try again when it drains, within the deadline.
    Full(Request<E>),
    /// Not at all: the server is in backoff ([`Error::ServerDown`]).
    Down(Error),
}

impl<E> Sent<E> {
    /// The same outcome, with the encoder of a request that was not sent dropped (and with
    /// it whatever it borrowed).
    pub(crate) fn forget_encoder(self) -> Sent<()> {
        match self {
            Sent::Ready(reply) => Sent::Ready(reply),
            Sent::Connecting(reply) => Sent::Connecting(reply),
            Sent::Down(error) => Sent::Down(error),
            Sent::Full(request) => Sent::Full(Request {
                encode: (),
                expect: request.expect,
                quiet: request.quiet,
                count: request.count,
                since: request.since,
            }),
        }
    }
}

/// The client side of one server's connection (see the module docs). Cheap to clone (a
/// probe of a dead server holds one); its owner calls [`Connection::shut`] when the client
/// goes away.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    slot: Arc<Slot>,
}

/// The current link, shared with the tasks that drive its links (which put the requests
/// a closed link never wrote on the next one).
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    current: Mutex<Option<Arc<Link>>>,
    /// One of several servers: its errors name it ([`Error::AtServer`]).
    named: bool,
}

impl Connection {
    /// A connection to `addr` that opens on first use, retried after failures as `retry`
    /// says. `named`: one of several servers, whose errors say which it is.
    pub(crate) fn new(config: Arc<Config>, addr: ServerAddr, retry: Retry, named: bool) -> Self {
        Connection {
            slot: Arc::new(Slot {
                shared: Arc::new(Shared::new(config, addr, retry)),
                current: Mutex::new(None),
                named,
            }),
        }
    }

    /// A reply as the caller sees it: a server-reported error as `Err`, and, for one of
    /// several servers, any error naming the server ([`Error::AtServer`]; a
    /// [`Error::ServerDown`] names it already).
    #[inline]
    pub(crate) fn settle<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(error) if self.slot.named => Err(self.name(error)),
            other => other,
        }
    }

    /// `error` naming this server, when it is one of several.
    pub(crate) fn name(&self, error: Error) -> Error {
        match error {
            down @ Error::ServerDown { .. } => down,
            error if self.slot.named => Error::at_server(self.addr(), error),
            error => error,
        }
    }

    /// Where the server listens.
    pub(crate) fn addr(&self) -> &ServerAddr {
        &self.slot.shared.addr
    }

    /// The server's metrics (nothing without the `metrics` feature).
    pub(crate) fn metrics(&self) -> &ServerMetrics {
        &self.slot.shared.metrics
    }

    /// The server's health.
    pub(crate) fn health(&self) -> &health::Health {
        &self.slot.shared.health
    }

    /// Whether requests should be encoded in the meta protocol now (see
    /// [`Shared::meta`]).
    pub(crate) fn meta(&self) -> bool {
        self.slot.shared.meta()
    }

    /// `true` under `Protocol::Auto` until a probe has been answered.
    pub(crate) fn protocol_unknown(&self) -> bool {
        self.slot.shared.protocol_unknown()
    }

    /// How many quiet (noreply) meta requests the server reported as failed.
    pub(crate) fn noreply_errors(&self) -> u64 {
        self.slot.shared.noreply_errors()
    }

    /// Hands `request` to the current link without waiting, opening a new connection when
    /// there is none or the last one has ended (and the server is not in backoff).
    pub(crate) fn try_send<E: FnOnce(&mut BytesMut, Opaque)>(
        &self,
        request: Request<E>,
    ) -> Sent<E> {
        let mut current = self.slot.lock();
        let mut request = request;
        if let Some(link) = current.as_ref() {
            match link.enqueue(request) {
                Err(back) => request = back, // the link has closed: open the next one
                Ok(handed) => return sent(link, handed),
            }
        }
        if self.slot.shared.gone.load(Ordering::Relaxed) {
            // The client has gone (a probe may outlive it): no new connection.
            return Sent::Down(Error::UnexpectedClose);
        }
        if let Err(down) = self.slot.shared.health.admit(Instant::now()) {
            return Sent::Down(down);
        }
        // What the closed link never wrote goes first (it was queued first), unless its
        // driver has handed it on already (see `Slot::closed`).
        let carry = current
            .as_ref()
            .and_then(|closed| closed.lock().carry.take());
        let link = Arc::new(Link::new(Arc::clone(&self.slot.shared), carry));
        // Queued before the driver starts, so that a driver failing at once (connection
        // refused) fails this request with its own error. A fresh link is open.
        let handed = link.enqueue(request);
        self.slot.start(&mut current, link.clone());
        match handed {
            Ok(handed) => sent(&link, handed),
            Err(_) => Sent::Connecting(None),
        }
    }

    /// Hands `request` over once the connection's write queue has room again (it was over
    /// its high-water mark: the server is not reading, or the link is slow). Woken when the
    /// queue drains; the caller bounds the wait with its deadline.
    pub(crate) async fn send_when_room<E: FnOnce(&mut BytesMut, Opaque)>(
        &self,
        mut request: Request<E>,
    ) -> Result<Option<Reply>> {
        loop {
            let room = self.slot.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_send(request) {
                Sent::Full(back) => request = back,
                Sent::Ready(reply) | Sent::Connecting(reply) => return Ok(reply),
                Sent::Down(error) => return Err(error),
            }
            room.await;
        }
    }

    /// Sends `quit` on the current connection, if any, and forgets it: later requests open
    /// a new connection. Requests already queued on it are answered first.
    pub(crate) async fn quit(&self) -> Result<()> {
        let link = self.slot.lock().take();
        if let Some(link) = link {
            let request = Request {
                encode: |out: &mut BytesMut, _| out.extend_from_slice(b"quit\r\n"),
                expect: None,
                quiet: false,
                count: 1,
                since: Instant::now(),
            };
            // A link that has already closed needs no quit; a full one gets none either.
            self.metrics().begin(Command::Quit).end(&Ok(()));
            let _ = link.enqueue(request);
            link.abandon();
        }
        Ok(())
    }
}

impl Connection {
    /// The client has gone: the connection ends once what is queued is answered, and no
    /// new one is opened.
    pub(crate) fn shut(&self) {
        self.slot.shared.gone.store(true, Ordering::Relaxed);
        if let Some(link) = self.slot.lock().take() {
            link.abandon();
        }
    }
}

/// A link's driver task. Should the task be dropped before it ends (its runtime shut
/// down, with the client still in use elsewhere), the link is closed: its callers fail
/// instead of waiting for a task that is gone, and the next request opens a new link.
struct Driving {
    link: Arc<Link>,
    ended: bool,
}

impl Drop for Driving {
    fn drop(&mut self) {
        if !self.ended {
            let gone = std::io::Error::other(
                "the task driving the connection was dropped (its tokio runtime shut down)",
            );
            self.link.fail(&Error::from(gone));
        }
    }
}

/// The caller's view of how a link took a request.
#[inline]
fn sent<E>(link: &Arc<Link>, handed: Handed<E>) -> Sent<E> {
    match handed {
        Handed::Ready(way) => Sent::Ready(way.map(|way| Reply::new(link, way))),
        Handed::Connecting(way) => Sent::Connecting(way.map(|way| Reply::new(link, way))),
        Handed::Full(request) => Sent::Full(request),
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Link>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the driver of a new link (which connects) and makes it the current one.
    fn start(self: &Arc<Self>, current: &mut Option<Arc<Link>>, link: Arc<Link>) {
        let slot = Arc::clone(self);
        let mut driving = Driving {
            link: Arc::clone(&link),
            ended: false,
        };
        tokio::spawn(async move {
            driver::run(Arc::clone(&driving.link)).await;
            driving.ended = true;
            slot.closed(&driving.link);
        });
        *current = Some(link);
    }

    /// `link` has closed: what it had queued and never written goes out on the current
    /// link, or on a new one (when the server's health allows; otherwise its callers fail
    /// with [`Error::ServerDown`]).
    fn closed(self: &Arc<Self>, link: &Arc<Link>) {
        // Under the current link's lock, so that a caller opening the next link meanwhile
        // either takes the carry first (see `try_send`) or finds it adopted.
        let mut current = self.lock();
        let Some(carry) = link.lock().carry.take() else {
            return;
        };
        if self.shared.gone.load(Ordering::Relaxed) {
            return;
        }
        if let Some(open) = current.as_ref().filter(|open| !Arc::ptr_eq(open, link)) {
            let mut state = open.lock();
            if state.closed.is_none() {
                state.adopt(carry);
                return;
            }
        }
        match self.shared.health.admit(Instant::now()) {
            Ok(()) => {
                let link = Arc::new(Link::new(Arc::clone(&self.shared), Some(carry)));
                self.start(&mut current, link);
            }
            Err(down) => {
                for entry in carry.pending {
                    entry.waiter.fail(&down);
                }
            }
        }
    }
}
