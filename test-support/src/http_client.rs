//! A plain HTTP/1 client (hyper) for driving the example servers over real
//! HTTP, and the responses it reads.

use std::error::Error as StdError;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::users::login_body;

/// What an HTTP test returns: `?` on any error fails it.
pub type TestResult<T = ()> = Result<T, Box<dyn StdError + Send + Sync>>;

/// The session resource: POST logs in, PATCH refreshes, DELETE logs out.
pub const SESSION: &str = "/auth/api/v1/authentication-management/session";

/// One response, fully read.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> TestResult<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// `status.name` of the envelope; panics (failing the test) if the body
    /// is not an envelope, so two broken answers never compare equal.
    pub fn name(&self) -> String {
        self.status_field("name")
    }

    /// `status.message` of the envelope; panics like [`Self::name`].
    pub fn message(&self) -> String {
        self.status_field("message")
    }

    fn status_field(&self, field: &str) -> String {
        self.json()
            .ok()
            .and_then(|v| v.pointer(&format!("/status/{field}")).and_then(serde_json::Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "status {}: body is not an envelope with status.{field}: {:?}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            })
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `data.<field>` as a string.
    pub fn data(&self, field: &str) -> TestResult<String> {
        let json = self.json()?;
        Ok(json
            .get("data")
            .and_then(|data| data.get(field))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("no data.{field} in {json}"))?
            .to_owned())
    }

    /// The headers an adapter chose, without the ones that vary per request
    /// (`date`, `x-request-id`), sorted: for comparing stacks.
    pub fn stable_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or("<binary>").to_owned()))
            .collect();
        headers.sort();
        headers
    }
}

/// A plain HTTP/1 client for one server.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    address: SocketAddr,
    base: String,
}

impl Http {
    /// A client of the server at `address`.
    pub fn new(address: SocketAddr) -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http(), address, base: format!("http://{address}") }
    }

    /// The server's address, for raw TCP.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Any request.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> TestResult<Response> {
        let mut request = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.request(request.body(Full::new(Bytes::copy_from_slice(body)))?).await
    }

    /// PATCH with an `Authorization` value given as raw bytes (for values
    /// `&str` cannot carry).
    pub async fn refresh_raw(&self, authorization: &[u8]) -> TestResult<Response> {
        let request = http::Request::builder()
            .method("PATCH")
            .uri(format!("{}{SESSION}", self.base))
            .header("authorization", http::HeaderValue::from_bytes(authorization)?)
            .body(Full::new(Bytes::new()))?;
        self.request(request).await
    }

    async fn request(&self, request: http::Request<Full<Bytes>>) -> TestResult<Response> {
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, headers, body })
    }

    /// POST a login body.
    pub async fn login(&self, body: &str) -> TestResult<Response> {
        self.send("POST", SESSION, &[("content-type", "application/json")], body.as_bytes()).await
    }

    /// PATCH with `Authorization: <authorization>` (`None`: no header).
    pub async fn refresh(&self, authorization: Option<&str>) -> TestResult<Response> {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        self.send("PATCH", SESSION, &headers, b"").await
    }

    /// DELETE the session.
    pub async fn logout(&self, authorization: &str) -> TestResult<Response> {
        self.send("DELETE", SESSION, &[("authorization", authorization)], b"").await
    }

    /// GET the caller's claims.
    pub async fn me(&self, authorization: &str) -> TestResult<Response> {
        self.send("GET", "/api/v1/me", &[("authorization", authorization)], b"").await
    }

    /// Logs `email` in with the key of `seed`; expects 200 and returns
    /// `(access, refresh)`.
    pub async fn session(&self, email: &str, seed: &[u8; 32]) -> TestResult<(String, String)> {
        let response = self.login(&login_body(email, seed)).await?;
        if response.status != 200 {
            return Err(format!("login failed: {} {}", response.status, String::from_utf8_lossy(&response.body)).into());
        }
        Ok((response.data("accessToken")?, response.data("refreshToken")?))
    }
}
