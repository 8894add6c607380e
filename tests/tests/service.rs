//! The example service (package memcache-service) in-process, against real memcacheds and a
//! temporary SQLite file, checked through HTTP: read-through, writes seen at once and the
//! derived page reloaded once, memcached down (the database answers; /healthz and /metrics
//! say so), one database query for 64 concurrent requests of a missing key, several
//! servers from the URL, graceful shutdown, and metrics kept apart per service.
//!
//! Database queries are counted inside the service (`App::db().queries()`, the test hook)
//! and on its `/metrics`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memcache_service::http::{HttpClient, HttpResponse};
use memcache_service::loadgen::Scrape;
use memcache_service::{
    Config, Health, Metrics, Product, ProductPage, RunningService, Service, User,
};
use memcache_tests::{eventually, raw_get, Memcached};
use serde_json::json;

/// Rows seeded in each table: enough for a few pages, quick to create.
const SEED_ROWS: u64 = 200;

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "memcache-service-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A service over its own SQLite file, and an HTTP client of it.
struct TestService {
    service: RunningService,
    http: HttpClient,
    _dir: TempDir,
}

impl TestService {
    /// A service of the memcached servers at `addrs`, whose database queries take `latency`.
    async fn start(addrs: &[String], latency: Duration) -> TestService {
        let dir = TempDir::new();
        let url = format!("memcache://{}/?timeout=1s", addrs.join(","));
        let database = dir.path().join("service.db");
        let mut config = Config::new(url, database.to_str().expect("a UTF-8 temporary path"));
        config.seed_users = SEED_ROWS;
        config.seed_products = SEED_ROWS;
        config.db_latency = latency;
        let service = Service::bind(&config, Metrics::new())
            .await
            .expect("the service starts")
            .spawn();
        let http = HttpClient::new(service.url(""));
        TestService {
            service,
            http,
            _dir: dir,
        }
    }

    /// Database queries so far.
    fn queries(&self) -> u64 {
        self.service.app().db().queries()
    }

    async fn get(&self, path: &str) -> HttpResponse {
        self.http.get(path).await.expect("the service answers")
    }

    async fn get_ok<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = self.get(path).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.json().expect("JSON of the expected shape")
    }

    async fn patch_ok<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> T {
        let response = self
            .http
            .patch_json(path, &body)
            .await
            .expect("the service answers");
        assert_eq!(response.status, 200, "PATCH {path}: {}", response.text());
        response.json().expect("JSON of the expected shape")
    }

    async fn health(&self) -> (u16, Health) {
        let response = self.get("/healthz").await;
        (response.status, response.json().expect("a health report"))
    }

    async fn metrics(&self) -> Scrape {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200);
        Scrape::parse(&response.text())
    }
}

