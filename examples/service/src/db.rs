//! The database: SQLite through `sqlx`, with a `users` and a `products` table seeded at
//! start. Every query the service sends is counted ([`Db::queries`] and the
//! `service_db_queries_total` metric), which is how the tests and the load generator see
//! what the cache saves.
//!
//! Queries are plain SQL strings bound at run time (`sqlx::query_as`), not sqlx's
//! compile-time-checked macros, which would need a database at build time.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::QueryBuilder;

use crate::metrics::Metrics;
use crate::model::{Product, ProductChange, ProductPage, User, UserChange, PAGE_SIZE};

/// How many connections the pool opens at most. SQLite serialises writers anyway; a few
/// readers in parallel are what WAL mode allows.
const MAX_CONNECTIONS: u32 = 4;
/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most ids one batch query takes (the batch endpoints refuse more).
pub const MAX_BATCH: usize = 100;

/// A row of `users` as sqlx reads it.
type UserRow = (i64, String, String);
/// A row of `products` as sqlx reads it.
type ProductRow = (i64, String, i64, i64);

/// The schema; every statement is idempotent.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS products (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        stock INTEGER NOT NULL
    )",
];

/// Fills an empty `users` table with ids 1 to ?1, in one statement.
const SEED_USERS: &str = "INSERT INTO users (id, name, email)
    WITH RECURSIVE n(i) AS (SELECT 1 WHERE ?1 >= 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
    SELECT i, 'User ' || i, 'user' || i || '@example.com' FROM n";
/// Fills an empty `products` table with ids 1 to ?1, in one statement.
const SEED_PRODUCTS: &str = "INSERT INTO products (id, name, price_cents, stock)
    WITH RECURSIVE n(i) AS (SELECT 1 WHERE ?1 >= 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
    SELECT i, 'Product ' || i, 99 + (i * 37) % 10000, i % 50 FROM n";

/// The service's database: a pool of SQLite connections, and the count of queries sent.
/// Cheap to clone (clones share the pool and the count).
#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
    /// Queries sent through the methods below (seeding excluded).
    queries: Arc<AtomicU64>,
    /// A pause before every query (see [`Config::db_latency`](crate::Config::db_latency)).
    latency: Duration,
    metrics: Metrics,
}

impl Db {
    /// Opens (creating it if missing) the database named by `database`, a `sqlite:` URL or a
    /// file path, creates the tables, and seeds each table that is empty with `users` and
    /// `products` rows (ids from 1).
    ///
    /// # Errors
    /// The URL does not parse, or SQLite fails to open, create or seed the database.
    pub async fn open(
        database: &str,
        users: u64,
        products: u64,
        latency: Duration,
        metrics: Metrics,
    ) -> Result<Db, sqlx::Error> {
        let options = if database.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(database)?
        } else {
            SqliteConnectOptions::new().filename(database)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        seed(&pool, "users", SEED_USERS, users).await?;
        seed(&pool, "products", SEED_PRODUCTS, products).await?;
        Ok(Db {
            pool,
            queries: Arc::new(AtomicU64::new(0)),
            latency,
            metrics,
        })
    }

    /// How many queries the service has sent (through clones too), seeding excluded.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Closes the pool, waiting for the connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Checks that the database answers (`SELECT 1`; not counted as a query).
    ///
    /// # Errors
    /// The database's error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }

    /// The user with this id.
    ///
    /// # Errors
    /// The database's error.
    pub async fn user(&self, id: u64) -> Result<Option<User>, sqlx::Error> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let started = self.start().await;
        let row = sqlx::query_as::<_, UserRow>("SELECT id, name, email FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        self.finish("user", started);
        Ok(row?.map(user))
    }

    /// The users with these ids (at most [`MAX_BATCH`]; those that exist), in one query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn users(&self, ids: &[u64]) -> Result<Vec<User>, sqlx::Error> {
        let mut query = QueryBuilder::new("SELECT id, name, email FROM users WHERE id IN (");
        push_ids(&mut query, ids);
        let started = self.start().await;
        let rows = query
            .build_query_as::<UserRow>()
            .fetch_all(&self.pool)
            .await;
        self.finish("users", started);
        Ok(rows?.into_iter().map(user).collect())
    }

    /// Applies `change` to the user with this id and returns the user as it is now; `None`
    /// when there is no such user. One query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn update_user(
        &self,
        id: u64,
        change: &UserChange,
    ) -> Result<Option<User>, sqlx::Error> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let started = self.start().await;
        let row = sqlx::query_as::<_, UserRow>(
            "UPDATE users SET name = COALESCE(?1, name), email = COALESCE(?2, email)
             WHERE id = ?3 RETURNING id, name, email",
        )
        .bind(change.name.as_deref())
        .bind(change.email.as_deref())
        .bind(id)
        .fetch_optional(&self.pool)
        .await;
        self.finish("update_user", started);
        Ok(row?.map(user))
    }

    /// The product with this id.
    ///
    /// # Errors
    /// The database's error.
    pub async fn product(&self, id: u64) -> Result<Option<Product>, sqlx::Error> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let started = self.start().await;
        let row = sqlx::query_as::<_, ProductRow>(
            "SELECT id, name, price_cents, stock FROM products WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await;
        self.finish("product", started);
        Ok(row?.map(product))
    }

    /// The products with these ids (at most [`MAX_BATCH`]; those that exist), in one query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn products(&self, ids: &[u64]) -> Result<Vec<Product>, sqlx::Error> {
        let mut query =
            QueryBuilder::new("SELECT id, name, price_cents, stock FROM products WHERE id IN (");
        push_ids(&mut query, ids);
        let started = self.start().await;
        let rows = query
            .build_query_as::<ProductRow>()
            .fetch_all(&self.pool)
            .await;
        self.finish("products", started);
        Ok(rows?.into_iter().map(product).collect())
    }

    /// Page `page` of the product list: [`PAGE_SIZE`] products by id. One query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn product_page(&self, page: u32) -> Result<ProductPage, sqlx::Error> {
        let offset = i64::from(page) * i64::from(PAGE_SIZE);
        let started = self.start().await;
        let rows = sqlx::query_as::<_, ProductRow>(
            "SELECT id, name, price_cents, stock FROM products ORDER BY id LIMIT ? OFFSET ?",
        )
        .bind(i64::from(PAGE_SIZE))
        .bind(offset)
        .fetch_all(&self.pool)
        .await;
        self.finish("product_page", started);
        Ok(ProductPage {
            page,
            items: rows?.into_iter().map(product).collect(),
        })
    }

    /// Applies `change` to the product with this id and returns the product as it is now;
    /// `None` when there is no such product. One query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn update_product(
        &self,
        id: u64,
        change: &ProductChange,
    ) -> Result<Option<Product>, sqlx::Error> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let started = self.start().await;
        let row = sqlx::query_as::<_, ProductRow>(
            "UPDATE products SET name = COALESCE(?1, name),
                price_cents = COALESCE(?2, price_cents), stock = COALESCE(?3, stock)
             WHERE id = ?4 RETURNING id, name, price_cents, stock",
        )
        .bind(change.name.as_deref())
        .bind(change.price_cents)
        .bind(change.stock)
        .bind(id)
        .fetch_optional(&self.pool)
        .await;
        self.finish("update_product", started);
        Ok(row?.map(product))
    }

    /// Counts a query about to be sent and waits the configured latency; returns when it
    /// started.
    async fn start(&self) -> Instant {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        started
    }

    /// Records the query `name` that started at `started`.
    fn finish(&self, name: &'static str, started: Instant) {
        self.metrics.db_query(name, started.elapsed());
    }
}

