//! Decoding responses: an incremental decoder over a `BytesMut` read buffer.
//!
//! `Ok(None)` means "not enough bytes yet" and is never an error; `Err` means the bytes cannot
//! be a response to the request at the head of the queue, and the connection must be closed.
//! Server-reported errors (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`) are ordinary responses
//! ([`Response::Failed`]): the stream stays in step.
//!
//! Values are sliced out of the read buffer (`split_to(..).freeze()`): no copy per value. A
//! value header that announces more than `max_value` bytes is refused before anything is
//! reserved for it.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::Error;

/// The longest response line accepted (a `VALUE` header is under 300 bytes; `STAT` lines are
/// short). A longer run without `\n` is not memcached talking.
const MAX_LINE: usize = 16 * 1024;

/// One value of a retrieval response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key as the server sent it (with the client's prefix).
    pub key: Bytes,
    /// The client flags stored with the value.
    pub flags: u32,
    /// The CAS unique, for `gets` / `gats`.
    pub cas: Option<u64>,
    /// The value.
    pub data: Bytes,
    /// Lease state from a meta reply: [`WON`], [`BUSY`], [`STALE`] bits (0 for classic).
    pub lease: u8,
}

/// `W`: this client won the right to recompute the value.
pub const WON: u8 = 1;
/// `Z`: another client already holds that right.
pub const BUSY: u8 = 2;
/// `X`: the value is stale (invalidated).
pub const STALE: u8 = 4;

/// A one-word status reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `STORED` / `HD` after `ms`.
    Stored,
    /// `NOT_STORED` / `NS`.
    NotStored,
    /// `EXISTS` / `EX`: the CAS token is stale.
    Exists,
    /// `NOT_FOUND` / `NF` / `EN`.
    NotFound,
    /// `DELETED` / `HD` after `md`.
    Deleted,
    /// `TOUCHED` / `HD` after `mg ... T`.
    Touched,
    /// `OK`.
    Ok,
}

/// A complete response.
#[derive(Debug, Clone)]
pub enum Response {
    /// Retrieval: the hits, in the order the server sent them (two or more).
    Values(Vec<Item>),
    /// Retrieval with at most one hit (every single-key read): no list to allocate.
    Value(Option<Item>),
    /// A status word.
    Status(Status),
    /// `incr` / `decr` result.
    Number(u64),
    /// `stats`: name/value pairs in the server's order.
    Stats(Vec<(String, String)>),
    /// `version`.
    Version(String),
    /// `ERROR`, `CLIENT_ERROR ..`, `SERVER_ERROR ..`.
    Failed(Error),
    /// Several responses to one batched request (`set_many`, `delete_many`).
    Many(Vec<Response>),
    /// The end of a run of quiet (noreply) meta requests: the error lines the server sent
    /// for them, if any. Quiet meta requests report failures; successes are silent.
    Quiet(Vec<Error>),
}

/// The shape of the reply a request expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `VALUE ...` blocks then `END`.
    Values,
    /// STORED / NOT_STORED / EXISTS / NOT_FOUND.
    Store,
    /// DELETED / NOT_FOUND.
    Delete,
    /// TOUCHED / NOT_FOUND.
    Touch,
    /// a number / NOT_FOUND.
    Arith,
    /// `STAT` lines then `END`.
    Stats,
    /// `VERSION x`.
    Version,
    /// `OK`.
    Ok,
    /// `mg`: `VA <size> <flags>` + data, `HD <flags>` (a hit without a value), or `EN`.
    MetaGet,
    /// `mg <key> T<ttl>` used as touch: `HD` = touched, `EN` = not found.
    MetaTouch,
    /// `ms`: HD / NS / EX / NF.
    MetaStore,
    /// `md`: HD / NF.
    MetaDelete,
    /// `ma ... v`: `VA <size>` + the number, or NF.
    MetaArith,
    /// The `mn` after a run of quiet requests: any failure lines, then `MN`.
    Quiet,
}

/// What the request at the head of the queue expects: `count` replies of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The shape of each reply.
    pub kind: Kind,
    /// How many replies (more than one for a batch such as `set_many`).
    pub count: u32,
}

impl Expect {
    /// One reply of `kind`.
    pub const fn one(kind: Kind) -> Self {
        Expect { kind, count: 1 }
    }
}

/// The incremental decoder of one connection. Holds partial results of the response being
/// read (values and stats collected so far) between reads.
#[derive(Debug)]
pub struct Decoder {
    max_value: usize,
    items: Vec<Item>,
    stats: Vec<(String, String)>,
    many: Vec<Response>,
    quiet: Vec<Error>,
}

