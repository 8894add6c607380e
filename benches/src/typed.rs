//! W6: `memcache_typed::Cache<User>::get` beside the untyped `Client::get` of the same keys.
//!
//! Both rows are this workspace's client on the W1 setup (one task on the one-caller
//! runtime, one request in flight, a `Client` with default settings but `--protocol`), so
//! their ratio is what the typed layer costs per read: building the key, decoding the
//! MessagePack value into a `User`, and the bookkeeping of the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memcache_typed::{Cache, Cacheable, Codec, Encoded, MessagePack};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use crate::fixture::check_value;
use crate::harness::{timed, Case};
use crate::workloads::Context;
use crate::{ours, run_task, BenchResult};

/// The label of the typed row: `Cache<User>::get` returning `Option<User>`.
pub const TYPED: &str = "memcache-core Cache<User>::get";
/// The label of the untyped row: `Client::get` of the same memcached keys.
pub const UNTYPED: &str = "memcache-core Client::get, same keys";

/// Number of users stored; the reads go round them in order.
pub const USERS: usize = 100;
/// The range the MessagePack encoding of every user must fall in (about 100 bytes).
const ENCODED_LEN: std::ops::RangeInclusive<usize> = 95..=105;

/// The value type of W6: a user record whose MessagePack encoding (structs as maps with
/// named fields, the default codec) is about 100 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "bench_user")]
pub struct User {
    /// The key: stored under `"bench_user:{id}"`.
    #[cacheable(key)]
    pub id: u64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Age in years.
    pub age: u8,
    /// Whether the account is active.
    pub active: bool,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
}

impl User {
    /// The `i`-th user of the data set; every one has its own field values.
    pub fn sample(i: usize) -> Self {
        User {
            id: 1_000_000 + i as u64,
            name: format!("Bench Test User {i:04}"),
            email: format!("bench.user.{i:04}@mail.example.com"),
            age: 18 + (i % 60) as u8,
            active: i % 3 != 0,
            created: 1_700_000_000 + 3_600 * i as u64,
        }
    }
}

/// The W6 data set: the users, their memcached keys and their stored form.
#[derive(Debug)]
pub struct Users {
    /// The users, stored with `Cache<User>::set`.
    pub users: Vec<User>,
    /// The key of each user, `users[i].id`.
    pub ids: Vec<u64>,
    /// The memcached key of each user, from `Cache::memcached_key`.
    pub keys: Vec<String>,
    /// What the cache stores for each user: the MessagePack bytes and the flags.
    pub encoded: Vec<Encoded>,
}

impl Users {
    /// Builds the data set, with the memcached keys `cache` reads them under.
    ///
    /// # Errors
    /// When a user cannot be encoded or its encoding is not about 100 bytes.
    pub fn new(cache: &Cache<User>) -> BenchResult<Self> {
        let users: Vec<User> = (0..USERS).map(User::sample).collect();
        let mut keys = Vec::with_capacity(USERS);
        let mut encoded = Vec::with_capacity(USERS);
        for user in &users {
            keys.push(cache.memcached_key(&user.id)?);
            let form = MessagePack.encode(user, User::SCHEMA)?;
            if !ENCODED_LEN.contains(&form.data.len()) {
                return Err(format!(
                    "W6: user {} encodes to {} bytes, expected {ENCODED_LEN:?}",
                    user.id,
                    form.data.len()
                )
                .into());
            }
            encoded.push(form);
        }
        Ok(Users {
            ids: users.iter().map(|user| user.id).collect(),
            users,
            keys,
            encoded,
        })
    }

    /// The mean length of the stored values, in bytes.
    pub fn mean_len(&self) -> f64 {
        let total: usize = self.encoded.iter().map(|form| form.data.len()).sum();
        total as f64 / self.encoded.len() as f64
    }
}

