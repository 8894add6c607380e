//! Leases (`mg ... N`): of all the clients that miss a key at once, one recomputes it.

use std::time::Duration;

use memcache_core::{Client, Lease, Protocol};
use memcache_tests::{raw_command, Memcached};

fn client(addr: &str, protocol: Protocol) -> Client {
    Client::builder()
        .server(addr)
        .protocol(protocol)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn data(lease: &Lease) -> Option<Vec<u8>> {
    match lease {
        Lease::Hit(value) => Some(value.data.to_vec()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_wins_the_others_wait_then_hit() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Meta),
        client(&server.addr(), Protocol::Auto),
    );
    let won = a.lease("report", 30).await.unwrap();
    assert!(
        matches!(
            won,
            Lease::Won {
                stale: None,
                token: Some(_)
            }
        ),
        "{won:?}"
    );
    for _ in 0..3 {
        let busy = b.lease("report", 30).await.unwrap();
        assert_eq!(busy, Lease::Busy { stale: None });
    }
    a.set("report", "fresh").noreply(false).await.unwrap();
    assert_eq!(
        data(&b.lease("report", 30).await.unwrap()),
        Some(b"fresh".to_vec())
    );
    assert_eq!(
        data(&a.lease("report", 30).await.unwrap()),
        Some(b"fresh".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_lets_the_next_client_win() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Meta),
        client(&server.addr(), Protocol::Meta),
    );
    let Lease::Won {
        token: Some(token), ..
    } = a.lease("flaky", 30).await.unwrap()
    else {
        panic!("the first client should win");
    };
    // the loader failed: give the key back
    a.release_lease("flaky", token).await.unwrap();
    // release is fire-and-forget; a reply on the same connection means it was applied
    assert_eq!(a.get("flaky").await.unwrap(), None);
    let again = b.lease("flaky", 30).await.unwrap();
    assert!(
        matches!(
            again,
            Lease::Won {
                stale: None,
                token: Some(_)
            }
        ),
        "{again:?}"
    );
    assert_eq!(a.noreply_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_value_is_served_stale_while_one_client_refreshes() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Meta),
        client(&server.addr(), Protocol::Meta),
    );
    a.set("page", "v1").noreply(false).await.unwrap();
    let reply = raw_command(&server.addr(), b"md page I T30\r\n");
    assert_eq!(reply, b"HD\r\n");
    match a.lease("page", 30).await.unwrap() {
        Lease::Won {
            stale: Some(old), ..
        } => assert_eq!(&old.data[..], b"v1"),
        other => panic!("expected a won lease with the stale value, got {other:?}"),
    }
    match b.lease("page", 30).await.unwrap() {
        Lease::Busy { stale: Some(old) } => assert_eq!(&old.data[..], b"v1"),
        other => panic!("expected a busy lease with the stale value, got {other:?}"),
    }
    a.set("page", "v2").noreply(false).await.unwrap();
    assert_eq!(
        data(&b.lease("page", 30).await.unwrap()),
        Some(b"v2".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_servers_cannot_coordinate_so_a_miss_is_won() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Classic),
        client(&server.addr(), Protocol::Classic),
    );
    assert_eq!(
        a.lease("k", 30).await.unwrap(),
        Lease::Won {
            stale: None,
            token: None
        }
    );
    assert_eq!(
        b.lease("k", 30).await.unwrap(),
        Lease::Won {
            stale: None,
            token: None
        }
    );
    a.set("k", "v").noreply(false).await.unwrap();
    assert_eq!(data(&b.lease("k", 30).await.unwrap()), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ignore_exc_a_dead_server_is_a_won_lease() {
    let server = Memcached::start();
    let ignoring = Client::builder()
        .server(server.addr())
        .protocol(Protocol::Meta)
        .ignore_exc(true)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let strict = client(&server.addr(), Protocol::Meta);
    server.kill();
    assert_eq!(
        ignoring.lease("k", 30).await.unwrap(),
        Lease::Won {
            stale: None,
            token: None
        }
    );
    assert!(strict
        .lease("k", 30)
        .await
        .unwrap_err()
        .is_connection_error());
    assert!(ignoring
        .lease("bad key", 30)
        .await
        .unwrap_err()
        .is_illegal_input());
}

/// Another client's lease placeholder (an empty value memcached created on its miss) is a
/// miss for plain reads over the meta protocol, not an empty hit; a stale value (`X`) is
/// still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_placeholder_reads_as_a_miss_over_meta() {
    let server = Memcached::start();
    let reader = client(&server.addr(), Protocol::Meta);
    // Another process takes the lease: memcached stores an empty placeholder (flags 0).
    let won = raw_command(&server.addr(), b"mg pending v f c N30\r\n");
    assert!(won.ends_with(b" W\r\n\r\n"), "{won:?}");
    assert_eq!(reader.get("pending").await.unwrap(), None);
    assert_eq!(reader.gets("pending").await.unwrap(), None);
    // Classic reads cannot tell a placeholder from an empty value.
    let classic = client(&server.addr(), Protocol::Classic);
    let hit = classic
        .get("pending")
        .await
        .unwrap()
        .expect("an empty value");
    assert!(hit.data.is_empty() && hit.flags == 0);
    // A stored empty value is a hit, and so is a value invalidated to stale.
    reader.set("empty", "").noreply(false).await.unwrap();
    assert_eq!(reader.get("empty").await.unwrap().unwrap().data, "");
    reader.set("old", "v1").noreply(false).await.unwrap();
    assert_eq!(raw_command(&server.addr(), b"md old I T30\r\n"), b"HD\r\n");
    assert_eq!(reader.get("old").await.unwrap().unwrap().data, "v1");
}

#[tokio::test]
async fn invalidate_keeps_the_stale_value_for_all_but_one_reader() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Meta),
        client(&server.addr(), Protocol::Meta),
    );
    a.set("page", "old").ttl(300).noreply(false).await.unwrap();
    assert!(a.invalidate("page").ttl(30).noreply(false).await.unwrap());
    assert!(!a.invalidate("absent").noreply(false).await.unwrap());
    // The first reader (of either client) is told to recompute, with the stale value.
    match b.lease("page", 30).await.unwrap() {
        Lease::Won {
            stale: Some(value),
            token: Some(_),
        } => assert_eq!(&value.data[..], b"old"),
        other => panic!("expected the win with the stale value, got {other:?}"),
    }
    // Everyone after reads the stale value, leases and plain gets alike.
    for _ in 0..3 {
        match a.lease("page", 30).await.unwrap() {
            Lease::Busy { stale: Some(value) } => assert_eq!(&value.data[..], b"old"),
            other => panic!("expected the stale value, got {other:?}"),
        }
        let read = a.get("page").await.unwrap().expect("the stale value");
        assert_eq!(&read.data[..], b"old");
    }
    // The new value ends it.
    b.set("page", "new").noreply(false).await.unwrap();
    assert_eq!(
        data(&a.lease("page", 30).await.unwrap()),
        Some(b"new".to_vec())
    );
    // Quiet over meta (noreply, the default), and a delete over classic.
    a.invalidate("page").await.unwrap();
    assert!(matches!(
        a.lease("page", 30).await.unwrap(),
        Lease::Won { stale: Some(_), .. }
    ));
    let classic = client(&server.addr(), Protocol::Classic);
    assert!(classic.invalidate("page").noreply(false).await.unwrap());
    assert_eq!(raw_command(&server.addr(), b"get page\r\n"), b"END\r\n");
}

