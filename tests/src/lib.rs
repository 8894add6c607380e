//! Test-server support for the integration tests of the memcache workspace.
//!
//! Every integration test talks to a real `memcached` that it starts itself:
//!
//! - [`Memcached`] runs a fresh `memcached` process on a loopback ephemeral port (or a unix
//!   socket), and can pause, resume, kill and restart it on the same port.
//! - [`raw`] holds small blocking helpers that speak the text protocol over a std socket, to
//!   look at server state independently of the client under test.
//! - [`FaultProxy`] is a TCP proxy that sits between a client and a server and injects faults
//!   (delay, cut mid-response, reset, garble) that a test can switch at runtime.
//! - [`Nutcracker`] runs twemproxy in front of memcached servers: a proxy without the meta
//!   protocol.
//! - [`ScriptedServer`] is a fake server that answers as a test's script says, for the faults
//!   a real memcached will not produce (replies for the wrong request, endless replies, a
//!   server that accepts and hangs up).
//! - [`Python`] runs scripts in a Python interpreter with pymemcache, to check what a Python
//!   service reads and writes (it fails the test, saying how to install pymemcache, when
//!   there is none).
//! - [`TestCa`] makes certificates at run time (servers valid, expired or for another name;
//!   clients), for [`MemcachedBuilder::tls`] servers.
//! - [`LogCapture`] keeps the `tracing` events of the code under test, to count log lines.
//! - [`eventually`] waits for a condition (with a deadline) instead of sleeping.
//!
//! Everything here is blocking and uses std threads only, so it works the same from plain
//! `#[test]`s and from any async runtime. Helpers panic with a clear message on failure: they
//! are test fixtures, not library code.
//!
//! ```no_run
//! use memcache_tests::{raw, Memcached};
//!
//! let server = Memcached::start();
//! raw::raw_set(&server.addr(), "greeting", 7, b"hello");
//! assert_eq!(raw::raw_get(&server.addr(), "greeting"), Some((7, b"hello".to_vec())));
//! ```
//!
//! If the `memcached` binary is missing, [`Memcached::start`] panics and says how to install it
//! (`apt-get install memcached`), so a test can never pass without a real server.

mod certs;
mod fault_proxy;
mod logs;
mod memcached;
mod nutcracker;
mod python;
pub mod raw;
mod recorder;
mod scratch;
mod scripted;
mod wait;

pub use certs::{Issued, TestCa, LOOPBACK_NAMES};
pub use fault_proxy::{FaultMode, FaultProxy};
pub use logs::{LogCapture, LogLine, SpanLine};
pub use memcached::{Memcached, MemcachedBuilder};
pub use nutcracker::Nutcracker;
pub use python::Python;
pub use raw::{raw_command, raw_command_timeout, raw_delete, raw_get, raw_set, raw_stats, raw_ttl};
pub use recorder::TestRecorder;
pub use scripted::{Answer, Request, ScriptedServer};
pub use wait::eventually;
