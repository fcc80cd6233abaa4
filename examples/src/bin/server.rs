//! The reference server: token-refresh over HTTP on axum 0.8 and tokio, on
//! the in-memory ledger, or on a PostgreSQL or Redis ledger shared by several
//! instances (`--store`, with the crate's `postgres` / `redis` features).
//!
//! ```text
//! cargo run -p token-refresh-examples --bin server
//! cargo run -p token-refresh-examples --bin server -- --signing-key key.pem --users users.json --listen 0.0.0.0:8080
//! cargo run -p token-refresh-examples --features postgres --bin server -- --store postgres://app@db/auth --signing-key key.pem
//! cargo run -p token-refresh-examples --bin server -- --help
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
//! - `GET    /.well-known/jwks.json`: the public keys (RFC 8037 OKP JWKs);
//! - `GET    /healthz`, `/readyz`, `/metrics`: probes and Prometheus text;
//!   with `--admin-listen ADDR` on that address only (404 on `--listen`).
//!
//! Every answer is the spec's envelope with `cache-control: no-store` (the
//! public key set and the metrics excepted) and an `x-request-id`; other
//! methods get 405 with `Allow`; login bodies over 4 KiB get 400; a
//! request that takes longer than 10 s gets a 500 envelope; SIGINT or
//! SIGTERM drain in-flight requests and stop. Logs (stderr, `RUST_LOG`)
//! carry a request id, never a token, key or signature.
//!
//! Everything here is the library's (`token_refresh::axum`,
//! `token_refresh::http`); `examples/src/lib.rs` holds the command line, keys,
//! users and ledger set-up the three examples share.

use token_refresh_examples as common;

use std::process::ExitCode;

use axum::Router;
use axum::response::IntoResponse;
use token_refresh::axum::{AccessToken, get_only, jwks, liveness, not_found, readiness, session_routes};
use token_refresh::http::{RequestScopeLayer, serve};
use token_refresh::{Reply, TokenService};

#[tokio::main]
async fn main() -> ExitCode {
    common::run_tokio("axum", |listener, setup| async move {
        let common::Setup { service, shutdown, serve: options, admin, .. } = setup;
        match admin {
            None => serve(listener, router(service, Probes::Here), options, shutdown).await,
            Some(admin) => {
                let (shutdown, admin_shutdown) = common::shutdown_twice(shutdown);
                tokio::join!(
                    serve(listener, router(service.clone(), Probes::Elsewhere), options, shutdown),
                    serve(admin, admin_router(service), common::admin_serve_options(), admin_shutdown),
                );
            }
        }
    })
    .await
}

/// Where the probes and `/metrics` are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probes {
    /// On the API's listener (no `--admin-listen`).
    Here,
    /// On the `--admin-listen` listener only: the API's answers 404.
    Elsewhere,
}

/// Every API route (and the probes unless they are served elsewhere), with
/// the request id, the deadline and the access log around them all (404
/// and 405 included).
fn router(service: TokenService, probes: Probes) -> Router {
    let api = Router::new()
        .route(common::SESSION_PATH, session_routes())
        .route(common::JWKS_PATH, get_only(jwks))
        .route(common::ME_PATH, get_only(me));
    let api = if probes == Probes::Here { with_probes(api) } else { api };
    api.fallback(not_found).layer(RequestScopeLayer::new()).with_state(service)
}

/// The `--admin-listen` listener's routes: the probes and `/metrics`, 404
/// for anything else.
fn admin_router(service: TokenService) -> Router {
    with_probes(Router::new()).fallback(not_found).layer(RequestScopeLayer::new()).with_state(service)
}

fn with_probes(router: Router<TokenService>) -> Router<TokenService> {
    let router = router.route(common::HEALTH_PATH, get_only(liveness)).route(common::READY_PATH, get_only(readiness));
    // No recorder, no route: a 404 says so, an empty 200 would not.
    if common::serves_metrics() { router.route(common::METRICS_PATH, get_only(metrics)) } else { router }
}

/// A protected resource: [`AccessToken`] has checked the token and that its
/// session is still live.
async fn me(AccessToken(claims): AccessToken) -> Reply {
    common::me(&claims)
}

async fn metrics() -> impl IntoResponse {
    (common::METRICS_HEADERS, common::metrics().unwrap_or_default())
}
