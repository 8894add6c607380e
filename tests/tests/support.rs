//! Tests of the test-server support code itself, against a real memcached.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use memcache_tests::{
    raw_command, raw_command_timeout, raw_delete, raw_get, raw_set, raw_stats, FaultMode,
    FaultProxy, Memcached,
};

#[test]
fn start_then_raw_set_get_delete() {
    let server = Memcached::start();
    let addr = server.addr();
    assert_eq!(addr, format!("127.0.0.1:{}", server.port()));
    assert!(server.pid().is_some());
    assert_eq!(server.socket_path(), None);

    assert_eq!(raw_get(&addr, "k"), None);
    raw_set(&addr, "k", 42, b"hello\r\nworld");
    assert_eq!(raw_get(&addr, "k"), Some((42, b"hello\r\nworld".to_vec())));
    assert_eq!(raw_stats(&addr)["curr_items"], "1");
    assert!(raw_delete(&addr, "k"));
    assert!(!raw_delete(&addr, "k"));
    let one = raw_command(&addr, b"version\r\n");
    assert!(one.starts_with(b"VERSION ") && one.ends_with(b"\r\n"));
    assert_eq!(
        raw_command(&addr, b"version\r\nversion\r\n"),
        [&one[..], &one[..]].concat()
    );
}

#[test]
fn two_servers_get_different_ports() {
    let a = Memcached::start();
    let b = Memcached::start();
    assert_ne!(a.port(), b.port());
    raw_set(&a.addr(), "only_a", 0, b"1");
    assert_eq!(raw_get(&b.addr(), "only_a"), None);
}

#[test]
fn builder_options_reach_the_server() {
    let server = Memcached::builder()
        .threads(2)
        .memory_mb(8)
        .max_item_size(2048)
        .args(["-c", "64"])
        .start();
    let addr = server.addr();
    let stats = raw_stats(&addr);
    assert_eq!(stats["threads"], "2");
    assert_eq!(stats["limit_maxbytes"], (8 * 1024 * 1024).to_string());
    assert_eq!(stats["max_connections"], "64");

    let mut too_big = format!("set big 0 0 {}\r\n", 4096).into_bytes();
    too_big.extend_from_slice(&[b'x'; 4096]);
    too_big.extend_from_slice(b"\r\n");
    let reply = raw_command(&addr, &too_big);
    assert!(
        reply.starts_with(b"SERVER_ERROR object too large"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn unix_socket_server() {
    let server = Memcached::builder().unix_socket(true).start();
    let path = server.socket_path().expect("a unix socket path");
    assert!(path.exists());
    let path = path.to_str().expect("a UTF-8 temp path").to_owned();
    raw_set(&path, "k", 1, b"over unix");
    assert_eq!(raw_get(&path, "k"), Some((1, b"over unix".to_vec())));

    server.kill();
    server.restart();
    assert_eq!(raw_get(&path, "k"), None, "a restarted server starts empty");
}

#[test]
#[should_panic(expected = "use socket_path()")]
fn unix_socket_server_has_no_tcp_addr() {
    let server = Memcached::builder().unix_socket(true).start();
    let _ = server.addr();
}

#[test]
fn pause_times_out_and_resume_answers() {
    let server = Memcached::start();
    let addr = server.addr();
    server.pause();
    let error = raw_command_timeout(&addr, b"version\r\n", Duration::from_millis(200))
        .expect_err("a paused server must not answer");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{error:?}"
    );
    server.resume();
    let reply = raw_command_timeout(&addr, b"version\r\n", Duration::from_secs(2)).unwrap();
    assert!(reply.starts_with(b"VERSION "));
}

#[test]
fn drop_kills_a_paused_server() {
    let server = Memcached::start();
    let pid = server.pid().unwrap();
    server.pause();
    drop(server);
    // Killed and reaped. (Connecting to the old port proves nothing: with tests running in
    // parallel, another server may already have been given that port.)
    assert!(!process_exists(pid), "memcached {pid} is still there");
}

#[test]
fn kill_then_restart_keeps_the_port() {
    let server = Memcached::start();
    let port = server.port();
    raw_set(&server.addr(), "k", 0, b"v");
    let old_pid = server.pid().unwrap();

    server.kill();
    assert_eq!(server.pid(), None);
    assert!(
        !process_exists(old_pid),
        "memcached {old_pid} is still there"
    );
    server.kill(); // a second kill does nothing

    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), Some(old_pid));
    assert_eq!(
        raw_get(&server.addr(), "k"),
        None,
        "a restarted server starts empty"
    );
    raw_set(&server.addr(), "k", 0, b"again");
    assert_eq!(raw_get(&server.addr(), "k"), Some((0, b"again".to_vec())));
}

