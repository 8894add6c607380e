//! The raw-socket client: requests encoded once before the clock starts, written with plain
//! blocking `write`s on a `std::net::TcpStream`, and answers read by their known length. It
//! does no parsing and no allocation per request: the limit any client can approach.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::fixture::Fixture;
use crate::BenchResult;

/// A request and the exact bytes memcached answers to it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the workload measures this exchange as (for error messages).
    pub name: &'static str,
    /// The encoded request.
    pub request: Vec<u8>,
    /// The complete expected answer; empty for a noreply request.
    pub response: Vec<u8>,
}

/// The answer to a classic `get` hit: `VALUE <key> 0 <len>\r\n<data>\r\n` (without `END`).
fn value_block(key: &str, value: &[u8]) -> Vec<u8> {
    let mut block = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    block.extend_from_slice(value);
    block.extend_from_slice(b"\r\n");
    block
}

fn set_request(key: &str, value: &[u8], noreply: bool) -> Vec<u8> {
    let noreply = if noreply { " noreply" } else { "" };
    let mut request = format!("set {key} 0 0 {}{noreply}\r\n", value.len()).into_bytes();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n");
    request
}

impl Exchange {
    /// Classic `get <key>` of a hit.
    pub fn get(key: &str, value: &[u8]) -> Self {
        let mut response = value_block(key, value);
        response.extend_from_slice(b"END\r\n");
        Exchange {
            name: "get",
            request: format!("get {key}\r\n").into_bytes(),
            response,
        }
    }

    /// Meta `mg <key> v` of a hit: `VA <len>\r\n<data>\r\n`.
    pub fn meta_get(key: &str, value: &[u8]) -> Self {
        let mut response = format!("VA {}\r\n", value.len()).into_bytes();
        response.extend_from_slice(value);
        response.extend_from_slice(b"\r\n");
        Exchange {
            name: "mg",
            request: format!("mg {key} v\r\n").into_bytes(),
            response,
        }
    }

    /// Classic multi-key `get k1 .. kN` of the fixture's 100 keys, every key a hit.
    pub fn multi_get(fixture: &Fixture) -> Self {
        Self::multi_get_of(
            fixture
                .many_keys
                .iter()
                .map(String::as_str)
                .zip(fixture.many_values.iter().map(Vec::as_slice)),
        )
    }

    /// Classic multi-key `get k1 .. kN` of these keys, every key a hit with its value.
    pub fn multi_get_of<'a>(items: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut request = b"get".to_vec();
        let mut response = Vec::new();
        for (key, value) in items {
            request.push(b' ');
            request.extend_from_slice(key.as_bytes());
            response.extend_from_slice(&value_block(key, value));
        }
        request.extend_from_slice(b"\r\n");
        response.extend_from_slice(b"END\r\n");
        Exchange {
            name: "multi-get",
            request,
            response,
        }
    }

    /// Acknowledged classic `set`.
    pub fn set(key: &str, value: &[u8]) -> Self {
        Exchange {
            name: "set",
            request: set_request(key, value, false),
            response: b"STORED\r\n".to_vec(),
        }
    }

    /// Classic `set ... noreply`: no answer.
    pub fn set_noreply(key: &str, value: &[u8]) -> Self {
        Exchange {
            name: "set noreply",
            request: set_request(key, value, true),
            response: Vec::new(),
        }
    }
}

/// One connection of the raw client.
pub struct RawConnection {
    stream: TcpStream,
    /// Receive buffer, reused.
    buffer: Vec<u8>,
    /// Send buffer for batches and windows, reused.
    batch: Vec<u8>,
}

