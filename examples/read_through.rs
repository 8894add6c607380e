//! Read-through caching in a service: request handlers look users up with `get_or_load`,
//! which serves hits from memcached and loads misses from a (fake, slow) database, one load
//! per key however many requests ask for it at once.
//!
//! ```text
//! MEMCACHED_ADDR=127.0.0.1:11211 cargo run -p memcache-examples --example read_through
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memcache_typed::{Cache, Cacheable, Client, LoadError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Cacheable)]
#[cacheable(prefix = "example_user", ttl = 60)]
struct User {
    #[cacheable(key)]
    id: u64,
    name: String,
}

/// The database's error: a user that does not exist.
#[derive(Debug)]
struct NotFound(u64);

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no user {}", self.0)
    }
}

impl std::error::Error for NotFound {}

/// A slow database of users 1 to 20 that counts its queries.
struct Database {
    users: HashMap<u64, String>,
    queries: AtomicUsize,
}

impl Database {
    fn new() -> Self {
        let names = ["Ann", "Bob", "Cy", "Dee", "Eve"];
        let users = (1..=20)
            .map(|id| (id, format!("{} #{id}", names[id as usize % names.len()])))
            .collect();
        Database {
            users,
            queries: AtomicUsize::new(0),
        }
    }

    async fn load_user(&self, id: u64) -> Result<User, NotFound> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let name = self.users.get(&id).ok_or(NotFound(id))?;
        Ok(User {
            id,
            name: name.clone(),
        })
    }
}

/// One request: look a user up through the cache.
async fn handle(users: &Cache<User>, db: &Arc<Database>, id: u64) -> String {
    let db = Arc::clone(db);
    match users
        .get_or_load(&id, move |id| {
            let id = *id;
            async move { db.load_user(id).await }
        })
        .await
    {
        Ok(user) => format!("200 {}", user.name),
        Err(LoadError::Loader(not_found)) => format!("404 {not_found}"),
        Err(error) => format!("503 {error}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), memcache_typed::Error> {
    let addr = std::env::var("MEMCACHED_ADDR").unwrap_or_else(|_| "127.0.0.1:11211".into());
    let client = Client::builder()
        .server(&addr)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(200))
        .build()?;
    let users: Cache<User> = Cache::new(client);
    let db = Arc::new(Database::new());
    // Start cold, so every run prints the same thing.
    users.delete_many(1..=21u64).noreply(false).await?;

    // Three rounds of traffic: 40 concurrent requests each, skewed towards a few hot users,
    // plus one unknown user.
    for round in 1..=3u64 {
        let before = (users.stats(), db.queries.load(Ordering::Relaxed));
        let started = Instant::now();
        let mut requests = Vec::new();
        for n in 0..40u64 {
            let id = match n % 8 {
                0..=4 => 1 + n % 3,            // hot: users 1-3
                5 | 6 => 4 + (n + round) % 10, // warm: users 4-13
                _ => 21,                       // not in the database
            };
            let users = users.clone();
            let db = Arc::clone(&db);
            requests.push(tokio::spawn(
                async move { (id, handle(&users, &db, id).await) },
            ));
        }
        let mut answers = Vec::new();
        for request in requests {
            answers.push(request.await.expect("request task"));
        }
        let after = users.stats();
        println!(
            "round {round}: 40 requests in {:>2} ms: {:>2} cache hits, {:>2} misses, {:>2} loader calls, \
             {:>2} requests shared another's read or load; {:>2} database queries",
            started.elapsed().as_millis(),
            after.hits - before.0.hits,
            after.misses - before.0.misses,
            after.loads - before.0.loads,
            after.coalesced - before.0.coalesced,
            db.queries.load(Ordering::Relaxed) - before.1,
        );
        answers.sort();
        answers.dedup();
        for (id, answer) in answers.iter().filter(|(id, _)| *id == 1 || *id == 21) {
            println!("    user {id:>2}: {answer}");
        }
    }
    println!(
        "total: {:?}; the database saw {} queries for 120 requests",
        users.stats(),
        db.queries.load(Ordering::Relaxed)
    );
    Ok(())
}
