//! Where the requests of an encoded stream begin and end, so that a TLS writer cuts its
//! records at request boundaries ([`Framing`]).
//!
//! Why: memcached 1.6.18 reads the rest of a storage command's data block straight into
//! the item with reads of exactly the bytes missing. When the TLS record holding the end
//! of a data block holds more requests after it, those stay buffered inside OpenSSL,
//! which the server's event loop does not look at: it waits for the socket, and the
//! requests wait, unanswered, until more bytes come (a `set` of 17 KB followed by a `get`,
//! written together, stalls for good). So every record either holds whole requests, up
//! to the record size, or is a piece of one request larger than that, the last piece
//! ending where the request ends. The server then never finds a request's bytes split
//! between a record it has read and one it has not.

/// The most plaintext a TLS record holds.
pub(crate) const RECORD: usize = 16 * 1024;

/// Follows a stream of requests as this crate encodes them (command lines, each storage
/// command's followed by its data block) through the records cut from it. It only ever
/// decides where records end: a stream it cannot follow is written all the same, in
/// records of at most the size asked.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    at: At,
    /// The request being cut spans records: the record that holds its end ends there.
    spanning: bool,
}

/// Where the next byte of the stream falls.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The first byte of a request.
    #[default]
    Start,
    /// Inside a line (one too long, or cut off, to be read whole): its end is the next `\n`.
    Line,
    /// Inside a request, this many bytes before its end.
    Bytes(u64),
}

impl Framing {
    /// How many bytes from the front of `buf` the next record takes (at most `max`; more
    /// than zero unless `buf` is empty): whole requests, or the next piece of one request
    /// larger than `max`. `buf` continues the bytes given before; the caller writes exactly
    /// the bytes counted.
    pub(crate) fn next_record(&mut self, buf: &[u8], max: usize) -> usize {
        let mut len = 0;
        while len < buf.len() && len < max {
            let rest = &buf[len..];
            let room = max - len;
            match self.at {
                At::Bytes(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(room)
                        .min(rest.len());
                    len += take;
                    let left = left - take as u64;
                    if left > 0 {
                        self.at = At::Bytes(left);
                        return len;
                    }
                    self.at = At::Start;
                    if std::mem::take(&mut self.spanning) {
                        return len;
                    }
                }
                At::Line => match memchr::memchr(b'\n', &rest[..rest.len().min(room)]) {
                    Some(end) => {
                        len += end + 1;
                        self.at = At::Start;
                        if std::mem::take(&mut self.spanning) {
                            return len;
                        }
                    }
                    None => {
                        self.spanning = true;
                        return len + rest.len().min(room);
                    }
                },
                At::Start => {
                    let whole = request_len(rest);
                    let fits = whole.filter(|&n| n <= room as u64 && n <= rest.len() as u64);
                    if let Some(n) = fits {
                        len += n as usize; // fits: n <= room
                        continue;
                    }
                    if len > 0 {
                        return len; // it starts the next record
                    }
                    // Alone in this record, and larger than it (or cut off): its first piece.
                    let take = rest.len().min(room);
                    self.spanning = true;
                    self.at = match whole {
                        Some(n) => At::Bytes(n - take as u64),
                        None => At::Line,
                    };
                    if self.at == At::Bytes(0) {
                        self.at = At::Start;
                        self.spanning = false;
                    }
                    return take;
                }
            }
        }
        len
    }
}

