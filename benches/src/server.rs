//! The memcached processes the benchmark talks to: each started on a free loopback port,
//! killed on drop. One serves W1-W6; W7 and W8 start three more.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::BenchResult;

/// How long [`Memcached::start`] waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `memcached -t 1 -U 0` process on `127.0.0.1`, killed (and reaped) when dropped, also
/// when the benchmark panics.
pub struct Memcached {
    child: Child,
    addr: SocketAddr,
    /// A second listener serving TLS, when started with [`Memcached::start_with_tls`].
    tls_addr: Option<SocketAddr>,
}

impl Memcached {
    /// Starts memcached with one worker thread on a free loopback port and waits until it
    /// accepts connections.
    ///
    /// # Errors
    /// When the binary is missing (the message says how to install it), when it exits at
    /// once, or when it does not accept connections within 10 s.
    pub fn start() -> BenchResult<Self> {
        Self::start_with_tls(None)
    }

    /// As [`start`](Self::start), and with `tls` (the certificate chain's and key's PEM
    /// files) a second listener on another free port that serves TLS only (`-Z`; the first
    /// stays plain: `-l notls:..`), so that TCP and TLS rows talk to one process.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_tls(tls: Option<(&Path, &Path)>) -> BenchResult<Self> {
        // Ask the kernel for a free port, then hand it to memcached. Another process could
        // take it in between; on loopback, for a benchmark, that race is acceptable and
        // reported clearly if it happens.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new("memcached");
        command.args(["-t", "1", "-U", "0", "-u", "root"]);
        let tls_port = match tls {
            None => {
                command.args(["-l", "127.0.0.1", "-p", &port.to_string()]);
                None
            }
            Some((chain, key)) => {
                let tls_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                let options = format!(
                    "ssl_chain_cert={},ssl_key={}",
                    chain.display(),
                    key.display()
                );
                let listen = format!("notls:127.0.0.1:{port},127.0.0.1:{tls_port}");
                command.args(["-Z", "-o", &options, "-l", &listen]);
                Some(tls_port)
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot run memcached ({error}): install it with `apt-get install memcached`"
                )
            })?;
        let mut server = Memcached {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls_addr: tls_port.map(|port| SocketAddr::from(([127, 0, 0, 1], port))),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> BenchResult<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("memcached exited at start ({status})").into());
            }
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(
                    format!("memcached did not listen on {} within 10 s", self.addr).into(),
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of its TLS listener, if it has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The server's version, from its `version` command (for example `1.6.18`).
    ///
    /// # Errors
    /// On I/O errors or an answer that is not `VERSION <text>`.
    pub fn version(&self) -> BenchResult<String> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"version\r\n")?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 128];
        while !answer.ends_with(b"\r\n") {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err("memcached closed the connection during `version`".into());
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        text.trim_end()
            .strip_prefix("VERSION ")
            .map(str::to_owned)
            .ok_or_else(|| format!("unexpected answer to `version`: {text:?}").into())
    }
}

/// The `get_hits` counter of the memcached at `addr` (hits of every retrieval so far, each
/// key of a multi-key `get` counted): W7 and W8 check with it that each client's reads
/// reached every server.
///
/// # Errors
/// On I/O errors or an answer without the counter.
pub fn get_hits(addr: SocketAddr) -> BenchResult<u64> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"stats\r\n")?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.ends_with(b"END\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err("memcached closed the connection during `stats`".into());
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .find_map(|line| line.strip_prefix("STAT get_hits "))
        .and_then(|hits| hits.trim().parse().ok())
        .ok_or_else(|| format!("no get_hits in the stats of {addr}").into())
}

impl Drop for Memcached {
    fn drop(&mut self) {
        // Killing an already dead process fails harmlessly; reap it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
