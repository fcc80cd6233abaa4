//! The same service as the `server` example on bare hyper 1 (no framework),
//! serving the library's framework-neutral endpoint
//! (`token_refresh::http::Endpoint`, feature `http`) through
//! `hyper_util::service::TowerToHyperService`.
//!
//! ```text
//! cargo run --features http --example hyper -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`. The endpoint
//! answers the session path and the JWKS document, and brings the request
//! deadline, `X-Request-Id`, the login body limit and the 405s; this file
//! adds what is the application's own: `/api/v1/me` (and the 404 for
//! anything else) as the endpoint's fallback, and a request log around it.
//! The command line, the state and the accept loop come from
//! `examples/common`.

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
use hyper::{Request, Response};
use hyper_util::service::TowerToHyperService;
use token_refresh::http::{DeadlineExceeded, Endpoint, EndpointConfig, EndpointConfigError, FlowError, ResponseBody};
use token_refresh::{
    Error, SessionId, SessionInfo, StoreError, TokenService, User, UserStore, ledger::AccessState, ledger::Created,
    ledger::NewSession, ledger::Revocation, ledger::Rotation, ledger::RotationRequest, ledger::SessionLedger,
    token::TokenId,
};
use tokio::net::TcpListener;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use common::{App, Authorization};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[tokio::main]
async fn main() -> ExitCode {
    common::run_tokio("hyper", |listener, app| serve(listener, app, common::shutdown_signal())).await
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains open
/// connections; the accept loop (header-read timeout, drain) is
/// `common::serve_http1`, shared with the axum server.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let app_connections = app.max_connections;
    let endpoint = match endpoint(&app) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            tracing::error!(%error, "cannot build the endpoint");
            return;
        }
    };
    let service = tower::service_fn(move |request| logged(endpoint.clone(), request));
    common::serve_http1(listener, app_connections, TowerToHyperService::new(service), shutdown).await;
}

/// The library's endpoint on `app`'s stores, keys and policy, with
/// [`Rest`] as its fallback.
fn endpoint(app: &Arc<App>) -> Result<Endpoint<Rest>, EndpointConfigError> {
    let service = TokenService::new(
        app.policy.clone(),
        AppUsers(Arc::clone(app)),
        AppLedger(Arc::clone(app)),
        app.signer.clone(),
        Arc::clone(&app.clock),
    );
    let endpoint = EndpointConfig::new()
        .session_path(common::SESSION_PATH)
        .jwks_path(common::JWKS_PATH)
        .deadline(app.request_timeout)
        .build(service)?;
    Ok(endpoint.fallback(Rest(Arc::clone(app))))
}

/// Every path but the endpoint's: `GET /api/v1/me`, its 405, and 404.
#[derive(Clone)]
struct Rest(Arc<App>);

impl tower::Service<Request<Incoming>> for Rest {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let app = Arc::clone(&self.0);
        Box::pin(async move {
            let (parts, _body) = request.into_parts();
            let route = common::route(parts.method.as_str(), parts.uri.path());
            let authorization =
                Authorization::from_values(parts.headers.get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes));
            let answer = app.answer(route, authorization, None).await;
            Ok(answer.into_http().map(|body| Full::new(Bytes::from(body))))
        })
    }
}

/// One request through `endpoint` in a `common::RequestScope`: the span
/// handlers log in, and the request's log line (id, method, path, status,
/// duration; never a header or body).
async fn logged<S>(endpoint: S, mut request: Request<Incoming>) -> Result<Response<ResponseBody>, Infallible>
where
    S: tower::Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>,
{
    // The id the scope logs is the one the endpoint echoes: a plain one is
    // kept, so it is handed over in the request's header.
    let id = common::request_id(request.headers().get(X_REQUEST_ID).map(HeaderValue::as_bytes));
    let scope = common::RequestScope::begin(request.method().as_str(), request.uri().path(), Some(id.as_bytes()));
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(X_REQUEST_ID, value);
    }
    let response = endpoint.oneshot(request).instrument(scope.span()).await?;
    if let Some(failure) = response.extensions().get::<FlowError>() {
        scope.span().in_scope(|| log_refusal(failure.error()));
    }
    if let Some(exceeded) = response.extensions().get::<DeadlineExceeded>() {
        // Logs the timeout; the endpoint has answered the same 500.
        let _ = scope.timed_out(exceeded.deadline());
    }
    scope.end(response.status().as_u16());
    Ok(response)
}

/// Logs a flow's refusal as `common` does for the other stacks: a 500 with
/// its cause (which never reaches the client), anything else by the check
/// that refused, never the token.
fn log_refusal(error: &Error) {
    match error {
        Error::Internal(_) => {
            tracing::error!(%error, cause = ?std::error::Error::source(error), "request failed inside");
        }
        _ => tracing::debug!(%error, "refused"),
    }
}

/// `app`'s user directory, shared with the `TokenService` the endpoint
/// serves.
struct AppUsers(Arc<App>);

impl UserStore for AppUsers {
    async fn find(&self, subject: &str) -> Result<Option<Arc<User>>, StoreError> {
        self.0.store.users().find(subject).await
    }
}

/// `app`'s session ledger (whichever `--store` chose), shared with the
/// `TokenService` the endpoint serves.
struct AppLedger(Arc<App>);

impl SessionLedger for AppLedger {
    async fn create(&self, session: &NewSession) -> Result<Created, StoreError> {
        self.0.store.ledger().create(session).await
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        self.0.store.ledger().rotate(request).await
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.0.store.ledger().revoke_session(subject, session, now).await
    }

    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.0.store.ledger().revoke_user(subject, now).await
    }

    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.0.store.ledger().sessions(subject, now).await
    }

    async fn access_state(&self, subject: &str, access_id: TokenId, now: i64) -> Result<AccessState, StoreError> {
        self.0.store.ledger().access_state(subject, access_id, now).await
    }
}
