//! Decoding responses: an incremental decoder over a `BytesMut` read buffer.
//!
//! `Ok(None)` means "not enough bytes yet" and is never an error; `Err` means the bytes cannot
//! be a response to the request at the head of the queue, and the connection must be closed.
//!
//! Values are sliced out of the read buffer (`split_to(..).freeze()`): no copy per value. A
//! value header is parsed once: while its data arrives, the decoder keeps what the header
//! said. A value larger than the limit is skipped as it streams past, without allocating it,
//! and becomes [`Error::ValueTooLarge`] for its request alone: the stream stays in step.
//!
//! Memory is bounded by what was asked: a retrieval reply holds at most as many values as
//! keys were asked ([`Expect::items`]), a `stats` reply at most [`MAX_STATS`] lines, the
//! failure report of a run of quiet requests at most one line per request, and no line is
//! longer than [`MAX_LINE`]. Every size from the network goes through checked arithmetic.

use bytes::{Buf, Bytes, BytesMut};

use crate::config::MAX_VALUE_SIZE_LIMIT;
use crate::error::Error;

use super::parse::{
    is_meta_status, meta_flags, parse_u64, plain_value_header, server_error, unknown, value_header,
    MetaFlags,
};
use super::response::{Expect, Item, Kind, Opaque, Response, Status};

/// The longest response line accepted (a `VALUE` header is under 300 bytes; `STAT` lines are
/// short). A longer run without `\n` is not memcached talking.
pub const MAX_LINE: usize = 16 * 1024;

/// The most lines a `stats` reply may have (`stats items` and `stats slabs` send a few
/// thousand; `stats cachedump` is capped by memcached at 2 MB of output).
pub const MAX_STATS: usize = 100_000;

/// The most hits a multi-get's list is pre-sized for, from the previous one.
const MAX_PRESIZE: usize = 1024;

/// The incremental decoder of one connection. Holds the partial results of the response
/// being read (values and stats collected so far, a value header whose data has not all
/// arrived) between reads.
#[derive(Debug)]
pub struct Decoder {
    max_value: usize,
    items: Vec<Item>,
    stats: Vec<(String, String)>,
    many: Vec<Response>,
    quiet: Vec<Error>,
    /// Lines read so far for the run of quiet requests being answered.
    quiet_lines: u32,
    block: Option<Block>,
}

/// A value whose header has been read and whose data has not all arrived yet.
#[derive(Debug)]
enum Block {
    /// A classic `VALUE` block; its header line (`head` bytes) is still at the front of the
    /// buffer, where its key is sliced from.
    Value {
        head: usize,
        key_len: usize,
        flags: u32,
        cas: Option<u64>,
        size: usize,
    },
    /// A meta `VA` value; its header line (`head` bytes) is still at the front of the
    /// buffer.
    Meta {
        head: usize,
        size: usize,
        meta: MetaFlags,
        /// The value of `ma`: a number.
        arith: bool,
    },
    /// A value over the limit, dropped as it arrives: its header has been consumed, `left`
    /// data bytes (then the CRLF) are still to come.
    Skip {
        left: u64,
        size: u64,
        /// The key of a classic `VALUE` (empty for meta).
        key: Bytes,
        meta: MetaFlags,
        meta_kind: bool,
    },
}

/// What resuming a [`Block`] came to.
enum Resumed {
    /// Its bytes have not all arrived.
    Pending,
    /// A classic value was collected: read on (more values, or `END`).
    Item,
    /// The response is complete (a meta value).
    Done(Response),
}

impl Decoder {
    /// A decoder that skips values larger than `max_value` bytes (at most
    /// [`MAX_VALUE_SIZE_LIMIT`], 1 GiB, memcached's largest item: larger values are skipped
    /// whatever the setting).
    pub fn new(max_value: usize) -> Self {
        Decoder {
            max_value: max_value.min(MAX_VALUE_SIZE_LIMIT),
            items: Vec::new(),
            stats: Vec::new(),
            many: Vec::new(),
            quiet: Vec::new(),
            quiet_lines: 0,
            block: None,
        }
    }

