//! The service's configuration, read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `MEMCACHE_URL` | the memcached servers and client settings, in memcache-core's URL form (`memcache://h1:11211,h2:11211/?timeout=200ms`) | `memcache://127.0.0.1:11211/?timeout=200ms&connect_timeout=200ms` |
//! | `DATABASE_URL` | the SQLite database: a `sqlite:` URL or a file path (created if missing) | `memcache-service.db` |
//! | `LISTEN` | the address to listen on (port 0: any free port) | `127.0.0.1:8080` |
//! | `SERVICE_ADDR_FILE` | a file to write the bound address into once listening | none |
//! | `SEED_USERS`, `SEED_PRODUCTS` | how many rows to seed each empty table with | 2000 each |
//! | `DB_LATENCY` | a pause added to every database query (`2ms`), standing for the round trip to a database server: SQLite answers in microseconds, in-process | `0ms` |
//! | `LOG` | the log level: `error`, `warn`, `info`, `debug` or `trace` | `info` |
//!
//! Whatever `MEMCACHE_URL` says, the service sets `ignore_exc`, so that a cache that fails
//! reads as misses and the database answers (see [`crate::cache`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default of `MEMCACHE_URL`: one local memcached, timeouts short enough that a dead
/// cache costs little.
pub const DEFAULT_MEMCACHE_URL: &str =
    "memcache://127.0.0.1:11211/?timeout=200ms&connect_timeout=200ms";
/// The default of `DATABASE_URL`.
pub const DEFAULT_DATABASE: &str = "memcache-service.db";
/// The default of `LISTEN`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default of `SEED_USERS` and `SEED_PRODUCTS`.
pub const DEFAULT_SEED_ROWS: u64 = 2000;

/// Everything the service needs to start. Its `Debug` hides a password in `memcache_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The memcached servers and client settings, in memcache-core's URL form.
    pub memcache_url: String,
    /// The SQLite database: a `sqlite:` URL, or a file path.
    pub database: String,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// A file to write the bound address into once listening (for scripts that start the
    /// service on port 0).
    pub addr_file: Option<PathBuf>,
    /// Rows to seed an empty `users` table with.
    pub seed_users: u64,
    /// Rows to seed an empty `products` table with.
    pub seed_products: u64,
    /// A pause added to every database query.
    pub db_latency: Duration,
    /// The log level of the binary (`tracing` level names).
    pub log: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("memcache_url", &without_password(&self.memcache_url))
            .field("database", &self.database)
            .field("listen", &self.listen)
            .field("addr_file", &self.addr_file)
            .field("seed_users", &self.seed_users)
            .field("seed_products", &self.seed_products)
            .field("db_latency", &self.db_latency)
            .field("log", &self.log)
            .finish()
    }
}

/// `url` with the password of its `user:password@` part, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// A setting that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// Why its value is refused.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The configuration for a database file and the given memcached URL, every other
    /// setting at its default except the address: any free loopback port.
    pub fn new(memcache_url: impl Into<String>, database: impl Into<String>) -> Config {
        Config {
            memcache_url: memcache_url.into(),
            database: database.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            addr_file: None,
            seed_users: DEFAULT_SEED_ROWS,
            seed_products: DEFAULT_SEED_ROWS,
            db_latency: Duration::ZERO,
            log: "info".into(),
        }
    }

    /// Reads the configuration from the process environment (see the module docs).
    ///
    /// # Errors
    /// A variable whose value does not parse.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `lookup` (a variable's name to its value), as
    /// [`from_env`](Config::from_env) does from the environment.
    ///
    /// # Errors
    /// A variable whose value does not parse.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.into());
        let listen = text("LISTEN", DEFAULT_LISTEN);
        let listen = listen.parse().map_err(|_| ConfigError {
            variable: "LISTEN",
            reason: format!("{listen:?} is not an address such as 127.0.0.1:8080"),
        })?;
        let log = text("LOG", "info");
        if !["error", "warn", "info", "debug", "trace"].contains(&log.as_str()) {
            return Err(ConfigError {
                variable: "LOG",
                reason: format!("{log:?} is not one of error, warn, info, debug, trace"),
            });
        }
        Ok(Config {
            memcache_url: text("MEMCACHE_URL", DEFAULT_MEMCACHE_URL),
            database: text("DATABASE_URL", DEFAULT_DATABASE),
            listen,
            addr_file: lookup("SERVICE_ADDR_FILE").map(PathBuf::from),
            seed_users: count(&lookup, "SEED_USERS")?,
            seed_products: count(&lookup, "SEED_PRODUCTS")?,
            db_latency: match lookup("DB_LATENCY") {
                None => Duration::ZERO,
                Some(value) => parse_duration(&value).map_err(|reason| ConfigError {
                    variable: "DB_LATENCY",
                    reason,
                })?,
            },
            log,
        })
    }
}

/// A row count from `variable`, or [`DEFAULT_SEED_ROWS`].
fn count(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<u64, ConfigError> {
    match lookup(variable) {
        None => Ok(DEFAULT_SEED_ROWS),
        Some(value) => value.parse().map_err(|_| ConfigError {
            variable,
            reason: format!("{value:?} is not a whole number"),
        }),
    }
}

/// Parses a duration written as a whole number and a unit: `250ms`, `5s`, `2m`, `100us`.
///
/// # Errors
/// A message saying what is wrong with `text`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a duration starts with a whole number, as in 250ms"))?;
    match unit {
        "us" => Ok(Duration::from_micros(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(format!("{text:?}: the unit is one of us, ms, s, m")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = from(&[]).unwrap();
        assert_eq!(config.memcache_url, DEFAULT_MEMCACHE_URL);
        assert_eq!(config.database, DEFAULT_DATABASE);
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.addr_file, None);
        assert_eq!((config.seed_users, config.seed_products), (2000, 2000));
        assert_eq!(config.db_latency, Duration::ZERO);
        assert_eq!(config.log, "info");
    }

    #[test]
    fn every_variable_is_read() {
        let config = from(&[
            ("MEMCACHE_URL", "memcache://a:1,b:2"),
            ("DATABASE_URL", "sqlite:///tmp/x.db"),
            ("LISTEN", "0.0.0.0:0"),
            ("SERVICE_ADDR_FILE", "/tmp/addr"),
            ("SEED_USERS", "10"),
            ("SEED_PRODUCTS", "0"),
            ("DB_LATENCY", "2ms"),
            ("LOG", "debug"),
        ])
        .unwrap();
        assert_eq!(config.memcache_url, "memcache://a:1,b:2");
        assert_eq!(config.database, "sqlite:///tmp/x.db");
        assert_eq!(config.listen, "0.0.0.0:0".parse().unwrap());
        assert_eq!(config.addr_file, Some(PathBuf::from("/tmp/addr")));
        assert_eq!((config.seed_users, config.seed_products), (10, 0));
        assert_eq!(config.db_latency, Duration::from_millis(2));
        assert_eq!(config.log, "debug");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("LISTEN", "localhost"),
            ("SEED_USERS", "-1"),
            ("SEED_PRODUCTS", "many"),
            ("DB_LATENCY", "2"),
            ("LOG", "loud"),
        ] {
            let error = from(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let mut config = Config::new("memcache://app:s3cret@h1:11211,h2/?timeout=1s", "x.db");
        let shown = format!("{config:?}");
        assert!(
            shown.contains("memcache://app:***@h1:11211,h2/?timeout=1s"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        config.memcache_url = "memcache://h1/?key_prefix=a%40b".into();
        assert!(format!("{config:?}").contains("memcache://h1/?key_prefix=a%40b"));
    }

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "ms", "5", "5h", "1.5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
