//! A real `memcached` process for one test.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::certs::{Issued, TestCa};
use crate::scratch::ScratchDir;

/// How long [`Memcached::start`] waits for a new server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Memcached::restart`] keeps retrying while the old port is still busy.
const RESTART_RETRY: Duration = Duration::from_secs(5);
/// Pause between two polls of the port file / socket.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// memcached's default `slab_chunk_max` (half its 1 MiB slab page), in bytes.
const DEFAULT_SLAB_CHUNK_MAX: u32 = 512 * 1024;

/// The message every test shows when the server binary is missing.
const NOT_FOUND: &str =
    "memcached not found: install it with `apt-get install memcached` (Debian/Ubuntu) or set MEMCACHED_BIN";

/// A fresh `memcached` process on loopback, owned by one test.
///
/// The server listens on `127.0.0.1` on an ephemeral port chosen by the kernel (memcached's
/// `-p -1`, which reports the port through the file named by `MEMCACHED_PORT_FILENAME`), or on
/// a unix socket in a private temporary directory. No fixed ports, so tests run in parallel.
/// UDP is off (`-U 0`).
///
/// All methods take `&self`, so a server can be shared (for example in an `Arc`) with the code
/// under test. Dropping the value kills the process (resuming it first if it is paused) and
/// removes its temporary directory.
///
/// Every method panics with a clear message when the process cannot be started or signalled:
/// this is a test fixture.
pub struct Memcached {
    binary: PathBuf,
    /// Options shared by every (re)start: UDP off, user, threads, memory, extra arguments.
    common_args: Vec<OsString>,
    /// `Some(path)` when the server listens on a unix socket instead of TCP.
    socket_path: Option<PathBuf>,
    /// Listening on `[::1]` instead of `127.0.0.1`.
    ipv6: bool,
    /// Serving TLS only.
    tls: bool,
    dir: ScratchDir,
    state: Mutex<State>,
}

/// The mutable part of a [`Memcached`].
struct State {
    child: Option<Child>,
    /// The TCP port; kept after a kill so that a restart reuses it.
    port: Option<u16>,
    paused: bool,
    /// Counts spawn attempts, to give each its own port and stderr files.
    attempts: u32,
}

/// Options for a [`Memcached`] server; create it with [`Memcached::builder`].
///
/// Unset options keep memcached's own defaults (4 threads, 64 MiB, 1 MiB items).
#[derive(Debug, Clone, Default)]
pub struct MemcachedBuilder {
    threads: Option<u32>,
    memory_mb: Option<u32>,
    max_item_size: Option<u32>,
    extra_args: Vec<OsString>,
    unix_socket: bool,
    ipv6: bool,
    /// `user:password` lines of an authfile (`-Y`).
    users: Vec<(String, String)>,
    /// The server's certificate and key (`-Z`).
    tls: Option<Issued>,
    /// The CA whose client certificates it requires (`ssl_verify_mode=2`).
    client_ca: Option<String>,
}

impl MemcachedBuilder {
    /// Listens on the IPv6 loopback `[::1]` instead of `127.0.0.1`; [`Memcached::addr`] is
    /// then `"[::1]:PORT"`.
    pub fn ipv6(mut self, enabled: bool) -> Self {
        self.ipv6 = enabled;
        self
    }

    /// Number of worker threads (`-t`).
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Memory for items in megabytes (`-m`).
    pub fn memory_mb(mut self, megabytes: u32) -> Self {
        self.memory_mb = Some(megabytes);
        self
    }

    /// Largest item the server stores, in bytes (`-I`). memcached requires at least 1024 and
    /// at most half of [`memory_mb`](Self::memory_mb). When `bytes` is not a multiple of
    /// memcached's default `slab_chunk_max` (512 KiB), `-o slab_chunk_max=` is set to the
    /// largest power of two dividing `bytes`, as memcached requires (unless an
    /// [`arg`](Self::arg) already sets it); powers of two are the natural choice.
    pub fn max_item_size(mut self, bytes: u32) -> Self {
        self.max_item_size = Some(bytes);
        self
    }