impl RawConnection {
    /// Connects with `TCP_NODELAY` and a 5 s read timeout (a wrong answer length then fails
    /// instead of hanging).
    ///
    /// # Errors
    /// On connection errors.
    pub fn connect(addr: SocketAddr) -> BenchResult<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(RawConnection {
            stream,
            buffer: vec![0; 256 * 1024],
            batch: Vec::new(),
        })
    }

    /// One request, then its whole answer; the answer is compared with the expected one
    /// when `verify` is set.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer when verifying.
    #[inline]
    pub fn exchange(&mut self, exchange: &Exchange, verify: bool) -> BenchResult<()> {
        self.send(exchange)?;
        self.receive(exchange, verify)
    }

    /// Writes the request of `exchange` (one `write_all`).
    ///
    /// # Errors
    /// On I/O errors.
    #[inline]
    pub fn send(&mut self, exchange: &Exchange) -> BenchResult<()> {
        Ok(self.stream.write_all(&exchange.request)?)
    }

    /// Reads the whole answer to `exchange`, sent before, by its known length; compares it
    /// with the expected one when `verify` is set.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer when verifying.
    #[inline]
    pub fn receive(&mut self, exchange: &Exchange, verify: bool) -> BenchResult<()> {
        let len = exchange.response.len();
        if self.buffer.len() < len {
            self.buffer.resize(len, 0);
        }
        self.stream.read_exact(&mut self.buffer[..len])?;
        if verify && self.buffer[..len] != exchange.response[..] {
            return Err(wrong_answer(exchange, &self.buffer[..len]));
        }
        Ok(())
    }

    /// Requests one at a time until the deadline (the first answer verified). Returns the
    /// number of exchanges.
    ///
    /// # Errors
    /// As [`exchange`](Self::exchange).
    pub fn one_in_flight(&mut self, exchange: &Exchange, deadline: Instant) -> BenchResult<u64> {
        self.exchange(exchange, true)?;
        let mut done = 1;
        while Instant::now() < deadline {
            self.exchange(exchange, false)?;
            done += 1;
        }
        Ok(done)
    }

    /// Keeps `window` requests outstanding on the connection until the deadline, topping the
    /// window up after every read, then drains. The first read is verified against the
    /// expected stream of answers. Returns the number of completed exchanges.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer in the verified read.
    pub fn pipelined(
        &mut self,
        exchange: &Exchange,
        window: u64,
        deadline: Instant,
    ) -> BenchResult<u64> {
        let mut state = self.open_window(exchange, window)?;
        while !state.is_drained() {
            self.advance(&mut state, exchange, deadline)?;
        }
        Ok(state.completed())
    }

    /// Writes `window` copies of the request at once: the start of a pipelined window.
    ///
    /// # Errors
    /// On I/O errors.
    pub fn open_window(&mut self, exchange: &Exchange, window: u64) -> BenchResult<Window> {
        self.batch.clear();
        for _ in 0..window {
            self.batch.extend_from_slice(&exchange.request);
        }
        self.stream.write_all(&self.batch)?;
        Ok(Window {
            sent: window,
            received: 0,
            completed: 0,
            verified: false,
        })
    }

    /// One read on an open window that has requests outstanding (it blocks until some
    /// answer bytes come); before the deadline, as many requests as answers completed are
    /// written to keep the window full. The first read is verified.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer in the verified read.
    pub fn advance(
        &mut self,
        state: &mut Window,
        exchange: &Exchange,
        deadline: Instant,
    ) -> BenchResult<()> {
        let request_len = exchange.request.len();
        let response_len = exchange.response.len() as u64;
        let n = self.stream.read(&mut self.buffer)?;
        if n == 0 {
            return Err("memcached closed the connection".into());
        }
        if !state.verified {
            verify_stream(exchange, state.received, &self.buffer[..n])?;
            state.verified = true;
        }
        state.received += n as u64;
        let now_completed = state.received / response_len;
        let fresh = now_completed - state.completed;
        state.completed = now_completed;
        if fresh > 0 && Instant::now() < deadline {
            self.stream
                .write_all(&self.batch[..fresh as usize * request_len])?;
            state.sent += fresh;
        }
        Ok(())
    }

    /// Writes noreply requests in batches of `batch` (one `write` per batch) until the
    /// deadline, then one acknowledged `check` exchange (verified) so that every request is
    /// counted only once the server has processed it. Returns the number of noreply requests.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer to `check`.
    pub fn noreply(
        &mut self,
        exchange: &Exchange,
        batch: u64,
        check: &Exchange,
        deadline: Instant,
    ) -> BenchResult<u64> {
        self.batch.clear();
        for _ in 0..batch {
            self.batch.extend_from_slice(&exchange.request);
        }
        let mut sent = 0;
        loop {
            self.stream.write_all(&self.batch)?;
            sent += batch;
            if Instant::now() >= deadline {
                break;
            }
        }
        self.exchange(check, true)?;
        Ok(sent)
    }
}