#[test]
fn restart_while_connections_are_open() {
    let server = Memcached::start();
    let port = server.port();
    // An established client connection leaves the server side in TIME_WAIT after the kill.
    let mut open = TcpStream::connect(server.addr()).unwrap();
    open.write_all(b"version\r\n").unwrap();
    assert!(!read_some(&mut open).is_empty());
    server.restart();
    assert_eq!(server.port(), port);
    assert!(raw_command(&server.addr(), b"version\r\n").starts_with(b"VERSION "));
}

/// Sends `request` on a new connection and reads until end of stream, an error or `timeout`.
fn exchange(addr: &str, request: &[u8], timeout: Duration) -> (Vec<u8>, io::Result<()>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    if let Err(e) = stream.write_all(request) {
        return (Vec::new(), Err(e));
    }
    read_until_end(&mut stream)
}

/// Reads what is available (at least one byte), retrying after a signal interrupted the read.
fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(n) if n > 0 => return chunk[..n].to_vec(),
            other => panic!("expected data, got {other:?}"),
        }
    }
}

fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) => return (received, Ok(())),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => return (received, Err(e)),
        }
    }
}

#[test]
fn proxy_passes_data_through() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    assert_ne!(proxy.addr(), server.addr());
    assert_eq!(proxy.mode(), FaultMode::PassThrough);

    let value = vec![b'v'; 100_000];
    raw_set(&proxy.addr(), "k", 3, &value);
    assert_eq!(raw_get(&server.addr(), "k"), Some((3, value.clone())));
    assert_eq!(raw_get(&proxy.addr(), "k"), Some((3, value)));
    assert_eq!(proxy.connections(), 2);
}

#[test]
fn proxy_cuts_mid_response() {
    let server = Memcached::start();
    raw_set(&server.addr(), "k", 0, &[b'v'; 1000]);
    let proxy = FaultProxy::start(&server.addr());

    proxy.set_mode(FaultMode::CutAfter(100));
    let (received, end) = exchange(&proxy.addr(), b"get k\r\n", Duration::from_secs(2));
    end.unwrap();
    assert_eq!(received.len(), 100);
    assert!(received.starts_with(b"VALUE k 0 1000\r\nvvv"));

    // An existing connection is cut too, counting from when the mode was set.
    proxy.set_mode(FaultMode::PassThrough);
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(b"version\r\n").unwrap();
    assert!(!read_some(&mut stream).is_empty());
    proxy.set_mode(FaultMode::CutAfter(5));
    stream.write_all(b"get k\r\n").unwrap();
    let (received, end) = read_until_end(&mut stream);
    end.unwrap();
    assert_eq!(received, b"VALUE");

    proxy.set_mode(FaultMode::PassThrough);
    assert_eq!(raw_get(&proxy.addr(), "k").unwrap().1.len(), 1000);
}

fn assert_reset(result: io::Result<()>) {
    let error = result.expect_err("the proxy must reset the connection");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error:?}");
}

#[test]
fn proxy_resets_new_and_existing_connections() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());

    let mut existing = TcpStream::connect(proxy.addr()).unwrap();
    existing
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    existing.write_all(b"version\r\n").unwrap();
    assert!(!read_some(&mut existing).is_empty());
    assert_eq!(proxy.active_connections(), 1);

    proxy.set_mode(FaultMode::Reset);
    let (received, end) = read_until_end(&mut existing);
    assert!(received.is_empty());
    assert_reset(end);

    let (received, end) = exchange(&proxy.addr(), b"version\r\n", Duration::from_secs(2));
    assert!(received.is_empty());
    assert_reset(end);
    assert_eq!(proxy.connections(), 2);

    proxy.set_mode(FaultMode::PassThrough);
    assert!(raw_command(&proxy.addr(), b"version\r\n").starts_with(b"VERSION "));
}

#[test]
fn proxy_garbles_server_data() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    proxy.set_mode(FaultMode::Garble);

    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(b"set k 0 0 1\r\nx\r\n").unwrap();
    assert_eq!(read_some(&mut stream), b"XYZZY garbage\r\n");
    // Client data still reached the server.
    assert_eq!(raw_get(&server.addr(), "k"), Some((0, b"x".to_vec())));
}

#[test]
fn proxy_delays_each_chunk() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    proxy.set_mode(FaultMode::Delay(Duration::from_millis(150)));

    let started = Instant::now();
    let reply = raw_command(&proxy.addr(), b"version\r\n");
    assert!(reply.starts_with(b"VERSION "));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let error =
        raw_command_timeout(&proxy.addr(), b"version\r\n", Duration::from_millis(100)).unwrap_err();
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{error:?}"
    );
}

#[test]
fn dropping_the_proxy_closes_everything() {
    let server = Memcached::start();
    let proxy = FaultProxy::start(&server.addr());
    let addr = proxy.addr();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(b"version\r\n").unwrap();
    assert!(!read_some(&mut stream).is_empty());

    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (received, end) = read_until_end(&mut stream);
    assert!(received.is_empty());
    end.unwrap();
}

/// Whether a process (not a zombie: [`Memcached`] reaps what it kills) has this pid.
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
