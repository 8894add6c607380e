//! The URL form of a client's configuration: [`ClientBuilder::from_url`], and `FromStr` for
//! [`ClientBuilder`]. The URL only parses: what [`ClientBuilder::build`] checks (duplicate
//! servers and node names, zero timeouts, ranges, the key prefix) it still checks.

#[cfg(feature = "tls")]
mod tls;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::str::FromStr;

use crate::address::{ServerAddr, ServerSpec};
use crate::config::{ClientBuilder, Distribution, Protocol};
use crate::error::{Error, IllegalInput, Result};

use self::value::Parsed;

/// The query parameters, each named after the [`ClientBuilder`] method it calls (`names`
/// after [`ClientBuilder::named_server`]).
const PARAMETERS: [&str; 18] = [
    "timeout",
    "connect_timeout",
    "no_delay",
    "tcp_keepalive",
    "ignore_exc",
    "key_prefix",
    "default_noreply",
    "allow_unicode_keys",
    "max_value_size",
    "protocol",
    "join_gets",
    "reconnect_backoff",
    "distribution",
    "failover",
    "retry_attempts",
    "retry_timeout",
    "dead_timeout",
    "names",
];

/// The error for a URL whose `part` is wrong.
fn refuse(part: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::IllegalInput(IllegalInput::Url {
        part: part.into(),
        reason: reason.into(),
    })
}

/// How a query parameter is named in an error.
fn parameter(name: &str) -> String {
    format!("query parameter {name:?}")
}

/// How a server entry is named in an error.
fn server_part(entry: &str) -> String {
    format!("server {entry:?}")
}

/// A server as the URL gives it.
#[derive(Debug)]
struct Server {
    addr: ServerAddr,
    weight: Option<u32>,
}

