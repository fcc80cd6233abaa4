//! The reference server: token-refresh over HTTP on axum 0.8 and tokio, on
//! the in-memory ledger, or on a PostgreSQL or Redis ledger shared by several
//! instances (`--store`, with the crate's `postgres` / `redis` features).
//!
//! ```text
//! cargo run --example server
//! cargo run --example server -- --signing-key key.pem --users users.json --listen 0.0.0.0:8080
//! cargo run --features postgres --example server -- --store postgres://app@db/auth --signing-key key.pem
//! cargo run --example server -- --help
//! ```
//!
//! Endpoints:
//!
//! - `POST   /auth/api/v1/authentication-management/session`: log in with
//!   `{email, signature, publicKey}`;
//! - `PATCH  /auth/api/v1/authentication-management/session`: refresh
//!   (`Authorization: <refresh token>` or `Bearer <refresh token>`);
//! - `DELETE /auth/api/v1/authentication-management/session`: log out;
//! - `GET    /api/v1/me`: who the access token belongs to (revocation
//!   checked);
//! - `GET    /.well-known/jwks.json`: the public keys (RFC 8037 OKP JWKs).
//!
//! Every answer is the SPEC envelope with `cache-control: no-store` (except
//! the public key set). Other methods on these paths get 405 with `Allow`;
//! login bodies over 4 KiB get 400; a request that takes longer than 10 s
//! gets a 500 envelope; SIGINT or SIGTERM drain in-flight requests and stop.
//! Logs (stderr, `RUST_LOG`) carry a request id, never a token, key or
//! signature.
//!
//! The framework-neutral glue (command line, state, handlers) lives in
//! `examples/common/mod.rs`, shared with the `actix` and `hyper` examples.

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use token_refresh::MAX_LOGIN_BODY;
use tokio::net::TcpListener;
use tracing::Instrument as _;

use common::{
    Answer, App, Authorization, GET_METHODS, HEALTH_PATH, JWKS_PATH, ME_PATH, METRICS_PATH, READY_PATH,
    SESSION_METHODS, SESSION_PATH,
};

#[tokio::main]
async fn main() -> ExitCode {
    common::run_tokio("axum", |listener, app| serve(listener, app, common::shutdown_signal())).await
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
///
/// `axum::serve(listener, router(app)).with_graceful_shutdown(shutdown)` is
/// the usual line; it has no header-read timeout, so a client that trickles
/// its headers holds a connection forever. `common::serve_http1` is the
/// same hyper accept loop with that timeout.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let app_connections = app.max_connections;
    let service = hyper_util::service::TowerToHyperService::new(router(app));
    common::serve_http1(listener, app_connections, service, shutdown).await;
}

/// The routes. Method mismatches fall back to an envelope 405 with `Allow`
/// (axum keeps an `Allow` the handler set), unknown paths to an envelope 404.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(SESSION_PATH, post(login).patch(refresh).delete(logout).fallback(session_method_not_allowed))
        .route(ME_PATH, get(me).fallback(get_method_not_allowed))
        .route(JWKS_PATH, get(jwks).fallback(get_method_not_allowed))
        .route(METRICS_PATH, get(metrics).fallback(get_method_not_allowed))
        .route(HEALTH_PATH, get(healthz).fallback(get_method_not_allowed))
        .route(READY_PATH, get(ready).fallback(get_method_not_allowed))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .with_state(app)
}

type AppState = State<Arc<App>>;

async fn login(State(app): AppState, request: Request) -> Answer {
    // Refuse a declared oversize before reading; `to_bytes` bounds the rest
    // (chunked bodies, lying lengths).
    let declared = request.headers().get(header::CONTENT_LENGTH).map(HeaderValue::as_bytes);
    if common::declared_too_large(declared) {
        return common::body_too_large();
    }
    match axum::body::to_bytes(request.into_body(), MAX_LOGIN_BODY).await {
        Ok(body) => app.answer(common::Route::Login, Authorization::Absent, Some(&body)).await,
        Err(_) => common::body_too_large(),
    }
}

async fn refresh(State(app): AppState, headers: HeaderMap) -> Answer {
    app.answer(common::Route::Refresh, authorization(&headers), None).await
}

async fn logout(State(app): AppState, headers: HeaderMap) -> Answer {
    app.answer(common::Route::Logout, authorization(&headers), None).await
}

async fn me(State(app): AppState, headers: HeaderMap) -> Answer {
    app.answer(common::Route::Me, authorization(&headers), None).await
}

async fn jwks(State(app): AppState) -> Answer {
    app.jwks()
}

async fn metrics() -> Answer {
    common::metrics()
}

async fn healthz() -> Answer {
    common::healthy()
}

async fn ready(State(app): AppState) -> Answer {
    app.ready().await
}

async fn session_method_not_allowed() -> Answer {
    common::method_not_allowed(SESSION_METHODS)
}

async fn get_method_not_allowed() -> Answer {
    common::method_not_allowed(GET_METHODS)
}

async fn not_found() -> Answer {
    common::not_found()
}

fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    Authorization::from_values(headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes))
}

/// Request id, log line and deadline around every route (and the
/// fallbacks), as `App::observe` does for the other stacks.
async fn observe(State(app): AppState, request: Request, next: Next) -> Response {
    let incoming_id = request.headers().get("x-request-id").map(HeaderValue::as_bytes);
    let scope = common::RequestScope::begin(request.method().as_str(), request.uri().path(), incoming_id);
    let mut response = match tokio::time::timeout(app.request_timeout, next.run(request).instrument(scope.span())).await
    {
        Ok(response) => response,
        Err(_) => scope.timed_out(app.request_timeout).into_response(),
    };
    let id = scope.end(response.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        self.into_http().map(Body::from)
    }
}
