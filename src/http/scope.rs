//! [`RequestScopeLayer`]: the request id, the deadline and the access log
//! around a whole application, for servers built on routers other than
//! [`Endpoint`](super::Endpoint) (which has the same scope built in).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::HeaderName;
use ::http::{HeaderMap, HeaderValue, Request, Response};
use bytes::Bytes;
use tower_service::Service;

use super::answers;

/// How long one request may take by default, body included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// In the extensions of an [`Endpoint`](super::Endpoint)'s answer (or a [`RequestScopeLayer`]'s) when the request ran past
/// the deadline (the answer is then the 500 envelope), for the
/// application's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineExceeded {
    deadline: Duration,
}

impl DeadlineExceeded {
    pub(crate) fn new(deadline: Duration) -> Self {
        Self { deadline }
    }

    /// The deadline the request ran past.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

/// The request id header, echoed or generated on every answer.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming request id that is echoed.
const MAX_REQUEST_ID_LEN: usize = 64;

/// A [`tower_layer::Layer`] giving every request what a token service owes
/// it, whatever answers it:
///
/// - **`X-Request-Id`** on the answer: the request's own when it is 1 to 64
///   of `A-Z a-z 0-9 - _ .` (so a proxy's id carries through, and nothing
///   a client sends can forge a log line or a header), a fresh UUID v4
///   otherwise;
/// - **a deadline** ([`DEFAULT_DEADLINE`], 10 s, unless
///   [`deadline`](Self::deadline) says otherwise), reading the body
///   included: past it the answer is the 500 envelope
///   ([`Reply::deadline_exceeded`](crate::Reply::deadline_exceeded)) with
///   [`DeadlineExceeded`] in its extensions, so a hung ledger or a client
///   trickling its body cannot hold a task forever;
/// - with feature `tracing`, **an access log** at `DEBUG`, target
///   `token_refresh::access` (turn it on with
///   `RUST_LOG=info,token_refresh::access=debug`): a `request` span
///   carrying the id, method and path, around the inner service (so the
///   crate's own events carry the id), and one `answered` event with the
///   status and the time taken in µs. A missed deadline is a `WARN` with
///   the id, whatever the filter. Headers, query strings and bodies are
///   never logged: they hold credentials.
///
/// The access log is at `DEBUG`, as tower-http's `TraceLayer` has it by
/// default, because it is what a busy token service can least afford: at
/// `INFO` the span and the line cost about 5 % of the reference server's
/// refreshes per second (a formatted line and a `write` to stderr per
/// request; `docs/performance.md`). The events that matter for security
/// (a session started, revoked, evicted, a reused refresh token, a 500's
/// cause) are at `INFO` and above on their own, with the session id.
///
/// The inner service's response body must be buildable from [`Bytes`] (the
/// deadline's answer): axum's `Body`, `http_body_util::Full<Bytes>` and
/// [`ResponseBody`](super::ResponseBody) are.
///
/// ```
/// use axum::{Router, routing::get};
/// use token_refresh::axum::{jwks, session_routes};
/// use token_refresh::http::RequestScopeLayer;
/// # use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
/// # let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// # let service = TokenService::new(Policy::default(), MemoryUserStore::new([]), MemoryLedger::new(), signer, SystemClock);
///
/// let app: Router = Router::new()
///     .route("/auth/api/v1/authentication-management/session", session_routes())
///     .route("/.well-known/jwks.json", get(jwks))
///     .layer(RequestScopeLayer::new())
///     .with_state(service);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
///
/// The deadline runs on tokio's timer: a request polled outside a tokio
/// runtime with the time driver enabled panics (tokio's own rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestScopeLayer {
    deadline: Duration,
}

impl Default for RequestScopeLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestScopeLayer {
    /// The scope with the [`DEFAULT_DEADLINE`] of 10 s.
    pub fn new() -> Self {
        Self { deadline: DEFAULT_DEADLINE }
    }

    /// The same scope with another deadline. A zero deadline would refuse
    /// every request, so it is raised to 1 ms.
    #[must_use]
    pub fn deadline(self, deadline: Duration) -> Self {
        Self { deadline: deadline.max(Duration::from_millis(1)) }
    }
}

impl<S> tower_layer::Layer<S> for RequestScopeLayer {
    type Service = RequestScope<S>;

    fn layer(&self, inner: S) -> RequestScope<S> {
        RequestScope { inner, deadline: self.deadline }
    }
}

/// The service [`RequestScopeLayer`] wraps around `S`.
#[derive(Debug, Clone)]
pub struct RequestScope<S> {
    inner: S,
    deadline: Duration,
}

impl<S, B, ResBody> Service<Request<B>> for RequestScope<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ScopedFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready answers; its clone stays for
        // the next call (tower's rule for services that are cloned).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        ScopedFuture(Box::pin(scoped(self.deadline, request, move |request| inner.call(request))))
    }
}

/// The future of a [`RequestScope`]'s answer.
pub struct ScopedFuture<ResBody, E>(Pin<Box<dyn Future<Output = Result<Response<ResBody>, E>> + Send>>);

