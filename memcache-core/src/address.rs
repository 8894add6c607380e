//! Where a server listens ([`ServerAddr`]), and the forms a server is written in: an
//! address, with an optional weight and node name (`"host:port:weight name"`, twemproxy's
//! form).

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// The memcached port used when an address has none.
pub const DEFAULT_PORT: u16 = 11211;

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerAddr {
    /// A TCP address: a host name or IP address and a port.
    Tcp {
        /// Host name, IPv4 or IPv6 address (without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix domain socket path.
    Unix(PathBuf),
}

impl ServerAddr {
    /// Parses `"host:port"`, `"host"` (port 11211), `"[v6]:port"`, `"[v6]"`, or a unix socket
    /// path (`"/path/to/sock"` or `"unix:/path/to/sock"`).
    ///
    /// # Errors
    /// [`Error::Address`] when the text is none of these.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Address {
            addr: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = text.strip_prefix("unix:").or_else(|| {
            if text.starts_with('/') {
                Some(text)
            } else {
                None
            }
        }) {
            if path.is_empty() {
                return Err(bad("empty unix socket path"));
            }
            return Ok(ServerAddr::Unix(PathBuf::from(path)));
        }
        let parse_port = |p: &str| match p.parse::<u16>() {
            // digits only: `str::parse` also takes a leading `+`
            Ok(port) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
            _ => Err(bad("the port is not a number from 0 to 65535")),
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
            let port = match after {
                "" => DEFAULT_PORT,
                _ => parse_port(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected ':port' after ']'"))?,
                )?,
            };
            (host, port)
        } else {
            match text.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("an IPv6 address needs brackets: [addr]:port"))
                }
                Some((host, port)) => (host, parse_port(port)?),
                None => (text, DEFAULT_PORT),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("empty or malformed host"));
        }
        Ok(ServerAddr::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

/// A server as written in a list: its address, and optionally a weight (after the port)
/// and a node name (after a space): `"host:port:weight name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerSpec {
    pub(crate) addr: ServerAddr,
    pub(crate) weight: Option<u32>,
    pub(crate) name: Option<String>,
}

impl ServerSpec {
    /// Parses a server as written in a list (see [`ClientBuilder::servers`]).
    ///
    /// [`ClientBuilder::servers`]: crate::ClientBuilder::servers
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let (addr, name) = match text.trim().split_once(' ') {
            Some((addr, name)) => (addr, Some(name.trim().to_owned())),
            None => (text.trim(), None),
        };
        let is_path = addr.starts_with('/') || addr.starts_with("unix:");
        // `host:port:weight` or `[v6]:port:weight`: a third part after the port
        let colons = if addr.starts_with('[') {
            addr.rsplit_once(']')
                .map_or(0, |(_, after)| after.matches(':').count())
        } else {
            addr.matches(':').count()
        };
        let (addr, weight) = match addr.rsplit_once(':') {
            Some((rest, weight)) if !is_path && colons == 2 => {
                let digits = weight.bytes().all(|b| b.is_ascii_digit());
                let weight = match weight.parse::<u32>() {
                    Ok(weight) if digits => weight,
                    _ => {
                        return Err(Error::Address {
                            addr: text.to_owned(),
                            reason: "the weight (after the port) is not a number".to_owned(),
                        })
                    }
                };
                (rest, Some(weight))
            }
            _ => (addr, None),
        };
        Ok(ServerSpec {
            addr: ServerAddr::parse(addr)?,
            weight,
            name,
        })
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ServerAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_with_weights_and_names() {
        let spec = |text: &str| ServerSpec::parse(text).unwrap();
        let tcp = |h: &str, p| ServerAddr::Tcp {
            host: h.to_owned(),
            port: p,
        };
        assert_eq!(spec("h:1").addr, tcp("h", 1));
        assert_eq!(spec("h:1").weight, None);
        assert_eq!(spec("h:1:3").weight, Some(3));
        assert_eq!(spec("h:1:3").addr, tcp("h", 1));
        assert_eq!(spec("[::1]:5:2").addr, tcp("::1", 5));
        assert_eq!(spec("[::1]:5:2").weight, Some(2));
        assert_eq!(spec("[::1]:5").weight, None);
        let named = spec("10.0.0.1:11211:3 cache-a");
        assert_eq!(
            (named.addr, named.weight, named.name.as_deref()),
            (tcp("10.0.0.1", 11211), Some(3), Some("cache-a"))
        );
        assert_eq!(
            spec("/run/mc:1.sock").addr,
            ServerAddr::Unix("/run/mc:1.sock".into())
        );
        assert!(ServerSpec::parse("h:1:x").is_err());
        assert!(ServerSpec::parse("h:1:2:3").is_err());
        assert!(ServerSpec::parse("h:1:+2").is_err());
    }

    #[test]
    fn parses_addresses() {
        let tcp = |h: &str, p| ServerAddr::Tcp {
            host: h.to_owned(),
            port: p,
        };
        let cases = [
            ("127.0.0.1:11211", tcp("127.0.0.1", 11211)),
            ("localhost", tcp("localhost", 11211)),
            ("cache.example:1", tcp("cache.example", 1)),
            ("[::1]:5000", tcp("::1", 5000)),
            ("[::1]", tcp("::1", 11211)),
            ("/tmp/mc.sock", ServerAddr::Unix("/tmp/mc.sock".into())),
            ("unix:/tmp/mc.sock", ServerAddr::Unix("/tmp/mc.sock".into())),
        ];
        for (text, want) in cases {
            assert_eq!(ServerAddr::parse(text).unwrap(), want, "{text}");
        }
        for bad in [
            "",
            "::1",
            "host:port",
            "host:99999",
            "host:+1",
            "host:-1",
            "[::1",
            "[::1]x",
            " :1",
            "unix:",
        ] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(tcp("::1", 5).to_string(), "[::1]:5");
    }
}