#[tokio::test]
async fn refresh_ahead_asks_one_reader_to_recompute_and_the_others_keep_hitting() {
    let server = Memcached::start();
    let (a, b) = (
        client(&server.addr(), Protocol::Meta),
        client(&server.addr(), Protocol::Meta),
    );
    a.set("hot", "v1")
        .flags(5)
        .ttl(100)
        .noreply(false)
        .await
        .unwrap();
    // More than the window left: a plain hit for everyone.
    assert_eq!(
        data(&a.lease("hot", 30).refresh_ahead(10).await.unwrap()),
        Some(b"v1".to_vec())
    );
    a.set("hot", "v1")
        .flags(5)
        .ttl(5)
        .noreply(false)
        .await
        .unwrap();
    // Under the window: one reader refreshes, with the value to serve meanwhile.
    match b.lease("hot", 30).refresh_ahead(10).await.unwrap() {
        Lease::Refresh {
            value,
            token: Some(_),
        } => {
            assert_eq!(&value.data[..], b"v1");
            assert_eq!(value.flags, 5);
        }
        other => panic!("expected the refresh, got {other:?}"),
    }
    // The others keep hitting: leases, leases without the window, plain gets.
    for _ in 0..3 {
        assert_eq!(
            data(&a.lease("hot", 30).refresh_ahead(10).await.unwrap()),
            Some(b"v1".to_vec())
        );
        assert_eq!(
            data(&a.lease("hot", 30).await.unwrap()),
            Some(b"v1".to_vec())
        );
        assert_eq!(&a.get("hot").await.unwrap().unwrap().data[..], b"v1");
    }
    b.set("hot", "v2")
        .flags(5)
        .ttl(100)
        .noreply(false)
        .await
        .unwrap();
    assert_eq!(
        data(&a.lease("hot", 30).refresh_ahead(10).await.unwrap()),
        Some(b"v2".to_vec())
    );
}
