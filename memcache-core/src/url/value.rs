//! The forms a configuration URL's values are written in: percent-escapes, durations, sizes,
//! booleans and counts. Each parser returns the reason a text is refused; the caller says
//! which part of the URL it was.

use std::time::Duration;

/// What a value parser returns: the value, or why the text is not one.
pub(super) type Parsed<T> = std::result::Result<T, String>;

/// Decodes `%XX` escapes (any other byte stands for itself; `+` is a plus, not a space).
pub(super) fn percent_decode(text: &str) -> Parsed<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'%' {
            decoded.push(bytes[at]);
            at += 1;
            continue;
        }
        let digits = bytes.get(at + 1..at + 3);
        match digits.and_then(|d| Some(hex(d[0])? << 4 | hex(d[1])?)) {
            Some(byte) => decoded.push(byte),
            None => {
                // the escape as written, cut at a character boundary for display
                let shown: String = text[at..].chars().take(3).collect();
                return Err(format!(
                    "has a bad percent-escape {shown:?} at byte {at} (a % is followed by two \
                     hex digits; write %25 for a % itself)"
                ));
            }
        }
        at += 3;
    }
    Ok(decoded)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

/// [`percent_decode`], then UTF-8.
pub(super) fn text(raw: &str) -> Parsed<String> {
    String::from_utf8(percent_decode(raw)?)
        .map_err(|_| "is not UTF-8 once percent-decoded".to_owned())
}

/// `true`, `false`, `1`, `0`, `yes`, `no`, `on`, `off` (any case).
pub(super) fn boolean(text: &str) -> Parsed<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (true, false, 1, 0, yes, no, on, off)"
        )),
    }
}

/// A decimal number without sign: the digits only.
pub(super) fn count(text: &str) -> Parsed<u32> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(n) if digits => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number from 0 to {}",
            u32::MAX
        )),
    }
}

/// A number with a unit: `500us`, `200ms`, `1s`, `1.5s`, `2m`, `1h` (also `ns`). At most
/// nine digits after the point; a bare number, even `0`, has no unit and is refused.
pub(super) fn duration(text: &str) -> Parsed<Duration> {
    let not = || format!("{text:?} is not a duration (e.g. 200ms, 1s, 1.5s, 2m)");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" if !number.is_empty() => {
            return Err(format!(
                "{text:?} has no unit (write e.g. {text}ms or {text}s)"
            ))
        }
        _ => return Err(not()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let dotted = number.contains('.');
    if whole.is_empty() || !digits(fraction) || (dotted && fraction.is_empty()) {
        return Err(not());
    }
    if fraction.len() > 9 {
        return Err(format!(
            "{text:?} has more than nine digits after the point"
        ));
    }
    let too_long = || format!("{text:?} is longer than the longest duration");
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let fraction_nanos = match fraction {
        "" => 0,
        _ => {
            let value: u128 = fraction.parse().map_err(|_| not())?;
            value * unit_nanos / 10u128.pow(fraction.len() as u32)
        }
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_nanos))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// A [`duration`], or `unlimited` for `Duration::MAX` (no limit).
pub(super) fn limit(text: &str) -> Parsed<Duration> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Duration::MAX);
    }
    duration(text).map_err(|reason| format!("{reason}, or unlimited"))
}

/// `initial..max`, two [`duration`]s.
pub(super) fn backoff(text: &str) -> Parsed<(Duration, Duration)> {
    let (initial, max) = text.split_once("..").ok_or_else(|| {
        format!("{text:?} is not two durations written initial..max (e.g. 50ms..5s)")
    })?;
    let initial = duration(initial).map_err(|reason| format!("initial: {reason}"))?;
    let max = duration(max).map_err(|reason| format!("max: {reason}"))?;
    Ok((initial, max))
}

/// A number of bytes, optionally with a binary suffix (any case): `k`/`KiB` (1024), `M`/`MiB`,
/// `G`/`GiB`; `B` or none for bytes.
pub(super) fn size(text: &str) -> Parsed<usize> {
    let not = || format!("{text:?} is not a size in bytes (e.g. 1048576, 512k, 1M, 2MiB)");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let unit: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(not()),
    };
    if number.is_empty() {
        return Err(not());
    }
    let too_large = || format!("{text:?} is too large");
    let n: u64 = number.parse().map_err(|_| too_large())?;
    let bytes = n.checked_mul(unit).ok_or_else(too_large)?;
    usize::try_from(bytes).map_err(|_| too_large())
}
