//! What commands return: [`Value`], [`CasToken`], [`CasOutcome`], [`Stats`].

use bytes::Bytes;

/// A value read from memcached: its bytes and the client flags stored with it.
///
/// `data` is sliced out of the connection's read buffer: reading a value does not copy it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Value {
    /// The stored bytes.
    pub data: Bytes,
    /// The 32-bit client flags stored with the value (memcached keeps them opaque).
    pub flags: u32,
}

/// The CAS unique of a value, from `gets` / `gats`; pass it to `cas` to store only if the
/// value has not changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CasToken(pub u64);

impl CasToken {
    /// The raw 64-bit unique.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What `cas` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CasOutcome {
    /// The value was stored (also what a `noreply` cas returns, unchecked, as pymemcache's
    /// `True`).
    Stored,
    /// The value changed since the token was read: nothing was stored.
    Exists,
    /// The key does not exist (expired, deleted or evicted): nothing was stored.
    NotFound,
}

impl CasOutcome {
    /// `true` for [`CasOutcome::Stored`].
    pub fn is_stored(self) -> bool {
        self == CasOutcome::Stored
    }
}

/// The answer to [`Client::lease`](crate::Client::lease).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// A fresh value.
    Hit(Value),
    /// This caller holds the lease: recompute the value and store it.
    Won {
        /// The previous value, if it was invalidated rather than missing.
        stale: Option<Value>,
        /// The CAS unique of the placeholder (or stale value), for
        /// [`Client::release_lease`](crate::Client::release_lease); `None` without the meta
        /// protocol.
        token: Option<CasToken>,
    },
    /// A fresh value inside its [refresh-ahead](crate::command::LeaseGet::refresh_ahead)
    /// window, and this caller (alone of all readers) is asked to recompute and store it
    /// before it expires; the others read it as a `Hit` meanwhile.
    Refresh {
        /// The value, still good to serve.
        value: Value,
        /// Its CAS unique, for a store that must not overwrite a newer one.
        token: Option<CasToken>,
    },
    /// Another client holds the lease and is recomputing the value.
    Busy {
        /// The previous value, if it was invalidated rather than missing: serve it meanwhile.
        stale: Option<Value>,
    },
}

/// The figures from a `stats` command, in the server's order, values kept as the server
/// sent them with typed accessors for the numeric ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    entries: Vec<(String, String)>,
}

macro_rules! numeric_stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<u64> {
                self.get_u64(stringify!($name))
            }
        )*
    };
}

impl Stats {
    pub(crate) fn new(entries: Vec<(String, String)>) -> Self {
        Stats { entries }
    }

    /// The value of stat `name` as the server sent it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of stat `name` as an unsigned integer (`None` when absent or not a number).
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// The value of stat `name` as a float (for example `rusage_user`).
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.get(name)?.parse().ok()
    }

    /// Every `(name, value)` pair in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many stats there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when there are none (for example a read failure under `ignore_exc`).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The server's version string.
    pub fn version(&self) -> Option<&str> {
        self.get("version")
    }

    numeric_stats! {
        /// The server's process id.
        pid,
        /// Seconds since the server started.
        uptime,
        /// Items stored now.
        curr_items,
        /// Items stored since the server started.
        total_items,
        /// Bytes used by items now.
        bytes,
        /// Open connections.
        curr_connections,
        /// Connections opened since the server started.
        total_connections,
        /// Retrieval requests.
        cmd_get,
        /// Storage requests.
        cmd_set,
        /// Keys found.
        get_hits,
        /// Keys not found.
        get_misses,
        /// Items evicted to free memory.
        evictions,
        /// The memory limit in bytes.
        limit_maxbytes,
        /// Worker threads.
        threads,
    }
}

impl<'a> IntoIterator for &'a Stats {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
