//! Where a key lives among several servers: the placement functions, pure and specified,
//! byte-compatible with the clients a Rust service shares its servers with
//! ([`rendezvous`]: pymemcache's `HashClient`; [`ketama`]: libmemcached's
//! `ketama_weighted` and twemproxy's ketama over MD5). Checked against placement vectors
//! the real libraries produced (`tests/fixtures/placement`).

pub mod ketama;
pub mod rendezvous;
