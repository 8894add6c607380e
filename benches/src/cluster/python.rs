//! The Python peers of W7 (pylibmc, pymemcache's `HashClient`), each a subprocess running
//! `benches/py/peers.py` under Debian's `/usr/bin/python3`, driven over its stdin and
//! stdout. The subprocess times its own calls, so the pipe costs nothing to the figure.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::fixture::MANY;
use crate::harness::{Case, Sample};
use crate::peers::check_many;
use crate::workloads::Context;
use crate::BenchResult;

/// The interpreter the peers run in: Debian's, where `python3-pylibmc` installs pylibmc.
pub const PYTHON: &str = "/usr/bin/python3";

/// The script, built into the program so that the binary runs from anywhere.
const SCRIPT: &str = include_str!("../../py/peers.py");

/// What to run when a peer is missing.
const INSTALL: &str = "install the Python peers with `apt-get install python3-pylibmc` \
     and `/usr/bin/python3 -m pip install --break-system-packages pymemcache==4.0.0`";

/// W7's case of a Python peer: started, its first call checked (every key a hit with its
/// value, some from every server), and before each run one call checked again (outside the
/// time, which the peer measures itself).
///
/// # Errors
/// When the peer is missing or fails, or a check fails.
pub fn case(cx: &Context, library: Library, label: &'static str) -> BenchResult<Case> {
    let mut peer = PythonPeer::start(library, super::servers(cx)?, &cx.fixture.many_keys)?;
    println!("peer:      {label}: {}", peer.version);
    let fixture = std::sync::Arc::clone(&cx.fixture);
    let check = move |peer: &mut PythonPeer| {
        let hits = peer.check()?;
        check_many(
            hits.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
            &fixture,
        )
    };
    super::check_spread(cx, label, MANY as u64, || check(&mut peer))?;
    Ok(Case::new(label, move |budget| {
        check(&mut peer)?;
        peer.run(budget)
    }))
}

/// A Python library measured as a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// `pylibmc.Client(servers, behaviors={"ketama_weighted": True})`, `get_multi`.
    Pylibmc,
    /// `pymemcache.client.hash.HashClient(servers)`, `get_many`.
    Pymemcache,
}

impl Library {
    fn name(self) -> &'static str {
        match self {
            Library::Pylibmc => "pylibmc",
            Library::Pymemcache => "pymemcache",
        }
    }
}

/// One running peer: the subprocess and its pipes. Killed when dropped.
pub struct PythonPeer {
    library: Library,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What the peer said of itself: library, version, Python version.
    pub version: String,
}

impl PythonPeer {
    /// Starts the peer on `servers`, reading `keys`, and waits for it to be ready.
    ///
    /// # Errors
    /// When Python or the library is missing (the message says how to install them), or
    /// the subprocess fails.
    pub fn start(library: Library, servers: &[SocketAddr], keys: &[String]) -> BenchResult<Self> {
        let servers: Vec<String> = servers.iter().map(ToString::to_string).collect();
        let mut child = Command::new(PYTHON)
            .args(["-c", SCRIPT, library.name()])
            .arg(servers.join(","))
            .arg(keys.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot run {PYTHON} ({error}): {INSTALL}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the Python peer's pipes were not opened".into());
        };
        let mut peer = PythonPeer {
            library,
            child,
            stdin,
            stdout: BufReader::new(stdout),
            version: String::new(),
        };
        let line = peer.line()?;
        if let Some(module) = line.strip_prefix("missing ") {
            return Err(format!("{PYTHON} has no module {module}: {INSTALL}").into());
        }
        peer.version = line
            .strip_prefix("ready ")
            .ok_or_else(|| format!("{}: unexpected first line {line:?}", library.name()))?
            .to_owned();
        Ok(peer)
    }

    /// The next line the peer writes, without its newline.
    fn line(&mut self) -> BenchResult<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(format!("the {} peer exited ({status})", self.library.name()).into());
        }
        Ok(line.trim_end().to_owned())
    }

    fn command(&mut self, command: &str) -> BenchResult<()> {
        writeln!(self.stdin, "{command}")?;
        Ok(self.stdin.flush()?)
    }

    /// One call; every hit it returned, key and value.
    ///
    /// # Errors
    /// When the peer fails or answers out of protocol.
    pub fn check(&mut self) -> BenchResult<Vec<(String, Vec<u8>)>> {
        self.command("check")?;
        let line = self.line()?;
        let count: usize = line
            .strip_prefix("hits ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("check: unexpected answer {line:?}"))?;
        let mut hits = Vec::with_capacity(count);
        for _ in 0..count {
            let line = self.line()?;
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| format!("check: unexpected line {line:?}"))?;
            hits.push((key.to_owned(), from_hex(value)?));
        }
        Ok(hits)
    }

    /// Calls for about `budget`, timed by the peer.
    ///
    /// # Errors
    /// When the peer fails (it fails when a call returns fewer hits than keys).
    pub fn run(&mut self, budget: Duration) -> BenchResult<Sample> {
        self.command(&format!("run {}", budget.as_micros()))?;
        let line = self.line()?;
        let mut fields = line.split(' ');
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some("done"), Some(calls), Some(nanos), None) => {
                calls.parse().ok().zip(nanos.parse().ok())
            }
            _ => None,
        };
        let (count, nanos) = parsed.ok_or_else(|| format!("run: unexpected answer {line:?}"))?;
        Ok(Sample {
            count,
            elapsed: Duration::from_nanos(nanos),
        })
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        // Killing a peer that already exited fails harmlessly; reap it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes from lowercase or uppercase hexadecimal digits.
fn from_hex(text: &str) -> BenchResult<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let text = text.as_bytes();
    if text.len() % 2 != 0 {
        return Err("an odd number of hex digits".into());
    }
    text.chunks(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err("not a hex digit".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::from_hex;

    #[test]
    fn reads_hex() {
        assert_eq!(from_hex("").unwrap(), b"");
        assert_eq!(from_hex("00ff7A").unwrap(), [0x00, 0xff, 0x7a]);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }
}
