//! The same service as the `server` example on actix-web 4, calling
//! `TokenService` directly.
//!
//! ```text
//! cargo run -p token-refresh-examples --bin actix -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`. actix-web 4 is
//! on `http` 0.2, so the library's `http` 1 pieces do not fit; its
//! framework-neutral ones do: `TokenService` takes the `Authorization`
//! header as bytes, and every answer is a `Reply` (status, headers, body).
//! SIGINT/SIGTERM drain in-flight requests for up to 10 s.

use token_refresh_examples as common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpServer, web};
use token_refresh::http::{DEFAULT_DEADLINE, is_plain_request_id, readiness, sole_authorization};
use token_refresh::{MAX_LOGIN_BODY, Reply, TokenService};
use tracing::Instrument as _;

/// actix worker threads (one per core of the reference machine).
const WORKERS: usize = 2;

fn main() -> ExitCode {
    // Start-up runs inside actix's runtime: a shared ledger's connections
    // are made there and must outlive start-up.
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> ExitCode {
    let (listener, setup) = match common::start("actix").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let service = web::Data::new(setup.service.clone());
    // actix counts connections per worker.
    let per_worker = setup.serve.connections().div_ceil(WORKERS).max(1);
    let server = listener.into_std().and_then(|listener| {
        HttpServer::new(move || actix_web::App::new().app_data(service.clone()).default_service(web::to(handle)))
            .workers(WORKERS)
            .max_connections(per_worker)
            .client_request_timeout(Duration::from_secs(10))
            .shutdown_timeout(10)
            .shutdown_signal(setup.shutdown)
            .listen(listener)
    });
    let Ok(server) = server.map_err(|error| tracing::error!(%error, "cannot serve the socket")) else {
        return ExitCode::FAILURE;
    };
    let stopped = server.run().await;
    stopped.map_err(|error| tracing::error!(%error, "server failed")).map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS)
}

/// Every request: its id, deadline and log line around [`answer`], as the
/// library's `RequestScopeLayer` does for the tower stacks.
async fn handle(service: web::Data<TokenService>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    let incoming =
        request.headers().get("x-request-id").map(HeaderValue::as_bytes).filter(|id| is_plain_request_id(id));
    let id = incoming
        .and_then(|id| std::str::from_utf8(id).ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let span = tracing::debug_span!(target: "token_refresh::access", "request", id, method = request.method().as_str(), path = request.path());
    let started = Instant::now();
    let answered = tokio::time::timeout(DEFAULT_DEADLINE, answer(&service, &request, payload).instrument(span.clone()));
    let mut response = answered.await.unwrap_or_else(|_| reply(Reply::deadline_exceeded()));
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(
        || tracing::debug!(target: "token_refresh::access", status = response.status().as_u16(), elapsed_us, "answered"),
    );
    if let Ok(id) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), id);
    }
    response
}

/// Routes and answers one request.
async fn answer(service: &TokenService, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    let method = request.method();
    let reading = *method == Method::GET || *method == Method::HEAD;
    let authorization = || sole_authorization(request.headers().get_all(AUTHORIZATION).map(HeaderValue::as_bytes));
    let result = match request.path() {
        common::SESSION_PATH => match (method.as_str(), authorization()) {
            ("POST" | "PATCH" | "DELETE", Err(error)) => Reply::from_error(&error),
            ("POST", Ok(_)) => match login_body(request, payload).await {
                Some(body) => Reply::from_result(&service.login(&body).await),
                None => Reply::login_body_too_large(),
            },
            ("PATCH", Ok(authorization)) => Reply::from_result(&service.refresh(authorization).await),
            ("DELETE", Ok(authorization)) => match service.logout(authorization).await {
                Ok(()) => Reply::empty(),
                Err(error) => Reply::from_error(&error),
            },
            _ => Reply::method_not_allowed("POST, PATCH, DELETE"),
        },
        common::METRICS_PATH if !common::serves_metrics() => Reply::not_found(),
        common::JWKS_PATH | common::ME_PATH | common::HEALTH_PATH | common::READY_PATH | common::METRICS_PATH
            if !reading =>
        {
            Reply::method_not_allowed("GET, HEAD")
        }
        common::JWKS_PATH => Reply::jwks(service.jwks()),
        common::ME_PATH => match authorization().map(|authorization| service.verify_access_unrevoked(authorization)) {
            Ok(verified) => verified.await.map_or_else(|error| Reply::from_error(&error), |claims| common::me(&claims)),
            Err(error) => Reply::from_error(&error),
        },
        common::HEALTH_PATH => Reply::live(),
        common::READY_PATH => readiness(service).await,
        common::METRICS_PATH => {
            let mut response = HttpResponse::Ok();
            for header in common::METRICS_HEADERS {
                response.insert_header(header);
            }
            return response.body(common::metrics().unwrap_or_default());
        }
        _ => Reply::not_found(),
    };
    reply(result)
}

/// The login body, or `None` when it is over [`MAX_LOGIN_BODY`] (declared
/// or actual) or could not be read.
async fn login_body(request: &HttpRequest, payload: web::Payload) -> Option<web::Bytes> {
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|length| length.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_LOGIN_BODY as u64) {
        return None;
    }
    payload.to_bytes_limited(MAX_LOGIN_BODY).await.ok()?.ok()
}

fn reply(reply: Reply) -> HttpResponse {
    let mut response =
        HttpResponse::build(StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for header in reply.headers() {
        response.append_header(header);
    }
    response.body(reply.into_body())
}