impl<ResBody, E> Future for ScopedFuture<ResBody, E> {
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl<ResBody, E> fmt::Debug for ScopedFuture<ResBody, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedFuture").finish_non_exhaustive()
    }
}

/// Runs `handle` for `request` inside the scope: id, deadline, access log.
/// [`RequestScope`] and [`Endpoint`](super::Endpoint) both answer through
/// it, so their ids, deadlines and logs cannot drift apart.
pub(crate) async fn scoped<B, ResBody, E, Fut>(
    deadline: Duration,
    request: Request<B>,
    handle: impl FnOnce(Request<B>) -> Fut,
) -> Result<Response<ResBody>, E>
where
    Fut: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<Bytes>,
{
    let id = request_id(request.headers());
    #[cfg(feature = "tracing")]
    let log = access::Log::begin(&id, &request);
    let answer = handle(request);
    #[cfg(feature = "tracing")]
    let answer = tracing::Instrument::instrument(answer, log.span());
    let mut response = match tokio::time::timeout(deadline, answer).await {
        Ok(response) => response?,
        Err(_) => {
            #[cfg(feature = "tracing")]
            log.deadline_exceeded(&id, deadline);
            let mut response = answers::timed_out().map(|body| ResBody::from(Bytes::from(body)));
            response.extensions_mut().insert(DeadlineExceeded::new(deadline));
            response
        }
    };
    #[cfg(feature = "tracing")]
    log.end(response.status());
    response.headers_mut().insert(X_REQUEST_ID, id);
    Ok(response)
}

/// The request id: the caller's `X-Request-Id` when it is short and plain
/// (so a proxy's id carries through), otherwise a fresh UUID v4. Plain
/// means 1 to 64 of `A-Z a-z 0-9 - _ .`, safe in logs and headers.
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    let plain = |value: &&HeaderValue| is_plain_request_id(value.as_bytes());
    match headers.get(X_REQUEST_ID).filter(plain) {
        Some(id) => id.clone(),
        None => {
            let mut buffer = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            // A hyphenated UUID is always a valid header value.
            HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("-"))
        }
    }
}

/// Whether an incoming request id is echoed as it is: 1 to 64 of
/// `A-Z a-z 0-9 - _ .`. For adapters on other `http` versions (actix-web
/// 4 is on `http` 0.2), which generate a fresh UUID v4 otherwise.
///
/// ```
/// use token_refresh::http::is_plain_request_id;
///
/// assert!(is_plain_request_id(b"lb-7f3a.2"));
/// assert!(!is_plain_request_id(b"a b") && !is_plain_request_id(b"") && !is_plain_request_id(&[b'a'; 65]));
/// ```
pub fn is_plain_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The access log (feature `tracing`).
#[cfg(feature = "tracing")]
mod access {
    use std::time::{Duration, Instant};

    use ::http::{HeaderValue, Request, StatusCode};

    /// One request's log context: a span carrying its id, method and path
    /// (never headers, query or body, which may hold credentials), and when
    /// it started.
    pub(super) struct Log {
        span: tracing::Span,
        started: Instant,
    }

    impl Log {
        pub(super) fn begin<B>(id: &HeaderValue, request: &Request<B>) -> Self {
            // The id is plain ASCII (checked or generated), so `to_str` holds.
            let id = id.to_str().unwrap_or("-");
            let span = tracing::debug_span!(
                target: "token_refresh::access",
                "request",
                id,
                method = request.method().as_str(),
                path = request.uri().path()
            );
            Self { span, started: Instant::now() }
        }

        pub(super) fn span(&self) -> tracing::Span {
            self.span.clone()
        }

        pub(super) fn end(self, status: StatusCode) {
            let elapsed_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let status = status.as_u16();
            self.span.in_scope(|| tracing::debug!(target: "token_refresh::access", status, elapsed_us, "answered"));
        }

        /// A missed deadline, at `WARN` with the request id as its own
        /// field: it names a hung ledger or a client holding a task, which
        /// an operator must see with the access log (and its span) off.
        pub(super) fn deadline_exceeded(&self, id: &HeaderValue, deadline: Duration) {
            let id = id.to_str().unwrap_or("-");
            let deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
            self.span.in_scope(
                || tracing::warn!(target: "token_refresh::access", id, deadline_ms, "request deadline exceeded"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_echoed_only_when_plain() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(X_REQUEST_ID, HeaderValue::from_static(value));
            request_id(&headers)
        };
        assert_eq!(with("trace-7.a_B"), "trace-7.a_B");
        let long = "a".repeat(MAX_REQUEST_ID_LEN);
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_str(&long).unwrap_or(HeaderValue::from_static("x")));
        assert_eq!(request_id(&headers), long.as_str());
        for bad in ["", "has space", "semi;colon", "{json}"] {
            let generated = with(bad);
            assert_eq!(generated.len(), 36, "{bad:?}");
            assert!(uuid::Uuid::parse_str(generated.to_str().unwrap_or_default()).is_ok());
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 36);
        assert!(!is_plain_request_id(long.repeat(2).as_bytes()));
    }
}