impl ClientBuilder {
    /// A builder configured by a URL: the servers, then any setting as a query parameter.
    /// The result is a builder like any other: its settings can still be changed before
    /// [`build`](Self::build). `"memcache://..".parse::<ClientBuilder>()` does the same
    /// (`FromStr`).
    ///
    /// # Configuration from a URL
    ///
    /// One string can then carry a client's whole configuration, from an environment
    /// variable or a configuration file:
    ///
    /// ```
    /// use std::time::Duration;
    /// use memcache_core::ClientBuilder;
    ///
    /// let client = ClientBuilder::from_url(
    ///     "memcache://10.0.0.1:11211,10.0.0.2:11211:2/?distribution=ketama&timeout=200ms",
    /// )?
    /// .connect_timeout(Duration::from_millis(500)) // still a builder
    /// .build()?; // no I/O yet
    /// assert_eq!(client.timeout(), Duration::from_millis(200));
    /// assert_eq!(client.servers()[1].weight, 2);
    ///
    /// // one server on a unix socket, through FromStr
    /// let builder: ClientBuilder = "memcache:///run/memcached.sock?key_prefix=app%3A".parse()?;
    /// assert_eq!(builder.build()?.key_prefix(), b"app:");
    /// # Ok::<(), memcache_core::Error>(())
    /// ```
    ///
    /// # Grammar
    ///
    /// ```text
    /// url         = scheme "://" authority [ path ] [ "?" query ]
    /// scheme      = "memcache" / "memcaches"           ; in any case; memcaches: TLS
    /// authority   = [ user ":" password "@" ] servers  ; credentials, percent-encoded
    /// servers     = server *( "," server )             ; empty only before a socket path
    /// server      = host [ ":" port [ ":" weight ] ]
    ///             / "[" ipv6 "]" [ ":" port [ ":" weight ] ]
    ///             / "%2F" socket-path [ ":" weight ]   ; a unix socket, percent-encoded
    /// port        = 1*DIGIT                            ; 0 to 65535; default 11211
    /// weight      = 1*DIGIT                            ; 1 to 4294967295; default 1
    /// path        = "/"                                ; after servers: "/" or nothing
    ///             / "/" socket-path                    ; after an empty authority
    /// query       = param *( "&" param )               ; empty params are skipped
    /// param       = name "=" value
    /// ```
    ///
    /// - **Servers.** A host is written as is (no percent-escapes), an IPv6 address in
    ///   brackets; the port defaults to 11211 and is needed before a weight. A weight
    ///   (a whole number from 1) is a server's share under [`Distribution::Ketama`]. A unix
    ///   socket in the authority is its absolute path percent-encoded, starting `%2F` (`/`);
    ///   a raw `:` in such an entry starts its weight, a `:` in the path is written `%3A`:
    ///   `memcache://%2Frun%2Fmc-a.sock:1,%2Frun%2Fmc-b.sock:3`. A client of one unix socket
    ///   can name it in the path instead, after an empty authority:
    ///   `memcache:///run/memcached.sock` (the path percent-decoded). A socket path may not
    ///   end with `/`, nor contain whitespace or control characters.
    /// - **How the servers reach the builder.** One server without a weight is
    ///   [`server`](Self::server); otherwise each is a [`weighted_server`](Self::weighted_server)
    ///   (weight 1 when none is written), or, with `names`, a
    ///   [`named_server`](Self::named_server). Addresses are parsed as those methods parse
    ///   them.
    /// - **Values** are percent-decoded (`+` is a plus, not a space) and must be UTF-8,
    ///   except `key_prefix`, which may be any bytes. Keywords and booleans are read in any
    ///   case; parameter names and duration units are exact.
    /// - **Nowhere** may the URL hold whitespace or control characters (percent-encode
    ///   them), a fragment (`#..`), a parameter twice, or an unknown parameter.
    /// - **TLS** (feature `tls`): `memcaches://` speaks TLS to every server, as
    ///   `ClientBuilder::tls` with a `TlsConfig` that the `tls_*`
    ///   parameters set (Mozilla's roots when none): `memcaches://cache-a,cache-b/?tls_ca_file=%2Fetc%2Fca.pem`.
    ///   The `tls_*` parameters need `memcaches://`; without the feature, `memcaches://`
    ///   is refused.
    /// - **Credentials** for memcached's authentication
    ///   ([`credentials`](Self::credentials)) go before the servers, percent-encoded:
    ///   `memcache://alice:s3cret@cache-a,cache-b/`.
    ///
    /// # Parameters
    ///
    /// Each is named after the builder method it calls and defaults as that method says.
    ///
    /// | parameter | value |
    /// |---|---|
    /// | `timeout`, `connect_timeout` | a duration, or `unlimited` (`Duration::MAX`) |
    /// | `retry_timeout`, `dead_timeout` | a duration |
    /// | `tcp_keepalive` | a duration, or `off` / `none` (no keepalive) |
    /// | `reconnect_backoff` | two durations, `initial..max`: `50ms..5s` |
    /// | `no_delay`, `ignore_exc`, `default_noreply`, `allow_unicode_keys`, `join_gets`, `failover` | a boolean |
    /// | `key_prefix` | the prefix, percent-decoded (`app%3A` is `app:`); empty for none |
    /// | `max_value_size` | a size |
    /// | `retry_attempts` | a whole number |
    /// | `protocol` | `auto`, `classic` or `meta` ([`Protocol`]) |
    /// | `distribution` | `rendezvous` or `ketama` ([`Distribution`]) |
    /// | `names` | node names, comma-separated, one per server in order (each percent-decoded) |
    /// | `tls_ca_file` | a PEM file of CAs to trust (`TlsConfig::ca_file`) |
    /// | `tls_server_name` | the name to verify (`TlsConfig::server_name`) |
    /// | `tls_cert_file`, `tls_key_file` | the client certificate and its key, both or neither (`TlsConfig::client_cert_files`) |
    /// | `tls_webpki_roots`, `tls_platform_roots` | a boolean (`TlsConfig::webpki_roots`, `TlsConfig::platform_roots`) |
    ///
    /// - A *duration* is a number with a unit: `ns`, `us`, `ms`, `s`, `m` (minutes), `h`;
    ///   `200ms`, `1.5s` (at most nine digits after the point). A bare number, even `0`, is
    ///   refused: write `0s`.
    /// - A *boolean* is `true`, `false`, `1`, `0`, `yes`, `no`, `on` or `off`.
    /// - A *size* is a number of bytes, optionally with a binary suffix: `k`/`KiB` (1024),
    ///   `M`/`MiB`, `G`/`GiB` (any case; `B` for bytes): `512k`, `1M`.
    /// - A *whole number* is decimal digits only.
    ///
    /// # Errors
    ///
    /// [`Error::IllegalInput`] with [`IllegalInput::Url`], which names the part that is wrong
    /// (`scheme`, `authority`, `server "h:x"`, `path`, `query parameter "timeout"`,
    /// `fragment`) and why: a scheme other than `memcache` or `memcaches`, an empty server entry, a bad
    /// host, port or weight (weight 0 included), a bad percent-escape, text that is not
    /// UTF-8 once decoded, an unknown or repeated parameter, a bad value, a `names` count
    /// that is not the server count. Settings that parse but are out of range (a zero
    /// timeout, a duplicate server) are refused by [`build`](Self::build), as when set by
    /// method.
    ///
    /// ```
    /// use memcache_core::{ClientBuilder, Error, IllegalInput};
    ///
    /// let error = ClientBuilder::from_url("memcache://cache:11211/?timeout=fast").unwrap_err();
    /// assert!(error.to_string().starts_with(
    ///     r#"illegal input: url: query parameter "timeout": "fast" is not a duration (e.g. 200ms"#
    /// ));
    /// match error {
    ///     Error::IllegalInput(IllegalInput::Url { part, reason }) => {
    ///         assert_eq!(part, r#"query parameter "timeout""#);
    ///         assert!(reason.ends_with("1s, 1.5s, 2m), or unlimited"));
    ///     }
    ///     other => panic!("{other}"),
    /// }
    /// // parses, but build() refuses it
    /// assert!(ClientBuilder::from_url("memcache://cache/?timeout=0s")?.build().is_err());
    /// # Ok::<(), memcache_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<ClientBuilder> {
        let (secure, rest) = after_scheme(url)?;
        if let Some(at) = rest.find('#') {
            let fragment: String = rest[at..].chars().take(20).collect();
            return Err(refuse(
                "fragment",
                format!("{fragment:?}: a client URL has no fragment (#..)"),
            ));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (credentials, authority) = match authority.rsplit_once('@') {
            Some((info, servers)) => (Some(user_info(info)?), servers),
            None => (None, authority),
        };
        let servers = servers(authority, path)?;
        check_raw("query", query)?;

        let mut builder = ClientBuilder::new();
        let mut names = None;
        let mut seen: Vec<&str> = Vec::new();
        #[cfg(feature = "tls")]
        let mut tls = secure.then(tls::TlsParams::default);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(refuse(
                    parameter(pair),
                    format!("has no value (write {pair}=..)"),
                ));
            };
            if name.starts_with("tls_") {
                if seen.contains(&name) {
                    return Err(refuse(parameter(name), "is given twice"));
                }
                seen.push(name);
                tls_parameter(
                    #[cfg(feature = "tls")]
                    &mut tls,
                    name,
                    value,
                )
                .map_err(|reason| refuse(parameter(name), reason))?;
                continue;
            }
            if !PARAMETERS.contains(&name) {
                return Err(refuse(
                    parameter(name),
                    format!("is unknown (known: {})", PARAMETERS.join(", ")),
                ));
            }
            if seen.contains(&name) {
                return Err(refuse(parameter(name), "is given twice"));
            }
            seen.push(name);
            builder = apply(builder, name, value, &mut names)
                .map_err(|reason| refuse(parameter(name), reason))?;
        }
        let builder = add_servers(builder, servers, names)?;
        #[cfg(feature = "tls")]
        let builder = match tls.map(tls::TlsParams::finish) {
            Some(Ok(config)) => builder.tls(config),
            Some(Err((name, reason))) => return Err(refuse(parameter(name), reason)),
            None => builder,
        };
        #[cfg(not(feature = "tls"))]
        let _ = secure; // refused by `after_scheme` without the feature
        Ok(match credentials {
            Some((user, password)) => builder.credentials(user, password),
            None => builder,
        })
    }
}

