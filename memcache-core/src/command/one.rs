//! The machinery of the commands that send one request and read at most one reply: their
//! description ([`OneRequest`]), and a future that allocates nothing on a connected connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tracing::{Instrument, Span};

use super::{CommandFuture, Plan};
use crate::client::Inner;
use crate::connection::{failed_as_err, Connection, Reply, Sent};
use crate::error::{Error, Result};
use crate::metrics::{Command, Flight};
use crate::protocol::response::{Opaque, Response};

use super::span;

/// A command that sends one request and reads at most one reply, described once: its
/// future ([`poll_one`]) and its general path ([`run_one`]) are built from this.
pub(super) trait OneRequest<'a>: Sized + Send + Sync + 'a {
    type Output: Send + 'a;

    fn inner(&self) -> &'a Inner;

    /// What the command is, for its span and metrics.
    fn command(&self) -> Command;

    /// The key whose server the request goes to.
    fn key(&self) -> &[u8];

    /// Waits, on a fresh client under `Protocol::Auto`, for the protocol probe's answer
    /// before it is encoded: reads do (a classic read cannot tell another client's lease
    /// placeholder from an empty value); writes go out as they are.
    const LEARNS_PROTOCOL: bool = false;

    /// Checks the input (nothing is sent when it fails) and decides how the request goes
    /// on `connection` (the key's server's: whether it speaks meta).
    fn plan(&self, connection: &Connection) -> Result<Plan>;

    /// Writes the request (under the connection's lock); `opaque` is its token, should it
    /// be a meta request.
    fn encode(&self, plan: &Plan, buf: &mut BytesMut, opaque: Opaque);

    /// The outcome, from the reply (server errors already as `Err`), or from nothing for a
    /// noreply request that was handed over.
    fn finish(self, plan: &Plan, reply: Option<Result<Response>>) -> Result<Self::Output>;
}

/// The general path of a [`OneRequest`], as an `async fn` (boxed where it is used): for
/// the rare cases, a connection still being opened or a full write queue.
async fn run_one<'a, C: OneRequest<'a>>(command: C) -> Result<C::Output> {
    let connection = command.inner().route(command.key());
    let plan = command.plan(connection)?;
    let name = command.command();
    let encode = |buf: &mut BytesMut, opaque| command.encode(&plan, buf, opaque);
    let reply = match plan.expect {
        None => {
            connection.send_noreply(name, plan.quiet, 1, encode).await?;
            None
        }
        Some(expect) => Some(connection.request(name, expect, encode).await),
    };
    command.finish(&plan, reply)
}

/// Where the future of a [`OneRequest`] is.
pub(super) enum OneState<'a, C, T> {
    /// Not polled yet.
    Start(C),
    /// The request is with a connected connection: waiting for the reply.
    Wait {
        command: C,
        plan: Plan,
        connection: &'a Connection,
        reply: Reply,
        flight: Flight<'a>,
    },
    /// A rare path (see [`run_one`]), boxed (and instrumented with the command's span).
    Slow(CommandFuture<'a, T>),
    /// Finished.
    Done,
}

