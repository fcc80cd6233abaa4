//! The reference server's routes (`examples/src/bin/server.rs`) composed from the
//! library's pieces, for tests that run them in process: on a
//! [`ManualClock`](token_refresh::clock::ManualClock), with a user directory
//! the test edits mid-way, with a short deadline. The example binary itself
//! is run as a process by [`crate::process`]; `tests/all/http_stacks.rs`
//! checks that its answers and these are the same bytes.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use token_refresh::axum::{AccessToken, get_only, jwks, liveness, not_found, readiness, session_routes};
use token_refresh::http::{RequestScopeLayer, ServeOptions, serve};
use token_refresh::{Reply, TokenService};
use tokio::net::TcpListener;

/// The session path.
pub const SESSION_PATH: &str = "/auth/api/v1/authentication-management/session";

/// The reference server's router (without `/metrics`, which needs the
/// process's Prometheus recorder) with request deadline `deadline`.
pub fn router(service: TokenService, deadline: Duration) -> Router {
    Router::new()
        .route(SESSION_PATH, session_routes())
        .route("/.well-known/jwks.json", get_only(jwks))
        .route("/api/v1/me", get_only(me))
        .route("/healthz", get_only(liveness))
        .route("/readyz", get_only(readiness))
        .fallback(not_found)
        .layer(RequestScopeLayer::new().deadline(deadline))
        .with_state(service)
}

async fn me(AccessToken(claims): AccessToken) -> Reply {
    #[derive(serde::Serialize)]
    struct Me<'a> {
        sub: &'a str,
        acc: &'a str,
        role: &'a str,
    }
    Reply::ok(Me { sub: &claims.subject, acc: &claims.account, role: &claims.role })
}

/// Serves [`router`] on `listener` with the library's loop (at most
/// `max_connections` at once) until `shutdown` resolves.
pub async fn serve_router(
    listener: TcpListener,
    service: TokenService,
    deadline: Duration,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let options = ServeOptions::new().max_connections(max_connections);
    serve(listener, router(service, deadline), options, shutdown).await;
}