fn seeded_user(id: u64) -> User {
    User {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_read_queries_the_database_and_the_second_does_not() {
    let server = Memcached::start();
    let service = TestService::start(&[server.addr()], Duration::ZERO).await;

    let user: User = service.get_ok("/users/7").await;
    assert_eq!(user, seeded_user(7));
    assert_eq!(service.queries(), 1);
    assert!(
        raw_get(&server.addr(), "user:7").is_some(),
        "stored in memcached"
    );
    let again: User = service.get_ok("/users/7").await;
    assert_eq!(again, user);
    assert_eq!(service.queries(), 1, "the second read is a hit");

    // A list: the hit from memcached, the two misses from one query; then all hits.
    let users: Vec<User> = service.get_ok("/users?ids=8,7,9").await;
    assert_eq!(users, [seeded_user(8), seeded_user(7), seeded_user(9)]);
    assert_eq!(service.queries(), 2);
    let users: Vec<User> = service.get_ok("/users?ids=9,8,7").await;
    assert_eq!(users, [seeded_user(9), seeded_user(8), seeded_user(7)]);
    assert_eq!(service.queries(), 2);

    // A row that does not exist is a 404, asked of the database each time.
    assert_eq!(service.get("/users/100000").await.status, 404);
    assert_eq!(service.queries(), 3);

    let metrics = service.metrics().await;
    assert_eq!(
        metrics.sum_where("service_cache_hits_total", "cache", "user"),
        5.0
    );
    assert_eq!(
        metrics.sum_where("service_db_queries_total", "query", "user"),
        2.0
    );
    assert_eq!(
        metrics.sum_where("service_db_queries_total", "query", "users"),
        1.0
    );
    assert_eq!(metrics.sum("service_db_queries_total"), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_read_back_at_once_and_its_page_reloads_once() {
    let server = Memcached::start();
    let service = TestService::start(&[server.addr()], Duration::from_millis(20)).await;

    let page: ProductPage = service.get_ok("/products?page=0").await;
    assert_eq!(page.items.len(), 20);
    assert_eq!(page.items[2].id, 3);
    let _: ProductPage = service.get_ok("/products?page=0").await;
    let product: Product = service.get_ok("/products/3").await;
    assert_eq!(service.queries(), 2, "one page load, one product load");

    let updated: Product = service
        .patch_ok("/products/3", json!({ "price_cents": 4242 }))
        .await;
    assert_eq!(
        updated,
        Product {
            price_cents: 4242,
            ..product
        }
    );
    assert_eq!(service.queries(), 3, "the update");
    let read: Product = service.get_ok("/products/3").await;
    assert_eq!(read, updated, "the cache holds the new value");
    assert_eq!(service.queries(), 3, "read from the cache");

    // The page was invalidated: 16 readers at once, one reload, all see the new price.
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let http = service.http.clone();
            tokio::spawn(async move { http.get("/products?page=0").await })
        })
        .collect();
    for reader in readers {
        let response = reader.await.expect("reader task").expect("an answer");
        assert_eq!(response.status, 200);
        let page: ProductPage = response.json().expect("a page");
        assert_eq!(page.items[2], updated);
    }
    assert_eq!(service.queries(), 4, "the page reloaded once");
    let page: ProductPage = service.get_ok("/products?page=0").await;
    assert_eq!(page.items[2], updated);
    assert_eq!(service.queries(), 4);
    // Other pages were not touched.
    let _: ProductPage = service.get_ok("/products?page=1").await;
    assert_eq!(service.queries(), 5);

    // A user: written, then read back from the cache.
    let _: User = service.get_ok("/users/4").await;
    let renamed: User = service.patch_ok("/users/4", json!({ "name": "Ann" })).await;
    assert_eq!(renamed.name, "Ann");
    assert_eq!(renamed.email, "user4@example.com");
    let queries = service.queries();
    let read: User = service.get_ok("/users/4").await;
    assert_eq!(read, renamed);
    let listed: Vec<User> = service.get_ok("/users?ids=4").await;
    assert_eq!(listed, [renamed]);
    assert_eq!(service.queries(), queries);

    assert_eq!(
        service
            .metrics()
            .await
            .sum_where("service_db_queries_total", "query", "product_page"),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_memcached_down_the_database_answers_and_health_says_degraded() {
    let server = Memcached::start();
    let service = TestService::start(&[server.addr()], Duration::ZERO).await;
    let (status, health) = service.health().await;
    assert_eq!((status, health.status.as_str()), (200, "ok"), "{health:?}");
    let _: User = service.get_ok("/users/5").await;
    let _: User = service.get_ok("/users/5").await;
    assert_eq!(service.queries(), 1);

    server.kill();
    for round in 1..=3 {
        let user: User = service.get_ok("/users/5").await;
        assert_eq!(user, seeded_user(5));
        assert_eq!(
            service.queries(),
            1 + round,
            "each read goes to the database"
        );
    }
    let users: Vec<User> = service.get_ok("/users?ids=5,6").await;
    assert_eq!(users, [seeded_user(5), seeded_user(6)]);
    let page: ProductPage = service.get_ok("/products?page=0").await;
    assert_eq!(page.items.len(), 20);
    let renamed: User = service.patch_ok("/users/5", json!({ "name": "Bo" })).await;
    let read: User = service.get_ok("/users/5").await;
    assert_eq!(read, renamed, "the database has the write");

    let (status, health) = service.health().await;
    assert_eq!(status, 200, "the database answers: {health:?}");
    assert_eq!(health.status, "degraded");
    assert!(health.database.ok);
    assert!(!health.cache.ok);
    let down = &health.cache.servers[0];
    assert_eq!(down.server, server.addr());
    assert_ne!(down.state, "up", "{down:?}");
    assert!(down.error.is_some() && down.version.is_none(), "{down:?}");

    let metrics = service.metrics().await;
    assert_eq!(metrics.sum("service_cache_degraded"), 1.0);
    assert_eq!(
        metrics.sum_where("service_cache_server_up", "server", &server.addr()),
        0.0
    );
    assert!(metrics.sum_where("service_cache_errors_total", "op", "set") >= 1.0);
    assert_eq!(
        metrics.sum_where("service_http_requests_total", "status", "200"),
        metrics.sum("service_http_requests_total"),
        "every request was answered"
    );

    // memcached comes back (empty): the cache is used again once the client retries it.
    server.restart();
    let health = eventually(
        "the cache is healthy again",
        Duration::from_secs(30),
        || async {
            let (_, health) = service.health().await;
            (health.status == "ok").then_some(health)
        },
    )
    .await;
    assert_eq!(health.cache.servers[0].state, "up");
    let _: User = service.get_ok("/users/5").await;
    let queries = service.queries();
    let read: User = service.get_ok("/users/5").await;
    assert_eq!(read, renamed);
    assert_eq!(service.queries(), queries, "served from memcached again");
    assert_eq!(service.metrics().await.sum("service_cache_degraded"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_requests_for_a_missing_key_make_one_query() {
    let server = Memcached::start();
    // A slow database, so that the requests arrive while the first one loads.
    let service = TestService::start(&[server.addr()], Duration::from_millis(200)).await;
    let requests: Vec<_> = (0..64)
        .map(|_| {
            let http = service.http.clone();
            tokio::spawn(async move { http.get("/products/42").await })
        })
        .collect();
    let mut bodies = Vec::new();
    for request in requests {
        let response = request.await.expect("request task").expect("an answer");
        assert_eq!(response.status, 200, "{}", response.text());
        bodies.push(response.body);
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
    let product: Product = serde_json::from_slice(&bodies[0]).expect("a product");
    assert_eq!(product.id, 42);

    assert_eq!(service.queries(), 1, "one database query for 64 requests");
    let stats = service.service.app().caches().stats();
    let (_, products) = stats
        .iter()
        .find(|(prefix, _)| *prefix == "product")
        .expect("stats");
    assert_eq!(products.loads, 1, "{products:?}");
    assert_eq!(products.hits + products.coalesced, 63, "{products:?}");
    let metrics = service.metrics().await;
    assert_eq!(
        metrics.sum_where("service_db_queries_total", "query", "product"),
        1.0
    );
    assert_eq!(
        metrics.sum_where("service_cache_loads_total", "cache", "product"),
        1.0
    );
    assert_eq!(
        metrics.sum_where("service_http_requests_total", "route", "/products/{id}"),
        64.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_from_the_url_share_the_keys() {
    let servers = [Memcached::start(), Memcached::start()];
    let addrs: Vec<String> = servers.iter().map(Memcached::addr).collect();
    let service = TestService::start(&addrs, Duration::ZERO).await;

    let (status, health) = service.health().await;
    assert_eq!((status, health.status.as_str()), (200, "ok"));
    let listed: Vec<&str> = health
        .cache
        .servers
        .iter()
        .map(|s| s.server.as_str())
        .collect();
    assert_eq!(listed, addrs);

    let ids: Vec<String> = (1..=40).map(|id: u64| id.to_string()).collect();
    let users: Vec<User> = service
        .get_ok(&format!("/users?ids={}", ids.join(",")))
        .await;
    assert_eq!(users.len(), 40);
    for (n, server) in servers.iter().enumerate() {
        let held = (1..=40)
            .filter(|id| raw_get(&server.addr(), &format!("user:{id}")).is_some())
            .count();
        assert!(held > 0, "server {n} holds none of the 40 users");
    }
    let _: Vec<User> = service
        .get_ok(&format!("/users?ids={}", ids.join(",")))
        .await;
    assert_eq!(
        service.queries(),
        1,
        "all 40 hits the second time, from both servers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_when_all_is_well() {
    let server = Memcached::start();
    let service = TestService::start(&[server.addr()], Duration::ZERO).await;

    let (status, health) = service.health().await;
    assert_eq!(status, 200);
    assert_eq!(health.status, "ok");
    assert!(health.database.ok && health.database.error.is_none());
    let up = &health.cache.servers[0];
    assert_eq!(
        (up.server.as_str(), up.state.as_str()),
        (server.addr().as_str(), "up")
    );
    assert!(
        up.version.as_deref().is_some_and(|v| v.starts_with("1.")),
        "{up:?}"
    );

    assert_eq!(service.get("/no/such/route").await.status, 404);
    assert_eq!(service.get("/users?ids=x").await.status, 400);
    let response = service.get("/metrics").await;
    let text = response.text();
    assert!(
        text.contains("# HELP service_http_requests_total"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE service_http_request_duration_seconds histogram"),
        "{text}"
    );
    let metrics = Scrape::parse(&text);
    assert_eq!(metrics.sum("service_cache_degraded"), 0.0);
    // The client's own metrics are there too, labelled by server: /healthz asked every
    // server for its version.
    assert_eq!(
        metrics.sum_where("memcache_server_up", "server", &server.addr()),
        1.0
    );
    assert!(
        metrics.sum_where("memcache_requests_total", "command", "version") >= 1.0,
        "{text}"
    );
    assert_eq!(
        metrics.sum_where("service_cache_server_up", "server", &server.addr()),
        1.0
    );
    assert_eq!(
        metrics.sum_where("service_http_requests_total", "route", "unmatched"),
        1.0
    );
    assert_eq!(
        metrics.sum_where("service_http_requests_total", "status", "400"),
        1.0
    );
    assert_eq!(
        metrics.sum_where("service_http_requests_total", "route", "/healthz"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish() {
    let server = Memcached::start();
    let service = TestService::start(&[server.addr()], Duration::from_millis(300)).await;
    let http = service.http.clone();
    let in_flight = tokio::spawn(async move { http.get("/users/1").await });
    // The request is in the service once its query has started.
    eventually(
        "the request reaches the database",
        Duration::from_secs(10),
        || async { (service.queries() == 1).then_some(()) },
    )
    .await;
    let TestService {
        service: running,
        http,
        _dir,
    } = service;
    let addr = running.addr();
    running.shutdown().await.expect("a clean shutdown");
    let response = in_flight
        .await
        .expect("request task")
        .expect("answered before the end");
    assert_eq!(response.status, 200);
    let user: User = response.json().expect("a user");
    assert_eq!(user, seeded_user(1));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening on {addr}"
    );
    assert!(http.get("/healthz").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_in_one_process_keep_their_own_metrics() {
    let server = Memcached::start();
    let a = TestService::start(&[server.addr()], Duration::ZERO).await;
    let b = TestService::start(&[server.addr()], Duration::ZERO).await;
    let _: User = a.get_ok("/users/1").await;
    let _: User = a.get_ok("/users/2").await;
    let _: User = b.get_ok("/users/1").await;
    assert_eq!((a.queries(), b.queries()), (2, 0), "b read what a stored");
    let (a, b) = (a.metrics().await, b.metrics().await);
    assert_eq!(
        a.sum_where("service_http_requests_total", "route", "/users/{id}"),
        2.0
    );
    assert_eq!(
        b.sum_where("service_http_requests_total", "route", "/users/{id}"),
        1.0
    );
    assert_eq!(a.sum("service_db_queries_total"), 2.0);
    assert_eq!(b.sum("service_db_queries_total"), 0.0);
    assert_eq!(
        b.sum_where("service_cache_hits_total", "cache", "user"),
        1.0
    );
}
