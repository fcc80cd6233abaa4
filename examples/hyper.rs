//! The same service as the `server` example on bare hyper 1 (no framework):
//! what an adapter needs when there is no router, no extractors and no
//! middleware to lean on.
//!
//! ```text
//! cargo run --example hyper -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`; routing,
//! handlers, request ids and the deadline come from `examples/common`.
//! Headers must arrive within 10 s (slow-header clients are cut off), and on
//! SIGINT/SIGTERM the listener closes and open connections finish their
//! current request.

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::convert::Infallible;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use token_refresh::MAX_LOGIN_BODY;
use tokio::net::TcpListener;

use common::{Answer, App, Authorization, Route};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let (config, setup) = match common::start() {
        Ok(started) => started,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(config.listen);
    common::announce(bound, &setup, "hyper");
    serve(listener, setup.app, common::shutdown_signal()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Accepts connections on `listener` until `shutdown` resolves, then drains
/// open connections (at most [`DRAIN_TIMEOUT`]).
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead
                    // of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(handle(&app, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout");
    }
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
