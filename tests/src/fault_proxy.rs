//! A fault-injecting TCP proxy for failure tests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked threads look at the mode and the shutdown flag.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Bounds a write to a peer that stopped reading, so threads always end.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds the connection to the upstream server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// What [`FaultMode::Garble`] sends instead of each chunk of server data.
const GARBAGE: &[u8] = b"XYZZY garbage\r\n";

/// What a [`FaultProxy`] does to the traffic. Change it at any time with
/// [`FaultProxy::set_mode`]; it applies to new and existing connections within about 10 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultMode {
    /// Forwards every byte unchanged, in both directions.
    #[default]
    PassThrough,
    /// Waits this long before forwarding each chunk read, in both directions.
    Delay(Duration),
    /// Forwards this many bytes of server-to-client data per connection (counted from when the
    /// mode was set, or from when the connection opened if later), then closes the connection:
    /// the client sees end of stream in the middle of a response.
    CutAfter(usize),
    /// Closes new and existing client connections at once with a TCP reset (`SO_LINGER` 0):
    /// the client sees "connection reset".
    Reset,
    /// Replaces each chunk of server-to-client data with the line `XYZZY garbage\r\n`, which
    /// is not a valid memcached reply. Client-to-server data passes unchanged.
    Garble,
}

/// A TCP proxy on `127.0.0.1` (ephemeral port) in front of one upstream server, that injects
/// the faults of [`FaultMode`].
///
/// It runs on std threads: one accepting, two per proxied connection. Dropping it stops them
/// all within a bounded time (about 10 ms, plus any delay in progress) and closes every
/// connection.
///
/// ```no_run
/// use memcache_tests::{FaultMode, FaultProxy, Memcached};
///
/// let server = Memcached::start();
/// let proxy = FaultProxy::start(&server.addr());
/// // point the client under test at proxy.addr() ...
/// proxy.set_mode(FaultMode::CutAfter(10));
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

