//! Encoding requests: each function appends one complete command to a buffer, in one pass,
//! with numbers formatted by `itoa` (no `format!`, no intermediate strings).
//!
//! Keys passed here have already been checked by [`KeyRules`](crate::key::KeyRules); the
//! prefix is written in front of each key.

use bytes::{BufMut, BytesMut};

use super::response::Opaque;

/// The storage commands, which share one wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if the key is absent.
    Add,
    /// `replace`: store only if the key is present.
    Replace,
    /// `append`: add the data after the existing value.
    Append,
    /// `prepend`: add the data before the existing value.
    Prepend,
    /// `cas`: store only if the value has not changed since the token was read.
    Cas(u64),
}

impl StoreCommand {
    fn name(self) -> &'static [u8] {
        match self {
            StoreCommand::Set => b"set ",
            StoreCommand::Add => b"add ",
            StoreCommand::Replace => b"replace ",
            StoreCommand::Append => b"append ",
            StoreCommand::Prepend => b"prepend ",
            StoreCommand::Cas(_) => b"cas ",
        }
    }
}

fn put_u64(buf: &mut BytesMut, n: u64) {
    buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn put_key(buf: &mut BytesMut, prefix: &[u8], key: &[u8]) {
    buf.put_slice(prefix);
    buf.put_slice(key);
}

/// ` O<token>`: the opaque token a meta reply echoes, by which it is checked to be this
/// request's.
fn put_opaque(buf: &mut BytesMut, opaque: Opaque) {
    buf.put_slice(&opaque_flag(opaque)[..6]);
}

/// ` O<token>\r\n`: the opaque token flag, ending the request line.
fn end_with_opaque(buf: &mut BytesMut, opaque: Opaque) {
    buf.put_slice(&opaque_flag(opaque));
}

/// ` O<4 hex digits>\r\n`.
#[inline(always)]
fn opaque_flag(opaque: Opaque) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: u16| HEX[usize::from((opaque >> shift) & 15)];
    [
        b' ',
        b'O',
        digit(12),
        digit(8),
        digit(4),
        digit(0),
        b'\r',
        b'\n',
    ]
}

fn end_line(buf: &mut BytesMut, noreply: bool) {
    if noreply {
        buf.put_slice(b" noreply\r\n");
    } else {
        buf.put_slice(b"\r\n");
    }
}

