//! memcache-typed (being written)
