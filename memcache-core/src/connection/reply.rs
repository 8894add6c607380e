//! The way back to a caller: a future that resolves to its request's reply ([`Reply`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::protocol::response::Response;

use super::link::{Link, Way};

/// A future that resolves to a request's reply.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Whoever reads the reply sends it here.
    Slot(oneshot::Receiver<Result<Response>>),
    /// The caller wrote its request to an idle connection: it reads the reply itself while
    /// it is polled and alone, or finds it kept for it.
    Solo(SoloRead),
}

impl Reply {
    #[inline]
    pub(crate) fn new(link: &Arc<Link>, way: Way) -> Self {
        match way {
            Way::Slot(slot) => Reply::Slot(slot),
            Way::Solo(seq) => Reply::Solo(SoloRead {
                link: Arc::clone(link),
                seq,
                done: false,
            }),
        }
    }
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

/// A solo caller's wait for its reply (see [`Link::poll_solo`]).
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