/// The state of a pipelined window on one connection: see [`RawConnection::open_window`].
#[derive(Debug)]
pub struct Window {
    sent: u64,
    received: u64,
    completed: u64,
    verified: bool,
}

impl Window {
    /// Whether every request written has been answered.
    pub fn is_drained(&self) -> bool {
        self.completed == self.sent
    }

    /// The requests answered so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }
}

/// Checks `data`, found at `offset` in a stream of repeated answers, against the answer.
fn verify_stream(exchange: &Exchange, offset: u64, data: &[u8]) -> BenchResult<()> {
    let expected = &exchange.response;
    let start = (offset % expected.len() as u64) as usize;
    let mut matches = true;
    for (i, byte) in data.iter().enumerate() {
        if *byte != expected[(start + i) % expected.len()] {
            matches = false;
            break;
        }
    }
    if matches {
        Ok(())
    } else {
        Err(wrong_answer(exchange, data))
    }
}

fn wrong_answer(exchange: &Exchange, got: &[u8]) -> crate::BenchError {
    let shown = &got[..got.len().min(60)];
    format!(
        "raw {}: unexpected answer (starts {:?})",
        exchange.name,
        String::from_utf8_lossy(shown)
    )
    .into()
}

/// The raw client on a tokio `TcpStream`: the same pre-encoded requests and known-length
/// reads, through the runtime's reactor. The floor of any tokio client, where the
/// `std` one above is the floor of any client.
pub struct RawTokioConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl RawTokioConnection {
    /// Connects with `TCP_NODELAY`; call it inside the runtime that will drive it.
    ///
    /// # Errors
    /// On connection errors.
    pub async fn connect(addr: SocketAddr) -> BenchResult<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawTokioConnection {
            stream,
            buffer: Vec::new(),
        })
    }

    /// One request, then its whole answer, compared with the expected one when `verify` is
    /// set.
    ///
    /// # Errors
    /// On I/O errors, or a wrong answer when verifying.
    pub async fn exchange(&mut self, exchange: &Exchange, verify: bool) -> BenchResult<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&exchange.request).await?;
        let len = exchange.response.len();
        if self.buffer.len() < len {
            self.buffer.resize(len, 0);
        }
        self.stream.read_exact(&mut self.buffer[..len]).await?;
        if verify && self.buffer[..len] != exchange.response[..] {
            return Err(wrong_answer(exchange, &self.buffer[..len]));
        }
        Ok(())
    }

    /// Requests one at a time until the deadline (the first answer verified). Returns the
    /// number of exchanges.
    ///
    /// # Errors
    /// As [`exchange`](Self::exchange).
    pub async fn one_in_flight(
        &mut self,
        exchange: &Exchange,
        deadline: Instant,
    ) -> BenchResult<u64> {
        self.exchange(exchange, true).await?;
        let mut done = 1;
        while Instant::now() < deadline {
            self.exchange(exchange, false).await?;
            done += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::{verify_stream, Exchange};

    #[test]
    fn encodes_requests_and_expected_answers() {
        let get = Exchange::get("k", b"abc");
        assert_eq!(get.request, b"get k\r\n");
        assert_eq!(get.response, b"VALUE k 0 3\r\nabc\r\nEND\r\n");
        let mg = Exchange::meta_get("k", b"abc");
        assert_eq!(mg.request, b"mg k v\r\n");
        assert_eq!(mg.response, b"VA 3\r\nabc\r\n");
        let set = Exchange::set_noreply("k", b"abc");
        assert_eq!(set.request, b"set k 0 0 3 noreply\r\nabc\r\n");
        assert!(set.response.is_empty());
        assert_eq!(Exchange::set("k", b"abc").response, b"STORED\r\n");
    }

    #[test]
    fn verifies_a_stream_of_answers_at_any_offset() {
        let mg = Exchange::meta_get("k", b"abc");
        let stream: Vec<u8> = mg.response.repeat(3);
        for offset in 0..stream.len() {
            assert!(verify_stream(&mg, offset as u64, &stream[offset..]).is_ok());
        }
        let mut corrupted = stream.clone();
        corrupted[12] = b'x';
        assert!(verify_stream(&mg, 0, &corrupted).is_err());
    }
}