/// Bytes a store command will take, to reserve once.
pub fn store_len(key_len: usize, data_len: usize) -> usize {
    // "prepend " + key + 3 numbers (<= 20 digits each) + cas + " noreply\r\n" + data + "\r\n"
    8 + key_len + 4 * 21 + 10 + data_len + 2
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`
#[allow(clippy::too_many_arguments)]
pub fn store(
    buf: &mut BytesMut,
    cmd: StoreCommand,
    prefix: &[u8],
    key: &[u8],
    flags: u32,
    exptime: u32,
    data: &[u8],
    noreply: bool,
) {
    buf.reserve(store_len(prefix.len() + key.len(), data.len()));
    buf.put_slice(cmd.name());
    put_key(buf, prefix, key);
    buf.put_u8(b' ');
    put_u64(buf, u64::from(flags));
    buf.put_u8(b' ');
    put_u64(buf, u64::from(exptime));
    buf.put_u8(b' ');
    put_u64(buf, data.len() as u64);
    if let StoreCommand::Cas(token) = cmd {
        buf.put_u8(b' ');
        put_u64(buf, token);
    }
    end_line(buf, noreply);
    buf.put_slice(data);
    buf.put_slice(b"\r\n");
}

/// `get|gets <key>*\r\n`, or `gat|gats <exptime> <key>*\r\n` when `touch` is given.
pub fn retrieve<'k>(
    buf: &mut BytesMut,
    cas: bool,
    touch: Option<u32>,
    prefix: &[u8],
    keys: impl IntoIterator<Item = &'k [u8]>,
) {
    match (touch, cas) {
        (None, false) => buf.put_slice(b"get"),
        (None, true) => buf.put_slice(b"gets"),
        (Some(_), false) => buf.put_slice(b"gat"),
        (Some(_), true) => buf.put_slice(b"gats"),
    }
    if let Some(exptime) = touch {
        buf.put_u8(b' ');
        put_u64(buf, u64::from(exptime));
    }
    for key in keys {
        buf.reserve(1 + prefix.len() + key.len() + 2);
        buf.put_u8(b' ');
        put_key(buf, prefix, key);
    }
    buf.put_slice(b"\r\n");
}

/// `delete <key> [noreply]\r\n`
pub fn delete(buf: &mut BytesMut, prefix: &[u8], key: &[u8], noreply: bool) {
    buf.reserve(7 + prefix.len() + key.len() + 10);
    buf.put_slice(b"delete ");
    put_key(buf, prefix, key);
    end_line(buf, noreply);
}

/// `incr|decr <key> <delta> [noreply]\r\n`
pub fn arith(buf: &mut BytesMut, incr: bool, prefix: &[u8], key: &[u8], delta: u64, noreply: bool) {
    buf.reserve(5 + prefix.len() + key.len() + 22 + 10);
    buf.put_slice(if incr { b"incr " } else { b"decr " });
    put_key(buf, prefix, key);
    buf.put_u8(b' ');
    put_u64(buf, delta);
    end_line(buf, noreply);
}

/// `touch <key> <exptime> [noreply]\r\n`
pub fn touch(buf: &mut BytesMut, prefix: &[u8], key: &[u8], exptime: u32, noreply: bool) {
    buf.reserve(6 + prefix.len() + key.len() + 12 + 10);
    buf.put_slice(b"touch ");
    put_key(buf, prefix, key);
    buf.put_u8(b' ');
    put_u64(buf, u64::from(exptime));
    end_line(buf, noreply);
}

/// A command made of a name and numeric arguments: `flush_all [delay]`, `verbosity <n>`,
/// `cache_memlimit <mb>`, `version`, `quit`.
pub fn simple(buf: &mut BytesMut, name: &str, args: &[u64], noreply: bool) {
    buf.put_slice(name.as_bytes());
    for &arg in args {
        buf.put_u8(b' ');
        put_u64(buf, arg);
    }
    end_line(buf, noreply);
}

/// `stats [arg ...]\r\n`; the arguments have been checked like keys.
pub fn stats<'a>(buf: &mut BytesMut, args: impl IntoIterator<Item = &'a [u8]>) {
    buf.put_slice(b"stats");
    for arg in args {
        buf.put_u8(b' ');
        buf.put_slice(arg);
    }
    buf.put_slice(b"\r\n");
}

/// `mg <key> [v f] [c] [T<ttl>] [N<ttl>] O<opaque>\r\n`: a retrieval (`value`), or a touch
/// when only `touch` is set; `lease` asks for a lease of that many seconds on a miss (`N`).
#[allow(clippy::too_many_arguments)]
pub fn meta_get(
    buf: &mut BytesMut,
    prefix: &[u8],
    key: &[u8],
    value: bool,
    cas: bool,
    touch: Option<u32>,
    lease: Option<u32>,
    opaque: Opaque,
) {
    buf.reserve(3 + prefix.len() + key.len() + 46);
    buf.put_slice(b"mg ");
    put_key(buf, prefix, key);
    if value {
        buf.put_slice(b" v f");
    }
    if cas {
        buf.put_slice(b" c");
    }
    if let Some(ttl) = touch {
        buf.put_slice(b" T");
        put_u64(buf, u64::from(ttl));
    }
    if let Some(ttl) = lease {
        buf.put_slice(b" N");
        put_u64(buf, u64::from(ttl));
    }
    end_with_opaque(buf, opaque);
}

/// `mg <key> v f c N<ttl> [R<window>] O<opaque>\r\n`: a read that takes a lease of `ttl`
/// seconds on a miss, and, with `refresh`, asks to be the one to refresh a value whose
/// remaining TTL is under that many seconds (memcached answers `W` to one reader).
pub fn meta_lease_get(
    buf: &mut BytesMut,
    prefix: &[u8],
    key: &[u8],
    ttl: u32,
    refresh: Option<u32>,
    opaque: Opaque,
) {
    buf.reserve(3 + prefix.len() + key.len() + 40);
    buf.put_slice(b"mg ");
    put_key(buf, prefix, key);
    buf.put_slice(b" v f c N");
    put_u64(buf, u64::from(ttl));
    if let Some(window) = refresh {
        buf.put_slice(b" R");
        put_u64(buf, u64::from(window));
    }
    end_with_opaque(buf, opaque);
}

/// `md <key> I [T<ttl>] [q] O<opaque>\r\n`: marks the value stale instead of deleting it
/// (kept `ttl` more seconds when given), so that the next reader wins its recomputation
/// (`W`) and the others read the stale value (`X`, `Z`).
pub fn meta_invalidate(
    buf: &mut BytesMut,
    prefix: &[u8],
    key: &[u8],
    ttl: Option<u32>,
    quiet: bool,
    opaque: Opaque,
) {
    buf.reserve(3 + prefix.len() + key.len() + 40);
    buf.put_slice(b"md ");
    put_key(buf, prefix, key);
    buf.put_slice(b" I");
    if let Some(ttl) = ttl {
        buf.put_slice(b" T");
        put_u64(buf, u64::from(ttl));
    }
    if quiet {
        buf.put_slice(b" q");
    }
    end_with_opaque(buf, opaque);
}

/// `md <key> C<cas> q O<opaque>\r\n`: delete only if the CAS unique still matches, quietly.
pub fn meta_delete_if(buf: &mut BytesMut, prefix: &[u8], key: &[u8], cas: u64, opaque: Opaque) {
    buf.reserve(3 + prefix.len() + key.len() + 38);
    buf.put_slice(b"md ");
    put_key(buf, prefix, key);
    buf.put_slice(b" C");
    put_u64(buf, cas);
    buf.put_slice(b" q");
    end_with_opaque(buf, opaque);
}

/// `ms <key> <bytes> [F<flags>] [T<ttl>] [C<cas>] [M<mode>] [q] O<opaque>\r\n<data>\r\n`.
/// Zero flags and ttl are left out (they are the server's defaults).
#[allow(clippy::too_many_arguments)]
pub fn meta_store(
    buf: &mut BytesMut,
    cmd: StoreCommand,
    prefix: &[u8],
    key: &[u8],
    flags: u32,
    exptime: u32,
    data: &[u8],
    quiet: bool,
    opaque: Opaque,
) {
    buf.reserve(store_len(prefix.len() + key.len(), data.len()) + 12);
    buf.put_slice(b"ms ");
    put_key(buf, prefix, key);
    buf.put_u8(b' ');
    put_u64(buf, data.len() as u64);
    if flags != 0 {
        buf.put_slice(b" F");
        put_u64(buf, u64::from(flags));
    }
    if exptime != 0 {
        buf.put_slice(b" T");
        put_u64(buf, u64::from(exptime));
    }
    match cmd {
        StoreCommand::Set => {}
        StoreCommand::Add => buf.put_slice(b" ME"),
        StoreCommand::Replace => buf.put_slice(b" MR"),
        StoreCommand::Append => buf.put_slice(b" MA"),
        StoreCommand::Prepend => buf.put_slice(b" MP"),
        StoreCommand::Cas(token) => {
            buf.put_slice(b" C");
            put_u64(buf, token);
        }
    }
    if quiet {
        buf.put_slice(b" q");
    }
    put_opaque(buf, opaque);
    buf.put_slice(b"\r\n");
    buf.put_slice(data);
    buf.put_slice(b"\r\n");
}

/// `md <key> [q] O<opaque>\r\n`
pub fn meta_delete(buf: &mut BytesMut, prefix: &[u8], key: &[u8], quiet: bool, opaque: Opaque) {
    buf.reserve(3 + prefix.len() + key.len() + 16);
    buf.put_slice(b"md ");
    put_key(buf, prefix, key);
    if quiet {
        buf.put_slice(b" q");
    }
    end_with_opaque(buf, opaque);
}

/// `ma <key> [MD] D<delta> O<opaque> (v|q)\r\n`: with a reply, the new value (`v`); quiet,
/// nothing on success. (`v` and `q` are never combined: memcached 1.6.18 then swallows the
/// value.)
pub fn meta_arith(
    buf: &mut BytesMut,
    incr: bool,
    prefix: &[u8],
    key: &[u8],
    delta: u64,
    quiet: bool,
    opaque: Opaque,
) {
    buf.reserve(3 + prefix.len() + key.len() + 44);
    buf.put_slice(b"ma ");
    put_key(buf, prefix, key);
    if !incr {
        buf.put_slice(b" MD");
    }
    buf.put_slice(b" D");
    put_u64(buf, delta);
    put_opaque(buf, opaque);
    buf.put_slice(if quiet { b" q\r\n" } else { b" v\r\n" });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn encodes_every_command() {
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (
                enc(|b| store(b, StoreCommand::Set, b"p:", b"k", 5, 60, b"hello", false)),
                b"set p:k 5 60 5\r\nhello\r\n",
            ),
            (
                enc(|b| store(b, StoreCommand::Add, b"", b"k", 0, 0, b"", true)),
                b"add k 0 0 0 noreply\r\n\r\n",
            ),
            (
                enc(|b| store(b, StoreCommand::Cas(99), b"", b"k", 1, 2, b"v", false)),
                b"cas k 1 2 1 99\r\nv\r\n",
            ),
            (
                enc(|b| store(b, StoreCommand::Prepend, b"", b"k", 0, 0, b"v", false)),
                b"prepend k 0 0 1\r\nv\r\n",
            ),
            (
                enc(|b| retrieve(b, false, None, b"p:", [&b"a"[..], b"b"])),
                b"get p:a p:b\r\n",
            ),
            (
                enc(|b| retrieve(b, true, Some(30), b"", [&b"a"[..]])),
                b"gats 30 a\r\n",
            ),
            (
                enc(|b| retrieve(b, false, Some(0), b"", [&b"a"[..]])),
                b"gat 0 a\r\n",
            ),
            (enc(|b| delete(b, b"", b"k", true)), b"delete k noreply\r\n"),
            (
                enc(|b| arith(b, true, b"", b"n", u64::MAX, false)),
                b"incr n 18446744073709551615\r\n",
            ),
            (
                enc(|b| arith(b, false, b"", b"n", 1, true)),
                b"decr n 1 noreply\r\n",
            ),
            (enc(|b| touch(b, b"", b"k", 10, false)), b"touch k 10\r\n"),
            (
                enc(|b| simple(b, "flush_all", &[5], true)),
                b"flush_all 5 noreply\r\n",
            ),
            (enc(|b| simple(b, "version", &[], false)), b"version\r\n"),
            (enc(|b| stats(b, [&b"slabs"[..]])), b"stats slabs\r\n"),
            (
                enc(|b| meta_get(b, b"p:", b"k", true, false, None, None, 7)),
                b"mg p:k v f O0007\r\n",
            ),
            (
                enc(|b| meta_get(b, b"", b"k", true, true, Some(9), Some(30), 0)),
                b"mg k v f c T9 N30 O0000\r\n",
            ),
            (
                enc(|b| meta_get(b, b"", b"k", false, false, Some(9), None, 1)),
                b"mg k T9 O0001\r\n",
            ),
            (
                enc(|b| meta_lease_get(b, b"p:", b"k", 30, None, 3)),
                b"mg p:k v f c N30 O0003\r\n",
            ),
            (
                enc(|b| meta_lease_get(b, b"", b"k", 30, Some(10), 4)),
                b"mg k v f c N30 R10 O0004\r\n",
            ),
            (
                enc(|b| meta_invalidate(b, b"p:", b"k", Some(30), false, 5)),
                b"md p:k I T30 O0005\r\n",
            ),
            (
                enc(|b| meta_invalidate(b, b"", b"k", None, true, 6)),
                b"md k I q O0006\r\n",
            ),
            (
                enc(|b| meta_store(b, StoreCommand::Set, b"", b"k", 0, 0, b"hi", false, 2)),
                b"ms k 2 O0002\r\nhi\r\n",
            ),
            (
                enc(|b| {
                    meta_store(
                        b,
                        StoreCommand::Cas(7),
                        b"",
                        b"k",
                        3,
                        60,
                        b"hi",
                        true,
                        0xbeef,
                    )
                }),
                b"ms k 2 F3 T60 C7 q Obeef\r\nhi\r\n",
            ),
            (
                enc(|b| meta_store(b, StoreCommand::Add, b"", b"k", 0, 0, b"", false, 3)),
                b"ms k 0 ME O0003\r\n\r\n",
            ),
            (
                enc(|b| meta_delete(b, b"", b"k", true, 5)),
                b"md k q O0005\r\n",
            ),
            (
                enc(|b| meta_arith(b, true, b"", b"n", 5, false, 6)),
                b"ma n D5 O0006 v\r\n",
            ),
            (
                enc(|b| meta_arith(b, false, b"", b"n", 5, true, 8)),
                b"ma n MD D5 O0008 q\r\n",
            ),
            (
                enc(|b| meta_delete_if(b, b"p:", b"k", 12, 9)),
                b"md p:k C12 q O0009\r\n",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        }
    }
}
