//! The same service as the `server` example on actix-web 4.
//!
//! ```text
//! cargo run --example actix -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`; routing,
//! handlers, request ids and the deadline come from `examples/common`.
//! actix-web 4 still builds on `http` 0.2, which is why the core takes the
//! `Authorization` header as bytes and answers with a status and a body
//! rather than `http` types. actix handles SIGINT/SIGTERM itself: it stops
//! accepting and gives in-flight requests up to 10 s.

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use token_refresh::MAX_LOGIN_BODY;

use common::{Answer, App, Authorization, Route};

/// How long a client may take to send its request headers.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds in-flight requests get after a shutdown signal.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

fn main() -> ExitCode {
    // Start-up runs inside actix's runtime: a shared ledger's connections
    // are made there and must outlive start-up.
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> ExitCode {
    let (config, setup) = match common::start().await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(config.listen);
    let server = match server(listener, setup.app.clone(), true) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot serve on {bound}: {error}");
            return ExitCode::FAILURE;
        }
    };
    common::announce(bound, &setup, "actix");
    match server.await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// actix worker threads (one per core of the reference machine).
const WORKERS: usize = 2;

/// An actix server for `app` on `listener`; await it to run. With
/// `signals`, SIGINT/SIGTERM stop it gracefully; without, stop it through its
/// handle (tests).
pub(crate) fn server(
    listener: std::net::TcpListener,
    app: Arc<App>,
    signals: bool,
) -> std::io::Result<actix_web::dev::Server> {
    // actix counts connections per worker.
    let per_worker = app.max_connections.div_ceil(WORKERS).max(1);
    let data = web::Data::from(app);
    let server = HttpServer::new(move || actix_web::App::new().app_data(data.clone()).default_service(web::to(handle)))
        .workers(WORKERS)
        .max_connections(per_worker)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let server = if signals { server } else { server.disable_signals() };
    Ok(server.listen(listener)?.run())
}

/// Every request lands here and is routed by `common::route`, so paths and
/// 405s match the other stacks exactly.
async fn handle(app: web::Data<App>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let method = request.method().as_str();
    let path = request.path();
    let incoming_id = request.headers().get("x-request-id").map(HeaderValue::as_bytes);
    let answer = app
        .observe(method, path, incoming_id, async {
            let route = common::route(method, path);
            let authorization =
                Authorization::from_values(request.headers().get_all(AUTHORIZATION).map(HeaderValue::as_bytes));
            let login_body = match route {
                Route::Login => read_login_body(request.headers().get(CONTENT_LENGTH), payload).await,
                _ => None,
            };
            app.answer(route, authorization, login_body.as_deref()).await
        })
        .await;
    into_response(answer)
}

/// The login body, or `None` when it is over [`MAX_LOGIN_BODY`] (declared
/// or actual) or could not be read.
async fn read_login_body(content_length: Option<&HeaderValue>, payload: web::Payload) -> Option<web::Bytes> {
    if common::declared_too_large(content_length.map(HeaderValue::as_bytes)) {
        return None;
    }
    payload.to_bytes_limited(MAX_LOGIN_BODY).await.ok().and_then(Result::ok)
}

fn into_response(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers {
        let name = HeaderName::from_bytes(name.as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&value)) {
            response.append_header((name, value));
        }
    }
    response.body(answer.body)
}
