//! The same service as the `server` example on bare hyper 1 (no framework):
//! the library's framework-neutral endpoint (`token_refresh::http::Endpoint`)
//! in the library's HTTP/1 loop (`token_refresh::http::serve`).
//!
//! ```text
//! cargo run -p token-refresh-examples --bin hyper -- --listen 127.0.0.1:8080
//! ```
//!
//! Same flags, endpoints and bytes on the wire as `server`. The endpoint
//! answers the session path and the JWKS document, and brings the request
//! deadline, `X-Request-Id`, the access log, the login body limit and the
//! 405s. This file adds what is the application's own, as the endpoint's
//! fallback: `/api/v1/me`, the probes, the metrics, and the 404 for
//! anything else.

use token_refresh_examples as common;

use std::convert::Infallible;
use std::process::ExitCode;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{Method, Request, Response};
use token_refresh::http::{EndpointConfig, readiness, serve, sole_authorization};
use token_refresh::{Reply, TokenService};

#[tokio::main]
async fn main() -> ExitCode {
    common::run_tokio("hyper", |listener, setup| async move {
        let service = setup.service.clone();
        let endpoint =
            EndpointConfig::new().session_path(common::SESSION_PATH).jwks_path(common::JWKS_PATH).build(setup.service);
        match endpoint {
            Ok(endpoint) => {
                let app = endpoint.fallback(tower::service_fn(move |request| rest(service.clone(), request)));
                serve(listener, app, setup.serve, setup.shutdown).await;
            }
            Err(error) => tracing::error!(%error, "cannot build the endpoint"),
        }
    })
    .await
}

/// Every path but the endpoint's.
async fn rest(service: TokenService, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let reply = match path {
        common::METRICS_PATH if !common::serves_metrics() => Reply::not_found(),
        common::ME_PATH | common::HEALTH_PATH | common::READY_PATH | common::METRICS_PATH if !reading => {
            Reply::method_not_allowed("GET, HEAD")
        }
        common::ME_PATH => {
            let authorization =
                sole_authorization(request.headers().get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes));
            match authorization {
                Ok(authorization) => match service.verify_access_unrevoked(authorization).await {
                    Ok(claims) => common::me(&claims),
                    Err(error) => Reply::from_error(&error),
                },
                Err(error) => Reply::from_error(&error),
            }
        }
        common::HEALTH_PATH => Reply::live(),
        common::READY_PATH => readiness(&service).await,
        common::METRICS_PATH => {
            let mut response = Response::new(Full::new(Bytes::from(common::metrics().unwrap_or_default())));
            for (name, value) in common::METRICS_HEADERS {
                response.headers_mut().insert(name, HeaderValue::from_static(value));
            }
            return Ok(response);
        }
        _ => Reply::not_found(),
    };
    Ok(Response::from(reply).map(|body| Full::new(Bytes::from(body))))
}
