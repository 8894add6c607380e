//! A small HTTP/1.1 client for the load generator and the tests: hyper's connection-pooling
//! client (`hyper-util`), which axum's own dependencies already bring, so no HTTP client
//! crate of its own is compiled.

use std::fmt;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long a request may take, answer included, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one HTTP server, keeping its connections open between requests. Cheap to
/// clone (clones share the connection pool).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

/// A response, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON.
    ///
    /// # Errors
    /// The body is not JSON of that shape.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            HttpError(format!(
                "status {}, body not as expected: {error}",
                self.status
            ))
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request that got no response: the connection failed or the time ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl HttpClient {
    /// A client of the server at `base` (`http://127.0.0.1:8080`, no trailing `/`), each
    /// request bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(base: impl Into<String>) -> HttpClient {
        let client = Client::builder(TokioExecutor::new()).build_http();
        HttpClient {
            client,
            base: base.into().trim_end_matches('/').to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpClient {
        self.timeout = timeout;
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET {base}{path}`.
    ///
    /// # Errors
    /// No response (see [`HttpError`]).
    pub async fn get(&self, path: &str) -> Result<HttpResponse, HttpError> {
        self.send(Method::GET, path, None).await
    }

    /// `PATCH {base}{path}` with `body` as JSON.
    ///
    /// # Errors
    /// No response (see [`HttpError`]).
    pub async fn patch_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<HttpResponse, HttpError> {
        let body = serde_json::to_vec(body).map_err(|error| HttpError(error.to_string()))?;
        self.send(Method::PATCH, path, Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, HttpError> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder().method(method).uri(&url);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| HttpError(format!("{url}: {error}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| HttpError(format!("{url}: {error}")))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| HttpError(format!("{url}: reading the body: {error}")))?
                .to_bytes();
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError(format!("{url}: no response within {:?}", self.timeout)))?
    }
}