fn unknown(what: &str, line: &[u8]) -> Error {
    let shown: String = String::from_utf8_lossy(line).chars().take(120).collect();
    Error::UnknownResponse(format!("{what}: {shown:?}"))
}

/// A strict decimal parser: digits only, no sign, no overflow.
pub fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    parse_u64(digits).and_then(|n| u32::try_from(n).ok())
}

/// The most hits a multi-get's list is pre-sized for, from the previous one.
const MAX_PRESIZE: usize = 1024;

impl Decoder {
    /// A decoder that refuses values larger than `max_value` bytes.
    pub fn new(max_value: usize) -> Self {
        Decoder {
            max_value,
            items: Vec::new(),
            stats: Vec::new(),
            many: Vec::new(),
            quiet: Vec::new(),
        }
    }

    /// Decodes the response to a request expecting `expect`, consuming its bytes from `buf`.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        expect: Expect,
    ) -> Result<Option<Response>, Error> {
        loop {
            let Some(one) = self.decode_one(buf, expect.kind)? else {
                return Ok(None);
            };
            if expect.count <= 1 {
                return Ok(Some(one));
            }
            self.many.push(one);
            if self.many.len() >= expect.count as usize {
                return Ok(Some(Response::Many(std::mem::take(&mut self.many))));
            }
        }
    }

    fn decode_one(&mut self, buf: &mut BytesMut, kind: Kind) -> Result<Option<Response>, Error> {
        if kind == Kind::MetaGet {
            if let Some((nl, size, flags)) = plain_value_header(buf) {
                let Some(data) = self.data(buf, nl, size)? else {
                    return Ok(None);
                };
                return Ok(Some(Response::Value(Some(Item {
                    key: Bytes::new(),
                    flags,
                    cas: None,
                    data,
                    lease: 0,
                }))));
            }
        }
        loop {
            let Some(nl) = memchr::memchr(b'\n', &buf[..buf.len().min(MAX_LINE)]) else {
                if buf.len() >= MAX_LINE {
                    return Err(unknown("line too long", &buf[..80]));
                }
                return Ok(None);
            };
            if nl == 0 || buf[nl - 1] != b'\r' {
                return Err(unknown("line not ended by CRLF", &buf[..nl]));
            }
            let line = &buf[..nl - 1];
            let consumed = nl + 1;

            if kind == Kind::Quiet {
                if line == b"MN" {
                    buf.advance(consumed);
                    return Ok(Some(Response::Quiet(std::mem::take(&mut self.quiet))));
                }
                match server_error(line) {
                    Some(error) => self.quiet.push(error),
                    None if is_meta_status(line) => {
                        tracing::debug!(reply = %String::from_utf8_lossy(line), "noreply outcome");
                    }
                    None => return Err(unknown("expected a meta status or MN", line)),
                }
                buf.advance(consumed);
                continue;
            }

            if let Some(failed) = server_error(line) {
                buf.advance(consumed);
                self.items.clear();
                self.stats.clear();
                return Ok(Some(Response::Failed(failed)));
            }

            let response = match kind {
                Kind::Values => {
                    if line == b"END" {
                        if self.items.len() <= 1 {
                            // keeps the list's room for the next response
                            Response::Value(self.items.pop())
                        } else {
                            // the next list starts with this one's size (up to a point):
                            // no regrowing
                            let room = Vec::with_capacity(self.items.len().min(MAX_PRESIZE));
                            Response::Values(std::mem::replace(&mut self.items, room))
                        }
                    } else if line.starts_with(b"VALUE ") {
                        if self.value(buf, nl)? {
                            continue;
                        }
                        return Ok(None);
                    } else {
                        return Err(unknown("expected VALUE or END", line));
                    }
                }
                Kind::Stats => {
                    if line == b"END" {
                        Response::Stats(std::mem::take(&mut self.stats))
                    } else if let Some(rest) = line
                        .strip_prefix(b"STAT ")
                        .or_else(|| line.strip_prefix(b"ITEM "))
                    {
                        let text = String::from_utf8_lossy(rest);
                        let (name, value) = text.split_once(' ').unwrap_or((&text, ""));
                        self.stats.push((name.to_owned(), value.to_owned()));
                        buf.advance(consumed);
                        continue;
                    } else if (line == b"RESET" || line == b"OK") && self.stats.is_empty() {
                        Response::Stats(Vec::new())
                    } else {
                        return Err(unknown("expected STAT or END", line));
                    }
                }
                Kind::Version => match line.strip_prefix(b"VERSION ") {
                    Some(v) => Response::Version(String::from_utf8_lossy(v).into_owned()),
                    None => return Err(unknown("expected VERSION", line)),
                },
                Kind::Arith => match parse_u64(line.trim_ascii_end()) {
                    Some(n) => Response::Number(n),
                    None if line == b"NOT_FOUND" => Response::Status(Status::NotFound),
                    None => return Err(unknown("expected a number or NOT_FOUND", line)),
                },
                Kind::MetaGet | Kind::MetaArith => {
                    if line == b"EN" || line == b"NF" {
                        let miss = if kind == Kind::MetaGet {
                            Response::Value(None)
                        } else {
                            Response::Status(Status::NotFound)
                        };
                        buf.advance(consumed);
                        return Ok(Some(miss));
                    }
                    if let Some(rest) = line.strip_prefix(b"HD") {
                        if kind == Kind::MetaGet && (rest.is_empty() || rest[0] == b' ') {
                            let (flags, cas, lease) = meta_flags(rest, line)?;
                            buf.advance(consumed);
                            let item = Item {
                                key: Bytes::new(),
                                flags,
                                cas,
                                data: Bytes::new(),
                                lease,
                            };
                            return Ok(Some(Response::Value(Some(item))));
                        }
                    }
                    let Some(rest) = line.strip_prefix(b"VA ") else {
                        return Err(unknown("expected VA, HD, EN or NF", line));
                    };
                    let (size, rest) = match rest.iter().position(|&b| b == b' ') {
                        Some(at) => (&rest[..at], &rest[at..]),
                        None => (rest, &b""[..]),
                    };
                    let size = parse_u64(size).ok_or_else(|| unknown("malformed VA line", line))?;
                    let (flags, cas, lease) = meta_flags(rest, line)?;
                    let Some(data) = self.data(buf, nl, size)? else {
                        return Ok(None);
                    };
                    return Ok(Some(if kind == Kind::MetaGet {
                        Response::Value(Some(Item {
                            key: Bytes::new(),
                            flags,
                            cas,
                            data,
                            lease,
                        }))
                    } else {
                        match parse_u64(data.trim_ascii_end()) {
                            Some(n) => Response::Number(n),
                            None => {
                                return Err(unknown(
                                    "ma returned a value that is not a number",
                                    &data,
                                ))
                            }
                        }
                    }));
                }

                Kind::MetaTouch | Kind::MetaStore | Kind::MetaDelete => {
                    // Meta status lines may carry returned flags after the code.
                    let code = &line[..line.len().min(2)];
                    if line.len() > 2 && line[2] != b' ' {
                        return Err(unknown("unexpected meta status", line));
                    }
                    let status = match (kind, code) {
                        (Kind::MetaTouch, b"HD") => Status::Touched,
                        (Kind::MetaTouch, b"EN") => Status::NotFound,
                        (Kind::MetaStore, b"HD") => Status::Stored,
                        (Kind::MetaStore, b"NS") => Status::NotStored,
                        (Kind::MetaStore, b"EX") => Status::Exists,
                        (Kind::MetaStore | Kind::MetaDelete, b"NF") => Status::NotFound,
                        (Kind::MetaDelete, b"HD") => Status::Deleted,
                        _ => return Err(unknown("unexpected meta status", line)),
                    };
                    Response::Status(status)
                }
                Kind::Quiet => unreachable!("handled above"),
                Kind::Store | Kind::Delete | Kind::Touch | Kind::Ok => {
                    let status = match (kind, line) {
                        (Kind::Store, b"STORED") => Status::Stored,
                        (Kind::Store, b"NOT_STORED") => Status::NotStored,
                        (Kind::Store, b"EXISTS") => Status::Exists,
                        (Kind::Store | Kind::Delete | Kind::Touch, b"NOT_FOUND") => {
                            Status::NotFound
                        }
                        (Kind::Delete, b"DELETED") => Status::Deleted,
                        (Kind::Touch, b"TOUCHED") => Status::Touched,
                        (Kind::Ok, b"OK") => Status::Ok,
                        _ => return Err(unknown("unexpected status", line)),
                    };
                    Response::Status(status)
                }
            };
            buf.advance(consumed);
            return Ok(Some(response));
        }
    }

    /// Parses the `VALUE` block whose header ends at `nl`. `Ok(true)`: the item was consumed
    /// and collected; `Ok(false)`: its data has not all arrived (room is reserved for it).
    fn value(&mut self, buf: &mut BytesMut, nl: usize) -> Result<bool, Error> {
        let line = &buf[6..nl - 1];
        let Some((key_len, flags, size, cas)) = value_header(line) else {
            return Err(unknown("malformed VALUE line", line));
        };
        let Some(total) = self.block_len(buf, nl, size)? else {
            return Ok(false);
        };
        let mut data = buf.split_to(total).freeze();
        let key = data.slice(6..6 + key_len);
        // the block becomes the data: one reference count less to take and drop
        data.advance(nl + 1);
        data.truncate(size as usize);
        self.items.push(Item {
            key,
            flags,
            cas,
            data,
            lease: 0,
        });
        Ok(true)
    }

    /// The `size`-byte data block after a header line ending at `nl` (a meta reply's: no
    /// key to keep), once all of it is in `buf`; the header and the CRLF are dropped.
    fn data(&mut self, buf: &mut BytesMut, nl: usize, size: u64) -> Result<Option<Bytes>, Error> {
        let Some(total) = self.block_len(buf, nl, size)? else {
            return Ok(None);
        };
        // trimmed as `Bytes`, whose `advance` is cheaper than the read buffer's
        let mut data = buf.split_to(total).freeze();
        data.advance(nl + 1);
        data.truncate(size as usize);
        Ok(Some(data))
    }

    /// The length of a header line ending at `nl`, a `size`-byte data block and its CRLF,
    /// once all of it is in `buf`. A size over the limit is refused before anything is
    /// reserved for it.
    fn block_len(&self, buf: &mut BytesMut, nl: usize, size: u64) -> Result<Option<usize>, Error> {
        if size > self.max_value as u64 {
            return Err(Error::ValueTooLarge {
                size,
                max: self.max_value,
            });
        }
        let size = size as usize;
        let total = nl + 1 + size + 2;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        if &buf[total - 2..total] != b"\r\n" {
            return Err(unknown(
                "value not followed by CRLF",
                &buf[total - 2..total],
            ));
        }
        Ok(Some(total))
    }
}