/// A case that runs `body(deadline)` as one task on `rt`, as `ours::get` does for W1.
fn task_case<F, Fut>(label: &'static str, rt: &Arc<Runtime>, body: F) -> Case
where
    F: Fn(Instant) -> Fut + 'static,
    Fut: std::future::Future<Output = BenchResult<u64>> + Send + 'static,
{
    let rt = Arc::clone(rt);
    Case::new(label, move |budget: Duration| {
        timed(budget, |deadline| run_task(&rt, body(deadline)))
    })
}

/// The two W6 cases, typed and untyped, each with its own `Client`, after storing the users
/// with acknowledged `Cache<User>::set`s.
///
/// # Errors
/// When a client cannot be built, a user cannot be encoded or a set is not stored.
pub fn cases(cx: &Context) -> BenchResult<Vec<Case>> {
    let rt = &cx.caller;
    let cache: Cache<User> = Cache::new(ours::client(cx.addr, cx.protocol, cx.join_gets)?);
    let data = Arc::new(Users::new(&cache)?);
    eprintln!(
        "  W6: {USERS} users, MessagePack values of {:.1} bytes on average",
        data.mean_len()
    );
    store(rt, &cache, &data)?;
    Ok(vec![
        typed_get(rt, cache, &data),
        untyped_get(rt, cx, &data)?,
    ])
}

/// Stores every user with `Cache<User>::set(..).noreply(false)`.
fn store(rt: &Arc<Runtime>, cache: &Cache<User>, data: &Arc<Users>) -> BenchResult<()> {
    let (cache, data) = (cache.clone(), Arc::clone(data));
    run_task(rt, async move {
        for user in &data.users {
            if !cache.set(user).noreply(false).await? {
                return Err(format!("W6: set of user {} was not stored", user.id).into());
            }
        }
        Ok(data.users.len() as u64)
    })?;
    Ok(())
}

/// W6 typed: `users.get(&id)` round the users, one in flight. The first read of a run is
/// compared with the stored user; every other read must be a hit.
fn typed_get(rt: &Arc<Runtime>, cache: Cache<User>, data: &Arc<Users>) -> Case {
    let data = Arc::clone(data);
    task_case(TYPED, rt, move |deadline| {
        let (users, data) = (cache.clone(), Arc::clone(&data));
        async move {
            let first = users.get(&data.ids[0]).await?;
            if first.as_ref() != Some(&data.users[0]) {
                return Err(
                    format!("typed get: read {first:?}, expected {:?}", data.users[0]).into(),
                );
            }
            let (mut done, mut next) = (1, 1 % USERS);
            while Instant::now() < deadline {
                if users.get(&data.ids[next]).await?.is_none() {
                    return Err(format!("typed get: miss on user {}", data.ids[next]).into());
                }
                done += 1;
                next = (next + 1) % USERS;
            }
            Ok(done)
        }
    })
}

/// W6 untyped: `client.get(key)` of the same memcached keys in the same order, one in
/// flight. The first read of a run is compared byte for byte (and flags) with what the
/// cache stored; every other read must be a hit of the stored length.
fn untyped_get(rt: &Arc<Runtime>, cx: &Context, data: &Arc<Users>) -> BenchResult<Case> {
    let client = ours::client(cx.addr, cx.protocol, cx.join_gets)?;
    let data = Arc::clone(data);
    Ok(task_case(UNTYPED, rt, move |deadline| {
        let (client, data) = (client.clone(), Arc::clone(&data));
        async move {
            let first = client.get(data.keys[0].as_str()).await?;
            let stored = &data.encoded[0];
            check_value(
                "get",
                first.as_ref().map(|value| &value.data[..]),
                &stored.data,
            )?;
            if let Some(value) = first.filter(|value| value.flags != stored.flags) {
                return Err(format!(
                    "get: flags {:#x}, the cache stored {:#x}",
                    value.flags, stored.flags
                )
                .into());
            }
            let (mut done, mut next) = (1, 1 % USERS);
            while Instant::now() < deadline {
                match client.get(data.keys[next].as_str()).await? {
                    Some(value) if value.data.len() == data.encoded[next].data.len() => {}
                    _ => {
                        return Err(
                            format!("get: miss or wrong length on {}", data.keys[next]).into()
                        )
                    }
                }
                done += 1;
                next = (next + 1) % USERS;
            }
            Ok(done)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{User, ENCODED_LEN, USERS};
    use memcache_typed::{Cacheable, Codec, MessagePack};

    #[test]
    fn users_encode_to_about_100_bytes() {
        for i in 0..USERS {
            let user = User::sample(i);
            let form = MessagePack.encode(&user, User::SCHEMA).unwrap();
            assert!(
                ENCODED_LEN.contains(&form.data.len()),
                "user {i}: {} bytes",
                form.data.len()
            );
            let back = MessagePack
                .decode::<User>(&form.data, form.flags, User::SCHEMA)
                .unwrap()
                .value();
            assert_eq!(back, Some(user));
        }
    }
}
