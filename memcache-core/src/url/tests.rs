//! Every parameter reaches its setting, every server form its address, every error names
//! its part, and no input panics.

use std::time::Duration;

use super::value;
use super::PARAMETERS;
use crate::config::{ClientBuilder, Config, Distribution, Protocol};
use crate::error::{Error, IllegalInput};

/// The configuration a URL gives, checked as `build()` checks it.
fn config(url: &str) -> Config {
    let builder = ClientBuilder::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    builder
        .into_config()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The configuration the builder methods give.
fn built(builder: ClientBuilder) -> Config {
    builder
        .into_config()
        .expect("the builder's settings are valid")
}

/// `Config` has no `PartialEq`; its `Debug` shows every field.
fn same(a: &Config, b: &Config) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn every_parameter_reaches_its_setting() {
    let ms = Duration::from_millis;
    let cases: Vec<(&str, ClientBuilder)> = vec![
        ("timeout=200ms", ClientBuilder::new().timeout(ms(200))),
        (
            "timeout=unlimited",
            ClientBuilder::new().timeout(Duration::MAX),
        ),
        (
            "connect_timeout=1.5s",
            ClientBuilder::new().connect_timeout(ms(1500)),
        ),
        (
            "connect_timeout=Unlimited",
            ClientBuilder::new().connect_timeout(Duration::MAX),
        ),
        ("no_delay=off", ClientBuilder::new().no_delay(false)),
        (
            "tcp_keepalive=30s",
            ClientBuilder::new().tcp_keepalive(Some(ms(30_000))),
        ),
        ("ignore_exc=yes", ClientBuilder::new().ignore_exc(true)),
        ("key_prefix=app%3A", ClientBuilder::new().key_prefix("app:")),
        (
            "default_noreply=0",
            ClientBuilder::new().default_noreply(false),
        ),
        (
            "allow_unicode_keys=TRUE",
            ClientBuilder::new().allow_unicode_keys(true),
        ),
        (
            "max_value_size=512k",
            ClientBuilder::new().max_value_size(512 * 1024),
        ),
        (
            "max_value_size=2MiB",
            ClientBuilder::new().max_value_size(2 << 20),
        ),
        (
            "max_value_size=1048577",
            ClientBuilder::new().max_value_size(1_048_577),
        ),
        (
            "protocol=classic",
            ClientBuilder::new().protocol(Protocol::Classic),
        ),
        (
            "protocol=Meta",
            ClientBuilder::new().protocol(Protocol::Meta),
        ),
        ("join_gets=on", ClientBuilder::new().join_gets(true)),
        (
            "reconnect_backoff=10ms..2s",
            ClientBuilder::new().reconnect_backoff(ms(10), ms(2000)),
        ),
        (
            "distribution=ketama",
            ClientBuilder::new().distribution(Distribution::Ketama),
        ),
        ("failover=true", ClientBuilder::new().failover(true)),
        ("retry_attempts=5", ClientBuilder::new().retry_attempts(5)),
        (
            "retry_timeout=250ms",
            ClientBuilder::new().retry_timeout(ms(250)),
        ),
        (
            "dead_timeout=2m",
            ClientBuilder::new().dead_timeout(ms(120_000)),
        ),
        (
            "names=alpha",
            ClientBuilder::new().named_server("cache:11211", 1, "alpha"),
        ),
    ];
    let default = built(ClientBuilder::new().server("cache:11211"));
    for (query, by_method) in cases {
        let url = format!("memcache://cache:11211/?{query}");
        let by_url = config(&url);
        let mut by_method = by_method;
        if !query.starts_with("names=") {
            by_method = by_method.server("cache:11211");
        }
        let by_method = built(by_method);
        assert!(
            same(&by_url, &by_method),
            "{url}:\n{by_url:?}\n{by_method:?}"
        );
        assert!(!same(&by_url, &default), "{url} changed nothing");
    }
    // a table that misses a parameter misses a test
    let tested = "timeout connect_timeout no_delay tcp_keepalive ignore_exc key_prefix \
                  default_noreply allow_unicode_keys max_value_size protocol join_gets \
                  reconnect_backoff distribution failover retry_attempts retry_timeout \
                  dead_timeout names";
    let tested: Vec<&str> = tested.split_whitespace().collect();
    assert_eq!(tested, PARAMETERS);
}

#[test]
fn values_that_are_the_defaults() {
    let default = built(ClientBuilder::new().server("cache:11211"));
    for query in [
        "",
        "tcp_keepalive=off",
        "tcp_keepalive=NONE",
        "protocol=auto",
        "distribution=rendezvous",
        "key_prefix=",
        "timeout=1s&connect_timeout=1000ms",
        "&&no_delay=1&",
        "retry_attempts=2&retry_timeout=1s&dead_timeout=1m&failover=no",
        "reconnect_backoff=50ms..5s&max_value_size=1M&join_gets=false",
    ] {
        for url in [
            format!("memcache://cache:11211/?{query}"),
            format!("memcache://cache:11211?{query}"),
            format!("MemCache://cache?{query}"),
        ] {
            assert!(same(&config(&url), &default), "{url}");
        }
    }
    assert!(same(&config("memcache://cache:11211"), &default));
    assert!(same(&config("memcache://cache:11211/"), &default));
}

#[test]
fn servers_weights_and_names() {
    let cases: Vec<(&str, ClientBuilder)> = vec![
        (
            "memcache://h1,h2:11212,h3:11213:3",
            ClientBuilder::new()
                .weighted_server("h1:11211", 1)
                .weighted_server("h2:11212", 1)
                .weighted_server("h3:11213", 3),
        ),
        (
            "memcache://h1:5:7",
            ClientBuilder::new().weighted_server("h1:5", 7),
        ),
        (
            "memcache://[::1]",
            ClientBuilder::new().server("[::1]:11211"),
        ),
        (
            "memcache://[::1],[::1]:5000,[fe80::2]:6000:4/",
            ClientBuilder::new()
                .weighted_server("[::1]", 1)
                .weighted_server("[::1]:5000", 1)
                .weighted_server("[fe80::2]:6000", 4),
        ),
        (
            "memcache://%2Frun%2Fa.sock,%2frun%2fb%3A1.sock:2",
            ClientBuilder::new()
                .weighted_server("/run/a.sock", 1)
                .weighted_server("/run/b:1.sock", 2),
        ),
        (
            "memcache:///run/memcached.sock",
            ClientBuilder::new().server("/run/memcached.sock"),
        ),
        (
            "memcache:///run/mc%2Dx:1.sock?timeout=1s",
            ClientBuilder::new().server("unix:/run/mc-x:1.sock"),
        ),
        (
            "memcache://10.0.0.1,[::1]:7,%2Ftmp%2Fm.sock:5?names=a,b%2C,c&distribution=ketama",
            ClientBuilder::new()
                .named_server("10.0.0.1", 1, "a")
                .named_server("[::1]:7", 1, "b,")
                .named_server("/tmp/m.sock", 5, "c")
                .distribution(Distribution::Ketama),
        ),
        (
            "memcache:///run/m.sock?names=solo",
            ClientBuilder::new().named_server("/run/m.sock", 1, "solo"),
        ),
    ];
    for (url, by_method) in cases {
        let by_url = config(url);
        let by_method = built(by_method);
        assert!(
            same(&by_url, &by_method),
            "{url}:\n{by_url:?}\n{by_method:?}"
        );
    }
    // FromStr is from_url
    let parsed: ClientBuilder = "memcache://h1,h2?timeout=5s".parse().unwrap();
    let parsed = built(parsed);
    assert_eq!(parsed.servers.len(), 2);
    assert_eq!(parsed.timeout, Duration::from_secs(5));
    // still a builder: a later setting wins
    let later = ClientBuilder::from_url("memcache://h1?timeout=5s").unwrap();
    assert_eq!(
        built(later.timeout(Duration::from_secs(2))).timeout,
        Duration::from_secs(2)
    );
}

/// The part and the reason of a URL error.
fn url_error(url: &str) -> (String, String) {
    match ClientBuilder::from_url(url) {
        Err(Error::IllegalInput(IllegalInput::Url { part, reason })) => (part, reason),
        Err(other) => panic!("{url}: not a URL error: {other:?}"),
        Ok(builder) => panic!("{url}: parsed as {builder:?}"),
    }
}

#[test]
fn every_error_names_its_part() {
    let timeout = "query parameter \"timeout\"";
    let cases: &[(&str, &str, &str)] = &[
        ("", "scheme", "missing"),
        ("cache:11211", "scheme", "\"cache\" is not memcache"),
        ("http://h", "scheme", "\"http\" is not memcache"),
        ("memcached://h", "scheme", "\"memcached\""),
        ("memcache:h", "scheme", "followed by //"),
        ("memcache://h#top", "fragment", "\"#top\""),
        ("memcache://h/?timeout=1s#x", "fragment", "no fragment"),
        ("memcache://user@h", "user information", "needs a password"),
        ("memcache://", "authority", "no server"),
        ("memcache:///", "authority", "no server"),
        ("memcache:///?timeout=1s", "authority", "no server"),
        ("memcache://h 1", "authority", "' ' at byte 1"),
        ("memcache://h\t1", "authority", "'\\t'"),
        ("memcache://h1,,h2", "server 2 of 3", "is empty"),
        ("memcache://h1,", "server 2 of 2", "is empty"),
        (",memcache://", "scheme", "is not memcache"),
        ("memcache://h:99999", "server \"h:99999\"", "port"),
        ("memcache://h:", "server \"h:\"", "port"),
        ("memcache://h:x", "server \"h:x\"", "port"),
        ("memcache://h:+5", "server \"h:+5\"", "port"),
        ("memcache://h:1:0", "server \"h:1:0\"", "weight 0"),
        ("memcache://h:1:x", "server \"h:1:x\"", "weight"),
        ("memcache://h:1:2:3", "server \"h:1:2:3\"", "IPv6"),
        ("memcache://fe80::1:2", "server \"fe80::1:2\"", "brackets"),
        ("memcache://[::1", "server \"[::1\"", "']'"),
        ("memcache://[::1]x", "server \"[::1]x\"", "':port'"),
        ("memcache://[::1]:5:0", "server \"[::1]:5:0\"", "weight 0"),
        (
            "memcache://%2Fa.sock:0",
            "server \"%2Fa.sock:0\"",
            "weight 0",
        ),
        ("memcache://%2Fa.sock:", "server \"%2Fa.sock:\"", "weight"),
        (
            "memcache://%2Fa.sock:1:2",
            "server \"%2Fa.sock:1:2\"",
            "%3A",
        ),
        (
            "memcache://%2Fa%G1",
            "server \"%2Fa%G1\"",
            "bad percent-escape \"%G1\" at byte 4",
        ),
        (
            "memcache://%2Fa%4",
            "server \"%2Fa%4\"",
            "bad percent-escape \"%4\"",
        ),
        ("memcache://%2Fa%", "server \"%2Fa%\"", "bad percent-escape"),
        ("memcache://%2Fa%FF", "server \"%2Fa%FF\"", "not UTF-8"),
        ("memcache://%2Fd%2F", "server \"%2Fd%2F\"", "ends with '/'"),
        ("memcache://%2Fa%20b", "server \"%2Fa%20b\"", "whitespace"),
        ("memcache://%2Fa%00", "server \"%2Fa%00\"", "control"),
        ("memcache://h%41", "server \"h%41\"", "'%'"),
        ("memcache://unix:%2Fx", "server \"unix:%2Fx\"", "'%'"),
        ("memcache://unix:x", "server \"unix:x\"", "unix socket"),
        ("memcache://h/extra", "path", "\"/extra\" after servers"),
        ("memcache://h//", "path", "after servers"),
        ("memcache:///run/a%20b.sock", "path", "whitespace"),
        ("memcache:///run/dir/", "path", "ends with '/'"),
        ("memcache:///run/%FF", "path", "not UTF-8"),
        ("memcache:///run/%zz", "path", "bad percent-escape"),
        ("memcache:///run/a b", "path", "' '"),
        ("memcache://h/?timeout=1 s", "query", "' ' at byte 9"),
        (
            "memcache://h/?timeout=fast",
            timeout,
            "\"fast\" is not a duration (e.g. 200ms, 1s",
        ),
        ("memcache://h/?timeout=200", timeout, "no unit"),
        ("memcache://h/?timeout=0", timeout, "no unit"),
        ("memcache://h/?timeout=", timeout, "empty value"),
        ("memcache://h/?timeout", timeout, "no value"),
        ("memcache://h/?timeout=-1s", timeout, "not a duration"),
        ("memcache://h/?timeout=1.s", timeout, "not a duration"),
        ("memcache://h/?timeout=.5s", timeout, "not a duration"),
        ("memcache://h/?timeout=1%ZZs", timeout, "bad percent-escape"),
        (
            "memcache://h/?timeout=1s&timeout=2s",
            timeout,
            "given twice",
        ),
        (
            "memcache://h/?timout=1s",
            "query parameter \"timout\"",
            "unknown (known: timeout,",
        ),
        (
            "memcache://h/?Timeout=1s",
            "query parameter \"Timeout\"",
            "unknown",
        ),
        ("memcache://h/?=1s", "query parameter \"\"", "unknown"),
        (
            "memcache://h/?connect_timeout=forever",
            "query parameter \"connect_timeout\"",
            "unlimited",
        ),
        (
            "memcache://h/?no_delay=maybe",
            "query parameter \"no_delay\"",
            "not a boolean",
        ),
        (
            "memcache://h/?tcp_keepalive=rarely",
            "query parameter \"tcp_keepalive\"",
            "off / none",
        ),
        (
            "memcache://h/?ignore_exc=",
            "query parameter \"ignore_exc\"",
            "empty value",
        ),
        (
            "memcache://h/?key_prefix=%ZZ",
            "query parameter \"key_prefix\"",
            "percent-escape",
        ),
        (
            "memcache://h/?max_value_size=1X",
            "query parameter \"max_value_size\"",
            "not a size",
        ),
        (
            "memcache://h/?max_value_size=k",
            "query parameter \"max_value_size\"",
            "not a size",
        ),
        (
            "memcache://h/?max_value_size=1kb",
            "query parameter \"max_value_size\"",
            "not a size",
        ),
        (
            "memcache://h/?max_value_size=99999999999999999999G",
            "query parameter \"max_value_size\"",
            "too large",
        ),
        (
            "memcache://h/?max_value_size=17179869184G",
            "query parameter \"max_value_size\"",
            "too large",
        ),
        (
            "memcache://h/?protocol=binary",
            "query parameter \"protocol\"",
            "auto, classic or meta",
        ),
        (
            "memcache://h/?join_gets=2",
            "query parameter \"join_gets\"",
            "not a boolean",
        ),
        (
            "memcache://h/?reconnect_backoff=50ms",
            "query parameter \"reconnect_backoff\"",
            "initial..max",
        ),
        (
            "memcache://h/?reconnect_backoff=50ms..x",
            "query parameter \"reconnect_backoff\"",
            "max: \"x\"",
        ),
        (
            "memcache://h/?reconnect_backoff=..1s",
            "query parameter \"reconnect_backoff\"",
            "initial",
        ),
        (
            "memcache://h/?distribution=modula",
            "query parameter \"distribution\"",
            "rendezvous or ketama",
        ),
        (
            "memcache://h/?failover=%FF",
            "query parameter \"failover\"",
            "not UTF-8",
        ),
        (
            "memcache://h/?retry_attempts=-1",
            "query parameter \"retry_attempts\"",
            "whole number",
        ),
        (
            "memcache://h/?retry_attempts=+1",
            "query parameter \"retry_attempts\"",
            "whole number",
        ),
        (
            "memcache://h/?retry_attempts=4294967296",
            "query parameter \"retry_attempts\"",
            "whole number",
        ),
        (
            "memcache://h/?retry_timeout=1.2.3s",
            "query parameter \"retry_timeout\"",
            "not a duration",
        ),
        (
            "memcache://h/?dead_timeout=1.0000000001s",
            "query parameter \"dead_timeout\"",
            "nine digits",
        ),
        (
            "memcache://h/?dead_timeout=18446744073709551616s",
            "query parameter \"dead_timeout\"",
            "longer",
        ),
        (
            "memcache://h/?dead_timeout=999999999999999999999999999999999999999999h",
            "query parameter \"dead_timeout\"",
            "longer",
        ),
        (
            "memcache://h/?names=a,b",
            "query parameter \"names\"",
            "gives 2 names for 1 server (",
        ),
        (
            "memcache://h1,h2/?names=a",
            "query parameter \"names\"",
            "gives 1 name for 2 servers",
        ),
        (
            "memcache://h/?names=",
            "query parameter \"names\"",
            "empty value",
        ),
        (
            "memcache://h/?names=%FF",
            "query parameter \"names\"",
            "not UTF-8",
        ),
        (
            "memcache://h/?names=a&names=a",
            "query parameter \"names\"",
            "twice",
        ),
    ];
    for &(url, part, reason) in cases {
        let (got_part, got_reason) = url_error(url);
        assert_eq!(got_part, part, "{url}: {got_reason}");
        assert!(
            got_reason.contains(reason),
            "{url}: {got_part}: {got_reason:?} lacks {reason:?}"
        );
        let error = ClientBuilder::from_url(url).unwrap_err();
        assert!(error.is_illegal_input());
        assert_eq!(
            error.to_string(),
            format!("illegal input: url: {got_part}: {got_reason}")
        );
    }
}

#[test]
fn settings_that_parse_are_checked_by_build() {
    for url in [
        "memcache://h,h",
        "memcache://h,h:11211",
        "memcache://%2Fa.sock,%2Fa.sock",
        "memcache://h?timeout=0s",
        "memcache://h?connect_timeout=0ms",
        "memcache://h?max_value_size=2G",
        "memcache://h?tcp_keepalive=0s",
        "memcache://h?tcp_keepalive=10h",
        "memcache://h?reconnect_backoff=5s..1s",
        "memcache://h1,h2?names=a,a",
        "memcache://h1,h2,h3?names=a,,b",
        "memcache://h?key_prefix=a%20b",
        "memcache://h?key_prefix=%C3%A9",
    ] {
        let builder = ClientBuilder::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let error = builder.into_config().expect_err(url);
        assert!(error.is_illegal_input(), "{url}: {error:?}");
    }
    // a non-UTF-8 prefix is bytes, allowed with unicode keys
    let prefix = config("memcache://h?key_prefix=%C3%A9%FF&allow_unicode_keys=1");
    assert_eq!(prefix.keys.prefix(), b"\xc3\xa9\xff");
}

#[test]
fn durations() {
    let ok = [
        ("1ns", Duration::from_nanos(1)),
        ("500us", Duration::from_micros(500)),
        ("200ms", Duration::from_millis(200)),
        ("0s", Duration::ZERO),
        ("0.000000001s", Duration::from_nanos(1)),
        ("1.5s", Duration::from_millis(1500)),
        ("1.25ms", Duration::from_micros(1250)),
        ("0.5m", Duration::from_secs(30)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("007s", Duration::from_secs(7)),
        ("18446744073709551615s", Duration::from_secs(u64::MAX)),
        ("18446744073709551615.999999999s", Duration::MAX),
    ];
    for (text, want) in ok {
        assert_eq!(value::duration(text), Ok(want), "{text}");
    }
    for bad in [
        "", "s", "1", "1.5", "1S", "1sec", "1 s", "1e3ms", "1m30s", "µs", "1.", ".1s",
    ] {
        assert!(value::duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(value::limit("UNLIMITED"), Ok(Duration::MAX));
}

#[test]
fn sizes_booleans_counts_and_escapes() {
    for (text, want) in [
        ("0", 0),
        ("1b", 1),
        ("2K", 2048),
        ("1kib", 1024),
        ("3m", 3 << 20),
        ("1GiB", 1 << 30),
    ] {
        assert_eq!(value::size(text), Ok(want), "{text}");
    }
    for (text, want) in [
        ("true", true),
        ("On", true),
        ("YES", true),
        ("1", true),
        ("off", false),
        ("No", false),
        ("0", false),
        ("FALSE", false),
    ] {
        assert_eq!(value::boolean(text), Ok(want), "{text}");
    }
    assert!(value::boolean("y").is_err());
    assert_eq!(value::count("4294967295"), Ok(u32::MAX));
    assert!(value::count("").is_err());
    assert_eq!(
        value::percent_decode("a%2fb%2F%25+"),
        Ok(b"a/b/%+".to_vec())
    );
    assert_eq!(
        value::percent_decode("é%C3%A9"),
        Ok("éé".as_bytes().to_vec())
    );
    assert!(value::percent_decode("%é").is_err());
    assert!(value::text("%C3").is_err());
}

/// A small deterministic generator (xorshift64*), for the fuzz test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses, and builds what parses: neither may panic.
fn try_everything(url: &str) {
    if let Ok(builder) = ClientBuilder::from_url(url) {
        let _ = builder.into_config();
    }
}

#[test]
fn no_input_panics() {
    let seeds = [
        "memcache://h1:11211,[::1]:5:2,%2Frun%2Fa%3A.sock:3/?timeout=1.5s&names=a,b,c",
        "memcache:///run/m.sock?reconnect_backoff=50ms..5s&max_value_size=1MiB&key_prefix=%41",
        "MEMCACHE://[fe80::1]?tcp_keepalive=off&protocol=meta&distribution=ketama&retry_attempts=9",
    ];
    // every truncation at a character boundary, and every byte replaced by a special one
    let specials = [
        '%', ':', ',', '/', '?', '&', '=', '[', ']', '#', '@', '.', ' ', 'é', '\0',
    ];
    for seed in seeds {
        for (at, _) in seed.char_indices() {
            try_everything(&seed[..at]);
            try_everything(&seed[at..]);
            for special in specials {
                let mut mutated = seed[..at].to_owned();
                mutated.push(special);
                mutated.push_str(&seed[at..].chars().skip(1).collect::<String>());
                try_everything(&mutated);
            }
        }
    }
    // random text over an alphabet of the grammar's characters and others
    let alphabet: Vec<char> = "memcache:/%2F3A,.[]:?&=#@0123456789kKmMsuhx- \té\u{10ffff}\u{85}"
        .chars()
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(60);
        let mut text = if rng.below(2) == 0 {
            "memcache://".to_owned()
        } else {
            String::new()
        };
        for _ in 0..len {
            let c = match rng.below(8) {
                0 => char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('?'),
                _ => alphabet[rng.below(alphabet.len())],
            };
            text.push(c);
        }
        try_everything(&text);
        // random bytes, where they happen to be UTF-8
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            try_everything(text);
        }
        try_everything(&format!("memcache://h?{}", String::from_utf8_lossy(&bytes)));
    }
}

#[test]
fn credentials_go_before_the_servers() {
    use crate::credentials::Credentials;
    let got = config("memcache://alice:s3%3Acret@h1:11211,h2/?timeout=1s");
    let expected = Credentials::new("alice".into(), "s3:cret".into());
    assert_eq!(got.credentials, Some(expected));
    assert_eq!(got.servers.len(), 2);
    for (url, says) in [
        ("memcache://alice@h", "needs a password"),
        ("memcache://alice:pw%FF@h", "password is not valid"),
    ] {
        let error = ClientBuilder::from_url(url).unwrap_err().to_string();
        assert!(
            error.contains(says) && !error.contains("pw"),
            "{url}: {error}"
        );
    }
    // Parses, but build() refuses what memcached's login line cannot carry.
    let error = config_error("memcache://alice:two%20words@h");
    assert!(
        !error.contains("two") && error.contains("password"),
        "{error}"
    );
}

fn config_error(url: &str) -> String {
    let builder = ClientBuilder::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    builder.into_config().unwrap_err().to_string()
}