/// `HD`, `NS`, `EX`, `NF`, `EN`, optionally followed by returned flags.
fn is_meta_status(line: &[u8]) -> bool {
    matches!(
        &line[..line.len().min(2)],
        b"HD" | b"NS" | b"EX" | b"NF" | b"EN"
    ) && (line.len() == 2 || line[2] == b' ')
}

/// The client flags (`f`), CAS unique (`c`) and lease state (`W`, `Z`, `X`) among a meta
/// reply's returned flags; other returned flags are skipped.
fn meta_flags(tokens: &[u8], line: &[u8]) -> Result<(u32, Option<u64>, u8), Error> {
    let mut flags = 0;
    let mut cas = None;
    let mut lease = 0;
    for token in tokens.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        match token[0] {
            b'f' => {
                flags = parse_u32(&token[1..]).ok_or_else(|| unknown("malformed f flag", line))?
            }
            b'c' => {
                cas = Some(parse_u64(&token[1..]).ok_or_else(|| unknown("malformed c flag", line))?)
            }
            b'W' => lease |= WON,
            b'Z' => lease |= BUSY,
            b'X' => lease |= STALE,
            _ => {}
        }
    }
    Ok((flags, cas, lease))
}

/// The header of the reply to a plain `mg <key> v f`, `VA <size> f<flags>\r\n`, read in one
/// pass: the position of its `\n`, the size and the flags. `None` for anything else (other
/// lines, other flags, numbers too long to read without overflow checks, a header not all
/// here yet), which the general parser then handles.
fn plain_value_header(buf: &[u8]) -> Option<(usize, u64, u32)> {
    if !buf.starts_with(b"VA ") {
        return None;
    }
    /// Up to `max` digits (at least one) from `at`, unchecked: `max` keeps them in range.
    fn digits(buf: &[u8], at: usize, max: usize) -> Option<(u64, usize)> {
        let mut end = at;
        let mut value = 0u64;
        while let Some(&d @ b'0'..=b'9') = buf.get(end) {
            if end - at == max {
                return None;
            }
            value = value * 10 + u64::from(d - b'0');
            end += 1;
        }
        (end > at).then_some((value, end))
    }
    // 19 digits always fit in a u64, 9 in a u32; longer numbers take the general path.
    let (size, end) = digits(buf, 3, 19)?;
    if buf.get(end..end + 2)? != b" f" {
        return None;
    }
    let (flags, end) = digits(buf, end + 2, 9)?;
    if buf.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    Some((end + 1, size, u32::try_from(flags).ok()?))
}

