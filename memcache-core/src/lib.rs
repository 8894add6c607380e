//! An async memcached client for tokio: every command of the text protocol, one cloneable
//! [`Client`] shared by many tasks, and one connection that carries many requests at once.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use memcache_core::Client;
//!
//! # async fn demo() -> Result<(), memcache_core::Error> {
//! let client = Client::builder()
//!     .server("127.0.0.1:11211")
//!     .connect_timeout(Duration::from_millis(500))
//!     .timeout(Duration::from_millis(200))
//!     .build()?; // no I/O yet: the first command connects
//!
//! client.set("greeting", "hello").ttl(300).await?; // noreply by default
//! if let Some(value) = client.get("greeting").await? {
//!     println!("{:?} (flags {})", value.data, value.flags);
//! }
//!
//! let added = client.add("greeting", "again").noreply(false).await?; // false: exists
//! let hits = client.get_many(["greeting", "other"]).await?; // hits only
//! let n = client.incr("counter", 1).await?; // None: no such key
//! # let _ = (added, hits, n);
//! # Ok(()) }
//! ```
//!
//! Each command is a builder: set per-call options (`.ttl()`, `.flags()`, `.noreply()`),
//! then `.await` it. Nothing is checked or sent before the `.await`.
//!
//! # Behavior
//!
//! **Outcomes are values, failures are errors.** A miss is `Ok(None)`; `NOT_STORED` is
//! `Ok(false)`; `cas` returns a [`CasOutcome`] (`Stored` / `Exists` / `NotFound`); `incr` on a
//! missing key is `Ok(None)`. `Err` means the command could not be carried out.
//!
//! | command | returns |
//! |---|---|
//! | `get`, `gat` | `Option<Value>` |
//! | `gets`, `gats` | `Option<(Value, CasToken)>` |
//! | `get_many`, `gets_many` | `HashMap<K, _>` of the hits, keyed by the caller's keys |
//! | `set`, `add`, `replace`, `append`, `prepend` | `bool`: stored |
//! | `cas` | [`CasOutcome`] |
//! | `set_many` | the keys that were not stored |
//! | `delete`, `touch` | `bool`: the key existed |
//! | `delete_many` | `()` when every reply is `DELETED` or `NOT_FOUND` |
//! | `incr`, `decr` | `Option<u64>`: `None` when the key is missing |
//! | `stats` | [`Stats`] |
//! | `version` | `String` |
//! | `flush_all`, `verbosity`, `cache_memlimit`, `quit` | `()` |
//! | `lease` (meta `mg ... N`) | [`Lease`]: `Hit`, `Won` (you recompute) or `Busy` (another client does) |
//!
//! **noreply.** On by default for `set`, `set_many`, `add`, `replace`, `append`, `prepend`,
//! `delete`, `delete_many`, `touch` and `flush_all`; off for `cas`, `incr`, `decr`,
//! `verbosity` and `cache_memlimit`. [`ClientBuilder::default_noreply`] changes the default,
//! `.noreply(bool)` overrides it per call. A noreply call resolves as soon as its request is
//! handed to the connection, and returns what pymemcache returns: `true` for the store,
//! delete and touch commands, an empty list for `set_many`, `None` for `incr`/`decr`,
//! [`CasOutcome::Stored`] for `cas`. The caller never learns the outcome. Over the classic
//! protocol the server sends nothing back at all, not even an error: memcached silently
//! drops, for example, a value over its item size. Over the meta protocol noreply writes use
//! quiet mode, where the server still reports failures: they are logged (`tracing`, warn,
//! with the keys) and counted by [`Client::noreply_errors`]. Use `.noreply(false)` where the
//! caller needs to know.
//!
//! **Protocol.** memcached 1.6 speaks a second, *meta* protocol (`mg`, `ms`, `md`, `ma`)
//! that the server answers faster under pipelining and that reports noreply failures. With
//! the default [`Protocol::Auto`] each new connection asks `mn` before anything else and uses
//! meta for single-key data commands when the server has it, classic otherwise (older
//! servers, twemproxy). `get_many` always sends one classic multi-key `get`, the cheapest
//! read of many keys. [`ClientBuilder::protocol`] forces either protocol. Results are the
//! same whichever is used.
//!
//! **ignore_exc.** With [`ClientBuilder::ignore_exc`], errors on the read path (`get`,
//! `gets`, `get_many`, `gets_many`, `gat`, `gats`, `stats`) become misses: `None`, an empty
//! map, empty [`Stats`]. An illegal key still fails, and writes still report errors.
//!
//! **Timeouts.** [`ClientBuilder::connect_timeout`] bounds opening a connection (default
//! 1 s); [`ClientBuilder::timeout`] bounds each command from the caller's point of view,
//! including any wait for a connection (default 1 s). A command that takes longer returns
//! [`Error::Timeout`]. A connection whose oldest outstanding request has waited longer than
//! the timeout is considered dead: it is closed, every request on it fails, and the next
//! command reconnects.
//!
//! **Keys.** At most 250 bytes including the [`key_prefix`](ClientBuilder::key_prefix); no
//! whitespace, control bytes or DEL (0x00-0x20, 0x7f); non-ASCII only with
//! [`allow_unicode_keys`](ClientBuilder::allow_unicode_keys). Keys are checked before any byte
//! is written, a batch as a whole: one bad key in `get_many` fails the call and sends
//! nothing. This is also what stops command injection (`"k\r\nflush_all"` is refused).
//!
//! **Connections.** The client connects lazily. Any I/O or protocol error closes the
//! connection: every request outstanding on it fails with that error, and the next command
//! opens a new connection. Nothing is retried silently.
//!
//! **Large values.** A response announcing a value larger than
//! [`max_value_size`](ClientBuilder::max_value_size) (default 1 MiB) fails the connection
//! with [`Error::ValueTooLarge`] without allocating it.
//!
//! # Pipelining
//!
//! All clones of a `Client` share one connection, served by a driver task. Each command is
//! encoded straight into the connection's write buffer. A command issued while nothing else
//! is in flight is written by its caller at once, and its caller reads the reply itself:
//! one request at a time involves no other task and no reply channel. Concurrent commands are
//! queued and written together by the driver, in one `write` where the socket allows,
//! without any added delay: under load, batches form by themselves; the driver (or the
//! caller reading for itself) decodes the replies and hands each to its caller. Having
//! answered some, the driver lets the callers it woke run before it writes again, so their
//! next requests share a write.
//!
//! Over the classic protocol, with [`ClientBuilder::join_gets`], single-key `get`s (and
//! `gets`) queued one behind the other while the connection is busy go out as one
//! multi-key line, `get k1 k2 ..` (up to 64 keys): memcached flushes a write after every
//! classic `get`, which caps pipelined ones near 170k/s on one server thread, while a
//! multi-key `get` is its cheapest read. Each caller still gets the answer to its own key
//! (a miss when that key had no hit). It is off by default because a proxy answers such a
//! line with an error as a whole when one key's server is down. Meta gets are pipelined as
//! they are: the server answers them without a flush each.
//!
//! The contract:
//!
//! - **Ordering.** Commands are written in the order their futures hand them to the
//!   connection (the first poll of the `.await`), and memcached answers the commands of one
//!   connection in order. Two commands awaited one after the other by one task are therefore
//!   carried out in that order; commands from different tasks in flight at the same time
//!   have no order between them.
//! - **Cancellation.** Dropping a command's future, or its timing out, never affects another
//!   caller: if the request was already handed to the connection it is still carried out,
//!   its response is read and discarded, and the stream stays in step. A caller never
//!   receives a response meant for another one. A dropped or timed-out *write* may or may
//!   not have been applied.
//! - **Failure.** When the connection fails, every request outstanding on it fails with the
//!   same error (a clone of it); requests that had not been written yet fail too.
//! - **Values** are [`bytes::Bytes`] sliced out of the connection's read buffer: reading a
//!   value does not copy it.
//!
//! # Errors
//!
//! One error type, [`Error`], with predicates ([`Error::is_timeout`],
//! [`Error::is_connection_error`], [`Error::is_server_error`], [`Error::is_illegal_input`]).
//! The variants follow pymemcache's exceptions:
//!
//! | pymemcache | `Error` |
//! |---|---|
//! | `MemcacheUnknownCommandError` | [`Error::UnknownCommand`] (`ERROR`) |
//! | `MemcacheClientError` | [`Error::Client`] (`CLIENT_ERROR <msg>`) |
//! | `MemcacheServerError` | [`Error::Server`] (`SERVER_ERROR <msg>`) |
//! | `MemcacheUnknownError` | [`Error::UnknownResponse`] |
//! | `MemcacheUnexpectedCloseError` | [`Error::UnexpectedClose`] |
//! | `MemcacheIllegalInputError` | [`Error::IllegalInput`] |
//! | `socket.timeout` | [`Error::Timeout`] |
//! | `socket.error` | [`Error::Io`] |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod command;
mod config;
mod connection;
mod error;
mod key;
mod protocol;
mod value;

/// The sans-IO protocol module, for the micro-benchmarks only (feature `bench-internals`).
/// Not part of the API: it may change in any release.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod __bench {
    pub use crate::protocol::{decode, request, response};
}

pub use bytes::Bytes;
pub use client::Client;
pub use config::{
    ClientBuilder, Protocol, ServerAddr, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_VALUE_SIZE, DEFAULT_PORT, DEFAULT_TIMEOUT,
    MAX_VALUE_SIZE_LIMIT,
};
pub use error::{Error, IllegalInput, KeyRule, Result, TimeoutKind};
pub use key::MAX_KEY_LEN;
pub use value::{CasOutcome, CasToken, Lease, Stats, Value};
