//! What the commands spread over several servers share: awaiting every server's request
//! together, and the partial results of a multi-key read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::address::ServerAddr;
use crate::cluster::PerServer;
use crate::connection::Connection;
use crate::error::{Error, Result};

/// Runs `futures` together and returns their outputs in order. Each is polled first in the
/// same poll, so that every server's request is handed to its connection before any reply
/// is awaited: one round trip in total.
pub(super) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// A multi-key read's hits together with the errors of the servers that failed, from
/// [`GetMany::partial`](crate::command::GetMany::partial) and
/// [`GetsMany::partial`](crate::command::GetsMany::partial): the keys of a failed server
/// are missing from `hits`, and its error is in `errors`, whatever
/// [`ignore_exc`](crate::ClientBuilder::ignore_exc) says.
///
/// ```no_run
/// # async fn demo(client: memcache_core::Client) -> Result<(), memcache_core::Error> {
/// let read = client.get_many(["a", "b", "c"]).partial().await?;
/// for (server, error) in &read.errors {
///     eprintln!("{server} failed: {error}");
/// }
/// println!("{} hits", read.hits.len());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Partial<T> {
    /// What the servers that answered hold, as the plain call returns it.
    pub hits: T,
    /// Each server that failed, with its error.
    pub errors: Vec<(ServerAddr, Error)>,
}

/// A multi-key read that returns [`Partial`] results: see
/// [`GetMany::partial`](crate::command::GetMany::partial).
#[derive(Debug)]
#[must_use = "a command does nothing until it is awaited"]
pub struct Partially<C>(pub(super) C);

/// Runs `call` on every server together (a server-wide command); each server's result, in
/// the order configured.
pub(super) async fn every_server<'c, T, F>(
    connections: &'c [Connection],
    call: impl Fn(&'c Connection) -> F,
) -> PerServer<T>
where
    F: Future<Output = Result<T>>,
{
    let results = join_all(connections.iter().map(call).collect()).await;
    let servers = connections
        .iter()
        .map(|connection| connection.addr().clone());
    PerServer::new(servers.zip(results).collect())
}
