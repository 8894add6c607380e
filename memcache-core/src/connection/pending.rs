//! What waits for a reply: the entries of a connection's FIFO ([`Pending`]) and who each
//! reply goes to ([`Waiter`]): a caller, the callers sharing one classic `get` line
//! ([`Group`]), a caller reading for itself ([`SoloWait`]), or the connection itself (the
//! `mn` closing a run of quiet requests, [`QuietRun`]).

use std::task::Waker;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, Result, TimeoutKind};
use crate::protocol::lineup::{line_up, KeyCheck};
use crate::protocol::response::{Expect, Opaque, Response};

/// Where the reply to a caller's request goes.
pub(crate) type ReplySlot = oneshot::Sender<Result<Response>>;

/// A request written (or queued to be written) whose reply has not been read yet.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) expect: Expect,
    pub(crate) waiter: Waiter,
    /// When its caller issued it: the caller's deadline is `since + timeout`.
    pub(crate) since: Instant,
    /// Where its bytes start and end in the connection's byte stream (see
    /// [`Queue::out_at`](super::queue::Queue::out_at)): bytes not yet handed to the socket
    /// can be dropped (its caller gone) or moved to the next connection.
    pub(crate) at: u64,
    pub(crate) end: u64,
    /// What a classic retrieval reply must agree with.
    pub(crate) check: KeyCheck,
}

/// Who is waiting for a reply.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A caller, through its slot.
    Caller(ReplySlot),
    /// The callers of classic gets that share one line.
    Group(Box<Group>),
    /// A caller that wrote its request to an idle connection and reads the reply itself
    /// while it is polled (see [`SoloWait`]), by its number.
    Solo(u64),
    /// The connection itself: the `mn` closing a run of quiet requests.
    Quiet(Box<QuietRun>),
    /// Nobody any more (the caller timed out or went away): the reply is read and
    /// discarded, so that the stream stays in step.
    Gone,
}

impl Waiter {
    /// No caller will take this reply.
    pub(crate) fn is_gone(&self) -> bool {
        match self {
            Waiter::Gone => true,
            Waiter::Caller(slot) => slot.is_closed(),
            Waiter::Group(group) => group.members.iter().all(Member::is_gone),
            Waiter::Solo(_) | Waiter::Quiet(_) => false,
        }
    }

    /// How many callers wait on it.
    pub(crate) fn callers(&self) -> usize {
        match self {
            Waiter::Caller(_) | Waiter::Solo(_) => 1,
            Waiter::Group(group) => group.members.len(),
            Waiter::Quiet(_) | Waiter::Gone => 0,
        }
    }

    /// Fails every caller waiting on it with `error`.
    pub(crate) fn fail(self, error: &Error) {
        match self {
            Waiter::Caller(slot) => {
                let _ = slot.send(Err(error.clone()));
            }
            Waiter::Group(group) => {
                group.fail(error.clone());
            }
            // A solo caller is told through its `SoloWait`.
            Waiter::Solo(_) | Waiter::Quiet(_) | Waiter::Gone => {}
        }
    }
}

/// The error of a caller whose deadline passed.
pub(crate) fn timed_out(after: Duration) -> Error {
    Error::Timeout {
        kind: TimeoutKind::Request,
        after,
    }
}

/// The caller that reads its reply itself: it wrote its request to an idle connection, and
/// while its request is the only one outstanding it reads the socket when polled (the one
/// request at a time case costs no trip through the driver task). Once others wait too,
/// the driver reads, and keeps this caller's reply here for it.
#[derive(Debug)]
pub(crate) struct SoloWait {
    pub(crate) seq: u64,
    /// Woken when the reply (or an error) is kept here.
    pub(crate) waker: Option<Waker>,
    /// Its reply, decoded by someone else (boxed: this is the rare path, and the common one
    /// should not move a reply's worth of bytes to make and drop a `SoloWait`).
    pub(crate) reply: Option<Box<Result<Response>>>,
}

/// The quiet (noreply) meta requests queued since the last `mn`.
#[derive(Debug)]
pub(crate) struct QuietRun {
    /// The opaque token of the first of them; the others follow in order.
    pub(crate) first_opaque: Opaque,
    /// How many requests (each reports at most one line).
    pub(crate) count: u32,
    /// When the first was issued.
    pub(crate) since: Instant,
    /// Their keys (the first of each request), space-separated, for logging a failure.
    pub(crate) keys: Vec<u8>,
}

