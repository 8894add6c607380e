//! Reads through memcached, writes to the database and then to memcached: the part of the
//! service a service author copies.
//!
//! - **Reads** go through [`Cache::get_or_load`] (one key) and [`Cache::get_many_or_load`]
//!   (a list of ids): a hit costs no query; concurrent requests for one missing key share
//!   one query (single-flight, and across processes memcached's leases).
//! - **Writes** update the database, then store the new value in the cache and wait for
//!   memcached's answer (`noreply(false)`), so a read that starts after the write's response
//!   sees the new value; then they invalidate the entries derived from the row (the page of
//!   the product list that shows it: [`Caches::invalidate_product_page`]), which reload once
//!   on the next read.
//! - **When memcached fails**, the client has `ignore_exc` on (whatever the URL says): reads
//!   are misses and the database answers; failed stores and deletes are counted
//!   (`service_cache_errors_total`) and logged, and the write still succeeds. `/healthz` and
//!   the metrics say the cache is degraded.
//!
//! One race is left, as with any cache written after its database: a load that read the old
//! row just before a write can store its value just after the write's store, and the old
//! value then stays until its TTL (five minutes for users and products, one for pages).

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;

use memcache_typed::{Cache, CacheStats, Cacheable, Client, ClientBuilder, LoadError};

use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::model::{Product, ProductChange, ProductPage, User, UserChange};

/// Why a loader produced no value.
#[derive(Debug)]
enum Unloaded {
    /// No row with this id.
    Missing,
    /// The database failed.
    Database(sqlx::Error),
}

impl std::fmt::Display for Unloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unloaded::Missing => f.write_str("no such row"),
            Unloaded::Database(error) => write!(f, "database: {error}"),
        }
    }
}

impl From<sqlx::Error> for Unloaded {
    fn from(error: sqlx::Error) -> Self {
        Unloaded::Database(error)
    }
}

impl From<&Unloaded> for ApiError {
    fn from(unloaded: &Unloaded) -> Self {
        match unloaded {
            Unloaded::Missing => ApiError::NotFound,
            Unloaded::Database(error) => ApiError::Database(error.to_string()),
        }
    }
}

/// The service's caches, one per type, over one memcached client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Caches {
    users: Cache<User>,
    products: Cache<Product>,
    pages: Cache<ProductPage>,
    metrics: Metrics,
}

impl Caches {
    /// Caches over a client configured by `memcache_url` (memcache-core's URL form), with
    /// `ignore_exc` turned on. Does no I/O.
    ///
    /// # Errors
    /// The URL does not parse, or its settings do not build a client.
    pub fn connect(
        memcache_url: &str,
        metrics: Metrics,
    ) -> Result<Caches, memcache_typed::memcache_core::Error> {
        let builder = ClientBuilder::from_url(memcache_url)?.ignore_exc(true);
        // Built with the service's recorder current: the client registers its per-server
        // metrics (`memcache_*`, memcache-core's `metrics` feature) there, so they appear on
        // this service's /metrics (and two services in one process keep their own).
        let client = metrics.record(|| builder.build())?;
        Ok(Caches::new(client, metrics))
    }

    /// Caches over `client` (which should have `ignore_exc` on, or a failing memcached
    /// fails the reads it serves: they then go to the database, one query each).
    pub fn new(client: Client, metrics: Metrics) -> Caches {
        Caches {
            users: Cache::new(client.clone()),
            products: Cache::new(client.clone()),
            pages: Cache::new(client),
            metrics,
        }
    }

    /// The memcached client.
    pub fn client(&self) -> &Client {
        self.users.client()
    }

