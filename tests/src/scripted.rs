//! A scripted fake server, for the faults a real memcached will not produce: replies for
//! the wrong key or request, endless or oversized replies, a server that accepts and hangs
//! up, one that stops reading.
//!
//! It speaks just enough of the text protocol to frame requests (a command line, and the
//! data block of the storage commands); what it answers is up to the test's script.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often blocked threads look at the shutdown flag.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// One request as the server framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command line, without its CRLF.
    pub line: Vec<u8>,
    /// The data block of a storage command (`set`, `ms`, ...), without its CRLF.
    pub data: Option<Vec<u8>>,
}

impl Request {
    /// The line's words.
    pub fn words(&self) -> Vec<&str> {
        std::str::from_utf8(&self.line)
            .unwrap_or("")
            .split(' ')
            .filter(|word| !word.is_empty())
            .collect()
    }

    /// The first word (`get`, `mg`, ...).
    pub fn command(&self) -> &str {
        let end = self
            .line
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(self.line.len());
        std::str::from_utf8(&self.line[..end]).unwrap_or("")
    }

    /// The meta request's opaque flag as sent (` O<token>`, to echo in a reply), or `""`.
    pub fn opaque(&self) -> String {
        self.words()
            .into_iter()
            .skip(2)
            .find(|word| word.starts_with('O'))
            .map(|word| format!(" {word}"))
            .unwrap_or_default()
    }
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Writes these bytes.
    Reply(Vec<u8>),
    /// Writes nothing.
    Nothing,
    /// Closes the connection (end of stream).
    Close,
    /// Stops reading this connection (it stays open until [`ScriptedServer::hang_up`] or
    /// the server is dropped): the client's writes fill the socket.
    StopReading,
}

impl Answer {
    /// [`Answer::Reply`] of a text.
    pub fn text(text: impl AsRef<[u8]>) -> Answer {
        Answer::Reply(text.as_ref().to_vec())
    }
}

/// The script: given the connection's number (0 for the first accepted) and a request.
type Script = dyn Fn(usize, &Request) -> Answer + Send + Sync;

/// A fake server on `127.0.0.1` (ephemeral port) that answers each request as its script
/// says. It runs on std threads; dropping it stops them and closes every connection.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    script: Box<Script>,
    /// Hang up on every new connection at once, without reading.
    refuse: AtomicBool,
    shutdown: AtomicBool,
    /// Bumped by every [`ScriptedServer::hang_up`].
    hangups: AtomicUsize,
    connections: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    open: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ScriptedServer {
    /// Starts a server that answers with `script`.
    ///
    /// # Panics
    /// If the listening socket cannot be bound.
    pub fn start(script: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("a local address");
        let shared = Arc::new(Shared {
            script: Box::new(script),
            refuse: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            hangups: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            open: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("scripted-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("a thread");
        ScriptedServer {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// A server that accepts every connection and closes it at once, without reading.
    pub fn hanging_up() -> Self {
        let server = Self::start(|_, _| Answer::Close);
        server.set_hang_up_on_accept(true);
        server
    }

    /// The address clients connect to, `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request read so far, in the order read.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// Whether new connections are closed as soon as they are accepted.
    pub fn set_hang_up_on_accept(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Closes every open connection at once.
    pub fn hang_up(&self) {
        self.shared.hangups.fetch_add(1, Ordering::SeqCst);
        for stream in lock(&self.shared.open).drain(..) {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.hang_up();
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
        for handle in std::mem::take(&mut *lock(&self.shared.workers)) {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(POLL_INTERVAL);
                continue;
            }
            Err(_) => continue,
        };
        let index = shared.connections.fetch_add(1, Ordering::SeqCst);
        if shared.refuse.load(Ordering::SeqCst) {
            drop(stream);
            continue;
        }
        let (Ok(()), Ok(kept)) = (stream.set_nonblocking(false), stream.try_clone()) else {
            continue;
        };
        lock(&shared.open).push(kept);
        let worker_shared = Arc::clone(&shared);
        if let Ok(handle) = thread::Builder::new()
            .name("scripted-conn".into())
            .spawn(move || serve(stream, index, &worker_shared))
        {
            let mut workers = lock(&shared.workers);
            workers.retain(|worker| !worker.is_finished());
            workers.push(handle);
        }
    }
}

/// Serves one connection until it closes, the script says so, or the server shuts down.
fn serve(mut stream: TcpStream, index: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(POLL_INTERVAL));
    let mut input = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(request) = frame(&mut input) {
            lock(&shared.requests).push(request.clone());
            match (shared.script)(index, &request) {
                Answer::Reply(bytes) => {
                    if stream.write_all(&bytes).is_err() {
                        return;
                    }
                }
                Answer::Nothing => {}
                Answer::Close => {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                Answer::StopReading => {
                    let hangups = shared.hangups.load(Ordering::SeqCst);
                    while !shared.shutdown.load(Ordering::SeqCst)
                        && shared.hangups.load(Ordering::SeqCst) == hangups
                    {
                        thread::sleep(POLL_INTERVAL);
                    }
                    return;
                }
            }
        }
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// The next complete request at the front of `input`, taken out of it.
fn frame(input: &mut Vec<u8>) -> Option<Request> {
    let end = input.windows(2).position(|w| w == b"\r\n")?;
    let line = input[..end].to_vec();
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let size = match words.first().copied() {
        Some(b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas") => words.get(4),
        Some(b"ms") => words.get(2),
        _ => None,
    }
    .and_then(|size| std::str::from_utf8(size).ok()?.parse::<usize>().ok());
    let data = match size {
        Some(size) => {
            let start = end + 2;
            if input.len() < start + size + 2 {
                return None;
            }
            Some(input[start..start + size].to_vec())
        }
        None => None,
    };
    let consumed = end + 2 + data.as_ref().map_or(0, |data| data.len() + 2);
    input.drain(..consumed);
    Some(Request { line, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_commands_and_data_blocks() {
        let mut input = b"get a b\r\nms k 2 T0 O0001\r\nhi\r\nset x 0 0 3\r\nab".to_vec();
        let first = frame(&mut input).unwrap();
        assert_eq!((first.command(), first.data.as_deref()), ("get", None));
        let second = frame(&mut input).unwrap();
        assert_eq!(second.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(second.opaque(), " O0001");
        assert_eq!(frame(&mut input), None, "the set's data is not all here");
        input.extend_from_slice(b"c\r\n");
        assert_eq!(
            frame(&mut input).unwrap().data.as_deref(),
            Some(&b"abc"[..])
        );
        assert!(input.is_empty());
    }
}