/// The length of the request at the front of `bytes`, its data block included (which
/// `bytes` need not hold); `None` when its line does not end within them.
fn request_len(bytes: &[u8]) -> Option<u64> {
    let end = memchr::memchr(b'\n', bytes)?;
    let line = &bytes[..=end];
    let mut words = line[..end].trim_ascii_end().split(|&b| b == b' ');
    let size_at = match words.next()? {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => 3,
        b"ms" => 1,
        _ => return Some(line.len() as u64),
    };
    let size = words.nth(size_at).and_then(|word| {
        let text = std::str::from_utf8(word).ok()?;
        text.parse::<u64>().ok()
    });
    match size {
        Some(size) => Some(line.len() as u64 + size.saturating_add(2)),
        None => Some(line.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `stream`, given in pieces of `piece` bytes, into records of at most `max`.
    fn cut(stream: &[u8], piece: usize, max: usize) -> Vec<Vec<u8>> {
        let mut framing = Framing::default();
        let mut records = Vec::new();
        let mut record = Vec::new();
        for chunk in stream.chunks(piece) {
            let mut at = 0;
            while at < chunk.len() {
                let n = framing.next_record(&chunk[at..], max);
                assert!(n > 0 && n <= max);
                record.extend_from_slice(&chunk[at..at + n]);
                at += n;
                // A record ends where `next_record` stopped short of the piece's end, or
                // at the piece's end (the writer seals each call's records).
                records.push(std::mem::take(&mut record));
            }
        }
        records
    }

    fn set(key: &str, size: usize) -> Vec<u8> {
        let mut bytes = format!("set {key} 0 0 {size} noreply\r\n").into_bytes();
        bytes.extend(std::iter::repeat(b'v').take(size));
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    fn ms(key: &str, size: usize) -> Vec<u8> {
        let mut bytes = format!("ms {key} {size} T0 q O1\r\n").into_bytes();
        bytes.extend(std::iter::repeat(b'w').take(size));
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    #[test]
    fn request_lengths() {
        assert_eq!(request_len(b"get a b\r\nmn\r\n"), Some(9));
        assert_eq!(request_len(b"set k 1 2 3\r\nabc\r\n"), Some(18));
        assert_eq!(request_len(b"cas k 1 2 3 99 noreply\r\nabc"), Some(29));
        assert_eq!(request_len(b"ms k 5 T0 F1\r\n"), Some(21));
        assert_eq!(request_len(b"mg k v\r"), None);
        assert_eq!(request_len(b"set k x y z\r\n"), Some(13)); // not ours: a line
    }

    #[test]
    fn small_requests_share_records_and_never_straddle_them() {
        let mut stream = Vec::new();
        let mut requests = Vec::new();
        for i in 0..400 {
            let request = match i % 3 {
                0 => set(&format!("k{i}"), i * 7 % 300),
                1 => ms(&format!("m{i}"), i % 50),
                _ => format!("mg g{i} v f O{i}\r\n").into_bytes(),
            };
            stream.extend_from_slice(&request);
            requests.push(request);
        }
        let records = cut(&stream, stream.len(), RECORD);
        assert!(records.len() > 1 && records.len() < 10, "{}", records.len());
        // Every record is a run of whole requests.
        let mut next = requests.iter();
        for record in &records {
            let mut rest = &record[..];
            while !rest.is_empty() {
                let request = next.next().unwrap();
                assert!(rest.starts_with(request));
                rest = &rest[request.len()..];
            }
        }
        assert!(next.next().is_none());
    }

    #[test]
    fn a_large_request_gets_records_of_its_own_ending_at_its_end() {
        for piece in [1, 7, 4096, 70_000, 1 << 20] {
            let mut stream = b"mg a v\r\n".to_vec();
            let big = set("big", 40_000);
            stream.extend_from_slice(&big);
            stream.extend_from_slice(b"mg b v\r\n");
            let records = cut(&stream, piece, RECORD);
            let joined: Vec<u8> = records.concat();
            assert_eq!(joined, stream);
            // Record ends fall at request ends or inside the big request, never elsewhere;
            // the big request's end is a record's end.
            let big_end = 8 + big.len();
            let mut at = 0;
            let mut ends = Vec::new();
            for record in &records {
                at += record.len();
                ends.push(at);
            }
            assert!(ends.contains(&big_end), "piece {piece}: {ends:?}");
            if piece >= 70_000 {
                assert_eq!(ends, [8, 8 + RECORD, 8 + 2 * RECORD, big_end, stream.len()]);
            }
        }
    }

    #[test]
    fn a_stream_it_cannot_follow_is_still_written_whole() {
        let stream: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for piece in [3, 5000, 100_000] {
            assert_eq!(cut(&stream, piece, RECORD).concat(), stream);
        }
    }
}
