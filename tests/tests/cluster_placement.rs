//! Placement vectors from the real libraries (tests/fixtures/placement, made by
//! `make_placement.py` there): pymemcache's `HashClient`, pylibmc (libmemcached,
//! `ketama_weighted`) and nutcracker (ketama over MD5) stored 10,000 keys into real
//! memcacheds, and each key was found on one server. `server_for` must name that server
//! for every key, for every server list.

use std::fs;
use std::path::{Path, PathBuf};

use memcache_core::{Client, Distribution, ServerAddr};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    library: String,
    distribution: String,
    servers: Vec<Server>,
    placement: String,
}

#[derive(Deserialize)]
struct Server {
    addr: String,
    weight: u32,
    name: Option<String>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/placement")
}

fn keys() -> Vec<String> {
    let text = fs::read_to_string(dir().join("keys.txt")).expect("reading keys.txt");
    text.lines().map(str::to_owned).collect()
}

fn fixture(name: &str) -> Fixture {
    let path = dir().join(format!("{name}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A client over the fixture's servers, configured as the library was.
fn client_for(fixture: &Fixture) -> Client {
    let distribution = match fixture.distribution.as_str() {
        "rendezvous" => Distribution::Rendezvous,
        "ketama" => Distribution::Ketama,
        other => panic!("unknown distribution {other}"),
    };
    let mut builder = Client::builder().distribution(distribution);
    for server in &fixture.servers {
        builder = match &server.name {
            Some(name) => builder.named_server(&server.addr, server.weight, name),
            None => builder.weighted_server(&server.addr, server.weight),
        };
    }
    builder
        .build()
        .expect("the fixture's servers make a client")
}

/// `server_for` agrees with the library on every key.
fn agrees(name: &str) {
    let fixture = fixture(name);
    let keys = keys();
    assert_eq!(keys.len(), 10_000, "keys.txt");
    assert_eq!(
        fixture.placement.len(),
        keys.len(),
        "{name}: one server per key"
    );
    let client = client_for(&fixture);
    let mut wrong = Vec::new();
    for (key, expected) in keys.iter().zip(fixture.placement.chars()) {
        let index = expected.to_digit(36).expect("a server index") as usize;
        let expected = &fixture.servers[index].addr;
        let found = client.server_for(key).expect("a legal key");
        if found != ServerAddr::parse(expected).expect("the fixture's address") {
            wrong.push((key.clone(), expected.clone(), found.to_string()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{name} ({}): {} of {} keys placed differently, the first: {:?}",
        fixture.library,
        wrong.len(),
        keys.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn rendezvous_agrees_with_pymemcache_three_servers() {
    agrees("rendezvous-pymemcache-1");
}

#[test]
fn rendezvous_agrees_with_pymemcache_with_port_11211() {
    agrees("rendezvous-pymemcache-2");
}

#[test]
fn rendezvous_agrees_with_pymemcache_seven_servers_with_ipv6() {
    agrees("rendezvous-pymemcache-3");
}

#[test]
fn ketama_agrees_with_libmemcached_three_servers() {
    agrees("ketama-pylibmc-1");
}

#[test]
fn ketama_agrees_with_libmemcached_with_port_11211() {
    agrees("ketama-pylibmc-2");
}

#[test]
fn ketama_agrees_with_libmemcached_unequal_weights() {
    agrees("ketama-pylibmc-3");
}

#[test]
fn ketama_agrees_with_nutcracker_three_servers() {
    agrees("ketama-nutcracker-1");
}

#[test]
fn ketama_agrees_with_nutcracker_unequal_weights() {
    agrees("ketama-nutcracker-2");
}

#[test]
fn ketama_agrees_with_nutcracker_node_names() {
    agrees("ketama-nutcracker-3");
}

#[test]
fn rendezvous_agrees_with_pymemcache_on_unix_sockets() {
    agrees("rendezvous-pymemcache-4");
}

#[test]
fn ketama_agrees_with_libmemcached_on_unix_sockets() {
    agrees("ketama-pylibmc-4");
}

/// twemproxy names a socket's points `"{path}:-{i}"`, libmemcached `"{path}:0-{i}"`: no
/// client agrees with both (`ketama-nutcracker-4` records nutcracker's placement). Named
/// `"{path}:0"` in nutcracker's configuration, the sockets place keys as libmemcached
/// places them.
#[test]
fn ketama_agrees_with_nutcracker_on_unix_sockets_named_explicitly() {
    agrees("ketama-nutcracker-5");
}

/// The order of the list does not change a key's server (rendezvous: by name; ketama:
/// points by value).
#[test]
fn the_order_of_the_servers_does_not_matter() {
    for name in ["rendezvous-pymemcache-2", "ketama-pylibmc-3"] {
        let mut fixture = fixture(name);
        let client = client_for(&fixture);
        fixture.servers.reverse();
        let reversed = client_for(&fixture);
        for key in keys().iter().take(2_000) {
            assert_eq!(
                client.server_for(key).unwrap(),
                reversed.server_for(key).unwrap(),
                "{name}: {key}"
            );
        }
    }
}