/// The callers of classic single-key `get`s (or `gets`) that were queued one behind the
/// other and went out as one multi-key line, `get k1 k2 ..`: memcached flushes a write
/// after every classic `get` (pipelined, they top out near 170k/s on one server thread),
/// while a multi-key `get` is its cheapest read. The reply's hits are handed to the callers
/// by key, as for `get_many`; a caller whose key has no hit gets a miss. A server error for
/// the line is every caller's (which is why joining is off by default: see
/// [`ClientBuilder::join_gets`](crate::ClientBuilder::join_gets)).
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// The members' keys as sent (with the client's prefix), end to end.
    keys: Vec<u8>,
    /// Where each member's key ends in `keys`.
    ends: Vec<usize>,
    /// The members, in the order of the keys.
    members: Vec<Member>,
}

/// One caller of a [`Group`].
#[derive(Debug)]
struct Member {
    /// `None` once it timed out.
    slot: Option<ReplySlot>,
    since: Instant,
}

impl Member {
    fn is_gone(&self) -> bool {
        self.slot.as_ref().map_or(true, |slot| slot.is_closed())
    }

    fn send(self, reply: Result<Response>) {
        if let Some(slot) = self.slot {
            let _ = slot.send(reply);
        }
    }
}

impl Group {
    /// How many callers share the line.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Fails every member with `error`, and returns it.
    fn fail(self, error: Error) -> Error {
        for member in self.members {
            member.send(Err(error.clone()));
        }
        error
    }

    pub(crate) fn push(&mut self, key: &[u8], slot: ReplySlot, since: Instant) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
        self.members.push(Member {
            slot: Some(slot),
            since,
        });
    }

    /// Fails the members whose deadline (`since + timeout`) is past `now` with a timeout;
    /// returns the earliest deadline among the others.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Option<Instant> {
        let mut next = None;
        for member in &mut self.members {
            if member.slot.is_none() {
                continue;
            }
            match member.since.checked_add(timeout) {
                Some(deadline) if deadline <= now => {
                    if let Some(slot) = member.slot.take() {
                        let _ = slot.send(Err(timed_out(timeout)));
                    }
                }
                Some(deadline) => next = Some(next.map_or(deadline, |n: Instant| n.min(deadline))),
                None => {}
            }
        }
        next
    }

    /// Hands each member its part of the reply to the shared line: its hit, a miss, the
    /// server's error (every member's), or [`Error::ValueTooLarge`] for the member whose
    /// value was over `max_value`.
    ///
    /// # Errors
    /// When the reply cannot be this line's (a hit for a key no member asked for, a reply
    /// of another kind): every member fails with this error, which closes the connection.
    pub(crate) fn answer(self, response: Response, max_value: usize) -> Result<()> {
        let items = match response {
            Response::Values(items) => items,
            Response::Value(hit) => hit.into_iter().collect(),
            // a server error is every member's
            Response::Failed(error) => {
                for member in self.members {
                    member.send(Ok(Response::Failed(error.clone())));
                }
                return Ok(());
            }
            other => {
                let mut text = format!("{other:?}");
                text.truncate(120);
                return Err(self.fail(Error::UnknownResponse(format!(
                    "a shared get answered {text}"
                ))));
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
        let found = match line_up(b"", &keys, items) {
            Ok(found) => found,
            Err(error) => return Err(self.fail(error)),
        };
        for (member, hit) in self.members.into_iter().zip(found) {
            let reply = match hit {
                Some(item) if item.too_large.is_some() => Response::Failed(Error::ValueTooLarge {
                    size: item.too_large.unwrap_or_default(),
                    max: max_value,
                }),
                hit => Response::Value(hit),
            };
            member.send(Ok(reply));
        }
        Ok(())
    }
}

/// A request on its way to the server.
#[derive(Debug)]
pub(crate) struct Request<E> {
    /// Writes the complete command(s) into the connection's write buffer, given the opaque
    /// token of the first (meta requests carry `O<token>`, each next one the next number;
    /// classic requests ignore it). It runs under the connection's lock, so requests need
    /// no buffer of their own.
    pub(crate) encode: E,
    /// The reply's shape; `None` for noreply requests, which get none.
    pub(crate) expect: Option<Expect>,
    /// A quiet meta request: no reply on success, an error line on failure. Each run of
    /// quiet requests is followed by `mn`, to learn where their replies end.
    pub(crate) quiet: bool,
    /// How many protocol requests `encode` writes (the opaque tokens they take).
    pub(crate) count: u32,
    /// When the caller issued it: its reply is due by `since + timeout`.
    pub(crate) since: Instant,
}
