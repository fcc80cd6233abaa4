//! The same service as the `server` example on bare hyper 1 (no framework):
//! what an adapter needs when there is no router, no extractors and no
//! middleware to lean on.
//!
//! ```text
//! cargo run --example hyper -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`; routing,
//! handlers, request ids, the deadline and the accept loop come from
//! `examples/common`. This file is the part a hyper user writes: a
//! `service_fn` that reads the method, path, headers and (bounded) body and
//! writes the answer.

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::convert::Infallible;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use token_refresh::MAX_LOGIN_BODY;
use tokio::net::TcpListener;

use common::{Answer, App, Authorization, Route};

#[tokio::main]
async fn main() -> ExitCode {
    common::run_tokio("hyper", |listener, app| serve(listener, app, common::shutdown_signal())).await
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains open
/// connections; the accept loop (header-read timeout, drain) is
/// `common::serve_http1`, shared with the axum server.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let app_connections = app.max_connections;
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handle(&app, request).await) }
    });
    common::serve_http1(listener, app_connections, service, shutdown).await;
}

async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str();
    let path = parts.uri.path();
    let incoming_id = parts.headers.get("x-request-id").map(HeaderValue::as_bytes);
    let answer = app
        .observe(method, path, incoming_id, async {
            let route = common::route(method, path);
            let authorization =
                Authorization::from_values(parts.headers.get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes));
            let login_body = match route {
                Route::Login => read_login_body(parts.headers.get(CONTENT_LENGTH), body).await,
                _ => None,
            };
            app.answer(route, authorization, login_body.as_deref()).await
        })
        .await;
    into_response(answer)
}

/// The login body, or `None` when it is over [`MAX_LOGIN_BODY`] (declared
/// or actual) or could not be read.
async fn read_login_body(content_length: Option<&HeaderValue>, body: Incoming) -> Option<Bytes> {
    if common::declared_too_large(content_length.map(HeaderValue::as_bytes)) {
        return None;
    }
    Limited::new(body, MAX_LOGIN_BODY).collect().await.ok().map(|collected| collected.to_bytes())
}

fn into_response(answer: Answer) -> Response<Full<Bytes>> {
    answer.into_http().map(|body| Full::new(Bytes::from(body)))
}
