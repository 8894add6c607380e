//! The typed value shared by the read-through and failure tests.

use memcache_typed::Cacheable;
use serde::{Deserialize, Serialize};

/// A user cached under `user:{id}` for five minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "user", ttl = 300)]
pub struct User {
    #[cacheable(key)]
    pub id: u64,
    pub name: String,
}

/// The user with this id, named after it.
pub fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
    }
}