    /// Decodes the response to a request expecting `expect`, consuming its bytes from `buf`.
    ///
    /// # Errors
    /// When the bytes cannot be a response to this request; the decoder must not be used
    /// again (the connection is closed).
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        expect: Expect,
    ) -> Result<Option<Response>, Error> {
        if expect.count <= 1 {
            return self.decode_one(buf, expect, 0);
        }
        loop {
            let index = self.many.len() as u32;
            let Some(one) = self.decode_one(buf, expect, index)? else {
                return Ok(None);
            };
            self.many.push(one);
            if self.many.len() >= expect.count as usize {
                return Ok(Some(Response::Many(std::mem::take(&mut self.many))));
            }
        }
    }

    /// Decodes reply number `index` of the batch `expect` describes.
    fn decode_one(
        &mut self,
        buf: &mut BytesMut,
        expect: Expect,
        index: u32,
    ) -> Result<Option<Response>, Error> {
        let kind = expect.kind;
        if self.block.is_some() {
            let Some(block) = self.block.take() else {
                return Ok(None);
            };
            match self.resume(buf, block)? {
                Resumed::Pending => return Ok(None),
                Resumed::Done(response) => return Ok(Some(response)),
                Resumed::Item => {}
            }
        } else if kind == Kind::MetaGet {
            if let Some((nl, size, flags, opaque)) = plain_value_header(buf) {
                check_opaque(expect, index, opaque, &buf[..nl])?;
                let meta = MetaFlags {
                    flags,
                    opaque,
                    ..MetaFlags::default()
                };
                return self.meta_value(buf, nl + 1, size, meta, false);
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
                    self.quiet_lines = 0;
                    return Ok(Some(Response::Quiet(std::mem::take(&mut self.quiet))));
                }
                self.quiet_line(line, expect)?;
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
                        if self.items.len() >= expect.items as usize {
                            return Err(unknown("more values than keys were asked", line));
                        }
                        if self.value(buf, consumed)? {
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
                        if self.stats.len() >= MAX_STATS {
                            return Err(unknown("a stats reply of too many lines", line));
                        }
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
                Kind::MetaGet
                | Kind::MetaArith
                | Kind::MetaTouch
                | Kind::MetaStore
                | Kind::MetaDelete => {
                    if line.len() < 2 || (line.len() > 2 && line[2] != b' ') {
                        return Err(unknown("expected a meta reply", line));
                    }
                    let code = [line[0], line[1]];
                    if &code == b"VA" && matches!(kind, Kind::MetaGet | Kind::MetaArith) {
                        let rest = line.get(3..).unwrap_or_default();
                        let (size, flags) = match rest.iter().position(|&b| b == b' ') {
                            Some(at) => (&rest[..at], &rest[at..]),
                            None => (rest, &b""[..]),
                        };
                        let size =
                            parse_u64(size).ok_or_else(|| unknown("malformed VA line", line))?;
                        let meta = meta_flags(flags, line)?;
                        check_opaque(expect, index, meta.opaque, line)?;
                        return self.meta_value(buf, consumed, size, meta, kind == Kind::MetaArith);
                    }
                    let meta = meta_flags(&line[2..], line)?;
                    check_opaque(expect, index, meta.opaque, line)?;
                    let response = match (kind, &code) {
                        (Kind::MetaGet, b"EN") => Response::Value(None),
                        (Kind::MetaGet, b"HD") => Response::Value(Some(Item {
                            key: Bytes::new(),
                            flags: meta.flags,
                            cas: meta.cas,
                            data: Bytes::new(),
                            lease: meta.lease,
                            too_large: None,
                        })),
                        (Kind::MetaArith, b"NF") => Response::Status(Status::NotFound),
                        (Kind::MetaTouch, b"HD") => Response::Status(Status::Touched),
                        (Kind::MetaTouch, b"EN") => Response::Status(Status::NotFound),
                        (Kind::MetaStore, b"HD") => Response::Status(Status::Stored),
                        (Kind::MetaStore, b"NS") => Response::Status(Status::NotStored),
                        (Kind::MetaStore, b"EX") => Response::Status(Status::Exists),
                        (Kind::MetaStore | Kind::MetaDelete, b"NF") => {
                            Response::Status(Status::NotFound)
                        }
                        (Kind::MetaDelete, b"HD") => Response::Status(Status::Deleted),
                        _ => return Err(unknown("unexpected meta status", line)),
                    };
                    buf.advance(consumed);
                    return Ok(Some(response));
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

    /// One line before the `MN` that ends a run of quiet requests: a status (an outcome
    /// such as `NS`, echoing its request's token) or a failure. More lines than the run had
    /// requests, or a token from outside the run, cannot be this run's.
    fn quiet_line(&mut self, line: &[u8], expect: Expect) -> Result<(), Error> {
        self.quiet_lines += 1;
        if self.quiet_lines > expect.items {
            return Err(unknown("more replies than quiet requests", line));
        }
        if let Some(error) = server_error(line) {
            self.quiet.push(error);
            return Ok(());
        }
        if !is_meta_status(line) {
            return Err(unknown("expected a meta status or MN", line));
        }
        let meta = meta_flags(&line[2..], line)?;
        if let (Some(first), Some(token)) = (expect.opaque, meta.opaque) {
            // (a run of 65,536 or more requests cannot tell its tokens apart)
            if u32::from(token.wrapping_sub(first)) >= expect.items && expect.items <= 0xffff {
                return Err(unknown("a reply to a request outside this quiet run", line));
            }
        } else if expect.opaque.is_some() {
            return Err(unknown("a quiet reply without its opaque token", line));
        }
        tracing::debug!(reply = %String::from_utf8_lossy(line), "noreply outcome");
        Ok(())
    }

    /// Starts the classic `VALUE` block whose header line is `head` bytes long. `Ok(true)`:
    /// the item was consumed and collected; `Ok(false)`: its data has not all arrived.
    fn value(&mut self, buf: &mut BytesMut, head: usize) -> Result<bool, Error> {
        let line = &buf[6..head - 2];
        let Some((key_len, flags, size, cas)) = value_header(line) else {
            return Err(unknown("malformed VALUE line", line));
        };
        let block = match self.fits(head, size) {
            Some(size) => {
                let Some(block) = take_block(buf, head, size)? else {
                    self.block = Some(Block::Value {
                        head,
                        key_len,
                        flags,
                        cas,
                        size,
                    });
                    return Ok(false);
                };
                self.items
                    .push(classic_item(block, head, key_len, flags, cas, size));
                return Ok(true);
            }
            None => {
                let header = buf.split_to(head).freeze();
                Block::Skip {
                    left: size,
                    size,
                    key: header.slice(6..6 + key_len),
                    meta: MetaFlags::default(),
                    meta_kind: false,
                }
            }
        };
        match self.resume(buf, block)? {
            Resumed::Pending => Ok(false),
            Resumed::Item | Resumed::Done(_) => Ok(true),
        }
    }

    /// Starts the meta value (of `mg`, or of `ma` when `arith`) whose header line is `head`
    /// bytes long.
    #[inline(always)]
    fn meta_value(
        &mut self,
        buf: &mut BytesMut,
        head: usize,
        size: u64,
        meta: MetaFlags,
        arith: bool,
    ) -> Result<Option<Response>, Error> {
        let block = match self.fits(head, size) {
            Some(size) => {
                let Some(block) = take_block(buf, head, size)? else {
                    self.block = Some(Block::Meta {
                        head,
                        size,
                        meta,
                        arith,
                    });
                    return Ok(None);
                };
                return meta_response(block, head, size, meta, arith).map(Some);
            }
            None => {
                buf.advance(head);
                Block::Skip {
                    left: size,
                    size,
                    key: Bytes::new(),
                    meta,
                    meta_kind: true,
                }
            }
        };
        match self.resume(buf, block)? {
            Resumed::Pending => Ok(None),
            Resumed::Done(response) => Ok(Some(response)),
            Resumed::Item => Err(Error::UnknownResponse(
                "a meta value read as classic".into(),
            )),
        }
    }

    /// `Some(size)` when a `size`-byte value after a `head`-byte header is within the limit
    /// and its block's length can be computed; `None` when it is to be skipped.
    #[inline(always)]
    fn fits(&self, head: usize, size: u64) -> Option<usize> {
        // `max_value` is at most 1 GiB and `head` at most `MAX_LINE`: the block's length
        // (`head + size + 2`) cannot overflow.
        let _ = head;
        (size <= self.max_value as u64).then_some(size as usize)
    }

    /// Carries on with a value whose header has been read: collects it once all its bytes
    /// are here, drops what has arrived of one being skipped, or keeps the block for the
    /// next read.
    fn resume(&mut self, buf: &mut BytesMut, block: Block) -> Result<Resumed, Error> {
        match block {
            Block::Value {
                head,
                key_len,
                flags,
                cas,
                size,
            } => {
                let Some(block) = take_block(buf, head, size)? else {
                    self.block = Some(block);
                    return Ok(Resumed::Pending);
                };
                self.items
                    .push(classic_item(block, head, key_len, flags, cas, size));
                Ok(Resumed::Item)
            }
            Block::Meta {
                head,
                size,
                meta,
                arith,
            } => {
                let Some(block) = take_block(buf, head, size)? else {
                    self.block = Some(block);
                    return Ok(Resumed::Pending);
                };
                meta_response(block, head, size, meta, arith).map(Resumed::Done)
            }
            Block::Skip {
                mut left,
                size,
                key,
                meta,
                meta_kind,
            } => {
                let drop = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                buf.advance(drop);
                left -= drop as u64;
                if left > 0 || buf.len() < 2 {
                    self.block = Some(Block::Skip {
                        left,
                        size,
                        key,
                        meta,
                        meta_kind,
                    });
                    return Ok(Resumed::Pending);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(unknown("value not followed by CRLF", &buf[..2]));
                }
                buf.advance(2);
                if meta_kind {
                    return Ok(Resumed::Done(Response::Failed(Error::ValueTooLarge {
                        size,
                        max: self.max_value,
                    })));
                }
                self.items.push(Item {
                    key,
                    flags: meta.flags,
                    cas: None,
                    data: Bytes::new(),
                    lease: 0,
                    too_large: Some(size),
                });
                Ok(Resumed::Item)
            }
        }
    }
}

/// The item of a complete classic `VALUE` block (header, data, CRLF).
#[inline(always)]
fn classic_item(
    mut block: Bytes,
    head: usize,
    key_len: usize,
    flags: u32,
    cas: Option<u64>,
    size: usize,
) -> Item {
    let key = block.slice(6..6 + key_len);
    // the block becomes the data: one reference count less to take and drop
    block.advance(head);
    block.truncate(size);
    Item {
        key,
        flags,
        cas,
        data: block,
        lease: 0,
        too_large: None,
    }
}

/// The response of a complete meta `VA` block (header, data, CRLF): `mg`'s hit, or `ma`'s
/// number (`arith`).
#[inline(always)]
fn meta_response(
    mut data: Bytes,
    head: usize,
    size: usize,
    meta: MetaFlags,
    arith: bool,
) -> Result<Response, Error> {
    data.advance(head);
    data.truncate(size);
    if arith {
        return match parse_u64(data.trim_ascii_end()) {
            Some(n) => Ok(Response::Number(n)),
            None => Err(unknown("ma returned a value that is not a number", &data)),
        };
    }
    Ok(Response::Value(Some(Item {
        key: Bytes::new(),
        flags: meta.flags,
        cas: meta.cas,
        data,
        lease: meta.lease,
        too_large: None,
    })))
}

/// The `head`-byte header, `size`-byte data block and CRLF at the front of `buf`, once
/// all of it is here (`None` until then, with room reserved for the rest: `size` is within
/// the limit).
#[inline(always)]
fn take_block(buf: &mut BytesMut, head: usize, size: usize) -> Result<Option<Bytes>, Error> {
    let total = head + size + 2;
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
    // trimmed as `Bytes`, whose `advance` is cheaper than the read buffer's
    Ok(Some(buf.split_to(total).freeze()))
}

/// Checks that reply number `index` of a batch echoes its request's opaque token.
#[inline(always)]
fn check_opaque(expect: Expect, index: u32, got: Option<Opaque>, line: &[u8]) -> Result<(), Error> {
    match expect.opaque {
        Some(first) if got != Some(first.wrapping_add(index as Opaque)) => Err(unknown(
            "a reply that does not echo its request's opaque token",
            line,
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
