//! The writing side of one connection's state: the bytes callers encoded and the FIFO of
//! requests awaiting replies ([`Queue`]), with what is done to them before they are
//! written (joining classic gets, closing quiet runs, dropping requests whose caller has
//! gone), at a caller's deadline (failing it alone), and when the connection dies (keeping
//! what was never written for the next one).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::lineup::KeyCheck;
use crate::protocol::response::{Expect, Kind, Opaque, Response};

use super::pending::{timed_out, Group, Pending, QuietRun, SoloWait, Waiter};
use super::transport::Stream;

/// Callers wait for room while this many bytes wait to be written.
pub(crate) const WRITE_HIGH_WATER: usize = 4 * 1024 * 1024;
/// Initial capacity of a connection's write buffers.
pub(crate) const OUT_CAPACITY: usize = 16 * 1024;
/// A write buffer that held more than this (a large value, a large batch) is started over
/// small once emptied, so that a burst does not pin its size for the connection's life.
const OUT_KEEP: usize = 1024 * 1024;
/// Most callers' keys one shared classic `get` line carries (see [`Group`]).
const GROUP_KEYS: usize = 64;
/// Longest shared classic `get` line, in bytes, before a new one is started.
const GROUP_LINE: usize = 4096;

/// Empties a write buffer that has been written out, for reuse; `held` is how many bytes
/// it held (its capacity no longer says so once it has been advanced through).
pub(crate) fn reuse(buf: &mut BytesMut, held: usize) {
    if held > OUT_KEEP {
        *buf = BytesMut::with_capacity(OUT_CAPACITY);
    } else {
        buf.clear();
    }
}

/// One connection's queue, under the link's lock.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The socket, once connected (and probed).
    pub(crate) stream: Option<Arc<Stream>>,
    /// Bytes waiting to be written: callers encode their requests here.
    pub(crate) out: BytesMut,
    /// The position of `out[0]` in the connection's byte stream: everything before it has
    /// been handed to the socket (or to the driver's batch).
    pub(crate) out_at: u64,
    /// The driver holds bytes taken from `out` that are not all written yet.
    pub(crate) writing: bool,
    /// Requests written or queued whose reply has not been read, oldest first.
    pub(crate) pending: VecDeque<Pending>,
    /// Numbers the solo callers.
    pub(crate) next_seq: u64,
    /// The next meta request's opaque token.
    pub(crate) next_opaque: Opaque,
    /// The caller reading its own reply, if any.
    pub(crate) solo: Option<SoloWait>,
    /// Quiet requests queued since the last `mn`.
    pub(crate) quiet: Option<QuietRun>,
    /// The newest request is a classic `get`/`gets` still at the end of `out`, which the
    /// next one may join (see [`Group`]).
    pub(crate) tail: Option<Tail>,
    /// Why the link closed. Once set, no request may be queued here any more.
    pub(crate) closed: Option<Error>,
    /// What was queued and never written when the link closed, for the next connection.
    pub(crate) carry: Option<Carry>,
    /// No client refers to this link any more: the driver ends once it is idle.
    pub(crate) abandoned: bool,
    /// Callers were told the queue is full: wake them when it drains.
    pub(crate) full: bool,
    /// Bytes of `out` before this stream position are the rest of a request its caller
    /// began writing itself (see [`advance`]).
    pub(crate) sent_until: u64,
    /// Entries were added whose deadlines may come before the driver's timer fires next
    /// (what a closed connection left): the driver looks again.
    pub(crate) rearm: bool,
    /// The driver's waker, while it waits.
    pub(crate) driver: Option<Waker>,
}

/// Where the classic `get`/`gets` line at the end of `out` lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail {
    /// Its first byte in `out`.
    start: usize,
    /// `out`'s length just after it: the line is still the last thing queued.
    end: usize,
    /// The length of its command word with the space (`get ` or `gets `).
    command: usize,
}

/// What a closed connection had queued and never written: its bytes and the entries of the
/// requests among them, to go out on the next connection.
#[derive(Debug)]
pub(crate) struct Carry {
    pub(crate) out: BytesMut,
    /// The position `out[0]` had in the closed connection's byte stream (its entries'
    /// `at` and `end` count from the same origin).
    pub(crate) at: u64,
    pub(crate) pending: Vec<Pending>,
    pub(crate) next_opaque: Opaque,
}