/// The user name and password of `user:password@`, percent-decoded. Errors never show
/// what was written there.
fn user_info(info: &str) -> Result<(String, String)> {
    let part = "user information";
    if info.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(
            part,
            "has whitespace or control characters: percent-encode them",
        ));
    }
    let Some((user, password)) = info.split_once(':') else {
        return Err(refuse(part, "needs a password: write user:password@"));
    };
    let decode = |text: &str, what: &str| {
        value::text(text).map_err(|_| {
            refuse(
                part,
                format!("the {what} is not valid percent-encoded UTF-8"),
            )
        })
    };
    Ok((decode(user, "user name")?, decode(password, "password")?))
}

impl FromStr for ClientBuilder {
    type Err = Error;

    /// As [`ClientBuilder::from_url`].
    fn from_str(url: &str) -> Result<Self> {
        ClientBuilder::from_url(url)
    }
}

/// Whether the scheme is `memcaches` (TLS), and the URL after `memcache://`.
fn after_scheme(url: &str) -> Result<(bool, &str)> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(refuse(
            "scheme",
            "missing: a client URL starts with memcache://",
        ));
    };
    let secure = scheme.eq_ignore_ascii_case("memcaches");
    if !secure && !scheme.eq_ignore_ascii_case("memcache") {
        let shown: String = scheme.chars().take(40).collect();
        return Err(refuse(
            "scheme",
            format!(
                "{shown:?} is not memcache or memcaches (a client URL starts with memcache://, \
                 or memcaches:// for TLS)"
            ),
        ));
    }
    if secure && cfg!(not(feature = "tls")) {
        return Err(refuse(
            "scheme",
            "memcaches:// (TLS) needs memcache-core's feature \"tls\"",
        ));
    }
    match rest.strip_prefix("//") {
        Some(rest) => Ok((secure, rest)),
        None => Err(refuse(
            "scheme",
            format!("{scheme}: is followed by // ({scheme}://host:port)"),
        )),
    }
}

