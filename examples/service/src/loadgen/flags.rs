//! The load generator's command line.

use std::time::Duration;

use crate::config::parse_duration;

/// What `memcache-loadgen --help` prints.
pub const USAGE: &str = "\
memcache-loadgen: drives a memcache-service with a mix of reads and writes

USAGE:
    memcache-loadgen [--target URL] [--duration D] [--concurrency N] [--write-ratio R] [--keys N] [--seed N]

OPTIONS:
    --target URL       the service (default http://127.0.0.1:8080)
    --duration D       how long to run: 500ms, 5s, 1m (default 5s)
    --concurrency N    requests in flight at once, one task each (default 32)
    --write-ratio R    share of the requests that are writes, 0 to 1 (default 0.05)
    --keys N           ids are drawn from 1..=N, uniformly (default 1000)
    --seed N           the random sequence (default 1): the same seed, the same requests
";

/// How to load the service.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// The service's base URL.
    pub target: String,
    /// How long to send requests.
    pub duration: Duration,
    /// How many requests are in flight at once.
    pub concurrency: usize,
    /// The share of writes, from 0 to 1.
    pub write_ratio: f64,
    /// Ids are drawn from `1..=keys`.
    pub keys: u64,
    /// The seed of the random sequence.
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            target: "http://127.0.0.1:8080".into(),
            duration: Duration::from_secs(5),
            concurrency: 32,
            write_ratio: 0.05,
            keys: 1000,
            seed: 1,
        }
    }
}

impl LoadConfig {
    /// Parses the arguments after the program name: `Ok(None)` for `--help`.
    ///
    /// # Errors
    /// An unknown flag, a flag without its value, or a value out of range.
    pub fn from_args<I>(args: I) -> Result<Option<LoadConfig>, String>
    where
        I: IntoIterator<Item = String>,
    {
        let mut config = LoadConfig::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let (flag, value) = match flag.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), value.to_owned()),
                None => {
                    let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                    (flag, value)
                }
            };
            let bad = |what: &str| format!("{flag} {value:?}: {what}");
            match flag.as_str() {
                "--target" => config.target = value.trim_end_matches('/').to_owned(),
                "--duration" => config.duration = parse_duration(&value)?,
                "--concurrency" => {
                    config.concurrency = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a whole number from 1"))?;
                }
                "--write-ratio" => {
                    config.write_ratio = value
                        .parse()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| bad("a number from 0 to 1"))?;
                }
                "--keys" => {
                    config.keys = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a whole number from 1"))?;
                }
                "--seed" => {
                    config.seed = value.parse().map_err(|_| bad("a whole number"))?;
                }
                _ => return Err(format!("unknown flag {flag}; see --help")),
            }
        }
        if !config.target.starts_with("http://") {
            return Err(format!(
                "--target {:?}: an http:// URL, such as http://127.0.0.1:8080",
                config.target
            ));
        }
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<LoadConfig>, String> {
        LoadConfig::from_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn defaults_without_flags() {
        assert_eq!(parse(&[]).unwrap(), Some(LoadConfig::default()));
    }

    #[test]
    fn every_flag_in_both_forms() {
        let config = parse(&[
            "--target=http://127.0.0.1:9/",
            "--duration",
            "2s",
            "--concurrency=4",
            "--write-ratio",
            "0.5",
            "--keys=10",
            "--seed",
            "7",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config,
            LoadConfig {
                target: "http://127.0.0.1:9".into(),
                duration: Duration::from_secs(2),
                concurrency: 4,
                write_ratio: 0.5,
                keys: 10,
                seed: 7,
            }
        );
    }

    #[test]
    fn help_and_mistakes() {
        assert_eq!(parse(&["--help"]).unwrap(), None);
        for bad in [
            &["--concurrency", "0"][..],
            &["--write-ratio", "1.5"],
            &["--keys", "none"],
            &["--duration", "5"],
            &["--target", "127.0.0.1:8080"],
            &["--keys"],
            &["--verbose", "1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
