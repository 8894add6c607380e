//! The HTTP API.
//!
//! | route | does |
//! |---|---|
//! | `GET /users/{id}` | one user, through the cache |
//! | `GET /users?ids=1,2,3` | the users that exist among these ids (at most 100), in that order, through the cache in one round trip and at most one query |
//! | `PATCH /users/{id}` | `{"name": .., "email": ..}` (each optional): updates the row, then the cache; answers the user as it now is |
//! | `GET /products/{id}` | one product, through the cache |
//! | `GET /products?ids=1,2,3` | as `/users?ids=` |
//! | `GET /products?page=N` | page N (from 0, 20 products a page, by id) of the product list, a cached entry of its own; `page=0` without a query |
//! | `PATCH /products/{id}` | `{"name": .., "price_cents": .., "stock": ..}` (each optional): updates the row, then the cache, and invalidates the product's page |
//! | `GET /healthz` | the database's and the memcached servers' health (see [`crate::health`]) |
//! | `GET /metrics` | the Prometheus text format (see [`crate::metrics`]) |
//!
//! Answers are JSON; errors are `{"error": "..."}` with 400, 404 or 500.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::db::MAX_BATCH;
use crate::error::ApiError;
use crate::health;
use crate::model::{Product, ProductChange, ProductPage, User, UserChange};
use crate::service::App;

/// The router of the API, over `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{id}", get(get_user).patch(patch_user))
        .route("/products", get(list_products))
        .route("/products/{id}", get(get_product).patch(patch_product))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), track))
        .with_state(app)
}

/// The query of the list routes.
#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Comma-separated ids.
    ids: Option<String>,
    /// A page of the product list.
    page: Option<u32>,
}

async fn get_user(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(app.caches.user(&app.db, id).await?))
}

async fn list_users(
    State(app): State<Arc<App>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<User>>, ApiError> {
    let ids = parse_ids(query.ids.as_deref().unwrap_or(""))?;
    Ok(Json(app.caches.users(&app.db, &ids).await?))
}

async fn patch_user(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    Json(change): Json<UserChange>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(app.caches.update_user(&app.db, id, &change).await?))
}

async fn get_product(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(app.caches.product(&app.db, id).await?))
}

/// `?ids=` lists products; otherwise `?page=` (default 0) is a page of the list.
async fn list_products(
    State(app): State<Arc<App>>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    if let Some(ids) = query.ids {
        let ids = parse_ids(&ids)?;
        return Ok(Json(app.caches.products(&app.db, &ids).await?).into_response());
    }
    let page: ProductPage = app
        .caches
        .product_page(&app.db, query.page.unwrap_or(0))
        .await?;
    Ok(Json(page).into_response())
}

async fn patch_product(
    State(app): State<Arc<App>>,
    Path(id): Path<u64>,
    Json(change): Json<ProductChange>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(app.caches.update_product(&app.db, id, &change).await?))
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let health = health::check(&app.db, &app.caches).await;
    app.metrics.cache_servers(&app.caches.client().servers());
    let status = if health.is_serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.publish_cache_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Counts every request and times it, labelled by its matched route.
async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    app.metrics.http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Parses `1,2,3` into distinct ids, in the order given.
fn parse_ids(text: &str) -> Result<Vec<u64>, ApiError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for part in text.split(',').filter(|part| !part.is_empty()) {
        let id: u64 = part
            .trim()
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{part:?} is not an id")))?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "ids: from 1 to {MAX_BATCH} ids, comma-separated"
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_distinct_in_order() {
        assert_eq!(parse_ids("3,1,3, 2").unwrap(), [3, 1, 2]);
        assert_eq!(parse_ids("7,").unwrap(), [7]);
        for bad in ["", ",", "x", "1,-2"] {
            assert!(
                matches!(parse_ids(bad), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_BATCH).map(|n| n.to_string()).collect();
        assert!(parse_ids(&many.join(",")).is_err());
    }
}
