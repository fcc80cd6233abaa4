//! The token endpoints over HTTP, framework-neutral (feature `http`).
//!
//! [`Endpoint`] serves a [`TokenService`](crate::TokenService) as one
//! [`tower_service::Service`] over [`http::Request<B>`](::http::Request)
//! for any request body `B: http_body::Body`. Any server that runs tower
//! services runs it: hyper through `hyper_util`'s `TowerToHyperService`,
//! axum as a nested or fallback service, tonic, or a test driving it with
//! `tower::ServiceExt::oneshot`.
//!
//! | path | method | answer |
//! | --- | --- | --- |
//! | [session](DEFAULT_SESSION_PATH) | `POST` | login; body at most [`MAX_LOGIN_BODY`](crate::MAX_LOGIN_BODY), else 400 and `Connection: close` (a declared `Content-Length` is refused before reading) |
//! | | `PATCH` | refresh |
//! | | `DELETE` | logout (`data: null`) |
//! | | other | 405, `Allow: POST, PATCH, DELETE` |
//! | [JWKS](DEFAULT_JWKS_PATH) | `GET`, `HEAD` | the key set, `Cache-Control: public, max-age=300` |
//! | | other | 405, `Allow: GET, HEAD` |
//! | anything else | any | the [fallback](Endpoint::fallback): [`NotFound`]'s 404 envelope unless you compose |
//!
//! Every answer:
//!
//! - is the envelope of [spec §3](crate::spec#3-the-response-envelope) with
//!   `Content-Type: application/json`, `Cache-Control: no-store` and
//!   `Pragma: no-cache` (the JWKS document excepted), and
//!   `WWW-Authenticate` on 400 and 401: the same bytes and headers as
//!   [`Reply`](crate::Reply) and the [`axum`] integration,
//!   which build them with the same code;
//! - carries `X-Request-Id`: the request's own when it is 1 to 64 of
//!   `A-Z a-z 0-9 - _ .`, a fresh UUID otherwise;
//! - arrives within the [deadline](EndpointConfig::deadline) (10 s by
//!   default, reading the body included), or is the 500 envelope
//!   (`internal server error`) with [`DeadlineExceeded`] in its extensions.
//!
//! Two `Authorization` headers on the session path are refused with 400
//! (`authorization header is repeated`) rather than guessing which one a
//! proxy or the client meant. A refusal keeps its [`Error`](crate::Error)
//! in the answer's extensions as [`FlowError`], for your logs. With feature
//! `tracing` the endpoint logs what [`RequestScopeLayer`] logs (a span per
//! request with its id, method and path and one `answered` line, both at
//! `DEBUG`, target `token_refresh::access`, and a missed deadline at
//! `WARN`) and the core logs a 500's cause; never a header, body, token or
//! key.
//!
//! # Serving it with hyper
//!
//! ```no_run
//! use hyper::server::conn::http1;
//! use hyper_util::rt::TokioIo;
//! use hyper_util::service::TowerToHyperService;
//! use token_refresh::http::Endpoint;
//! use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService, User};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
//!     let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
//!     let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock);
//!     let endpoint = Endpoint::new(service);
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let service = TowerToHyperService::new(endpoint.clone());
//!         tokio::spawn(async move {
//!             // A production server also bounds request heads and
//!             // connections and drains them on shutdown: `serve` does
//!             // (examples/src/bin/hyper.rs uses it).
//!             let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
//!         });
//!     }
//! }
//! ```
//!
//! # Composing it with the rest of an application
//!
//! Paths other than the two the endpoint serves go to its fallback
//! service, which sees the request untouched (body unread), runs under the
//! same deadline, and has `X-Request-Id` added to its answer. Any tower
//! service of `http::Request<B>` answering `http::Response<_>` with a
//! `Bytes` body will do: a router, a `tower::service_fn`, another endpoint.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http_body_util::{BodyExt as _, Full};
//! use token_refresh::http::Endpoint;
//! use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
//! # let service = TokenService::new(Policy::default(), MemoryUserStore::new([]), MemoryLedger::new(), signer, SystemClock);
//! let health = tower::service_fn(|request: http::Request<Full<bytes::Bytes>>| async move {
//!     let status = if request.uri().path() == "/health" { 200 } else { 404 };
//!     let response = http::Response::builder().status(status).body(Full::new(bytes::Bytes::from_static(b"ok")));
//!     Ok::<_, Infallible>(response.unwrap_or_default())
//! });
//! let app = Endpoint::new(service).fallback(health);
//!
//! let request = http::Request::get("/health").body(Full::default())?;
//! let response = app.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! assert!(response.headers().contains_key("x-request-id"));
//!
//! let request = http::Request::get("/.well-known/jwks.json").body(Full::default())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.headers()["cache-control"], "public, max-age=300");
//! let jwks: serde_json::Value = serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
//! assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
//! # Ok(())
//! # }
//! ```

pub(crate) mod answers;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub use answers::sole_authorization;
mod endpoint;
mod probes;
mod scope;
#[cfg(feature = "server")]
mod serve;
pub(crate) mod session;

pub use endpoint::{
    DEFAULT_JWKS_PATH, DEFAULT_SESSION_PATH, Endpoint, EndpointConfig, EndpointConfigError, NotFound, ResponseBody,
    ResponseFuture,
};
pub use probes::{READY_TIMEOUT, readiness};
pub use scope::{
    DEFAULT_DEADLINE, DeadlineExceeded, RequestScope, RequestScopeLayer, ScopedFuture, is_plain_request_id,
};
#[cfg(feature = "server")]
pub use serve::{ServeOptions, serve};
pub use session::FlowError;