/// Applies a `tls_*` parameter: to the TLS settings of a `memcaches://` URL.
fn tls_parameter(
    #[cfg(feature = "tls")] tls: &mut Option<tls::TlsParams>,
    name: &str,
    raw: &str,
) -> value::Parsed<()> {
    #[cfg(feature = "tls")]
    {
        if !tls::PARAMETERS.contains(&name) {
            return Err(format!(
                "is unknown (known: {})",
                tls::PARAMETERS.join(", ")
            ));
        }
        match tls {
            Some(tls) => tls.apply(name, raw),
            None => Err("is for TLS: the URL starts with memcaches://".into()),
        }
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (name, raw);
        Err("is for TLS, which needs memcache-core's feature \"tls\"".into())
    }
}

/// Refuses whitespace and control characters in a part of the URL as written.
fn check_raw(part: &str, raw: &str) -> Result<()> {
    match raw
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        Some((at, c)) => Err(refuse(
            part,
            format!("has {c:?} at byte {at}: percent-encode whitespace and control characters"),
        )),
        None => Ok(()),
    }
}

/// The servers of the authority, or the socket of the path.
fn servers(authority: &str, path: &str) -> Result<Vec<Server>> {
    check_raw("authority", authority)?;
    check_raw("path", path)?;
    if authority.is_empty() {
        if path.len() <= 1 {
            return Err(refuse(
                "authority",
                "no server (write memcache://host:port or memcache:///path/to/socket)",
            ));
        }
        let path = value::text(path).map_err(|reason| refuse("path", reason))?;
        let addr = unix_socket(&path).map_err(|reason| refuse("path", reason))?;
        return Ok(vec![Server { addr, weight: None }]);
    }
    if path.len() > 1 {
        return Err(refuse(
            "path",
            format!(
                "{path:?} after servers: a unix socket path comes after an empty authority \
                 (memcache:///run/memcached.sock), or in it percent-encoded (%2Frun%2F..)"
            ),
        ));
    }
    let count = authority.split(',').count();
    let mut servers = Vec::with_capacity(count);
    for (i, entry) in authority.split(',').enumerate() {
        if entry.is_empty() {
            return Err(refuse(
                format!("server {} of {count}", i + 1),
                "is empty (two commas in a row, or one at an end)",
            ));
        }
        let server = server(entry).map_err(|reason| refuse(server_part(entry), reason))?;
        servers.push(server);
    }
    Ok(servers)
}

/// One entry of the authority.
fn server(entry: &str) -> Parsed<Server> {
    let is_socket = entry
        .as_bytes()
        .get(..3)
        .is_some_and(|start| start.eq_ignore_ascii_case(b"%2f"));
    if is_socket {
        let (path, weight) = match entry.split_once(':') {
            Some((path, weight)) => (path, Some(weight)),
            None => (entry, None),
        };
        if weight.is_some_and(|weight| weight.contains(':')) {
            return Err("has more than one ':' (a ':' in a socket path is written %3A)".into());
        }
        let addr = unix_socket(&value::text(path)?)?;
        return Ok(Server {
            addr,
            weight: weight.map(weight_of).transpose()?,
        });
    }
    if entry.contains('%') {
        return Err(
            "has a '%': hosts are written as is, only a unix socket path (%2F..) is encoded".into(),
        );
    }
    // no whitespace here (check_raw), so the spec has no node name
    let spec = ServerSpec::parse(entry).map_err(|error| match error {
        Error::Address { reason, .. } => reason,
        other => other.to_string(),
    })?;
    if let ServerAddr::Unix(_) = spec.addr {
        return Err("is a unix socket: in the authority, a socket is its path \
                    percent-encoded (%2Frun%2Fmemcached.sock)"
            .into());
    }
    if spec.weight == Some(0) {
        return Err(WEIGHT_ZERO.into());
    }
    Ok(Server {
        addr: spec.addr,
        weight: spec.weight,
    })
}

