//! Blocking text-protocol helpers over a plain std socket.
//!
//! They inspect and prepare server state independently of the client under test. Each call
//! opens its own connection. `addr` is either `"host:port"` or, when it starts with `/`, the
//! path of a unix socket (see [`Memcached::socket_path`](crate::Memcached::socket_path)).
//!
//! Every helper except [`raw_command_timeout`] panics on failure or on an unexpected reply,
//! with the reply in the message.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Timeout of the panicking helpers.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The meta no-op memcached answers with `MN\r\n`: sent after each request to find where the
/// replies end.
const NOOP: &[u8] = b"mn\r\n";
const NOOP_REPLY: &[u8] = b"MN\r\n";

/// Sends `request` (one or more complete commands, `\r\n` included) and returns every byte
/// the server answers to it, waiting at most 5 seconds.
///
/// # Panics
///
/// On a connection error, a timeout, or if the server closes the connection.
pub fn raw_command(addr: &str, request: &[u8]) -> Vec<u8> {
    raw_command_timeout(addr, request, DEFAULT_TIMEOUT).unwrap_or_else(|e| {
        panic!(
            "raw request {:?} to {addr} failed: {e}",
            String::from_utf8_lossy(request)
        )
    })
}

/// Sends `request` and returns every byte the server answers to it, failing after `timeout`.
///
/// The end of the replies is found by sending a meta no-op (`mn`) after the request and
/// reading up to its `MN` line, which is removed. A value whose data ends with `\r\nMN\r\n`
/// would confuse this; tests should not store such values through it.
///
/// # Errors
///
/// The connect or I/O error; [`io::ErrorKind::WouldBlock`] or [`io::ErrorKind::TimedOut`]
/// when the server does not answer in time (for example when it is paused);
/// [`io::ErrorKind::UnexpectedEof`] if the server closes the connection first.
pub fn raw_command_timeout(addr: &str, request: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut stream = RawStream::connect(addr, timeout)?;
    let mut message = Vec::with_capacity(request.len() + NOOP.len());
    message.extend_from_slice(request);
    message.extend_from_slice(NOOP);
    stream.set_timeouts(timeout)?;
    stream.write_all(&message)?;

    let mut reply = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if reply == NOOP_REPLY || reply.ends_with(b"\r\nMN\r\n") {
            reply.truncate(reply.len() - NOOP_REPLY.len());
            return Ok(reply);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time"));
        }
        stream.set_timeouts(remaining)?;
        let read = match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        match read {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {:?}",
                        String::from_utf8_lossy(&reply)
                    ),
                ))
            }
            n => reply.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads `key` with `get`: `Some((flags, data))` on a hit, `None` on a miss.
///
/// # Panics
///
/// On any failure or an unexpected reply.
pub fn raw_get(addr: &str, key: &str) -> Option<(u32, Vec<u8>)> {
    let reply = raw_command(addr, format!("get {key}\r\n").as_bytes());
    if reply == b"END\r\n" {
        return None;
    }
    let unexpected = || -> ! {
        panic!(
            "unexpected reply to `get {key}`: {:?}",
            String::from_utf8_lossy(&reply)
        )
    };
    let header_end = find(&reply, b"\r\n").unwrap_or_else(|| unexpected());
    let header = std::str::from_utf8(&reply[..header_end]).unwrap_or_else(|_| unexpected());
    let fields: Vec<&str> = header.split(' ').collect();
    let ["VALUE", got_key, flags, len] = fields[..] else {
        unexpected()
    };
    let (Ok(flags), Ok(len)) = (flags.parse::<u32>(), len.parse::<usize>()) else {
        unexpected()
    };
    let data_start = header_end + 2;
    if got_key != key || reply.get(data_start + len..) != Some(b"\r\nEND\r\n".as_slice()) {
        unexpected();
    }
    Some((flags, reply[data_start..data_start + len].to_vec()))
}

/// Stores `data` under `key` with `flags` and no expiry (`set`).
///
/// # Panics
///
/// On any failure, or if the reply is not `STORED`.
pub fn raw_set(addr: &str, key: &str, flags: u32, data: &[u8]) {
    let mut request = format!("set {key} {flags} 0 {}\r\n", data.len()).into_bytes();
    request.extend_from_slice(data);
    request.extend_from_slice(b"\r\n");
    let reply = raw_command(addr, &request);
    assert!(
        reply == b"STORED\r\n",
        "unexpected reply to `set {key}`: {:?}",
        String::from_utf8_lossy(&reply)
    );
}

/// Deletes `key`: `true` if it existed (`DELETED`), `false` if not (`NOT_FOUND`).
///
/// # Panics
///
/// On any failure or another reply.
pub fn raw_delete(addr: &str, key: &str) -> bool {
    let reply = raw_command(addr, format!("delete {key}\r\n").as_bytes());
    match reply.as_slice() {
        b"DELETED\r\n" => true,
        b"NOT_FOUND\r\n" => false,
        _ => panic!(
            "unexpected reply to `delete {key}`: {:?}",
            String::from_utf8_lossy(&reply)
        ),
    }
}

/// The remaining time to live memcached holds for `key` (`mg <key> t`, memcached 1.6):
/// `None` for a miss, `Some(-1)` for no expiry.
///
/// # Panics
///
/// On any failure or another reply.
pub fn raw_ttl(addr: &str, key: &str) -> Option<i64> {
    let reply = raw_command(addr, format!("mg {key} t\r\n").as_bytes());
    let text = String::from_utf8(reply).expect("mg reply is text");
    if text == "EN\r\n" {
        return None;
    }
    let ttl = text
        .strip_prefix("HD t")
        .and_then(|rest| rest.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("unexpected reply to `mg {key} t`: {text:?}"));
    Some(ttl.parse().expect("mg t is a number"))
}

/// The general statistics (`stats`) as a name -> value map, e.g. `"curr_connections"`,
/// `"cmd_get"`, `"curr_items"`.
///
/// # Panics
///
/// On any failure or a malformed reply.
pub fn raw_stats(addr: &str) -> HashMap<String, String> {
    let reply = raw_command(addr, b"stats\r\n");
    let text = String::from_utf8_lossy(&reply);
    let mut stats = HashMap::new();
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        if line == "END" {
            return stats;
        }
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("STAT"), Some(name), Some(value)) => {
                stats.insert(name.to_owned(), value.to_owned());
            }
            _ => panic!("unexpected line in `stats` reply: {line:?}"),
        }
    }
    panic!("`stats` reply without END: {text:?}")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A TCP or unix stream.
enum RawStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl RawStream {
    fn connect(addr: &str, timeout: Duration) -> io::Result<RawStream> {
        if addr.starts_with('/') {
            return UnixStream::connect(addr).map(RawStream::Unix);
        }
        let mut last_error = None;
        for socket_addr in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&socket_addr, timeout) {
                Ok(stream) => return Ok(RawStream::Tcp(stream)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no address for {addr}"),
            )
        }))
    }

    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match self {
            RawStream::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            RawStream::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
        }
    }
}

impl Read for RawStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            RawStream::Tcp(s) => s.read(buf),
            RawStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for RawStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            RawStream::Tcp(s) => s.write(buf),
            RawStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            RawStream::Tcp(s) => s.flush(),
            RawStream::Unix(s) => s.flush(),
        }
    }
}