/// State shared by the proxy handle and its threads.
struct Shared {
    upstream: SocketAddr,
    /// The mode and a generation number bumped by each `set_mode`.
    mode: Mutex<(FaultMode, u64)>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    active: AtomicUsize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn mode(&self) -> (FaultMode, u64) {
        *lock(&self.mode)
    }

    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

impl FaultProxy {
    /// Starts a proxy in [`FaultMode::PassThrough`] in front of `upstream` (`"host:port"`).
    ///
    /// # Panics
    ///
    /// If `upstream` does not resolve or the listening socket cannot be bound.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream_addr = upstream
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("FaultProxy: cannot resolve upstream {upstream:?}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("FaultProxy: cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("FaultProxy: cannot set the listener non-blocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("FaultProxy: no local address: {e}"));
        let shared = Arc::new(Shared {
            upstream: upstream_addr,
            mode: Mutex::new((FaultMode::PassThrough, 0)),
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .unwrap_or_else(|e| panic!("FaultProxy: cannot spawn a thread: {e}"));
        FaultProxy {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// The address clients connect to, `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what the proxy does, for new and existing connections.
    pub fn set_mode(&self, mode: FaultMode) {
        let mut current = lock(&self.shared.mode);
        *current = (mode, current.1 + 1);
    }

    /// The current mode.
    pub fn mode(&self) -> FaultMode {
        self.shared.mode().0
    }

    /// How many client connections the proxy has accepted since it started, including those
    /// it reset or cut.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many client connections are being proxied right now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for handle in workers {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("mode", &self.mode())
            .field("connections", &self.connections())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test may poison a lock; the data stays consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.is_shutdown() {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                // WouldBlock (nothing pending) or a transient error.
                thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if shared.mode().0 == FaultMode::Reset {
            reset(&client);
            continue;
        }
        let worker_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || proxy_connection(client, worker_shared));
        if let Ok(handle) = spawned {
            let mut workers = lock(&shared.workers);
            workers.retain(|worker| !worker.is_finished());
            workers.push(handle);
        }
    }
}

/// Closes `stream` with a TCP reset instead of an orderly end of stream.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    // The reset is sent when the last handle to the socket is closed.
}

/// Which way a pump moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ClientToServer,
    ServerToClient,
}

/// Everything one pump thread needs.
struct Pump {
    from: TcpStream,
    to: TcpStream,
    /// The client socket, to reset it.
    client: TcpStream,
    direction: Direction,
    closed: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

fn proxy_connection(client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT) else {
        return; // dropping `client` closes it: the client sees the upstream as down
    };
    shared.active.fetch_add(1, Ordering::SeqCst);
    let closed = Arc::new(AtomicBool::new(false));
    let pumps = (|| -> io::Result<(Pump, Pump)> {
        for stream in [&client, &server] {
            stream.set_nonblocking(false)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(POLL_INTERVAL))?;
            stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        }
        let up = Pump {
            from: client.try_clone()?,
            to: server.try_clone()?,
            client: client.try_clone()?,
            direction: Direction::ClientToServer,
            closed: Arc::clone(&closed),
            shared: Arc::clone(&shared),
        };
        let down = Pump {
            from: server.try_clone()?,
            to: client.try_clone()?,
            client: client.try_clone()?,
            direction: Direction::ServerToClient,
            closed: Arc::clone(&closed),
            shared: Arc::clone(&shared),
        };
        Ok((up, down))
    })();
    if let Ok((up, down)) = pumps {
        drop((client, server));
        match thread::Builder::new()
            .name("fault-proxy-up".into())
            .spawn(move || up.run())
        {
            Ok(up_thread) => {
                down.run();
                let _ = up_thread.join();
            }
            Err(_) => down.closed.store(true, Ordering::SeqCst),
        }
    }
    shared.active.fetch_sub(1, Ordering::SeqCst);
}

/// How a pump ended.
enum End {
    /// End of stream, an error, a cut, or shutdown: close both sides in order.
    Close,
    /// Reset mode: abort the client connection.
    Reset,
    /// The other pump ended the connection.
    Other,
}

impl Pump {
    fn run(self) {
        match self.forward() {
            End::Close => {
                let _ = self.client.shutdown(Shutdown::Both);
                let _ = self.from.shutdown(Shutdown::Both);
                let _ = self.to.shutdown(Shutdown::Both);
            }
            End::Reset => reset(&self.client),
            End::Other => {}
        }
        self.closed.store(true, Ordering::SeqCst);
    }

    fn forward(&self) -> End {
        let mut buf = vec![0u8; 16 * 1024];
        let mut generation = u64::MAX;
        let mut forwarded = 0usize;
        let mut from = &self.from;
        let mut to = &self.to;
        loop {
            if self.shared.is_shutdown() {
                return End::Close;
            }
            if self.closed.load(Ordering::SeqCst) {
                return End::Other;
            }
            if self.shared.mode().0 == FaultMode::Reset {
                return End::Reset;
            }
            let n = match from.read(&mut buf) {
                Ok(0) => return End::Close,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => return End::Close,
            };
            // The mode as of now, after the data arrived.
            let (mode, mode_generation) = self.shared.mode();
            if mode_generation != generation {
                generation = mode_generation;
                forwarded = 0;
            }
            let data = &buf[..n];
            let downstream = self.direction == Direction::ServerToClient;
            let written = match mode {
                FaultMode::PassThrough => to.write_all(data),
                FaultMode::Delay(delay) => {
                    if !self.sleep(delay) {
                        return End::Close;
                    }
                    to.write_all(data)
                }
                FaultMode::CutAfter(limit) if downstream => {
                    let allowed = limit.saturating_sub(forwarded).min(n);
                    forwarded += allowed;
                    let result = to.write_all(&data[..allowed]);
                    if result.is_err() || forwarded >= limit {
                        return End::Close;
                    }
                    result
                }
                FaultMode::Garble if downstream => to.write_all(GARBAGE),
                FaultMode::Reset => return End::Reset,
                FaultMode::CutAfter(_) | FaultMode::Garble => to.write_all(data),
            };
            if written.is_err() {
                return End::Close;
            }
        }
    }

    /// Sleeps for `delay` in short steps; `false` if the proxy shuts down meanwhile.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            if self.shared.is_shutdown() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(Duration::from_millis(5)));
        }
    }
}