    /// Appends one raw command-line argument, for options without a setter (for example
    /// `-Y authfile`, `-Z`, `-o ssl_chain_cert=...`).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Appends several raw command-line arguments, in order.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Requires memcached's ASCII authentication (`-Y authfile`), with an authfile (in the
    /// server's temporary directory) that lets `user` log in with `password`. Call it again
    /// for more users.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((user.into(), password.into()));
        self
    }

    /// Serves TLS only (`-Z -o ssl_chain_cert=..,ssl_key=..`) with this certificate (see
    /// [`TestCa::server`]); copied into the server's directory, so it outlives its CA.
    /// [`Memcached::addr`] is the same; a plain client is refused. (The server's readiness
    /// is then a TCP connect, not a `version`.)
    pub fn tls(mut self, cert: &Issued) -> Self {
        self.tls = Some(cert.clone());
        self
    }

    /// With [`tls`](Self::tls): requires every client to show a certificate issued by
    /// `ca` (`ssl_ca_cert=..,ssl_verify_mode=2`).
    pub fn require_client_cert(mut self, ca: &TestCa) -> Self {
        self.client_ca = Some(ca.pem());
        self
    }

    /// Listens on a unix socket (`-s <path>`) in a private temporary directory instead of TCP.
    ///
    /// memcached turns TCP off when it listens on a unix socket: use
    /// [`Memcached::socket_path`] instead of [`Memcached::addr`].
    pub fn unix_socket(mut self, enabled: bool) -> Self {
        self.unix_socket = enabled;
        self
    }

    /// Starts the server and waits until it answers a `version` request.
    ///
    /// # Panics
    ///
    /// If the `memcached` binary is not found (the message says `apt-get install memcached`),
    /// or if the server does not start within 10 seconds (the message carries its stderr).
    pub fn start(self) -> Memcached {
        let binary = find_memcached();
        let dir = ScratchDir::new();

        let mut common_args: Vec<OsString> = ["-U", "0", "-u", "root"]
            .into_iter()
            .map(OsString::from)
            .collect();
        if let Some(threads) = self.threads {
            common_args.extend(["-t".into(), threads.to_string().into()]);
        }
        if let Some(megabytes) = self.memory_mb {
            common_args.extend(["-m".into(), megabytes.to_string().into()]);
        }
        if let Some(bytes) = self.max_item_size {
            common_args.extend(["-I".into(), bytes.to_string().into()]);
            let chunk_max_given = self
                .extra_args
                .iter()
                .any(|arg| arg.to_string_lossy().contains("slab_chunk_max"));
            if bytes % DEFAULT_SLAB_CHUNK_MAX != 0 && !chunk_max_given {
                // memcached requires -I to be a multiple of slab_chunk_max, which must divide
                // its 1 MiB slab page: use the largest power of two that divides -I.
                let chunk_max = (1 << bytes.trailing_zeros()).min(DEFAULT_SLAB_CHUNK_MAX);
                common_args.extend(["-o".into(), format!("slab_chunk_max={chunk_max}").into()]);
            }
        }
        if !self.users.is_empty() {
            let authfile = dir.path().join("authfile");
            let lines: String = self
                .users
                .iter()
                .map(|(user, password)| format!("{user}:{password}\n"))
                .collect();
            fs::write(&authfile, lines).expect("writing the memcached authfile");
            common_args.extend(["-Y".into(), authfile.into_os_string()]);
        }
        if let Some(cert) = &self.tls {
            let chain = dir.path().join("server-cert.pem");
            let key = dir.path().join("server-key.pem");
            fs::write(&chain, &cert.cert_pem).expect("writing the server certificate");
            fs::write(&key, &cert.key_pem).expect("writing the server key");
            let mut options = format!(
                "ssl_chain_cert={},ssl_key={}",
                chain.display(),
                key.display()
            );
            if let Some(ca) = &self.client_ca {
                let ca_file = dir.path().join("client-ca.pem");
                fs::write(&ca_file, ca).expect("writing the client CA");
                options.push_str(&format!(
                    ",ssl_ca_cert={},ssl_verify_mode=2",
                    ca_file.display()
                ));
            }
            common_args.extend(["-Z".into(), "-o".into(), options.into()]);
        }
        common_args.extend(self.extra_args);

        let socket_path = self.unix_socket.then(|| dir.path().join("memcached.sock"));
        let server = Memcached {
            binary,
            common_args,
            socket_path,
            ipv6: self.ipv6,
            tls: self.tls.is_some(),
            dir,
            state: Mutex::new(State {
                child: None,
                port: None,
                paused: false,
                attempts: 0,
            }),
        };
        {
            let mut state = server.lock();
            match server.spawn_ready(&mut state, Instant::now() + START_TIMEOUT) {
                Ok(()) => {}
                Err(failure) => panic!("memcached did not start: {failure}"),
            }
        }
        server
    }
}