/// Seeds `table` with `rows` rows through `statement` when it is empty.
async fn seed(
    pool: &SqlitePool,
    table: &str,
    statement: &str,
    rows: u64,
) -> Result<(), sqlx::Error> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await?;
    if count == 0 && rows > 0 {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        sqlx::query(statement).bind(rows).execute(pool).await?;
    }
    Ok(())
}

/// Ends `query` with the ids as bound parameters and `)`; ids past `i64::MAX` cannot exist
/// and are left out (an empty list matches nothing).
fn push_ids(query: &mut QueryBuilder<'_, sqlx::Sqlite>, ids: &[u64]) {
    let mut list = query.separated(", ");
    let mut any = false;
    for id in ids.iter().filter_map(|&id| i64::try_from(id).ok()) {
        list.push_bind(id);
        any = true;
    }
    if !any {
        list.push("NULL");
    }
    query.push(")");
}

fn user((id, name, email): UserRow) -> User {
    User {
        id: id.unsigned_abs(),
        name,
        email,
    }
}

fn product((id, name, price_cents, stock): ProductRow) -> Product {
    Product {
        id: id.unsigned_abs(),
        name,
        price_cents,
        stock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in a fresh temporary file, removed when the returned guard drops.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new(name: &str) -> TempDb {
            let path = std::env::temp_dir().join(format!(
                "memcache-service-db-{}-{name}.db",
                std::process::id()
            ));
            TempDb(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("a UTF-8 temporary path")
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path()));
            }
        }
    }

    async fn open(file: &TempDb, rows: u64) -> Db {
        Db::open(file.path(), rows, rows, Duration::ZERO, Metrics::new())
            .await
            .expect("the database opens")
    }

    #[tokio::test]
    async fn seeded_rows_are_read_and_written() {
        let file = TempDb::new("rows");
        let db = open(&file, 45).await;
        assert_eq!(db.queries(), 0, "seeding is not counted");
        let user = db.user(3).await.unwrap().unwrap();
        assert_eq!((user.id, user.name.as_str()), (3, "User 3"));
        assert_eq!(db.user(46).await.unwrap(), None);
        assert_eq!(db.user(u64::MAX).await.unwrap(), None);
        let ids: Vec<u64> = db
            .users(&[9, 1, 99, u64::MAX])
            .await
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, [1, 9]);
        assert!(db.products(&[]).await.unwrap().is_empty());

        let mut sizes = Vec::new();
        for page in 0..4 {
            let page = db.product_page(page).await.unwrap();
            sizes.push(page.items.len());
        }
        assert_eq!(sizes, [20, 20, 5, 0]);

        let change = ProductChange {
            price_cents: Some(7),
            ..ProductChange::default()
        };
        let product = db.update_product(21, &change).await.unwrap().unwrap();
        assert_eq!(
            (product.price_cents, product.name.as_str()),
            (7, "Product 21")
        );
        assert_eq!(db.product(21).await.unwrap(), Some(product));
        assert_eq!(db.update_product(46, &change).await.unwrap(), None);
        let renamed = db
            .update_user(
                2,
                &UserChange {
                    name: Some("Ann".into()),
                    email: None,
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (renamed.name.as_str(), renamed.email.as_str()),
            ("Ann", "user2@example.com")
        );
        assert_eq!(db.queries(), 12, "an id past i64::MAX sends no query");
        db.ping().await.unwrap();
        assert_eq!(db.queries(), 12, "a ping is not a query");
    }

    #[tokio::test]
    async fn a_database_with_rows_is_not_seeded_again() {
        let file = TempDb::new("reopen");
        let db = open(&file, 3).await;
        db.update_user(
            1,
            &UserChange {
                name: Some("Kept".into()),
                email: None,
            },
        )
        .await
        .unwrap();
        db.close().await;
        let db = open(&file, 10).await;
        assert_eq!(db.user(1).await.unwrap().unwrap().name, "Kept");
        assert_eq!(db.user(4).await.unwrap(), None, "still 3 users");
    }
}
