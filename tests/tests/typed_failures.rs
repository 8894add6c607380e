//! The typed cache when memcached is gone or stuck: with `ignore_exc` reads are misses and
//! read-through returns the loader's value; without it, the client's connection or timeout
//! error comes through, typed.

use std::time::{Duration, Instant};

use memcache_tests::Memcached;
use memcache_typed::{Cache, Client};

mod common;

use common::{user, User};

fn users(server: &Memcached, ignore_exc: bool) -> Cache<User> {
    let client = Client::builder()
        .server(server.addr())
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(300))
        .ignore_exc(ignore_exc)
        .build()
        .expect("client builds");
    Cache::new(client)
}

async fn load(id: u64) -> Result<User, std::io::Error> {
    Ok(user(id))
}

#[tokio::test]
async fn ignore_exc_with_a_dead_server() {
    let server = Memcached::start();
    let users = users(&server, true);
    users.set(&user(1)).noreply(false).await.unwrap();
    assert_eq!(users.get(&1).await.unwrap(), Some(user(1)));
    server.kill();

    assert_eq!(users.get(&1).await.unwrap(), None);
    assert_eq!(users.gets(&1).await.unwrap(), None);
    assert!(users.get_many([1u64, 2]).await.unwrap().is_empty());
    assert_eq!(users.update(&1, |u| u).await.unwrap(), None);

    // Read-through still serves: the loader's value comes back, the failed store is logged.
    let loaded = users.get_or_load(&1, |id| load(*id)).await.unwrap();
    assert_eq!(loaded, user(1));
    let many = users
        .get_many_or_load([2u64, 3], |ids| async move {
            Ok::<_, std::io::Error>(ids.into_iter().map(user).collect())
        })
        .await
        .unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(users.stats().loads, 2);

    // Writes still report errors under ignore_exc.
    let error = users.set(&user(1)).noreply(false).await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");
}

#[tokio::test]
async fn without_ignore_exc_a_dead_server_is_an_error() {
    let server = Memcached::start();
    let users = users(&server, false);
    users.set(&user(1)).noreply(false).await.unwrap();
    server.kill();

    let error = users.get(&1).await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");
    assert!(error.client_error().is_some());
    let error = users.get_many([1u64]).await.unwrap_err();
    assert!(error.is_connection_error(), "{error}");

    let error = users.get_or_load(&1, |id| load(*id)).await.unwrap_err();
    assert!(!error.is_loader());
    assert!(
        error.cache_error().unwrap().is_connection_error(),
        "{error}"
    );
    assert_eq!(users.stats().loads, 0, "the loader did not run");
}

#[tokio::test]
async fn a_stuck_server_times_out_within_the_client_timeout() {
    let server = Memcached::start();
    let strict = users(&server, false);
    let lenient = users(&server, true);
    assert_eq!(strict.get(&1).await.unwrap(), None);
    assert_eq!(lenient.get(&1).await.unwrap(), None);
    server.pause();

    let started = Instant::now();
    let error = strict.get(&1).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    assert_eq!(lenient.get(&1).await.unwrap(), None);
    let loaded = lenient.get_or_load(&1, |id| load(*id)).await.unwrap();
    assert_eq!(loaded, user(1));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.resume();
}
