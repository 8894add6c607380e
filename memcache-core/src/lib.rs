//! An async memcached client for tokio: every command of the text protocol, one cloneable
//! [`Client`] shared by many tasks, one connection per server that carries many requests
//! at once, and several servers placed as pymemcache, libmemcached and twemproxy place
//! them.
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
//! A client can also be configured from a URL, every builder setting a query parameter
//! named after its method (see [`ClientBuilder::from_url`]):
//!
//! ```
//! let client = "memcache://10.0.0.1:11211,10.0.0.2:11211/?timeout=200ms&distribution=ketama"
//!     .parse::<memcache_core::ClientBuilder>()?
//!     .key_prefix("app:") // still a builder
//!     .build()?;
//! # let _ = client;
//! # Ok::<(), memcache_core::Error>(())
//! ```
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
//! | `stats` | [`Stats`] of each server, in a [`PerServer`] |
//! | `version` | `String` of each server, in a [`PerServer`] |
//! | `flush_all`, `verbosity`, `cache_memlimit`, `quit` | `()` of each server, in a [`PerServer`] |
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
//! servers, twemproxy); a fresh client's first reads wait for that answer. `get_many`
//! always sends one classic multi-key `get`, the cheapest read of many keys.
//! [`ClientBuilder::protocol`] forces either protocol. Results are the same whichever is
//! used, but for one thing only meta can tell: another client's lease placeholder (see
//! [`Client::lease`]) is a miss for `get` over meta, and an empty value over classic.
//!
//! **ignore_exc.** With [`ClientBuilder::ignore_exc`], errors on the read path (`get`,
//! `gets`, `get_many`, `gets_many`, `gat`, `gats`, `stats`) become misses: `None`, an empty
//! map, empty [`Stats`]. An illegal key still fails, and writes still report errors.
//!
//! **Timeouts.** [`ClientBuilder::connect_timeout`] bounds opening a connection (default
//! 1 s); [`ClientBuilder::timeout`] bounds each command from the caller's point of view,
//! including any wait for a connection (default 1 s). Deadlines are per caller: a command
//! that takes longer fails alone with [`Error::Timeout`]; its reply, when it comes, is read
//! and discarded, and the commands behind it on the connection carry on. A connection is
//! closed for slowness only when the server has sent nothing for the timeout while requests
//! were outstanding (then every request written to it fails with a timeout).
//! `Duration::MAX` means no limit; zero is refused by [`ClientBuilder::build`], as is every
//! setting out of its range.
//!
//! **Keys.** At most 250 bytes including the [`key_prefix`](ClientBuilder::key_prefix); no
//! whitespace, control bytes or DEL (0x00-0x20, 0x7f); non-ASCII only with
//! [`allow_unicode_keys`](ClientBuilder::allow_unicode_keys). Keys are checked before any byte
//! is written, a batch as a whole: one bad key in `get_many` fails the call and sends
//! nothing. This is also what stops command injection (`"k\r\nflush_all"` is refused).
//!
//! **Connections and health.** The client connects lazily (to each server on its first
//! command there). An I/O error, or a reply that
//! cannot be its request's (see *Pipelining*), closes the connection: every request written
//! to it fails with that error; requests queued and not yet written go out on the next
//! connection, which is opened at once. Nothing written is retried silently. After a
//! failed connect, or a connection lost with requests outstanding, a second failure in a
//! row puts a client's only server in *backoff* (several servers follow pymemcache's
//! retries instead: see *Several servers*): the next attempt waits
//! [`DEFAULT_BACKOFF_INITIAL`] (50 ms), then twice as long after each further failure, up
//! to [`DEFAULT_BACKOFF_MAX`] (5 s), each pause shortened by a random part of up to half
//! (see [`ClientBuilder::reconnect_backoff`]). Meanwhile calls fail at once with
//! [`Error::ServerDown`], which says when the next attempt is (with `ignore_exc`, reads are
//! misses); one connect attempt is in flight at a time; a reply read ends the backoff. Only
//! the changes of state are logged (`tracing`: warn when a server starts failing, info when
//! it answers again), not each call. A server that closes an idle connection is noticed
//! within one `timeout` (the connection's driver looks at the idle socket at each tick of
//! its timer); a call made on it before then fails with [`Error::UnexpectedClose`].
//!
//! **Large values.** A value larger than
//! [`max_value_size`](ClientBuilder::max_value_size) (default 1 MiB, at most 1 GiB) is
//! skipped as it streams past, without allocating it: only the call that asked for it
//! fails, with [`Error::ValueTooLarge`], and the connection carries on. (A `get_many` with
//! one such value fails as a whole.)
//!
//! **Bounded memory.** A reply holds at most as many values as keys were asked, a `stats`
//! reply at most 100,000 lines, the failure report of a run of quiet requests one line per
//! request; a reply with more cannot be its request's and closes the connection. Sizes from
//! the network are checked arithmetic: nothing a server sends panics the client.
//!
//! # Several servers
//!
//! ```no_run
//! use memcache_core::{Client, Distribution};
//!
//! # async fn demo() -> Result<(), memcache_core::Error> {
//! let client = Client::builder()
//!     .servers(["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"])
//!     .distribution(Distribution::Rendezvous) // the default: pymemcache's HashClient
//!     .build()?;
//! println!("user:42 lives on {}", client.server_for("user:42")?); // no I/O
//! let hits = client.get_many(["user:1", "user:2", "user:3"]).await?; // one get per server
//! let read = client.get_many(["user:1", "user:2"]).partial().await?; // hits + errors
//! for (server, stats) in &client.stats().await? {
//!     println!("{server}: {:?}", stats.as_ref().map(|s| s.curr_items()));
//! }
//! # let _ = (hits, read);
//! # Ok(()) }
//! ```
//!
//! **Placement** agrees, key for key, with the clients a Rust service shares its servers
//! with (checked against 10,000 keys stored through each real library, in
//! `tests/fixtures/placement`):
//!
//! - [`Distribution::Rendezvous`] (the default) is pymemcache's `HashClient`: the server
//!   whose MurmurHash3 of `"{node}-{key}"` is highest, where `node` is `"{host}:{port}"`
//!   (an IPv6 host without brackets, a unix socket's path, or the server's explicit name).
//!   Weights do not count. The key hashed is the key without the client's
//!   [`key_prefix`](ClientBuilder::key_prefix), as pymemcache hashes it; pymemcache
//!   hashes a `bytes` key by its `repr`, so agree on `str` keys.
//! - [`Distribution::Ketama`] is libmemcached's `ketama_weighted` (pylibmc
//!   `behaviors={"ketama_weighted": True}`) and twemproxy's `distribution: ketama` with
//!   `hash: md5`: 160 points per server for equal weights, each server's share following
//!   its weight ([`ClientBuilder::weighted_server`]), its points named after
//!   `"{host}:{port}"` (`"{host}"` on port 11211; a unix socket `"{path}:0"` as
//!   libmemcached names it, where twemproxy differs: name such servers) or its explicit
//!   name
//!   ([`ClientBuilder::named_server`], twemproxy's `host:port:weight name`), so that its
//!   keys stay put when its address changes. The key hashed is the whole key, prefix
//!   included, as a proxy sees it.
//!
//! With one server nothing is hashed. Single-key commands go to their key's server
//! ([`Client::server_for`] says which). `get_many`, `gets_many`, `set_many` and
//! `delete_many` send one request per server, every one of them before any reply is
//! awaited (one round trip in all), and merge the results in the caller's terms; the
//! typed layer's multi-key calls are built on them. Server-wide commands run on every
//! server and return each one's result ([`PerServer`]; `.single()` for a client of one).
//!
//! **A failing server** fails only its own keys, with an error naming it
//! ([`Error::AtServer`], or [`Error::ServerDown`]; [`Error::server`] says which). A
//! multi-key read fails as a whole without `ignore_exc`; with it, the failed server's keys
//! are misses; [`GetMany::partial`](command::GetMany::partial) returns the hits together
//! with each failed server's error instead. `set_many` with `ignore_exc` returns a failed
//! server's keys as not stored, as pymemcache's `HashClient` does.
//!
//! **Dead servers.** Each server keeps its own health (pymemcache's settings and
//! defaults): every failed connect (refused, reset, timed out, a failed login) and every
//! connection lost or closed for silence (nothing read for the `timeout` while requests
//! were outstanding) counts, where pymemcache counts only some; a call that times out on
//! a connection still answering others does not. The first failure is retried at once,
//! the next ones [`retry_timeout`](ClientBuilder::retry_timeout) (1 s) apart, calls
//! failing meanwhile with [`Error::ServerDown`] (misses with `ignore_exc`: never a silent
//! default without it); once [`retry_attempts`](ClientBuilder::retry_attempts) (2)
//! retries have failed, the server is *dead* for [`dead_timeout`](ClientBuilder::dead_timeout)
//! (60 s). A dead server's keys fail at once, or, with
//! [`failover`](ClientBuilder::failover), it leaves the ring and its keys move to the other
//! servers (under rendezvous, and under ketama with equal weights, the others' keys stay
//! where they are; under ketama with unequal weights the servers left share the ring by
//! their weights, as libmemcached recomputes it, and some of their keys move too). After
//! `dead_timeout` it is tried again, and rejoins when it answers: under failover by a
//! probe of its own (so that no caller's request is the one to find it still down),
//! without failover by the next call of one of its keys (which fails if it is still
//! down). Data written to the other servers while
//! it was out is orphaned when it returns: its keys go back to it, to whatever it still
//! holds. [`Client::servers`] lists every server with its health ([`ServerState`]).
//!
//! # Authentication
//!
//! memcached 1.6 can require a login (`memcached -Y authfile`, lines `user:password`):
//!
//! ```no_run
//! # fn demo() -> Result<(), memcache_core::Error> {
//! let client = memcache_core::Client::builder()
//!     .server("cache.internal:11211")
//!     .credentials("app", "s3cret") // or memcache://app:s3cret@cache.internal:11211
//!     .build()?;
//! # let _ = client;
//! # Ok(()) }
//! ```
//!
//! Every new connection (to every server) asks `mn` first; a server that answers
//! `CLIENT_ERROR unauthenticated` is sent the login (a `set` whose data is
//! `"user password"`, as memcached's ASCII authentication wants), then the probe again,
//! before any request. A server that does not ask is never sent the password (it would
//! store it as a value). A refused login, or a server that requires one from a client
//! without credentials, fails the connection with [`Error::Auth`]
//! ([`Error::is_auth_error`]): the calls waiting for it fail without being sent, and the
//! server is retried as after any failed connect (backoff, or the dead-server rules of a
//! cluster), so a wrong password causes no retry storm. The password appears in no
//! `Debug`, log line or error. It works over both protocols.
//!
//! # Tracing
//!
//! The client reports through [`tracing`](https://docs.rs/tracing); with no subscriber,
//! or none interested, it costs a load and a branch per command.
//!
//! **Spans.** Every command runs in a span named `memcache`, target
//! `memcache_core::command`, at `debug` level, with these fields:
//!
//! | field | what |
//! |---|---|
//! | `command` | `get`, `gets`, `gat`, `gats`, `get_many`, `gets_many`, `set`, `add`, `replace`, `append`, `prepend`, `cas`, `set_many`, `delete`, `invalidate`, `delete_many`, `touch`, `incr`, `decr`, `lease`, `stats`, `version`, `flush_all`, `verbosity`, `cache_memlimit`, `quit` |
//! | `keys` | how many keys (0 for the server-wide commands) |
//! | `server` | the server (`host:port` or the socket path), when the command goes to one |
//! | `servers` | how many servers, when it goes to several |
//! | `protocol` | `meta` or `classic`: how the request was encoded (a fresh client's first read records it once the probe has answered) |
//! | `key` | the key (before the client's `key_prefix`), single-key commands only, and only when `trace` is enabled for the target |
//!
//! Values are never recorded. Events the client emits while a command runs (an error
//! turned into a miss by `ignore_exc`, say) are inside its span.
//!
//! **Events**, all under the target `memcache_core` (by module: `memcache_core::connection::*`):
//!
//! | level | message | fields |
//! |---|---|---|
//! | debug | `connected` | `server`, `meta` (whether it speaks the meta protocol) |
//! | debug | `connection ready` (probe answered, login done) | `server`, `meta` |
//! | debug | `the server hung up on the probe: classic` | `server` |
//! | debug | `logged in` | `user` |
//! | warn | `connection to the server failed; reconnecting` (a healthy server's first failure) | `server`, `error`, `outstanding` |
//! | debug | `the server is still failing` | `server`, `error`, `outstanding`, `failures`, `retry_in` |
//! | warn | `the server is dead` (several servers, retries used up) | `server`, `error`, `failures`, `dead_for` |
//! | debug | `probed a dead server` | `server`, `ok` |
//! | info | `the server answers again` | `server`, `failures` |
//! | debug | `no reply from the server for the timeout: closing the connection` | `server`, `silent` |
//! | debug | `connection closed while idle` | `server`, `error` |
//! | warn | `a noreply request failed ...` (quiet meta writes the server refused) | `server`, `error`, `keys` |
//! | debug | `ignore_exc: ...` (an error hidden as a miss or as not stored) | `error`, `server` |
//!
//! # Metrics
//!
//! With the cargo feature `metrics`, each server reports through the
//! [`metrics`](https://docs.rs/metrics) facade, to whatever recorder (exporter) the
//! application installs, **before building the client**: each server's handles are
//! registered once, when the client is built, so that recording costs no lookup. Every
//! metric carries the label `server` (`host:port` or the socket path).
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `memcache_requests_total` | counter | `server`, `command` | requests handed to the server (`command` as the span field, plus `release_lease`, and `probe` for the client's own `version`s: a fresh connection's wait for its protocol probe, the probe of a dead server) |
//! | `memcache_request_duration_seconds` | histogram | `server`, `command` | from handing the request over to its outcome (for noreply: until handed over) |
//! | `memcache_errors_total` | counter | `server`, `kind` | requests that failed, by `kind`: `timeout`, `connect_timeout`, `io`, `closed`, `server_down`, `protocol`, `server_error`, `client_error`, `unknown_command`, `value_too_large`, `auth`, `tls` (a failed handshake or TLS session: feature `tls`), `address`, `illegal_input`, `other` |
//! | `memcache_timeouts_total` | counter | `server` | requests that timed out (connecting or waiting) |
//! | `memcache_requests_in_flight` | gauge | `server` | requests handed over and not yet answered or given up |
//! | `memcache_connections_opened_total` | counter | `server` | connections opened (the first, and every reconnect) |
//! | `memcache_connect_failures_total` | counter | `server` | connection attempts that failed (refused, timed out, login refused) |
//! | `memcache_server_up` | gauge | `server` | 1 while the server answers (or was not tried yet), 0 from a failure until it answers again |
//! | `memcache_server_dead` | gauge | `server` | 1 while a server of several is dead (out of the ring with failover) |
//! | `memcache_bytes_read_total` | counter | `server` | bytes read from the server |
//! | `memcache_bytes_written_total` | counter | `server` | bytes written to the server |
//! | `memcache_noreply_failures_total` | counter | `server` | quiet (noreply) meta writes the server reported as failed |
//!
//! Without the feature none of this is compiled.
//!
//! # TLS
//!
//! With the feature `tls` (rustls with the `ring` provider, no OpenSSL; off by default,
//! and nothing of it is compiled when off), `ClientBuilder::tls` speaks TLS to every
//! server, as managed services (ElastiCache serverless among them) require, and as
//! `memcached -Z` serves it:
//!
//! ```
//! # #[cfg(feature = "tls")]
//! # fn demo() -> Result<(), memcache_core::Error> {
//! use memcache_core::{Client, ClientBuilder, TlsConfig};
//!
//! // A server with a public certificate: Mozilla's roots.
//! let public = Client::builder()
//!     .server("cache.example.com:11211")
//!     .tls(TlsConfig::new())
//!     .build()?;
//!
//! // Your own CA, reached by IP address but verified by name, with a client certificate.
//! # let dir = std::env::temp_dir();
//! # let (ca, cert, key) = (dir.join("ca.pem"), dir.join("client.pem"), dir.join("client.key"));
//! let private = Client::builder()
//!     .servers(["10.0.0.7:11211", "10.0.0.8:11211"]) // every server speaks TLS
//!     .tls(
//!         TlsConfig::new()
//!             .ca_file(&ca) // trusted instead of Mozilla's roots
//!             .client_cert_files(&cert, &key) // mutual TLS
//!             .server_name("cache.internal"),
//!     )
//!     .credentials("app", "s3cret"); // memcached -Y, over TLS
//! # let _ = (public, private);
//!
//! // The same from a URL: memcaches:// turns TLS on.
//! let from_url = ClientBuilder::from_url("memcaches://cache.example.com:11211/?timeout=200ms")?;
//! # let _ = from_url;
//! # Ok(()) }
//! ```
//!
//! - **What is trusted**: see `TlsConfig` (feature `tls`): added CAs
//!   (PEM files or bytes), Mozilla's roots, the platform's store, or your own
//!   `rustls::ClientConfig` (`memcache_core::rustls` is re-exported). Each server's host
//!   is the name verified (an IP address as an IP address) unless `server_name` says
//!   otherwise. [`ClientBuilder::build`] reads the PEM files and refuses bad PEM, a bad
//!   key, an invalid name, and TLS with a unix socket server (memcached serves TLS on TCP
//!   only, and a local socket needs none).
//! - **Each new connection** does the TLS handshake within the
//!   [`connect_timeout`](ClientBuilder::connect_timeout) (a handshake slower than that is
//!   [`Error::Timeout`] of kind [`TimeoutKind::Connect`]), then its protocol probe and
//!   login over TLS.
//! - **Failures are typed**: [`Error::Tls`] with a [`TlsErrorKind`]
//!   ([`Error::is_tls_error`], [`Error::tls_kind`]): an untrusted certificate, a name
//!   mismatch, an expired certificate, a server that does not speak TLS (memcached without
//!   `-Z`, found at once), a server that refuses the client (no client certificate, or one
//!   it does not trust; in TLS 1.3 found at the first read, still on connecting). As any
//!   failed connect, they fail the calls waiting for the connection without sending them,
//!   and put the server in backoff (or count toward a cluster's dead-server rules): no
//!   half-open connection, no retry storm. A plain client against a TLS server fails at
//!   once too: the server resets the connection at the protocol probe, and the error says
//!   so.
//! - **Pipelining is the same**: many tasks share one TLS connection per server, and a
//!   caller alone on the connection still writes its request and reads its reply itself.
//!   Both sides share the rustls session under a lock taken once per write and once per
//!   read; records the socket could not take at once are sent by the connection's driver.
//!   Records end at request boundaries: memcached (1.6.18 at least) leaves requests that
//!   share a TLS record with the end of a large value unanswered until more bytes come.
//!   BENCHMARKS.md measures TLS beside plain TCP.
//!
//! # Pipelining
//!
//! All clones of a `Client` share one connection per server, each served by a driver
//! task. Each command is
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
//! Sharing is as safe as one connection per caller. The contract:
//!
//! - **Ordering.** Commands are written in the order their futures hand them to the
//!   connection (the first poll of the `.await`), and memcached answers the commands of one
//!   connection in order. Two commands awaited one after the other by one task are therefore
//!   carried out in that order; commands from different tasks in flight at the same time
//!   have no order between them.
//! - **Inattention.** A caller reads the socket for itself only while its future is being
//!   polled and its request is the only one outstanding; once others wait, the driver
//!   reads, and keeps that caller's reply for it. A future polled once and then kept alive
//!   unpolled (a slow `buffered(n)` consumer, a `select!` loop) delays nobody.
//! - **Cancellation.** Dropping a command's future, or its timing out, never affects another
//!   caller: if the request was already written it is still carried out, its response is
//!   read and discarded, and the stream stays in step; if it was not written yet it is left
//!   out (a noreply request is written all the same). A caller never receives a response
//!   meant for another one. A dropped or timed-out *write* may or may not have been applied.
//! - **Desync.** Each reply is checked to be its request's before anyone gets it: over the
//!   meta protocol every request carries an opaque token (`O` and four hex digits, counting
//!   the connection's requests) that its reply must echo; classic retrieval replies must
//!   name the keys their request asked for. A reply that fails the check closes the
//!   connection, and the requests written to it fail with [`Error::UnknownResponse`].
//! - **Failure.** A request fails with a connection's error only if it was written to that
//!   connection; one queued but not yet written goes out on the next one.
//! - **Backpressure.** While 4 MiB wait to be written (the server is not reading), callers
//!   wait for room, each within its deadline, and are woken when the queue drains.
//! - **Values** are [`bytes::Bytes`] sliced out of the connection's read buffer: reading a
//!   value does not copy it.
//!
//! # Errors
//!
//! One error type, [`Error`], with predicates ([`Error::is_timeout`],
//! [`Error::is_connection_error`], [`Error::is_server_down`], [`Error::is_server_error`],
//! [`Error::is_illegal_input`], [`Error::is_auth_error`], [`Error::is_tls_error`]).
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
//! | (none: calls to a server in backoff, or dead) | [`Error::ServerDown`] |
//! | (none: a refused login) | [`Error::Auth`] |
//! | (none: a failed TLS connection, feature `tls`) | [`Error::Tls`] |
//!
//! [`Error::ValueTooLarge`] (a value over the client's limit) fails its call alone; the
//! connection stays. With several servers an error from one of them is wrapped in
//! [`Error::AtServer`], naming it; the predicates look inside.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
mod client;
mod cluster;
pub mod command;
mod config;
mod connection;
mod credentials;
mod error;
mod key;
mod metrics;
mod protocol;
mod ring;
#[cfg(feature = "tls")]
mod tls;
mod url;
mod value;

/// The sans-IO protocol module, for the micro-benchmarks only (feature `bench-internals`).
/// Not part of the API: it may change in any release.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod __bench {
    pub use crate::protocol::{decode, request, response};
}

pub use address::{ServerAddr, DEFAULT_PORT};
pub use bytes::Bytes;
pub use client::Client;
pub use cluster::{PerServer, ServerInfo};
pub use command::Partial;
pub use config::{
    ClientBuilder, Distribution, Protocol, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DEAD_TIMEOUT, DEFAULT_MAX_VALUE_SIZE, DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_TIMEOUT, DEFAULT_TIMEOUT, MAX_VALUE_SIZE_LIMIT,
};
pub use connection::ServerState;
pub use error::{Error, IllegalInput, KeyRule, Result, TimeoutKind, TlsErrorKind};
pub use key::MAX_KEY_LEN;
pub use value::{CasOutcome, CasToken, Lease, Stats, Value};

/// The rustls this crate is built with (feature `tls`), for
/// [`TlsConfig::from_rustls`]: build your `rustls::ClientConfig` with this version.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use rustls;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::TlsConfig;
