//! What a request can fail with, and the HTTP answer for each.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A request that could not be answered with what it asked for.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No row has this id: `404`.
    NotFound,
    /// The request is malformed (a bad id list, too many ids): `400` with the reason.
    BadRequest(String),
    /// The database failed: `500`. The cache failing is never an error: the database
    /// answers instead.
    Database(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound => f.write_str("not found"),
            ApiError::BadRequest(reason) => write!(f, "bad request: {reason}"),
            ApiError::Database(reason) => write!(f, "database: {reason}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Database(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}