impl Memcached {
    /// Starts a server with memcached's defaults on `127.0.0.1` and an ephemeral port.
    ///
    /// # Panics
    ///
    /// As [`MemcachedBuilder::start`].
    pub fn start() -> Memcached {
        Self::builder().start()
    }

    /// Returns a builder for a server with non-default options.
    pub fn builder() -> MemcachedBuilder {
        MemcachedBuilder::default()
    }

    /// The TCP address, `"127.0.0.1:PORT"`. Stays the same across [`restart`](Self::restart).
    ///
    /// # Panics
    ///
    /// If the server listens on a unix socket (see [`socket_path`](Self::socket_path)).
    pub fn addr(&self) -> String {
        if self.ipv6 {
            format!("[::1]:{}", self.port())
        } else {
            format!("127.0.0.1:{}", self.port())
        }
    }

    /// The TCP port. Stays the same across [`restart`](Self::restart).
    ///
    /// # Panics
    ///
    /// If the server listens on a unix socket (see [`socket_path`](Self::socket_path)).
    pub fn port(&self) -> u16 {
        match self.lock().port {
            Some(port) => port,
            None => panic!(
                "this memcached listens on the unix socket {:?}, not TCP: use socket_path()",
                self.socket_path
            ),
        }
    }

    /// The unix socket path when started with [`MemcachedBuilder::unix_socket`], else `None`.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.socket_path.clone()
    }

    /// What the current process has written to its stderr so far: with the `-vv` argument
    /// (see [`MemcachedBuilder::arg`]), every command line it read, as `<fd command ..`.
    pub fn stderr(&self) -> String {
        let attempts = self.lock().attempts;
        read_lossy(&self.dir.path().join(format!("stderr-{attempts}")))
    }

    /// The process id, or `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.lock().child.as_ref().map(Child::id)
    }

    /// Stops the process with `SIGSTOP`. The kernel still accepts new connections into the
    /// listen backlog, but nothing is answered until [`resume`](Self::resume): requests time
    /// out. Returns once every thread of the process has stopped.
    ///
    /// # Panics
    ///
    /// If the server was killed, or the signal cannot be sent.
    pub fn pause(&self) {
        let mut state = self.lock();
        let pid = running_pid(&state, "pause");
        send_signal(pid, "STOP");
        state.paused = true;
        wait_until_stopped(pid);
    }

    /// Continues a process stopped by [`pause`](Self::pause) with `SIGCONT`.
    ///
    /// # Panics
    ///
    /// If the server was killed, or the signal cannot be sent.
    pub fn resume(&self) {
        let mut state = self.lock();
        let pid = running_pid(&state, "resume");
        send_signal(pid, "CONT");
        state.paused = false;
    }

    /// Kills the process with `SIGKILL` and reaps it. Open connections see a reset or end of
    /// stream; new connections are refused. Does nothing if it is already killed.
    pub fn kill(&self) {
        let mut state = self.lock();
        stop_child(&mut state);
    }

    /// Starts the server again on the same port (or unix socket), with the same options, and
    /// waits until it accepts connections. The new process has an empty cache. If the server is
    /// still running it is killed first.
    ///
    /// Retries for up to 5 seconds while the port is still busy.
    ///
    /// # Panics
    ///
    /// If the server cannot be started again within that time (the message carries its
    /// stderr).
    pub fn restart(&self) {
        let mut state = self.lock();
        stop_child(&mut state);
        let deadline = Instant::now() + RESTART_RETRY;
        loop {
            match self.spawn_ready(&mut state, deadline) {
                Ok(()) => return,
                Err(StartFailure::Exited(_)) if Instant::now() < deadline => {
                    // Most likely "Address already in use": try again shortly.
                    thread::sleep(Duration::from_millis(50));
                }
                Err(failure) => panic!("memcached did not restart: {failure}"),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test may poison the lock; the state itself stays consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns one process and waits until it answers, or fails before `deadline`.
    fn spawn_ready(&self, state: &mut State, deadline: Instant) -> Result<(), StartFailure> {
        state.attempts += 1;
        let port_file = self.dir.path().join(format!("port-{}", state.attempts));
        let stderr_file = self.dir.path().join(format!("stderr-{}", state.attempts));

        let mut command = Command::new(&self.binary);
        command.args(&self.common_args);
        match &self.socket_path {
            Some(path) => {
                command.arg("-s").arg(path);
            }
            None => {
                let port = state
                    .port
                    .map_or_else(|| "-1".to_owned(), |p| p.to_string());
                let host = if self.ipv6 { "[::1]" } else { "127.0.0.1" };
                command.args(["-l", host, "-p", &port]);
            }
        }
        let stderr = fs::File::create(&stderr_file)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_file.display()));
        command
            .env("MEMCACHED_PORT_FILENAME", &port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));

        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartFailure::Exited(format!(
                    "{} exited with {status}; stderr: {}",
                    self.binary.display(),
                    read_lossy(&stderr_file)
                )));
            }
            let ready = match &self.socket_path {
                Some(path) => path.exists() && unix_answers(path),
                None => match read_port(&port_file, self.ipv6) {
                    Some(port) if tcp_answers(port, self.ipv6, self.tls) => {
                        state.port = Some(port);
                        true
                    }
                    _ => false,
                },
            };
            if ready {
                state.child = Some(child);
                state.paused = false;
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure::TimedOut(format!(
                    "{} did not accept connections in time; stderr: {}",
                    self.binary.display(),
                    read_lossy(&stderr_file)
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let mut state = self.lock();
        stop_child(&mut state);
    }
}

impl std::fmt::Debug for Memcached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Memcached")
            .field("port", &state.port)
            .field("socket_path", &self.socket_path)
            .field("pid", &state.child.as_ref().map(Child::id))
            .field("paused", &state.paused)
            .finish()
    }
}

