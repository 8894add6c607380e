//! A real `nutcracker` (twemproxy) process in front of memcached servers, for one test.

use std::env;
use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long [`Nutcracker::start`] waits for the proxy to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The message every test shows when the proxy binary is missing.
const NOT_FOUND: &str = "nutcracker not found: install it with `apt-get install nutcracker` \
                         (Debian/Ubuntu) or set NUTCRACKER_BIN";

/// A `nutcracker` (twemproxy) process on loopback proxying the memcache protocol to a pool of
/// servers with ketama over md5, killed when dropped.
///
/// nutcracker cannot pick an ephemeral port itself, so free ports (listen and stats) are found
/// by binding port 0 and releasing it; a start that loses that race is retried with new ports.
#[derive(Debug)]
pub struct Nutcracker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn binary() -> PathBuf {
    if let Some(bin) = env::var_os("NUTCRACKER_BIN") {
        return PathBuf::from(bin);
    }
    for dir in env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let candidate = PathBuf::from(dir).join("nutcracker");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{NOT_FOUND}");
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}

impl Nutcracker {
    /// Starts a proxy in front of `servers` (`"host:port"` each) and waits until it accepts
    /// connections.
    ///
    /// # Panics
    /// When the binary is missing or the proxy does not come up.
    pub fn start(servers: &[String]) -> Nutcracker {
        let binary = binary();
        let dir = env::temp_dir().join(format!(
            "memcache-tests-nutcracker-{}-{}",
            std::process::id(),
            free_port()
        ));
        fs::create_dir_all(&dir).expect("creating the nutcracker scratch directory");
        for _attempt in 0..5 {
            let (port, stats_port) = (free_port(), free_port());
            let mut config = format!(
                "pool:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  \
                 timeout: 1000\n  auto_eject_hosts: false\n  servers:\n"
            );
            for server in servers {
                config.push_str(&format!("   - {server}:1\n"));
            }
            let conf = dir.join("nutcracker.yml");
            fs::write(&conf, config).expect("writing the nutcracker configuration");
            let child = Command::new(&binary)
                .arg("-c")
                .arg(&conf)
                .arg("-o")
                .arg(dir.join("nutcracker.log"))
                .arg("-p")
                .arg(dir.join("nutcracker.pid"))
                .args(["-a", "127.0.0.1", "-s", &stats_port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}. {NOT_FOUND}", binary.display()));
            let mut child = child;
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port race: try new ports
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return Nutcracker { child, port, dir };
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = fs::read_to_string(dir.join("nutcracker.log")).unwrap_or_default();
        panic!("nutcracker did not start; its log:\n{log}");
    }

    /// `"127.0.0.1:PORT"` where the proxy listens.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