/// Why a weight of 0 is refused.
const WEIGHT_ZERO: &str = "has weight 0: a weight is at least 1";

/// A server's weight: a whole number from 1.
fn weight_of(text: &str) -> Parsed<u32> {
    match value::count(text) {
        Ok(0) => Err(WEIGHT_ZERO.into()),
        Ok(weight) => Ok(weight),
        Err(reason) => Err(format!("weight: {reason}")),
    }
}

/// A unix socket at this (decoded) absolute path.
fn unix_socket(path: &str) -> Parsed<ServerAddr> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.ends_with('/') {
        return Err(format!(
            "{path:?} ends with '/': a socket is not a directory"
        ));
    }
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        // the builder's server lists split a node name off at whitespace
        return Err(format!(
            "{path:?}: a socket path with whitespace or control characters is not supported"
        ));
    }
    ServerAddr::parse(path).map_err(|error| error.to_string())
}

/// Applies one query parameter (its name known and not seen before) to `builder`; `names`
/// are kept for the servers.
fn apply(
    builder: ClientBuilder,
    name: &str,
    raw: &str,
    names: &mut Option<Vec<String>>,
) -> Parsed<ClientBuilder> {
    if name == "key_prefix" {
        return Ok(builder.key_prefix(value::percent_decode(raw)?));
    }
    if raw.is_empty() {
        return Err("has an empty value".into());
    }
    if name == "names" {
        let list: Parsed<Vec<String>> = raw.split(',').map(value::text).collect();
        *names = Some(list?);
        return Ok(builder);
    }
    let text = value::text(raw)?;
    let keyword = text.to_ascii_lowercase();
    Ok(match name {
        "timeout" => builder.timeout(value::limit(&text)?),
        "connect_timeout" => builder.connect_timeout(value::limit(&text)?),
        "retry_timeout" => builder.retry_timeout(value::duration(&text)?),
        "dead_timeout" => builder.dead_timeout(value::duration(&text)?),
        "tcp_keepalive" => builder.tcp_keepalive(match keyword.as_str() {
            "off" | "none" => None,
            _ => Some(value::duration(&text).map_err(|reason| format!("{reason}, or off / none"))?),
        }),
        "reconnect_backoff" => {
            let (initial, max) = value::backoff(&text)?;
            builder.reconnect_backoff(initial, max)
        }
        "no_delay" => builder.no_delay(value::boolean(&text)?),
        "ignore_exc" => builder.ignore_exc(value::boolean(&text)?),
        "default_noreply" => builder.default_noreply(value::boolean(&text)?),
        "allow_unicode_keys" => builder.allow_unicode_keys(value::boolean(&text)?),
        "join_gets" => builder.join_gets(value::boolean(&text)?),
        "failover" => builder.failover(value::boolean(&text)?),
        "max_value_size" => builder.max_value_size(value::size(&text)?),
        "retry_attempts" => builder.retry_attempts(value::count(&text)?),
        "protocol" => builder.protocol(match keyword.as_str() {
            "auto" => Protocol::Auto,
            "classic" => Protocol::Classic,
            "meta" => Protocol::Meta,
            _ => return Err(format!("{text:?} is not auto, classic or meta")),
        }),
        "distribution" => builder.distribution(match keyword.as_str() {
            "rendezvous" => Distribution::Rendezvous,
            "ketama" => Distribution::Ketama,
            _ => return Err(format!("{text:?} is not rendezvous or ketama")),
        }),
        _ => return Err("is unknown".into()),
    })
}

/// Adds the servers to `builder`, with their weights and the node names.
fn add_servers(
    mut builder: ClientBuilder,
    servers: Vec<Server>,
    names: Option<Vec<String>>,
) -> Result<ClientBuilder> {
    match names {
        None if servers.len() == 1 && servers[0].weight.is_none() => {
            builder = builder.server(servers[0].addr.to_string());
        }
        None => {
            for server in servers {
                builder =
                    builder.weighted_server(server.addr.to_string(), server.weight.unwrap_or(1));
            }
        }
        Some(names) if names.len() != servers.len() => {
            return Err(refuse(
                parameter("names"),
                format!(
                    "gives {} for {} (one name per server, in order)",
                    how_many(names.len(), "name"),
                    how_many(servers.len(), "server")
                ),
            ));
        }
        Some(names) => {
            for (server, name) in servers.into_iter().zip(names) {
                let weight = server.weight.unwrap_or(1);
                builder = builder.named_server(server.addr.to_string(), weight, name);
            }
        }
    }
    Ok(builder)
}

/// `"1 server"`, `"2 servers"`.
fn how_many(n: usize, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}