/// Why a spawn attempt failed.
enum StartFailure {
    /// The process exited before it was ready (for example: port in use, bad option).
    Exited(String),
    /// The process was still running but did not answer before the deadline.
    TimedOut(String),
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartFailure::Exited(message) | StartFailure::TimedOut(message) => f.write_str(message),
        }
    }
}

fn running_pid(state: &State, action: &str) -> u32 {
    match &state.child {
        Some(child) => child.id(),
        None => panic!("cannot {action} memcached: it was killed (call restart() first)"),
    }
}

/// Kills and reaps the child, resuming it first if it is paused.
fn stop_child(state: &mut State) {
    if let Some(mut child) = state.child.take() {
        if state.paused {
            send_signal(child.id(), "CONT");
            state.paused = false;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends a signal with the `kill` program (the workspace forbids `unsafe`, so no `libc::kill`).
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("cannot run `kill -s {signal} {pid}`: {e}"));
    assert!(
        status.success(),
        "`kill -s {signal} {pid}` failed: {status}"
    );
}

/// Waits until every thread of `pid` is stopped: `SIGSTOP` is delivered asynchronously, and a
/// worker thread on another core may still answer a request sent right after the signal.
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("/proc is mounted");
        let all_stopped = tasks.flatten().all(|task| {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesised command name: "T" = stopped.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "memcached {pid} did not stop");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Parses the `TCP INET: <port>` (or, for IPv6, `TCP INET6: <port>`) line memcached writes
/// (atomically, by rename) into the port file.
fn read_port(port_file: &Path, ipv6: bool) -> Option<u16> {
    let text = fs::read_to_string(port_file).ok()?;
    let prefix = if ipv6 { "TCP INET6: " } else { "TCP INET: " };
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|port| port.trim().parse().ok())
}

/// Whether the server answers `version` (a TLS server: accepts a connection).
fn tcp_answers(port: u16, ipv6: bool, tls: bool) -> bool {
    let addr = if ipv6 {
        SocketAddr::from((Ipv6Addr::LOCALHOST, port))
    } else {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) if tls => true,
        Ok(stream) => answers_version(stream),
        Err(_) => false,
    }
}