/// Polls the future of a [`OneRequest`]. On a connected connection it hands the request
/// over and waits for the reply itself: no allocation, no `async` layers.
pub(super) fn poll_one<'a, C: OneRequest<'a>>(
    state: &mut OneState<'a, C, C::Output>,
    span: &mut Option<Span>,
    cx: &mut Context<'_>,
) -> Poll<Result<C::Output>> {
    loop {
        match state {
            // Polled in place: a reply not there yet moves nothing.
            OneState::Wait { reply, .. } => {
                let _entered = span.as_ref().map(Span::enter);
                let Poll::Ready(reply) = Pin::new(reply).poll(cx) else {
                    return Poll::Pending;
                };
                let OneState::Wait {
                    command,
                    plan,
                    connection,
                    flight,
                    ..
                } = std::mem::replace(state, OneState::Done)
                else {
                    unreachable!("matched as Wait above");
                };
                let reply = connection.settle(failed_as_err(reply));
                flight.end(&reply);
                return Poll::Ready(command.finish(&plan, Some(reply)));
            }
            OneState::Slow(slow) => {
                let poll = slow.as_mut().poll(cx);
                if poll.is_ready() {
                    *state = OneState::Done;
                }
                return poll;
            }
            OneState::Done => panic!("a command future polled after it completed"),
            OneState::Start(_) => {}
        }
        let OneState::Start(command) = std::mem::replace(state, OneState::Done) else {
            unreachable!("the other states returned above");
        };
        let connection = command.inner().route(command.key());
        let plan = match command.plan(connection) {
            Ok(plan) => plan,
            Err(error) => return Poll::Ready(Err(error)),
        };
        let name = command.command();
        let learns = C::LEARNS_PROTOCOL && connection.protocol_unknown();
        let meta = (!learns).then_some(plan.meta);
        *span = span::one(name, connection, meta, command.key());
        let _entered = span.as_ref().map(Span::enter);
        if learns {
            // A fresh client under Protocol::Auto: the first commands wait for the probe,
            // to be encoded in the server's protocol (a classic read cannot tell another
            // client's lease placeholder from an empty value). The input was checked
            // first: a bad one sends nothing.
            let slow = async move {
                if let Err(error) = connection.learn_protocol().await {
                    return command.finish(&plan, Some(Err(error)));
                }
                span::learned(connection);
                run_one(command).await
            };
            *state = OneState::Slow(instrumented(slow, span));
            continue;
        }
        let encode = |buf: &mut BytesMut, opaque| command.encode(&plan, buf, opaque);
        let (sent, since) = connection.start(plan.expect, plan.quiet, 1, encode);
        let metrics = connection.metrics();
        *state = match sent.forget_encoder() {
            Sent::Ready(Some(reply)) => OneState::Wait {
                command,
                plan,
                connection,
                reply,
                flight: metrics.begin(name),
            },
            // A noreply request handed over.
            Sent::Ready(None) | Sent::Connecting(None) if plan.expect.is_none() => {
                metrics.begin(name).end(&Ok(()));
                return Poll::Ready(command.finish(&plan, None));
            }
            // Cannot happen: a request that expects a reply gets a way to it.
            Sent::Ready(None) | Sent::Connecting(None) => {
                let lost = Err(Error::UnexpectedClose);
                metrics.begin(name).end(&lost);
                return Poll::Ready(command.finish(&plan, Some(lost)));
            }
            // Queued while the connection opens: its reply is awaited within the deadline.
            Sent::Connecting(Some(reply)) => {
                let flight = metrics.begin(name);
                let slow = async move {
                    let reply = connection.within(since, reply).await;
                    let reply = connection.settle(failed_as_err(reply));
                    flight.end(&reply);
                    command.finish(&plan, Some(reply))
                };
                OneState::Slow(instrumented(slow, span))
            }
            // Nothing was sent: the general path, from the start.
            Sent::Full(_) => OneState::Slow(instrumented(run_one(command), span)),
            // The server is in backoff: nothing was sent.
            Sent::Down(error) => {
                let down = Err(error);
                metrics.begin(name).end(&down);
                return Poll::Ready(command.finish(&plan, Some(down)));
            }
        };
    }
}

/// `slow`, boxed, in `span` (when there is one).
fn instrumented<'a, T>(
    slow: impl Future<Output = Result<T>> + Send + 'a,
    span: &Option<Span>,
) -> CommandFuture<'a, T> {
    match span {
        Some(span) => Box::pin(slow.instrument(span.clone())),
        None => Box::pin(slow),
    }
}

/// The future type of a [`OneRequest`] command, written out so that on a connected
/// connection awaiting the command allocates nothing (other commands' futures are boxed).
macro_rules! one_request_future {
    ($(#[$doc:meta])* $future:ident for $name:ident<$($g:ident),*> => $out:ty) => {
        $(#[$doc])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $future<'a, $($g),*> {
            state: OneState<'a, $name<'a, $($g),*>, $out>,
            /// The command's span, once it has started (and a subscriber wants it).
            span: Option<tracing::Span>,
        }

        // The command is never pinned: the state machine moves it freely.
        impl<$($g),*> Unpin for $future<'_, $($g),*> {}

        impl<$($g),*> std::fmt::Debug for $future<'_, $($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($future)).finish_non_exhaustive()
            }
        }

        impl<'a, $($g: AsRef<[u8]> + Send + Sync + 'a),*> IntoFuture for $name<'a, $($g),*> {
            type Output = Result<$out>;
            type IntoFuture = $future<'a, $($g),*>;

            fn into_future(self) -> Self::IntoFuture {
                $future {
                    state: OneState::Start(self),
                    span: None,
                }
            }
        }

        impl<'a, $($g: AsRef<[u8]> + Send + Sync + 'a),*> Future for $future<'a, $($g),*> {
            type Output = Result<$out>;

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let this = self.get_mut();
                poll_one(&mut this.state, &mut this.span, cx)
            }
        }
    };
}
