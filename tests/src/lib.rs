//! memcache-tests (being written)