/// `<key> <flags> <bytes> [<cas unique>]`, a `VALUE` line after `VALUE `, read in one pass:
/// the key's length, the flags, the size and the CAS unique. `None` when malformed: an
/// empty key, a missing or extra field, anything but single spaces between them, or a
/// number out of range (as [`parse_u64`] and [`parse_u32`] would refuse it).
fn value_header(line: &[u8]) -> Option<(usize, u32, u64, Option<u64>)> {
    // Keys are a few bytes long: a plain scan beats memchr's set-up.
    let key_len = line.iter().position(|&b| b == b' ')?;
    if key_len == 0 {
        return None;
    }
    let (flags, end) = number(line, key_len + 1)?;
    if line.get(end) != Some(&b' ') {
        return None;
    }
    let (size, end) = number(line, end + 1)?;
    let cas = match line.get(end) {
        None => None,
        Some(b' ') => match number(line, end + 1)? {
            (cas, end) if end == line.len() => Some(cas),
            _ => return None,
        },
        Some(_) => return None,
    };
    Some((key_len, u32::try_from(flags).ok()?, size, cas))
}

/// The decimal number (one to 20 digits, within `u64`) that starts at `at`, and where it
/// ends.
fn number(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut end = at;
    let mut value = 0u64;
    while let Some(&d @ b'0'..=b'9') = buf.get(end) {
        let digit = u64::from(d - b'0');
        // 19 digits always fit: only from the 20th on can the value overflow.
        value = if end - at < 19 {
            value * 10 + digit
        } else {
            value.checked_mul(10)?.checked_add(digit)?
        };
        end += 1;
    }
    (end > at && end - at <= 20).then_some((value, end))
}

