//! memcache-derive (being written)
