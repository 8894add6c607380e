//! Reading the parts of one response line: numbers, `VALUE` and `VA` headers, meta return
//! flags and error lines. Pure functions over byte slices; strict (anything out of range or
//! malformed is refused, never guessed at).

use crate::error::Error;

use super::response::{Opaque, BUSY, STALE, WON};

/// The error for a line that cannot be a reply to the request waiting for it.
pub(crate) fn unknown(what: &str, line: &[u8]) -> Error {
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

/// [`parse_u64`] within `u32`.
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    parse_u64(digits).and_then(|n| u32::try_from(n).ok())
}

/// What a meta reply's return flags say (the ones this client asks for; others are
/// skipped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MetaFlags {
    /// `f<flags>`: the client flags.
    pub(crate) flags: u32,
    /// `c<cas>`: the CAS unique.
    pub(crate) cas: Option<u64>,
    /// `W`, `Z`, `X`: the lease state bits.
    pub(crate) lease: u8,
    /// `O<token>`: the opaque token the request carried.
    pub(crate) opaque: Option<Opaque>,
}

/// The return flags among `tokens` (a meta reply line after its code and size), or an
/// error naming `line` when one of them is malformed.
pub(crate) fn meta_flags(tokens: &[u8], line: &[u8]) -> Result<MetaFlags, Error> {
    let mut found = MetaFlags::default();
    for token in tokens.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let value = &token[1..];
        match token[0] {
            b'f' => {
                found.flags = parse_u32(value).ok_or_else(|| unknown("malformed f flag", line))?
            }
            b'c' => {
                found.cas = Some(parse_u64(value).ok_or_else(|| unknown("malformed c flag", line))?)
            }
            b'O' => {
                // This client sends one decimal `u32` token: anything else is not its own.
                let token = hex4(value).filter(|_| found.opaque.is_none());
                found.opaque = Some(token.ok_or_else(|| unknown("foreign opaque token", line))?);
            }
            b'W' => found.lease |= WON,
            b'Z' => found.lease |= BUSY,
            b'X' => found.lease |= STALE,
            _ => {}
        }
    }
    Ok(found)
}

/// An opaque token as this client writes it: exactly four lowercase hex digits.
#[inline(always)]
pub(crate) fn hex4(token: &[u8]) -> Option<Opaque> {
    /// Each byte's value as a hex digit, or 16 for a byte that is none.
    const VALUE: [u8; 256] = {
        let mut table = [16u8; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let [a, b, c, d] = *token else {
        return None;
    };
    let (a, b, c, d) = (
        VALUE[usize::from(a)],
        VALUE[usize::from(b)],
        VALUE[usize::from(c)],
        VALUE[usize::from(d)],
    );
    if (a | b | c | d) & 16 != 0 {
        return None;
    }
    Some(Opaque::from(a) << 12 | Opaque::from(b) << 8 | Opaque::from(c) << 4 | Opaque::from(d))
}

/// `HD`, `NS`, `EX`, `NF`, `EN`, optionally followed by returned flags.
pub(crate) fn is_meta_status(line: &[u8]) -> bool {
    matches!(
        &line[..line.len().min(2)],
        b"HD" | b"NS" | b"EX" | b"NF" | b"EN"
    ) && (line.len() == 2 || line[2] == b' ')
}

/// The header of the reply to a plain `mg <key> v f [O<n>]`, `VA <size> f<flags>[ O<n>]\r\n`,
/// read in one pass: the position of its `\n`, the size, the flags and the opaque token.
/// `None` for anything else (other lines, other flags, numbers too long to read without
/// overflow checks, a header not all here yet), which the general parser then handles.
#[inline(always)]
pub(crate) fn plain_value_header(buf: &[u8]) -> Option<(usize, u64, u32, Option<Opaque>)> {
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
    let (flags, mut end) = digits(buf, end + 2, 9)?;
    let mut opaque = None;
    if buf.get(end..end + 2)? == b" O" {
        opaque = Some(hex4(buf.get(end + 2..end + 6)?)?);
        end += 6;
    }
    if buf.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    Some((end + 1, size, u32::try_from(flags).ok()?, opaque))
}

/// `<key> <flags> <bytes> [<cas unique>]`, a `VALUE` line after `VALUE `, read in one pass:
/// the key's length, the flags, the size and the CAS unique. `None` when malformed: an
/// empty key, a missing or extra field, anything but single spaces between them, or a
/// number out of range (as [`parse_u64`] and [`parse_u32`] would refuse it).
#[inline]
pub(crate) fn value_header(line: &[u8]) -> Option<(usize, u32, u64, Option<u64>)> {
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
pub(crate) fn server_error(line: &[u8]) -> Option<Error> {
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
    use crate::protocol::decode::tests::xorshift;

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
    fn plain_value_headers() {
        assert_eq!(plain_value_header(b"VA 3 f7\r\n"), Some((8, 3, 7, None)));
        assert_eq!(
            plain_value_header(b"VA 3 f7 O0012\r\n"),
            Some((14, 3, 7, Some(0x12)))
        );
        assert_eq!(plain_value_header(b"VA 3 f7\r"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 O\r\n"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 O12345\r\n"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 O12\r\n"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 c1\r\n"), None);
        assert_eq!(plain_value_header(b"VA 3 f7 O0001 c1\r\n"), None);
    }

    #[test]
    fn meta_flags_and_statuses() {
        let flags = meta_flags(b" f3 c9 O004d W X t-1", b"line").unwrap();
        assert_eq!(
            flags,
            MetaFlags {
                flags: 3,
                cas: Some(9),
                lease: WON | STALE,
                opaque: Some(77),
            }
        );
        for bad in [
            &b" fx"[..],
            b" c",
            b" O-1",
            b" Oabc",
            b" O4294967296",
            b" O1 O1",
        ] {
            assert!(meta_flags(bad, b"line").is_err(), "{bad:?}");
        }
        assert!(is_meta_status(b"HD") && is_meta_status(b"NS O5") && !is_meta_status(b"HDX"));
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
