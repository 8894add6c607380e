//! Who reads a link's socket: a *solo* caller, while it is polled and its request is the
//! only one outstanding ([`Link::poll_solo`]), or the driver ([`Link::read`]); the read side
//! is handed between them without a lost wake-up ([`Link::try_read`],
//! [`Link::let_go_of_reading`]). See the [link module](super) docs.

use std::sync::atomic::{fence, Ordering};
use std::sync::{MutexGuard, TryLockError};
use std::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::protocol::response::Response;

use super::super::transport::{poll_fill, ReadHalf};
use super::{Link, ReadSide};

impl Link {
    /// A solo caller's wait for its reply: the reply kept for it, or, while its request is
    /// the only one outstanding, a read of the socket (completing any others that arrive
    /// with it).
    pub(crate) fn poll_solo(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<Response>> {
        {
            let mut state = self.lock();
            let Some(solo) = state.solo.as_mut().filter(|solo| solo.seq == seq) else {
                return Poll::Ready(Err(Error::UnexpectedClose));
            };
            if let Some(reply) = solo.reply.take() {
                state.solo = None;
                return Poll::Ready(*reply);
            }
            match &solo.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => solo.waker = Some(cx.waker().clone()),
            }
            if state.pending.len() != 1 || state.closed.is_some() {
                // Others wait too: the driver reads, and keeps this reply here. (It is
                // woken: this caller may be the one the socket last woke.)
                state.wake_driver();
                return Poll::Pending;
            }
        }
        // Another reader holds the read side: it keeps the reply here, or (a solo caller
        // letting go) wakes the driver to.
        let Some(mut read) = self.try_read() else {
            return Poll::Pending;
        };
        let outcome = loop {
            let read = &mut *read;
            match poll_fill(&mut read.half, &mut read.input, cx) {
                Poll::Pending => break Ok(None),
                Poll::Ready(Ok(0)) => break Err(Error::UnexpectedClose),
                Poll::Ready(Ok(bytes)) => {
                    self.reads
                        .store(self.reads.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    self.shared.metrics.read(bytes);
                    match self.dispatch(read, Some(seq)) {
                        Ok(Some(response)) => break Ok(Some(response)),
                        Ok(None) => continue,
                        Err(error) => break Err(error),
                    }
                }
                Poll::Ready(Err(e)) => break Err(e.into()),
            }
        };
        let flush = read.half.as_ref().is_some_and(ReadHalf::needs_flush);
        drop(read);
        self.let_go_of_reading();
        if flush {
            self.lock().wake_driver(); // TLS: an answer for the server waits
        }
        match outcome {
            Ok(Some(response)) => Poll::Ready(Ok(response)),
            Ok(None) => Poll::Pending,
            Err(error) => {
                let error = self.fail(&error);
                let mut state = self.lock();
                let reply = state.solo.as_mut().and_then(|solo| solo.reply.take());
                state.solo = None;
                Poll::Ready(reply.map_or(Err(error), |reply| *reply))
            }
        }
    }

    /// The read side, or `None` when another reader holds it; then the driver is asked for
    /// ([`Link::read_wanted`]): the holder, a solo caller, wakes it when it lets go.
    fn try_read(&self) -> Option<MutexGuard<'_, ReadSide>> {
        match self.read.try_lock() {
            Ok(read) => Some(read),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {
                self.read_wanted.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                match self.read.try_lock() {
                    Ok(read) => Some(read),
                    Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(TryLockError::WouldBlock) => None,
                }
            }
        }
    }

    /// A solo caller has let go of the read side: it wakes the driver if someone asked for
    /// the read side meanwhile (see [`Link::try_read`]).
    fn let_go_of_reading(&self) {
        fence(Ordering::SeqCst);
        if self.read_wanted.load(Ordering::Relaxed)
            && self.read_wanted.swap(false, Ordering::SeqCst)
        {
            self.lock().wake_driver();
        }
    }

    /// A solo caller gave up before its reply came: the reply is discarded when it comes,
    /// and the driver reads from now on.
    pub(crate) fn solo_gone(&self, seq: u64) {
        let mut state = self.lock();
        if state.solo.as_ref().is_some_and(|solo| solo.seq == seq) {
            state.solo = None;
            state.wake_driver();
        }
    }

    /// The driver's read: whatever the socket has, decoded and handed to the callers.
    /// `Ok(None)`: the read side is held by a solo caller (who wakes the driver when it lets
    /// go) or the socket has nothing; `Ok(Some(answered))`: bytes were read.
    pub(crate) fn read(&self, cx: &mut Context<'_>) -> Result<Option<bool>> {
        let Some(mut read) = self.try_read() else {
            return Ok(None);
        };
        // The driver reads now: nobody needs to wake it for that.
        self.read_wanted.store(false, Ordering::Relaxed);
        let read = &mut *read;
        let filled = poll_fill(&mut read.half, &mut read.input, cx);
        if read.half.as_ref().is_some_and(ReadHalf::needs_flush) {
            cx.waker().wake_by_ref(); // TLS: this driver sends the answer on its next poll
        }
        match filled {
            Poll::Pending => Ok(None),
            Poll::Ready(Ok(0)) => Err(Error::UnexpectedClose),
            Poll::Ready(Ok(bytes)) => {
                self.reads
                    .store(self.reads.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                self.shared.metrics.read(bytes);
                read.answered = false;
                self.dispatch(read, None)?;
                Ok(Some(read.answered))
            }
            Poll::Ready(Err(e)) => Err(e.into()),
        }
    }

    /// How many reads have brought bytes.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}