impl Queue {
    /// An empty queue, or one that starts with what a closed connection left.
    pub(crate) fn new(carry: Option<Carry>) -> Self {
        let mut queue = Queue {
            stream: None,
            out: BytesMut::with_capacity(OUT_CAPACITY),
            out_at: 0,
            writing: false,
            pending: VecDeque::new(),
            next_seq: 0,
            next_opaque: 0,
            solo: None,
            quiet: None,
            tail: None,
            closed: None,
            carry: None,
            abandoned: false,
            full: false,
            sent_until: 0,
            rearm: false,
            driver: None,
        };
        if let Some(carry) = carry {
            queue.next_opaque = carry.next_opaque;
            queue.adopt(carry);
        }
        queue
    }

    pub(crate) fn wake_driver(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.wake();
        }
    }

    /// Appends what a closed connection left to the end of this queue.
    pub(crate) fn adopt(&mut self, carry: Carry) {
        if self.quiet.is_some() {
            self.end_quiet_run();
        }
        self.tail = None;
        let Carry {
            out,
            at,
            mut pending,
            ..
        } = carry;
        let shift = self.out_at + self.out.len() as u64;
        for entry in &mut pending {
            entry.at = entry.at - at + shift;
            entry.end = entry.end - at + shift;
        }
        self.out.extend_from_slice(&out);
        self.pending.extend(pending);
        // Their deadlines may come before the driver's timer next fires.
        self.rearm = true;
        self.wake_driver();
    }

    /// Registers a caller's wait for the reply to a request queued for the driver.
    pub(crate) fn wait_for(
        &mut self,
        expect: Expect,
        since: Instant,
        at: u64,
        check: KeyCheck,
    ) -> oneshot::Receiver<Result<Response>> {
        let (slot, reply) = oneshot::channel();
        let end = self.out_at + self.out.len() as u64;
        self.pending.push_back(Pending {
            expect,
            waiter: Waiter::Caller(slot),
            since,
            at,
            end,
            check,
        });
        reply
    }

    /// Remembers the classic single-key get (`command`: [`single_get`]'s answer) just
    /// queued at `start`, whose reply goes to the newest FIFO entry, for the next one to
    /// join.
    pub(crate) fn set_tail(&mut self, command: Option<usize>, start: usize) {
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
    pub(crate) fn join_group(
        &mut self,
        tail: Tail,
        start: usize,
        command: usize,
        since: Instant,
    ) -> Option<oneshot::Receiver<Result<Response>>> {
        if tail.end != start || tail.command != command || start - tail.start > GROUP_LINE {
            return None;
        }
        let mut entry = self.pending.pop_back()?;
        let mut group = match entry.waiter {
            Waiter::Group(group) if group.len() < GROUP_KEYS => group,
            Waiter::Caller(slot) => {
                let mut group = Box::<Group>::default();
                group.push(
                    &self.out[tail.start + command..start - 2],
                    slot,
                    entry.since,
                );
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
        group.push(&self.out[start + command..len - 2], slot, since);
        // `..a\r\nget b\r\n` -> `..a b\r\n`
        self.out[start - 2] = b' ';
        self.out.copy_within(start + command..len, start - 1);
        self.out.truncate(len - command - 1);
        entry.expect.items = group.len() as u32;
        entry.check = KeyCheck::None; // the group checks its members' keys
        entry.end = self.out_at + self.out.len() as u64;
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
    pub(crate) fn end_quiet_run(&mut self) {
        let Some(run) = self.quiet.take() else {
            return;
        };
        self.tail = None;
        let at = self.out_at + self.out.len() as u64;
        self.out.extend_from_slice(b"mn\r\n");
        self.pending.push_back(Pending {
            expect: Expect {
                kind: Kind::Quiet,
                count: 1,
                opaque: Some(run.first_opaque),
                items: run.count,
            },
            since: run.since,
            waiter: Waiter::Quiet(Box::new(run)),
            at,
            end: at + 4,
            check: KeyCheck::None,
        });
    }

    /// Hands everything queued to the driver, in `batch` (whose emptied buffer, which held
    /// `held` bytes, takes its place), leaving out the requests whose caller has gone (a
    /// noreply request is always written). `false` when there is nothing to write.
    pub(crate) fn take_batch(&mut self, batch: &mut BytesMut, held: usize) -> bool {
        if self.quiet.is_some() {
            self.end_quiet_run();
        }
        if self.out.is_empty() {
            self.writing = false;
            return false;
        }
        let first = self.first_unwritten();
        if self.pending.range(first..).any(|p| p.waiter.is_gone()) {
            self.drop_gone(first);
            if self.out.is_empty() {
                self.writing = false;
                return false;
            }
        }
        reuse(batch, held);
        std::mem::swap(batch, &mut self.out);
        self.out_at += batch.len() as u64;
        self.tail = None;
        self.writing = true;
        true
    }

    /// The index of the first FIFO entry whose bytes are all still in `out` (entries are in
    /// the order of their bytes).
    fn first_unwritten(&self) -> usize {
        let unwritten = self
            .pending
            .iter()
            .rev()
            .take_while(|p| p.at >= self.out_at)
            .count();
        self.pending.len() - unwritten
    }

    /// Removes from `out` the bytes of the unwritten requests (entries from `first` on)
    /// whose caller has gone, and their entries.
    fn drop_gone(&mut self, first: usize) {
        let mut kept = BytesMut::with_capacity(self.out.len());
        let mut copied = self.out_at; // stream position up to which `out` was looked at
        let mut entries = self.pending.split_off(first);
        entries.retain_mut(|entry| {
            let (start, end) = (
                (copied - self.out_at) as usize,
                (entry.at - self.out_at) as usize,
            );
            kept.extend_from_slice(&self.out[start..end]); // noreply requests before it
            copied = entry.end;
            if entry.waiter.is_gone() {
                return false;
            }
            let new_at = self.out_at + kept.len() as u64;
            kept.extend_from_slice(&self.out[end..(entry.end - self.out_at) as usize]);
            entry.end = new_at + (entry.end - entry.at);
            entry.at = new_at;
            true
        });
        kept.extend_from_slice(&self.out[(copied - self.out_at) as usize..]);
        self.pending.extend(entries);
        self.out = kept;
    }

    /// Fails the callers whose deadline (`since + timeout`) is past `now`, each alone, with
    /// a timeout; their replies, when they come, are discarded. Returns the earliest
    /// deadline of the callers still waiting.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut earliest = |deadline: Instant| {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        };
        for entry in &mut self.pending {
            let deadline = entry.since.checked_add(timeout);
            let overdue = deadline.is_some_and(|deadline| deadline <= now);
            match &mut entry.waiter {
                Waiter::Group(group) => {
                    if let Some(deadline) = group.expire(now, timeout) {
                        earliest(deadline);
                    }
                }
                Waiter::Caller(_) if overdue => {
                    let waiter = std::mem::replace(&mut entry.waiter, Waiter::Gone);
                    waiter.fail(&timed_out(timeout));
                }
                Waiter::Solo(seq) if overdue => {
                    if let Some(solo) = self.solo.as_mut().filter(|solo| solo.seq == *seq) {
                        solo.reply = Some(Box::new(Err(timed_out(timeout))));
                        if let Some(waker) = solo.waker.take() {
                            waker.wake();
                        }
                    }
                    entry.waiter = Waiter::Gone;
                }
                Waiter::Caller(slot) if slot.is_closed() => entry.waiter = Waiter::Gone,
                Waiter::Caller(_) | Waiter::Solo(_) => {
                    if let Some(deadline) = deadline {
                        earliest(deadline);
                    }
                }
                Waiter::Quiet(_) | Waiter::Gone => {}
            }
        }
        next
    }

    /// Whether requests handed to the socket await replies (the `mn` of a quiet run does
    /// not count: a connection carrying only noreply writes survives a stalled server).
    pub(crate) fn outstanding(&self) -> bool {
        self.pending
            .iter()
            .any(|p| p.at < self.out_at && !matches!(p.waiter, Waiter::Quiet(_)))
    }

    /// Closes the queue with `error`: what was never handed to the socket is kept in
    /// `carry` when `keep` (bytes and entries, quiet run closed); the entries of what was
    /// written are returned, for their callers to fail. Nothing can be queued any more.
    pub(crate) fn close(&mut self, error: &Error, keep: bool) -> Vec<Pending> {
        self.closed = Some(error.clone());
        self.tail = None;
        if keep {
            self.end_quiet_run();
        } else {
            self.quiet = None;
        }
        let mut first = self.first_unwritten();
        if keep && self.pending.range(first..).any(|p| p.waiter.is_gone()) {
            // Their bytes go too: a request sent without its entry would take the reply
            // of the one behind it.
            self.drop_gone(first);
            first = self.first_unwritten();
        }
        let unsent = self.pending.split_off(first);
        let mut written: Vec<Pending> = self.pending.drain(..).collect();
        let mut out = std::mem::take(&mut self.out);
        // The rest of a request its caller began writing belongs to this connection only.
        let partial = self
            .sent_until
            .saturating_sub(self.out_at)
            .min(out.len() as u64);
        out.advance(partial as usize);
        if keep && (!out.is_empty() || !unsent.is_empty()) {
            self.carry = Some(Carry {
                out,
                at: self.out_at + partial,
                pending: unsent.into_iter().collect(),
                next_opaque: self.next_opaque,
            });
        } else {
            written.extend(unsent);
        }
        written
    }

    /// The bytes of a request just encoded at `start`, as a classic retrieval's key check
    /// and key count, when it is one.
    pub(crate) fn key_check(&self, start: usize, expect: &mut Expect) -> KeyCheck {
        if expect.kind != Kind::Values {
            return KeyCheck::None;
        }
        match KeyCheck::of_request(&self.out[start..]) {
            Some((check, keys)) => {
                expect.items = keys;
                check
            }
            None => KeyCheck::None,
        }
    }
}

/// `Some(length of the command word with its space)` when `line` is a classic `get` or
/// `gets` of exactly one key.
pub(crate) fn single_get(line: &[u8]) -> Option<usize> {
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

/// Advances `out` past `written` bytes handed to the socket.
/// Advances `out` past `written` bytes its caller handed to the socket itself (the idle
/// path, where `out` held that one request): the rest of `out` is the rest of that request,
/// which must go out on this connection or nowhere.
pub(crate) fn advance(queue: &mut Queue, written: usize) {
    if written == 0 {
        return;
    }
    queue.out.advance(written);
    queue.out_at += written as u64;
    queue.sent_until = queue.out_at + queue.out.len() as u64;
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

    /// Queues `line` as a request with a reply, or as a noreply one.
    fn queue_request(
        queue: &mut Queue,
        line: &[u8],
        reply: bool,
    ) -> Option<oneshot::Receiver<Result<Response>>> {
        let at = queue.out_at + queue.out.len() as u64;
        queue.out.extend_from_slice(line);
        reply.then(|| queue.wait_for(Expect::one(Kind::Store), Instant::now(), at, KeyCheck::None))
    }

    /// Requests whose caller has gone are left out of the batch; noreply requests between
    /// them stay; the entries of the others still point at their bytes.
    #[test]
    fn a_batch_leaves_out_requests_whose_caller_has_gone() {
        let mut queue = Queue::new(None);
        let a = queue_request(&mut queue, b"a\r\n", true);
        let gone = queue_request(&mut queue, b"gone\r\n", true);
        queue_request(&mut queue, b"noreply\r\n", false);
        let c = queue_request(&mut queue, b"c\r\n", true);
        drop(gone);
        let mut batch = BytesMut::new();
        assert!(queue.take_batch(&mut batch, 0));
        assert_eq!(&batch[..], b"a\r\nnoreply\r\nc\r\n");
        let spans: Vec<(u64, u64)> = queue.pending.iter().map(|p| (p.at, p.end)).collect();
        assert_eq!(spans, [(0, 3), (12, 15)]);
        assert_eq!(queue.out_at, 15);
        drop((a, c));
    }

    /// At its close, what was never handed over is kept for the next connection, and
    /// appended there at the right positions; what was written is returned to fail.
    #[test]
    fn a_closed_queue_keeps_what_was_never_written() {
        let mut queue = Queue::new(None);
        let _sent = queue_request(&mut queue, b"sent\r\n", true);
        let mut batch = BytesMut::new();
        assert!(queue.take_batch(&mut batch, 0));
        let _later = queue_request(&mut queue, b"later\r\n", true);
        queue_request(&mut queue, b"noreply\r\n", false);
        let written = queue.close(&Error::UnexpectedClose, true);
        assert_eq!(written.len(), 1);
        let carry = queue.carry.take().expect("a carry");
        assert_eq!(&carry.out[..], b"later\r\nnoreply\r\n");

        let mut next = Queue::new(None);
        let _own = queue_request(&mut next, b"own\r\n", true);
        next.adopt(carry);
        assert_eq!(&next.out[..], b"own\r\nlater\r\nnoreply\r\n");
        let spans: Vec<(u64, u64)> = next.pending.iter().map(|p| (p.at, p.end)).collect();
        assert_eq!(spans, [(0, 5), (5, 12)]);
    }

    /// Noreply bytes queued before the first carried entry do not shift the carried entries'
    /// positions: a gone caller later cuts out its own bytes, and only them.
    #[test]
    fn adopted_entries_keep_their_place_after_leading_noreply_bytes() {
        let mut queue = Queue::new(None);
        let _sent = queue_request(&mut queue, b"get sent\r\n", true);
        let mut batch = BytesMut::new();
        assert!(queue.take_batch(&mut batch, 0));
        queue_request(&mut queue, b"set k 0 0 5 noreply\r\nhello\r\n", false);
        let gone = queue_request(&mut queue, b"get a\r\n", true);
        let _kept = queue_request(&mut queue, b"get b\r\n", true);
        let _written = queue.close(&Error::UnexpectedClose, true);
        let carry = queue.carry.take().expect("a carry");
        let mut next = Queue::new(Some(carry));
        let spans: Vec<(u64, u64)> = next.pending.iter().map(|p| (p.at, p.end)).collect();
        assert_eq!(spans, [(28, 35), (35, 42)]);
        drop(gone);
        let mut batch = BytesMut::new();
        assert!(next.take_batch(&mut batch, 0));
        assert_eq!(
            String::from_utf8_lossy(&batch),
            "set k 0 0 5 noreply\r\nhello\r\nget b\r\n"
        );
    }

    /// A request partly written by its caller (the idle path) leaves its remainder at the
    /// front of `out`; at a close that remainder is not carried to the next connection.
    #[test]
    fn the_rest_of_a_partly_written_request_is_not_carried() {
        let mut queue = Queue::new(None);
        // link.rs enqueue, idle path: encode, try_write wrote 12 bytes, advance, wait_for
        let at = queue.out_at;
        queue
            .out
            .extend_from_slice(b"set big 0 0 10\r\nflush_all\r\n");
        advance(&mut queue, 12);
        let _reply = queue.wait_for(Expect::one(Kind::Store), Instant::now(), at, KeyCheck::None);
        // a later request, queued and not written
        let _later = queue_request(&mut queue, b"get x\r\n", true);
        let written = queue.close(&Error::UnexpectedClose, true);
        assert_eq!(written.len(), 1);
        let carry = queue.carry.take().expect("a carry");
        assert_eq!(String::from_utf8_lossy(&carry.out), "get x\r\n");
    }

    /// At a close, an unwritten request whose caller has gone leaves with its entry and its
    /// bytes: the next connection does not send it, and no reply goes to the wrong caller.
    #[test]
    fn a_gone_request_is_carried_neither_bytes_nor_entry() {
        let mut queue = Queue::new(None);
        let gone = queue_request(&mut queue, b"add a 0 0 1\r\n1\r\n", true);
        let _kept = queue_request(&mut queue, b"add b 0 0 1\r\n1\r\n", true);
        drop(gone);
        let _written = queue.close(&Error::UnexpectedClose, true);
        let carry = queue.carry.take().expect("a carry");
        let mut next = Queue::new(Some(carry));
        let mut batch = BytesMut::new();
        assert!(next.take_batch(&mut batch, 0));
        assert_eq!(next.pending.len(), 1);
        assert_eq!(String::from_utf8_lossy(&batch), "add b 0 0 1\r\n1\r\n");
    }
}