/// `ERROR`, `CLIENT_ERROR <msg>`, `SERVER_ERROR <msg>` as errors.
fn server_error(line: &[u8]) -> Option<Error> {
    fn message(rest: &[u8]) -> String {
        String::from_utf8_lossy(rest.trim_ascii()).into_owned()
    }
    // Every line is checked: rule out the common ones (VALUE, VA, HD, STORED, ...) at once.
    if !matches!(line.first(), Some(b'E' | b'C' | b'S')) {
        return None;
    }
    if line == b"ERROR" {
        Some(Error::UnknownCommand)
    } else if let Some(rest) = line.strip_prefix(b"CLIENT_ERROR") {
        Some(Error::Client(message(rest)))
    } else {
        line.strip_prefix(b"SERVER_ERROR")
            .map(|rest| Error::Server(message(rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in two parts split at every byte boundary, and whole; every way
    /// must give the same responses.
    fn decode_all(input: &[u8], expects: &[Expect]) -> Result<Vec<String>, String> {
        let whole = run(&[input], expects);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            let parts = run(&[a, b], expects);
            assert_eq!(parts, whole, "split at {split}");
        }
        // byte by byte
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes, expects), whole, "byte by byte");
        whole
    }

    fn run(chunks: &[&[u8]], expects: &[Expect]) -> Result<Vec<String>, String> {
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut next = 0;
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while next < expects.len() {
                match decoder.decode(&mut buf, expects[next]) {
                    Ok(Some(r)) => {
                        out.push(format!("{r:?}"));
                        next += 1;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        if next < expects.len() {
            return Err(format!("incomplete after {} responses", out.len()));
        }
        if !buf.is_empty() {
            return Err(format!("{} bytes left over", buf.len()));
        }
        Ok(out)
    }

    const VALUES: Expect = Expect::one(Kind::Values);

    /// A small deterministic generator (xorshift64) for the randomized tests.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn values_at_every_split() {
        let got = decode_all(
            b"VALUE a 5 3\r\nabc\r\nVALUE bb 0 0\r\n\r\nEND\r\nEND\r\nVALUE c 1 2 77\r\n\r\n\r\nEND\r\n",
            &[VALUES, VALUES, VALUES],
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].contains("key: b\"a\", flags: 5, cas: None, data: b\"abc\""));
        assert!(got[0].contains("key: b\"bb\", flags: 0, cas: None, data: b\"\""));
        assert_eq!(got[1], "Value(None)");
        assert!(got[2].contains("flags: 1, cas: Some(77), data: b\"\\r\\n\""));
    }

    #[test]
    fn statuses_numbers_stats_version() {
        let got = decode_all(
            b"STORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\nTOUCHED\r\n42\r\nNOT_FOUND\r\n\
              STAT pid 12\r\nSTAT version 1.6.18\r\nEND\r\nVERSION 1.6.18\r\nOK\r\n",
            &[
                Expect::one(Kind::Store),
                Expect::one(Kind::Store),
                Expect::one(Kind::Store),
                Expect::one(Kind::Store),
                Expect::one(Kind::Delete),
                Expect::one(Kind::Touch),
                Expect::one(Kind::Arith),
                Expect::one(Kind::Arith),
                Expect::one(Kind::Stats),
                Expect::one(Kind::Version),
                Expect::one(Kind::Ok),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "Status(Stored)",
                "Status(NotStored)",
                "Status(Exists)",
                "Status(NotFound)",
                "Status(Deleted)",
                "Status(Touched)",
                "Number(42)",
                "Status(NotFound)",
                "Stats([(\"pid\", \"12\"), (\"version\", \"1.6.18\")])",
                "Version(\"1.6.18\")",
                "Status(Ok)",
            ]
        );
    }

    #[test]
    fn many_and_server_errors() {
        let got = decode_all(
            b"STORED\r\nSERVER_ERROR object too large for cache\r\nNOT_STORED\r\nERROR\r\n\
              CLIENT_ERROR cannot increment or decrement non-numeric value\r\n\
              VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n",
            &[
                Expect {
                    kind: Kind::Store,
                    count: 3,
                },
                Expect::one(Kind::Values),
                Expect::one(Kind::Arith),
                VALUES,
            ],
        )
        .unwrap();
        assert_eq!(
            got[0],
            "Many([Status(Stored), Failed(Server(\"object too large for cache\")), Status(NotStored)])"
        );
        assert_eq!(got[1], "Failed(UnknownCommand)");
        assert_eq!(
            got[2],
            "Failed(Client(\"cannot increment or decrement non-numeric value\"))"
        );
        assert_eq!(got[3], "Failed(Server(\"out of memory\"))");
    }

    #[test]
    fn meta_replies_at_every_split() {
        let one = Expect::one;
        let got = decode_all(
            b"VA 5 f3 c128013\r\nhello\r\nHD f3\r\nEN\r\nVA 0 t-1 f0\r\n\r\n\
              HD\r\nEN\r\nHD\r\nNS\r\nEX\r\nNF\r\nHD\r\nNF kk1\r\nVA 2\r\n15\r\nNF\r\n\
              NS knokey\r\nSERVER_ERROR object too large for cache\r\nMN\r\nMN\r\n",
            &[
                one(Kind::MetaGet),
                one(Kind::MetaGet),
                one(Kind::MetaGet),
                one(Kind::MetaGet),
                one(Kind::MetaTouch),
                one(Kind::MetaTouch),
                one(Kind::MetaStore),
                one(Kind::MetaStore),
                one(Kind::MetaStore),
                one(Kind::MetaStore),
                one(Kind::MetaDelete),
                one(Kind::MetaDelete),
                one(Kind::MetaArith),
                one(Kind::MetaArith),
                one(Kind::Quiet),
                one(Kind::Quiet),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "Value(Some(Item { key: b\"\", flags: 3, cas: Some(128013), data: b\"hello\", lease: 0 }))",
                "Value(Some(Item { key: b\"\", flags: 3, cas: None, data: b\"\", lease: 0 }))",
                "Value(None)",
                "Value(Some(Item { key: b\"\", flags: 0, cas: None, data: b\"\", lease: 0 }))",
                "Status(Touched)",
                "Status(NotFound)",
                "Status(Stored)",
                "Status(NotStored)",
                "Status(Exists)",
                "Status(NotFound)",
                "Status(Deleted)",
                "Status(NotFound)",
                "Number(15)",
                "Status(NotFound)",
                "Quiet([Server(\"object too large for cache\")])",
                "Quiet([])",
            ]
        );
    }

    /// The one-pass parser of `VA <size> f<flags>` agrees with the general one (forced by an
    /// extra space, which it leaves alone), at every split, on good and bad replies alike.
    #[test]
    fn plain_value_replies_match_the_general_parser() {
        let cases: [&[u8]; 9] = [
            b"VA 3 f7\r\nabc\r\n",
            b"VA 0 f0\r\n\r\n",
            b"VA 5 f123456789\r\nhello\r\n",
            b"VA 1 f4294967295\r\nx\r\n",
            b"VA 1 f4294967296\r\nx\r\n",
            b"VA 00000000000000000001 f1\r\nx\r\n",
            b"VA 3 f1\r\nabcX\r\n",
            b"VA 2000 f1\r\n",
            b"VA 3 f\r\nabc\r\n",
        ];
        for case in cases {
            let general = String::from_utf8_lossy(case).replacen(" f", "  f", 1);
            let expect = [Expect::one(Kind::MetaGet)];
            let fast = std::panic::catch_unwind(|| decode_all(case, &expect));
            let slow = std::panic::catch_unwind(|| decode_all(general.as_bytes(), &expect));
            match (fast, slow) {
                (Ok(fast), Ok(slow)) => {
                    // An error quotes the line, extra space included.
                    let slow = slow.map_err(|e| e.replacen("  f", " f", 1));
                    assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(case));
                }
                (fast, slow) => panic!("{case:?}: {fast:?} vs {slow:?}"),
            }
        }
        assert_eq!(
            decode_all(b"VA 3 f7\r\nabc\r\n", &[Expect::one(Kind::MetaGet)]).unwrap(),
            ["Value(Some(Item { key: b\"\", flags: 7, cas: None, data: b\"abc\", lease: 0 }))"]
        );
        assert_eq!(plain_value_header(b"VA 3 f7\r\n"), Some((8, 3, 7)));
        assert_eq!(plain_value_header(b"VA 3 f7\r"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 c1\r\n"), None);
    }

    #[test]
    fn lease_flags() {
        let got = decode_all(
            b"VA 0 f0 c9 W\r\n\r\nVA 3 c9 Z X\r\nabc\r\nVA 1 X W c2\r\nz\r\nHD t-1\r\n",
            &[Expect::one(Kind::MetaGet); 4],
        )
        .unwrap();
        let lease: Vec<&str> = got
            .iter()
            .map(|r| r.rsplit("lease: ").next().unwrap())
            .collect();
        assert_eq!(lease, ["1 }))", "6 }))", "5 }))", "0 }))"]);
    }

    #[test]
    fn meta_garbage_is_an_unknown_response() {
        let cases: &[(&[u8], Kind)] = &[
            (b"VALUE k 0 1\r\nx\r\nEND\r\n", Kind::MetaGet),
            (b"VA x f1\r\n", Kind::MetaGet),
            (b"VA 1 fz\r\nx\r\n", Kind::MetaGet),
            (b"HDX\r\n", Kind::MetaStore),
            (b"STORED\r\n", Kind::MetaStore),
            (b"EN\r\n", Kind::MetaDelete),
            (b"VA 2\r\nxx\r\n", Kind::MetaArith),
            (b"STORED\r\n", Kind::Quiet),
        ];
        for (input, kind) in cases {
            let err = decode_all(input, &[Expect::one(*kind)]).unwrap_err();
            assert!(
                err.starts_with("unexpected response"),
                "{:?} gave {err}",
                String::from_utf8_lossy(input)
            );
        }
        let mut decoder = Decoder::new(16);
        let mut buf = BytesMut::from(&b"VA 17 f0\r\n"[..]);
        let err = decoder
            .decode(&mut buf, Expect::one(Kind::MetaGet))
            .unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge { size: 17, max: 16 }));
    }

    #[test]
    fn garbage_is_an_unknown_response() {
        let cases: &[(&[u8], Expect)] = &[
            (b"HELLO\r\n", VALUES),
            (b"STORED\r\n", VALUES),
            (b"VALUE k x 3\r\nabc\r\nEND\r\n", VALUES),
            (b"VALUE k 0 -3\r\n", VALUES),
            (b"VALUE k 0 3 4 5\r\nabc\r\nEND\r\n", VALUES),
            (b"VALUE k 99999999999 3\r\nabc\r\nEND\r\n", VALUES),
            (b"VALUE k 0 3\r\nabcXYEND\r\n", VALUES),
            (b"DELETED\r\n", Expect::one(Kind::Store)),
            (b"STORED\r\n", Expect::one(Kind::Delete)),
            (b"12a\r\n", Expect::one(Kind::Arith)),
            (b"-1\r\n", Expect::one(Kind::Arith)),
            (b"99999999999999999999999\r\n", Expect::one(Kind::Arith)),
            (b"VERSION\r\n", Expect::one(Kind::Version)),
            (b"no carriage return\n", Expect::one(Kind::Ok)),
            (b"\n", Expect::one(Kind::Ok)),
        ];
        for (input, expect) in cases {
            let err = decode_all(input, &[*expect]).unwrap_err();
            assert!(
                err.starts_with("unexpected response"),
                "{:?} gave {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn huge_value_is_refused_before_allocating() {
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::from(&b"VALUE k 0 1073741824\r\nabc"[..]);
        let err = decoder.decode(&mut buf, VALUES).unwrap_err();
        assert!(matches!(
            err,
            Error::ValueTooLarge {
                size: 1073741824,
                max: 1024
            }
        ));
        assert!(buf.capacity() < 4096);
    }

    #[test]
    fn endless_line_is_refused() {
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::from(&vec![b'x'; MAX_LINE + 1][..]);
        assert!(decoder.decode(&mut buf, VALUES).is_err());
        let mut short = BytesMut::from(&vec![b'x'; 100][..]);
        assert!(decoder.decode(&mut short, VALUES).unwrap().is_none());
    }

    /// Whatever the network sends, the decoder returns a response, asks for more bytes or
    /// reports an error: it never panics, never loops, and never consumes more than it has.
    /// Random bytes, and valid replies with random bytes changed, cut or inserted, fed whole
    /// and in random pieces, for every kind of reply.
    /// The one-pass `VALUE` header reader accepts exactly what splitting the line into
    /// tokens and parsing them strictly accepts, with the same results: on edge cases and
    /// on 20,000 random mutations of good lines.
    #[test]
    fn value_header_matches_token_parsing() {
        fn by_tokens(line: &[u8]) -> Option<(usize, u32, u64, Option<u64>)> {
            let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let (key, flags, size, cas) = match tokens[..] {
                [key, flags, size] => (key, flags, size, None),
                [key, flags, size, cas] => (key, flags, size, Some(parse_u64(cas)?)),
                _ => return None,
            };
            if key.is_empty() {
                return None;
            }
            Some((key.len(), parse_u32(flags)?, parse_u64(size)?, cas))
        }
        let good: [&[u8]; 6] = [
            b"k 0 1",
            b"some:key 4294967295 18446744073709551615 18446744073709551615",
            b"k 00000000000000000001 2 3",
            b"\xc3\xa9 1 2",
            b"k 1 2 0",
            b"a-much-longer-key-of-forty-bytes-or-so.. 12345 67890 13",
        ];
        let edge: [&[u8]; 12] = [
            b"",
            b" 0 1",
            b"k 0",
            b"k  0 1",
            b"k 0 1 ",
            b"k 0 1 2 3",
            b"k 4294967296 1",
            b"k 0 18446744073709551616",
            b"k 0 000000000000000000001",
            b"k x 1",
            b"k 0 1x",
            b"k 0 -1",
        ];
        for line in good.iter().chain(edge.iter()) {
            assert_eq!(value_header(line), by_tokens(line), "{line:?}");
        }
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let alphabet = b" 0123456789kx-\xff";
        for _ in 0..20_000 {
            let mut line = good[(next() % good.len() as u64) as usize].to_vec();
            for _ in 0..1 + next() % 3 {
                let at = (next() % (line.len() as u64 + 1)) as usize;
                let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 if at < line.len() => line[at] = byte,
                    1 if at < line.len() => {
                        line.remove(at);
                    }
                    _ => line.insert(at, byte),
                }
            }
            assert_eq!(value_header(&line), by_tokens(&line), "{line:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let valid: &[&[u8]] = &[
            b"VALUE k 5 3 9\r\nabc\r\nVALUE kk 0 0\r\n\r\nEND\r\n",
            b"VA 3 f1 c2 W Z X t-1\r\nabc\r\nHD f3\r\nEN\r\nNF\r\nNS\r\nEX\r\n",
            b"STAT pid 1\r\nSTAT x y z\r\nEND\r\nVERSION 1.6\r\nOK\r\n12\r\nMN\r\n",
            b"SERVER_ERROR out of memory\r\nCLIENT_ERROR bad\r\nERROR\r\nSTORED\r\n",
        ];
        let kinds = [
            Kind::Values,
            Kind::Store,
            Kind::Delete,
            Kind::Touch,
            Kind::Arith,
            Kind::Stats,
            Kind::Version,
            Kind::Ok,
            Kind::MetaGet,
            Kind::MetaTouch,
            Kind::MetaStore,
            Kind::MetaDelete,
            Kind::MetaArith,
            Kind::Quiet,
        ];
        const ALPHABET: &[u8] = b"VALUEND STAHDNFXWZc0123456789 \r\n\r\n-f";
        for round in 0..20_000 {
            let mut input = valid[round % valid.len()].to_vec();
            if round % 3 == 0 {
                let len = (next() % 64) as usize;
                input = (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect();
            } else {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % (input.len() + 1);
                    let byte = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
                    match next() % 3 {
                        0 if at < input.len() => input[at] = byte,
                        1 => input.insert(at, byte),
                        _ => input.truncate(at),
                    }
                }
            }
            let expect = Expect {
                kind: kinds[(next() % kinds.len() as u64) as usize],
                count: 1 + (next() % 3) as u32,
            };
            let mut decoder = Decoder::new(64);
            let mut buf = BytesMut::new();
            let mut rest = &input[..];
            'feed: while !rest.is_empty() {
                let piece = 1 + (next() as usize) % rest.len();
                buf.extend_from_slice(&rest[..piece]);
                rest = &rest[piece..];
                for _ in 0..=input.len() {
                    let before = buf.len();
                    match decoder.decode(&mut buf, expect) {
                        Ok(Some(_)) => assert!(buf.len() < before, "a reply consumed nothing"),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }
    }

    #[test]
    fn parse_u64_is_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b" 1"), None);
    }
}
