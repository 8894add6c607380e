//! memcache-core (being written)