fn unix_answers(path: &Path) -> bool {
    match UnixStream::connect(path) {
        Ok(stream) => answers_version(stream),
        Err(_) => false,
    }
}

/// Sends `version` and checks for a `VERSION ...` line within one second (or, from a server
/// that requires a login, `CLIENT_ERROR unauthenticated`).
fn answers_version<S: Read + Write + SetReadTimeout>(mut stream: S) -> bool {
    if stream.set_timeout(Duration::from_secs(1)).is_err()
        || stream.write_all(b"version\r\n").is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let mut chunk = [0u8; 128];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return false,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
    }
    reply.starts_with(b"VERSION ") || reply == b"CLIENT_ERROR unauthenticated\r\n"
}

/// Read timeouts for both stream kinds.
trait SetReadTimeout {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()>;
}

impl SetReadTimeout for TcpStream {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

impl SetReadTimeout for UnixStream {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Finds the memcached binary: `$MEMCACHED_BIN` if set, else `memcached` on `PATH`.
fn find_memcached() -> PathBuf {
    resolve_binary(env::var_os("MEMCACHED_BIN"), env::var_os("PATH"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The lookup behind [`find_memcached`], with the environment passed in.
fn resolve_binary(
    override_bin: Option<OsString>,
    path: Option<OsString>,
) -> Result<PathBuf, String> {
    let search = |name: &std::ffi::OsStr| {
        env::split_paths(&path.clone().unwrap_or_default())
            .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    match override_bin.filter(|bin| !bin.is_empty()) {
        Some(bin) => {
            let as_path = PathBuf::from(&bin);
            if as_path.is_file() {
                return Ok(as_path);
            }
            if as_path.components().count() == 1 {
                if let Some(found) = search(&bin) {
                    return Ok(found);
                }
            }
            Err(format!(
                "{NOT_FOUND} (MEMCACHED_BIN={} does not exist)",
                as_path.display()
            ))
        }
        None => search("memcached".as_ref()).ok_or_else(|| NOT_FOUND.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_override_names_the_package() {
        let error = resolve_binary(Some("/nonexistent/memcached".into()), None).unwrap_err();
        assert!(error.contains("apt-get install memcached"), "{error}");
        assert!(
            error.contains("MEMCACHED_BIN=/nonexistent/memcached"),
            "{error}"
        );
    }

    #[test]
    fn missing_binary_names_the_package() {
        let error = resolve_binary(
            Some("no-such-memcached-binary".into()),
            Some("/nonexistent".into()),
        )
        .unwrap_err();
        assert!(error.starts_with(NOT_FOUND), "{error}");
    }

    #[test]
    fn override_by_path_and_by_name() {
        let here = env::current_exe().unwrap();
        assert_eq!(
            resolve_binary(Some(here.clone().into()), None).unwrap(),
            here
        );
        let dir = here.parent().unwrap().as_os_str().to_owned();
        let name = here.file_name().unwrap().to_owned();
        assert_eq!(resolve_binary(Some(name), Some(dir)).unwrap(), here);
    }

    #[test]
    fn port_file_line() {
        let dir = ScratchDir::new();
        let file = dir.path().join("port");
        assert_eq!(read_port(&file, false), None);
        fs::write(&file, "TCP INET: 40123\n").unwrap();
        assert_eq!(read_port(&file, false), Some(40123));
        fs::write(&file, "UDP INET: 1\nTCP INET: 2\n").unwrap();
        assert_eq!(read_port(&file, false), Some(2));
        fs::write(&file, "TCP INET: 2\nTCP INET6: 3\n").unwrap();
        assert_eq!(read_port(&file, true), Some(3));
    }
}
