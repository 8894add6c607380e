use super::*;
use crate::protocol::parse::plain_value_header;
use crate::protocol::response::Opaque;

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

/// A retrieval of up to 16 keys.
const VALUES: Expect = Expect {
    kind: Kind::Values,
    count: 1,
    opaque: None,
    items: 16,
};

/// A small deterministic generator (xorshift64) for the randomized tests.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
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
                opaque: None,
                items: 1,
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
            Expect {
                items: 2,
                ..one(Kind::Quiet)
            },
            one(Kind::Quiet),
        ],
    )
    .unwrap();
    assert_eq!(
        got,
        [
            "Value(Some(Item { key: b\"\", flags: 3, cas: Some(128013), data: b\"hello\", lease: 0, too_large: None }))",
            "Value(Some(Item { key: b\"\", flags: 3, cas: None, data: b\"\", lease: 0, too_large: None }))",
            "Value(None)",
            "Value(Some(Item { key: b\"\", flags: 0, cas: None, data: b\"\", lease: 0, too_large: None }))",
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
        ["Value(Some(Item { key: b\"\", flags: 7, cas: None, data: b\"abc\", lease: 0, too_large: None }))"]
    );
    assert_eq!(plain_value_header(b"VA 3 f7\r\n"), Some((8, 3, 7, None)));
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
    assert_eq!(
        lease,
        [
            "1, too_large: None }))",
            "6, too_large: None }))",
            "5, too_large: None }))",
            "0, too_large: None }))"
        ]
    );
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
#[test]
fn arbitrary_bytes_never_panic() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let valid: &[&[u8]] = &[
        b"VALUE k 5 3 9\r\nabc\r\nVALUE kk 0 0\r\n\r\nEND\r\n",
        b"VA 3 f1 c2 W Z X t-1\r\nabc\r\nHD f3\r\nEN\r\nNF\r\nNS\r\nEX\r\n",
        b"VA 3 f1 O0000\r\nabc\r\nHD O0001\r\nEN O0002\r\nNS O0000\r\nMN\r\nVALUE k 0 99999\r\n",
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
    const ALPHABET: &[u8] = b"VALUEND STAHDNFXWZOc0123456789 \r\n\r\n-f";
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
            opaque: (next() % 2 == 0).then(|| (next() % 4) as Opaque),
            items: 1 + (next() % 3) as u32,
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

/// A decoder with a small limit, a buffer fed `input` in pieces of `piece` bytes, and the
/// responses to `expects` (`Err` with the error's text).
fn decode_small(input: &[u8], piece: usize, expects: &[Expect]) -> Vec<Result<String, String>> {
    let mut decoder = Decoder::new(16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut next = 0;
    for chunk in input.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        // A skipped value never makes the buffer hold more than what was just fed.
        assert!(
            buf.len() <= piece.max(1) + 64,
            "{} bytes buffered",
            buf.len()
        );
        while next < expects.len() {
            match decoder.decode(&mut buf, expects[next]) {
                Ok(Some(Response::Failed(error))) => out.push(Err(error.to_string())),
                Ok(Some(response)) => out.push(Ok(format!("{response:?}"))),
                Ok(None) => break,
                Err(error) => return vec![Err(format!("fatal: {error}"))],
            }
            next += 1;
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

/// A value over the limit is skipped as it streams past (nothing is buffered or allocated
/// for it) and fails its own request only: the replies after it decode, however the bytes
/// arrive.
#[test]
fn an_oversized_value_is_skipped_and_fails_only_its_reply() {
    let big = vec![b'x'; 5_000];
    let mut input = Vec::new();
    input.extend_from_slice(b"VALUE big 3 5000\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\r\nEND\r\nVA 5000 f1 O0007\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\r\nVA 2 f1 O0008\r\nok\r\nVALUE a 0 1\r\na\r\nVALUE big 0 5000\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\r\nEND\r\n");
    let meta = |opaque| Expect {
        opaque: Some(opaque),
        ..Expect::one(Kind::MetaGet)
    };
    let expects = [VALUES, meta(7), meta(8), VALUES];
    for piece in [1, 7, 64, 4096, input.len()] {
        let got = decode_small(&input, piece, &expects);
        assert_eq!(got.len(), 4, "piece {piece}: {got:?}");
        assert!(
            got[0].as_ref().unwrap().contains("too_large: Some(5000)"),
            "piece {piece}: {:?}",
            got[0]
        );
        assert!(got[0].as_ref().unwrap().contains("key: b\"big\""));
        assert_eq!(
            got[1],
            Err("the server announced a 5000-byte value, over the 16-byte limit".into())
        );
        assert!(
            got[2].as_ref().unwrap().contains("data: b\"ok\""),
            "{:?}",
            got[2]
        );
        let last = got[3].as_ref().unwrap();
        assert!(last.contains("data: b\"a\"") && last.contains("too_large: Some(5000)"));
    }
}

/// Sizes near `u64::MAX` with a limit of `usize::MAX` neither overflow nor allocate: the
/// value is skipped (and a CRLF where the announced size says none can be is garbage).
#[test]
fn enormous_sizes_never_overflow() {
    for size in [u64::MAX, u64::MAX - 1, 18_446_744_073_709_551_582, 1 << 62] {
        let mut decoder = Decoder::new(usize::MAX);
        let mut buf = BytesMut::from(format!("VALUE k 0 {size}\r\nabc").as_bytes());
        assert!(decoder.decode(&mut buf, VALUES).unwrap().is_none());
        assert!(buf.is_empty() && buf.capacity() < 4096);
        let mut buf = BytesMut::from(format!("VA {size} f0\r\nabc").as_bytes());
        let mut decoder = Decoder::new(usize::MAX);
        let expect = Expect::one(Kind::MetaGet);
        assert!(decoder.decode(&mut buf, expect).unwrap().is_none());
        assert!(buf.capacity() < 4096);
    }
}

/// Each meta reply must echo its request's opaque token; a batch's replies echo
/// consecutive tokens. Error lines carry none.
#[test]
fn meta_replies_are_checked_against_their_opaque_token() {
    let expect = |kind, opaque| Expect {
        opaque: Some(opaque),
        ..Expect::one(kind)
    };
    let good = decode_all(
        b"VA 1 f0 O0005\r\nx\r\nEN O0006\r\nHD O0007\r\nNF O0008\r\nSERVER_ERROR busy\r\n\
          VA 1 Offff\r\n9\r\n",
        &[
            expect(Kind::MetaGet, 5),
            expect(Kind::MetaGet, 6),
            expect(Kind::MetaStore, 7),
            expect(Kind::MetaDelete, 8),
            expect(Kind::MetaStore, 9),
            expect(Kind::MetaArith, Opaque::MAX),
        ],
    )
    .unwrap();
    assert_eq!(good[1], "Value(None)");
    assert_eq!(good[4], "Failed(Server(\"busy\"))");
    assert_eq!(good[5], "Number(9)");
    let batch = Expect {
        kind: Kind::MetaStore,
        count: 3,
        opaque: Some(Opaque::MAX),
        items: 1,
    };
    let got = decode_all(b"HD Offff\r\nNS O0000\r\nHD O0001\r\n", &[batch]).unwrap();
    assert_eq!(
        got,
        ["Many([Status(Stored), Status(NotStored), Status(Stored)])"]
    );
    for (reply, kind, opaque) in [
        (&b"VA 1 f0 O0006\r\nx\r\n"[..], Kind::MetaGet, 5),
        (b"VA 1 f0\r\nx\r\n", Kind::MetaGet, 5),
        (b"VA 1 f0 O5\r\nx\r\n", Kind::MetaGet, 5),
        (b"EN\r\n", Kind::MetaGet, 5),
        (b"HD O0005 O0006\r\n", Kind::MetaStore, 6),
        (b"NF Oabcg\r\n", Kind::MetaDelete, 5),
        (b"NF O00005\r\n", Kind::MetaDelete, 5),
    ] {
        let err = decode_all(reply, &[expect(kind, opaque)]).unwrap_err();
        assert!(err.starts_with("unexpected response"), "{reply:?}: {err}");
    }
    let two = Expect {
        count: 2,
        opaque: Some(0),
        ..batch
    };
    let err = decode_all(b"HD O0000\r\nHD O0002\r\n", &[two]);
    assert!(err.unwrap_err().contains("opaque"));
}

/// The failure report of a quiet run holds at most one line per request of the run, each
/// status echoing a token of the run.
#[test]
fn a_quiet_run_reports_at_most_one_line_per_request() {
    let run = |items| Expect {
        kind: Kind::Quiet,
        count: 1,
        opaque: Some(10),
        items,
    };
    let got = decode_all(
        b"NS O000a\r\nSERVER_ERROR out of memory\r\nNF O000c\r\nMN\r\n",
        &[run(3)],
    )
    .unwrap();
    assert_eq!(got, ["Quiet([Server(\"out of memory\")])"]);
    for (reply, items) in [
        (&b"NS O000a\r\nNS O000b\r\nMN\r\n"[..], 1),
        (b"NS O000d\r\nMN\r\n", 3),
        (b"NS O0009\r\nMN\r\n", 3),
        (b"NS\r\nMN\r\n", 3),
    ] {
        let err = decode_all(reply, &[run(items)]).unwrap_err();
        assert!(err.starts_with("unexpected response"), "{reply:?}: {err}");
    }
}

/// A retrieval reply holds at most as many values as keys were asked; a `stats` reply at
/// most `MAX_STATS` lines.
#[test]
fn replies_hold_no_more_items_than_asked() {
    let two = Expect { items: 2, ..VALUES };
    assert!(decode_all(b"VALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nEND\r\n", &[two]).is_ok());
    let err = decode_all(
        b"VALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nVALUE c 0 1\r\nc\r\nEND\r\n",
        &[two],
    )
    .unwrap_err();
    assert!(err.contains("more values than keys"), "{err}");

    let mut decoder = Decoder::new(16);
    let mut buf = BytesMut::new();
    for i in 0..MAX_STATS {
        buf.extend_from_slice(format!("STAT s{i} 1\r\n").as_bytes());
    }
    let mut over = buf.clone();
    buf.extend_from_slice(b"END\r\n");
    let stats = Expect::one(Kind::Stats);
    assert!(
        matches!(decoder.decode(&mut buf, stats), Ok(Some(Response::Stats(s))) if s.len() == MAX_STATS)
    );
    over.extend_from_slice(b"STAT one more\r\nEND\r\n");
    assert!(Decoder::new(16).decode(&mut over, stats).is_err());
}

/// A value's header is parsed once: while its data arrives in pieces, the decoder keeps
/// what the header said. (Shown by overwriting the header's bytes, still at the front of
/// the buffer, after the first look: a decoder that parsed them again would refuse them.)
#[test]
fn a_pending_values_header_is_parsed_once() {
    for (header, expect) in [
        (&b"VALUE some-key 7 5\r\n"[..], VALUES),
        (b"VA 5 f7\r\n", Expect::one(Kind::MetaGet)),
        (b"VA 5 f7 c9\r\n", Expect::one(Kind::MetaGet)),
    ] {
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::from(header);
        buf.extend_from_slice(b"he");
        assert!(decoder.decode(&mut buf, expect).unwrap().is_none());
        // Garble the header (keeping its length and its line end).
        for byte in &mut buf[..header.len() - 2] {
            *byte = b'#';
        }
        buf.extend_from_slice(b"llo\r\n");
        if expect.kind == Kind::Values {
            assert!(
                decoder.decode(&mut buf, expect).unwrap().is_none(),
                "END to come"
            );
            buf.extend_from_slice(b"END\r\n");
        }
        let response = decoder.decode(&mut buf, expect).unwrap().expect("complete");
        let text = format!("{response:?}");
        assert!(
            text.contains("flags: 7") && text.contains("data: b\"hello\""),
            "{text}"
        );
        assert!(buf.is_empty());
    }
}
