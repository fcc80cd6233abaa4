//! axum 0.8 integration (feature `axum`).
//!
//! - [`IntoResponse`] for [`Error`], [`TokenPair`] and [`Reply`]: the same
//!   status, envelope bytes and headers (`Cache-Control: no-store`,
//!   `WWW-Authenticate`) as every other adapter.
//! - [`session_routes`]: the session endpoint, `POST` login (body limited to
//!   [`MAX_LOGIN_BODY`](crate::MAX_LOGIN_BODY)), `PATCH` refresh, `DELETE`
//!   logout, and the envelope's 405 with `Allow` for any other method.
//! - [`jwks`]: the JWKS document, cacheable for five minutes.
//! - [`get_only`], [`not_found`]: the envelope's 405 and 404 for the rest of
//!   an application's routes; [`liveness`] and [`readiness`] probes.
//! - [`AccessToken`]: an extractor that checks an access token *and* its
//!   session in the ledger, answering the crate's 401 envelope otherwise.
//!
//! Every handler takes the [`TokenService`] from the router state
//! (`TokenService: FromRef<S>`, so it can be one field of a larger state).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use token_refresh::axum::{AccessToken, jwks, session_routes};
//! use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService, User};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
//!     let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
//!     let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock);
//!     let app = Router::new()
//!         .route("/auth/api/v1/authentication-management/session", session_routes())
//!         .route("/.well-known/jwks.json", get(jwks))
//!         .route("/api/v1/orders", get(orders))
//!         .with_state(service);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//!
//! async fn orders(AccessToken(claims): AccessToken) -> String {
//!     claims.subject
//! }
//! ```
//!
//! Add [`RequestScopeLayer`](crate::http::RequestScopeLayer) around the
//! router for `X-Request-Id`, the request deadline and (feature `tracing`)
//! the access log. A header-read timeout is a server setting: see the
//! README's axum section; the reference server (`examples/src/bin/server.rs`)
//! shows both.

use ::axum::body::Body;
use ::axum::extract::{FromRef, FromRequestParts, State};
use ::axum::handler::Handler;
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, Method};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{MethodRouter, any, get};

use crate::envelope::Reply;
use crate::error::{Error, Forbidden};
use crate::http::answers::{self, authorization};
use crate::service::TokenService;
use crate::token::claims::AccessClaims;
use crate::token::pair::TokenPair;

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        answers::reply(self).map(Body::from)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        answers::error(&self).map(Body::from)
    }
}

impl IntoResponse for TokenPair {
    fn into_response(self) -> Response {
        answers::result(&Ok::<_, Error>(self)).map(Body::from)
    }
}

/// The session endpoint: `POST` login, `PATCH` refresh, `DELETE` logout;
/// 405 with `Allow` otherwise. Mount it on the session path:
/// `.route("/auth/api/v1/authentication-management/session", session_routes())`.
pub fn session_routes<S>() -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    TokenService: FromRef<S>,
{
    any(session)
}

/// `GET` the JWKS document: the keys tokens verify under, `public,
/// max-age=300`.
pub async fn jwks(State(service): State<TokenService>) -> Reply {
    Reply::jwks(service.jwks())
}

/// `handler` for `GET` (and `HEAD`); any other method gets the envelope's
/// 405 with `Allow: GET, HEAD` instead of axum's empty one, so a client
/// parses every answer of the service the same way.
///
/// ```
/// use axum::Router;
/// use token_refresh::axum::{get_only, jwks, readiness};
/// use token_refresh::TokenService;
///
/// let routes: Router<TokenService> = Router::new()
///     .route("/.well-known/jwks.json", get_only(jwks))
///     .route("/readyz", get_only(readiness));
/// ```
pub fn get_only<H, T, S>(handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    get(handler).fallback(get_method_not_allowed)
}

/// The envelope's 404 (`no such endpoint`), for `Router::fallback`.
pub async fn not_found() -> Reply {
    Reply::not_found()
}

/// Liveness: 200 ([`Reply::live`]) whenever the process answers.
pub async fn liveness() -> Reply {
    Reply::live()
}

/// Readiness: 200 when the session ledger answers within a second, else
/// 503 ([`http::readiness`](crate::http::readiness)).
pub async fn readiness(State(service): State<TokenService>) -> Reply {
    crate::http::readiness(&service).await
}

/// The claims of a valid access token whose session the ledger still holds
/// (not logged out, not revoked for reuse, not evicted), from the request's
/// `Authorization: Bearer …` header. A failure is the crate's [`Error`]
/// (its rejection), which answers the crate's envelope: 400 for a missing or
/// repeated header, 401 for a bad, expired or revoked token, 422 for a
/// refresh token offered as an access token. A handler that wants the
/// failure as a value takes `Result<AccessToken, Error>`.
///
/// ```
/// use axum::{Router, routing::get};
/// use token_refresh::axum::AccessToken;
/// use token_refresh::{Error, TokenService};
///
/// async fn admin(token: AccessToken) -> Result<String, Error> {
///     // 403 `FORBIDDEN` in the envelope for any other role.
///     let claims = token.require_role(&["ROLE_ADMIN"])?;
///     Ok(format!("hello, {}", claims.subject))
/// }
///
/// let app: Router<TokenService> = Router::new().route("/admin", get(admin));
/// ```
#[derive(Debug, Clone)]
pub struct AccessToken(pub AccessClaims);

impl AccessToken {
    /// The claims when the token's `role` is one of `allowed`; otherwise a
    /// 403 ([`Forbidden::Role`]), answered
    /// in the crate's envelope with `WWW-Authenticate: Bearer
    /// error="insufficient_scope"` (RFC 6750 §3.1).
    pub fn require_role(&self, allowed: &[&str]) -> Result<&AccessClaims, Error> {
        if allowed.contains(&self.0.role.as_str()) { Ok(&self.0) } else { Err(Forbidden::Role.into()) }
    }
}

impl<S> FromRequestParts<S> for AccessToken
where
    S: Send + Sync,
    TokenService: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let service = TokenService::from_ref(state);
        let authorization = authorization(&parts.headers)?;
        service.verify_access_unrevoked(authorization).await.map(AccessToken)
    }
}

async fn session(State(service): State<TokenService>, method: Method, headers: HeaderMap, body: Body) -> Response {
    crate::http::session::answer(&service, &method, &headers, body).await.map(Body::from)
}

async fn get_method_not_allowed() -> Reply {
    Reply::method_not_allowed(answers::JWKS_METHODS)
}