    /// The counters of each cache, by its typed prefix.
    pub fn stats(&self) -> [(&'static str, CacheStats); 3] {
        [
            (User::PREFIX, self.users.stats()),
            (Product::PREFIX, self.products.stats()),
            (ProductPage::PREFIX, self.pages.stats()),
        ]
    }

    /// The user with this id, through the cache.
    ///
    /// # Errors
    /// [`ApiError::NotFound`], or the database's error.
    pub async fn user(&self, db: &Db, id: u64) -> Result<User, ApiError> {
        self.read_through(&self.users, id, |id| db.user(id)).await
    }

    /// The users with these ids that exist, in the order asked, through the cache: the hits
    /// from one round trip to memcached, the misses from one query.
    ///
    /// # Errors
    /// The database's error.
    pub async fn users(&self, db: &Db, ids: &[u64]) -> Result<Vec<User>, ApiError> {
        self.read_many(&self.users, ids, |missing| async move {
            db.users(&missing).await
        })
        .await
    }

    /// The product with this id, through the cache.
    ///
    /// # Errors
    /// [`ApiError::NotFound`], or the database's error.
    pub async fn product(&self, db: &Db, id: u64) -> Result<Product, ApiError> {
        self.read_through(&self.products, id, |id| db.product(id))
            .await
    }

    /// The products with these ids that exist, in the order asked, through the cache.
    ///
    /// # Errors
    /// The database's error.
    pub async fn products(&self, db: &Db, ids: &[u64]) -> Result<Vec<Product>, ApiError> {
        self.read_many(&self.products, ids, |missing| async move {
            db.products(&missing).await
        })
        .await
    }

    /// Page `page` of the product list, through the cache (a page past the end is empty).
    ///
    /// # Errors
    /// The database's error.
    pub async fn product_page(&self, db: &Db, page: u32) -> Result<ProductPage, ApiError> {
        self.read_through(&self.pages, page, |page| async move {
            db.product_page(page).await.map(Some)
        })
        .await
    }

    /// Applies `change` to a user in the database, then stores the user as it now is in the
    /// cache. Users have no derived entries: the batch reads go through the users' own
    /// entries.
    ///
    /// # Errors
    /// [`ApiError::NotFound`], or the database's error. Cache failures are not errors.
    pub async fn update_user(
        &self,
        db: &Db,
        id: u64,
        change: &UserChange,
    ) -> Result<User, ApiError> {
        let user = db
            .update_user(id, change)
            .await?
            .ok_or(ApiError::NotFound)?;
        self.store(&self.users, &user).await;
        Ok(user)
    }

    /// Applies `change` to a product in the database, stores the product as it now is in
    /// the cache, and invalidates the page of the list that shows it.
    ///
    /// # Errors
    /// [`ApiError::NotFound`], or the database's error. Cache failures are not errors.
    pub async fn update_product(
        &self,
        db: &Db,
        id: u64,
        change: &ProductChange,
    ) -> Result<Product, ApiError> {
        let product = db
            .update_product(id, change)
            .await?
            .ok_or(ApiError::NotFound)?;
        self.store(&self.products, &product).await;
        self.invalidate_product_page(Product::page_of(id)).await;
        Ok(product)
    }

    /// Invalidates page `page` of the product list, derived from the products it shows,
    /// after one of them was written: memcached's meta invalidation (`md <key> I`) marks the
    /// entry stale, so the readers right after the write keep getting the old page while
    /// exactly one of them (of every service instance) reloads it; the next reads see the
    /// new page. (Over a classic server the entry is deleted instead.)
    pub async fn invalidate_product_page(&self, page: u32) {
        if let Err(error) = self.pages.invalidate(&page).noreply(false).await {
            self.failed(ProductPage::PREFIX, "invalidate", &error);
        }
    }

    /// Stores `value` and waits for memcached's answer; a failure is counted and logged.
    async fn store<T: Cacheable>(&self, cache: &Cache<T>, value: &T) {
        if let Err(error) = cache.set(value).noreply(false).await {
            self.failed(T::PREFIX, "set", &error);
        }
    }

    /// `get_or_load` with `load` (a query for one row), and the database alone when the
    /// cache fails all the same (a value that does not decode).
    async fn read_through<T, F, Fut>(
        &self,
        cache: &Cache<T>,
        key: T::Key,
        load: F,
    ) -> Result<T, ApiError>
    where
        T: Cacheable + Clone + Send + Sync + 'static,
        T::Key: Copy,
        F: Fn(T::Key) -> Fut,
        Fut: Future<Output = Result<Option<T>, sqlx::Error>>,
    {
        let loaded = cache
            .get_or_load(&key, |key| {
                let row = load(*key);
                async move { row.await?.ok_or(Unloaded::Missing) }
            })
            .await;
        match loaded {
            Ok(value) => Ok(value),
            Err(LoadError::Loader(unloaded)) => Err(ApiError::from(&*unloaded)),
            Err(error) => {
                self.failed(T::PREFIX, "read", &error);
                load(key).await?.ok_or(ApiError::NotFound)
            }
        }
    }

    /// `get_many_or_load` with `load` (one query for the missing rows), the values in the
    /// order of `keys`; the database alone when the cache fails all the same.
    async fn read_many<T, F, Fut>(
        &self,
        cache: &Cache<T>,
        keys: &[T::Key],
        load: F,
    ) -> Result<Vec<T>, ApiError>
    where
        T: Cacheable,
        T::Key: Clone + Eq + Hash,
        F: Fn(Vec<T::Key>) -> Fut,
        Fut: Future<Output = Result<Vec<T>, sqlx::Error>>,
    {
        match cache.get_many_or_load(keys, &load).await {
            Ok(mut found) => Ok(keys
                .iter()
                .filter_map(|key| found.remove(key.borrow()))
                .collect()),
            Err(LoadError::Loader(error)) => Err(ApiError::Database(error.to_string())),
            Err(error) => {
                self.failed(T::PREFIX, "read", &error);
                Ok(load(keys.to_vec()).await?)
            }
        }
    }

    /// Counts and logs a cache command `op` that failed on the cache of prefix `cache`.
    fn failed(&self, cache: &'static str, op: &'static str, error: &dyn std::fmt::Display) {
        tracing::warn!(cache, op, %error, "cache command failed; answering without the cache");
        self.metrics.cache_error(cache, op);
    }
}
