//! The framework-neutral endpoint (`token_refresh::http::Endpoint`, feature
//! `http`) driven in process through `tower::ServiceExt::oneshot`: exact
//! statuses, body bytes and headers for every path it serves, the body
//! limit, the repeated header, request ids, the deadline, and composition
//! with a fallback service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame};
use token_refresh::http::{
    DEFAULT_DEADLINE, DEFAULT_JWKS_PATH, DEFAULT_SESSION_PATH, DeadlineExceeded, Endpoint, EndpointConfig,
    EndpointConfigError, FlowError, ResponseBody,
};
use token_refresh::{
    Error, MAX_LOGIN_BODY, MemoryLedger, MemoryUserStore, Policy, StoreError, TokenService, User, UserStore,
    error::BadRequest, error::Unauthorized,
};
use token_refresh_test_support::keys::signer;
use token_refresh_test_support::users::{BOB, BOB_LOGIN_SEED, demo, login_body};
use tower::ServiceExt as _;

const SESSION: &str = DEFAULT_SESSION_PATH;
const JWKS: &str = DEFAULT_JWKS_PATH;

const NO_STORE: [(&str, &str); 3] =
    [("content-type", "application/json"), ("cache-control", "no-store"), ("pragma", "no-cache")];
const INVALID_REQUEST: (&str, &str) = ("www-authenticate", r#"Bearer error="invalid_request""#);
const INVALID_TOKEN: (&str, &str) = ("www-authenticate", r#"Bearer error="invalid_token""#);

/// The headers of a login's or refresh's 200: [`NO_STORE`] and the grace
/// window the policy keeps (none: [`service`] rotates strictly).
const PAIR: [(&str, &str); 4] = [NO_STORE[0], NO_STORE[1], NO_STORE[2], ("token-refresh-grace", "0")];

/// The endpoint's service, with strict rotation: the reuse checks present a
/// rotated token at once, inside what would be the default grace window.
fn service() -> TokenService {
    let clock = Arc::new(token_refresh_test_support::clock());
    let policy = token_refresh_test_support::flow::strict_policy();
    TokenService::new(policy, MemoryUserStore::new(demo()), MemoryLedger::new(), signer(), clock)
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    extensions: Extensions,
    body: Vec<u8>,
}

impl Answer {
    async fn read(response: Response<ResponseBody>) -> Self {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the endpoint's bodies do not fail").to_bytes().to_vec();
        Self { status: parts.status, headers: parts.headers, extensions: parts.extensions, body }
    }

    /// Every header but `x-request-id`, in order, as text.
    fn headers_but_id(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| *name != "x-request-id")
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
            .collect()
    }

    fn request_id(&self) -> &str {
        let mut ids = self.headers.get_all("x-request-id").iter();
        let id = ids.next().expect("every answer carries x-request-id");
        assert!(ids.next().is_none(), "one x-request-id");
        id.to_str().unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    /// `data.<field>` of a success envelope.
    fn data(&self, field: &str) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        json["data"][field].as_str().unwrap_or_else(|| panic!("no data.{field} in {}", self.text())).to_owned()
    }

    fn flow_error(&self) -> Option<&Error> {
        self.extensions.get::<FlowError>().map(FlowError::error)
    }

    /// Status, body and headers (but the id) exactly.
    fn assert(&self, status: u16, body: &str, headers: &[(&str, &str)]) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.text(), body);
        let expected: Vec<(String, String)> =
            headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        assert_eq!(self.headers_but_id(), expected);
        let _ = self.request_id();
    }
}

fn headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    NO_STORE.iter().copied().chain(extra.iter().copied()).collect()
}

fn failure(code: u16, name: &str, message: &str) -> String {
    format!(r#"{{"status":{{"code":{code},"name":"{name}","message":"{message}"}},"data":null}}"#)
}

fn pair_body(answer: &Answer) -> String {
    format!(
        r#"{{"status":{{"code":200,"name":"OK"}},"data":{{"accessToken":"{}","refreshToken":"{}","expirationTime":300}}}}"#,
        answer.data("accessToken"),
        answer.data("refreshToken")
    )
}

/// A request with a fixed body.
fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap()
}

async fn send<B>(endpoint: &Endpoint, request: Request<B>) -> Answer
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = endpoint.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
    Answer::read(response).await
}

async fn login(endpoint: &Endpoint) -> Answer {
    let answer = send(endpoint, request(Method::POST, SESSION, &[], login_body(BOB, &BOB_LOGIN_SEED))).await;
    answer.assert(200, &pair_body(&answer), &PAIR);
    answer
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn login_refresh_rotation_reuse_and_logout() {
    let endpoint = Endpoint::new(service());
    let first = login(&endpoint).await;
    assert!(first.flow_error().is_none());

    // Refresh: 200 and a new pair; bare and Bearer forms both work.
    let refresh = |token: String| request(Method::PATCH, SESSION, &[("authorization", &token)], Bytes::new());
    let second = send(&endpoint, refresh(first.data("refreshToken"))).await;
    second.assert(200, &pair_body(&second), &PAIR);
    assert_ne!(second.data("refreshToken"), first.data("refreshToken"));
    assert_ne!(second.data("accessToken"), first.data("accessToken"));
    let third = send(&endpoint, refresh(bearer(&second.data("refreshToken")))).await;
    third.assert(200, &pair_body(&third), &PAIR);

    // The rotated token is spent: presenting it again revokes the session.
    let reuse = send(&endpoint, refresh(bearer(&first.data("refreshToken")))).await;
    reuse.assert(
        401,
        &failure(401, "UNAUTHORIZED", "refresh token was already used; the session is revoked"),
        &headers(&[INVALID_TOKEN]),
    );
    assert!(matches!(reuse.flow_error(), Some(Error::Unauthorized(Unauthorized::Reused))));
    let after = send(&endpoint, refresh(bearer(&third.data("refreshToken")))).await;
    after.assert(401, &failure(401, "UNAUTHORIZED", "session has been revoked"), &headers(&[INVALID_TOKEN]));

    // Logout: 200 with data null, and the session is gone.
    let session = login(&endpoint).await;
    let token = bearer(&session.data("refreshToken"));
    let logout = send(&endpoint, request(Method::DELETE, SESSION, &[("authorization", &token)], Bytes::new())).await;
    logout.assert(200, r#"{"status":{"code":200,"name":"OK"},"data":null}"#, &NO_STORE);
    let after = send(&endpoint, refresh(token)).await;
    after.assert(401, &failure(401, "UNAUTHORIZED", "session has been revoked"), &headers(&[INVALID_TOKEN]));

    // No header: 400 invalid_request.
    let missing = send(&endpoint, request(Method::PATCH, SESSION, &[], Bytes::new())).await;
    missing.assert(400, &failure(400, "BAD_REQUEST", "authorization header is missing"), &headers(&[INVALID_REQUEST]));
    assert!(matches!(missing.flow_error(), Some(Error::BadRequest(BadRequest::MissingHeader))));
}

#[tokio::test]
async fn login_refusals() {
    let endpoint = Endpoint::new(service());
    let not_json = send(&endpoint, request(Method::POST, SESSION, &[], "{")).await;
    not_json.assert(400, &failure(400, "BAD_REQUEST", "request body is malformed"), &headers(&[INVALID_REQUEST]));
    let unknown =
        send(&endpoint, request(Method::POST, SESSION, &[], login_body("nobody@mail.com", &BOB_LOGIN_SEED))).await;
    unknown.assert(404, &failure(404, "NOT_FOUND", "user not found"), &NO_STORE);
    assert!(matches!(unknown.flow_error(), Some(Error::UserNotFound)));
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let endpoint = Endpoint::new(service());
    let session_405 = failure(405, "METHOD_NOT_ALLOWED", "method not allowed");
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::OPTIONS] {
        let answer = send(&endpoint, request(method.clone(), SESSION, &[], Bytes::new())).await;
        answer.assert(405, &session_405, &headers(&[("allow", "POST, PATCH, DELETE")]));
        assert!(answer.flow_error().is_none(), "{method}");
    }
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let answer = send(&endpoint, request(method, JWKS, &[], Bytes::new())).await;
        answer.assert(405, &session_405, &headers(&[("allow", "GET, HEAD")]));
    }
}

#[tokio::test]
async fn unknown_paths_get_the_404_envelope() {
    let endpoint = Endpoint::new(service());
    let not_found = failure(404, "NOT_FOUND", "no such endpoint");
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::POST, "/auth/api/v1/authentication-management/session/"),
        (Method::PATCH, "/auth/api/v1/authentication-management"),
        (Method::GET, "/.well-known/jwks.json.bak"),
    ] {
        let answer = send(&endpoint, request(method, path, &[], Bytes::new())).await;
        answer.assert(404, &not_found, &NO_STORE);
    }
    // A query is not part of the path.
    let answer = send(&endpoint, request(Method::GET, "/.well-known/jwks.json?x=1", &[], Bytes::new())).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn jwks_is_public_and_cacheable() {
    let service = service();
    let document = serde_json::to_string(service.jwks()).unwrap();
    assert!(document.contains(r#""crv":"Ed25519""#), "{document}");
    let endpoint = Endpoint::new(service);
    let jwks_headers = [("content-type", "application/json"), ("cache-control", "public, max-age=300")];
    for method in [Method::GET, Method::HEAD] {
        // The Authorization header plays no part on a public document.
        let repeated = [("authorization", "Bearer a"), ("authorization", "Bearer b")];
        let answer = send(&endpoint, request(method, JWKS, &repeated, Bytes::new())).await;
        answer.assert(200, &document, &jwks_headers);
    }
}

#[tokio::test]
async fn an_oversized_login_body_is_400_and_closes_the_connection() {
    let endpoint = Endpoint::new(service());
    let expected = failure(400, "BAD_REQUEST", "request body is malformed");
    let close = headers(&[INVALID_REQUEST, ("connection", "close")]);

    // Declared: refused before reading, so a body that never arrives is no
    // matter (the deadline would answer 500 otherwise).
    let declared =
        Request::post(SESSION).header("content-length", (MAX_LOGIN_BODY + 1).to_string()).body(Stalled).unwrap();
    let answer = send(&endpoint, declared).await;
    answer.assert(400, &expected, &close);

    // Declared and sent.
    let over = " ".repeat(MAX_LOGIN_BODY + 1);
    let length = over.len().to_string();
    let answer = send(&endpoint, request(Method::POST, SESSION, &[("content-length", &length)], over.clone())).await;
    answer.assert(400, &expected, &close);

    // Streamed without a length, in chunks that pass the limit together.
    let answer = send(&endpoint, Request::post(SESSION).body(Chunks { left: 5, size: 1024 }).unwrap()).await;
    answer.assert(400, &expected, &close);

    // One frame over the limit, no length declared.
    let answer = send(&endpoint, request(Method::POST, SESSION, &[], over)).await;
    answer.assert(400, &expected, &close);

    // At the limit the body reaches the flow (and is refused as no login).
    let at = " ".repeat(MAX_LOGIN_BODY);
    let answer = send(&endpoint, request(Method::POST, SESSION, &[], at)).await;
    answer.assert(400, &expected, &headers(&[INVALID_REQUEST]));

    // A chunked login within the limit logs in.
    let body = login_body(BOB, &BOB_LOGIN_SEED);
    let answer = send(&endpoint, Request::post(SESSION).body(Split(Some(body.into_bytes()))).unwrap()).await;
    answer.assert(200, &pair_body(&answer), &PAIR);
}

#[tokio::test]
async fn a_repeated_authorization_header_is_400() {
    let endpoint = Endpoint::new(service());
    let first = login(&endpoint).await;
    let token = bearer(&first.data("refreshToken"));
    let twice = [("authorization", token.as_str()), ("authorization", token.as_str())];
    let expected = failure(400, "BAD_REQUEST", "authorization header is repeated");
    for method in [Method::PATCH, Method::DELETE, Method::POST] {
        let answer = send(&endpoint, request(method, SESSION, &twice, login_body(BOB, &BOB_LOGIN_SEED))).await;
        answer.assert(400, &expected, &headers(&[INVALID_REQUEST]));
        assert!(matches!(answer.flow_error(), Some(Error::BadRequest(BadRequest::RepeatedHeader))));
    }
    // Nothing was rotated or revoked: the token still refreshes once.
    let once = send(&endpoint, request(Method::PATCH, SESSION, &twice[..1], Bytes::new())).await;
    assert_eq!(once.status, 200, "{}", once.text());
}

#[tokio::test]
async fn request_ids_are_echoed_when_plain_and_generated_otherwise() {
    let endpoint = Endpoint::new(service());
    let with_id = |id: &str| request(Method::GET, "/nope", &[("x-request-id", id)], Bytes::new());
    for id in ["trace-7", "A.b_c-9", &"x".repeat(64)] {
        assert_eq!(send(&endpoint, with_id(id)).await.request_id(), id);
    }
    let mut generated = Vec::new();
    for id in ["has space", "semi;colon", &"x".repeat(65), "é"] {
        let request = Request::get(JWKS).header("x-request-id", http::HeaderValue::from_bytes(id.as_bytes()).unwrap());
        let answer = send(&endpoint, request.body(Full::<Bytes>::default()).unwrap()).await;
        generated.push(answer.request_id().to_owned());
    }
    generated.push(send(&endpoint, request(Method::PATCH, SESSION, &[], Bytes::new())).await.request_id().to_owned());
    for id in &generated {
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.hyphenated().to_string(), *id);
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 5, "a fresh id per request");
}

#[tokio::test]
async fn the_deadline_answers_the_500_envelope() {
    let deadline = Duration::from_millis(50);
    let stalled_users = TokenService::new(Policy::default(), NeverAnswers, MemoryLedger::new(), signer(), {
        Arc::new(token_refresh_test_support::clock())
    });
    let endpoint = EndpointConfig::new().deadline(deadline).build(stalled_users).unwrap();
    let expected = failure(500, "INTERNAL_SERVER_ERROR", "internal server error");

    // A store that never answers.
    let answer = send(
        &endpoint,
        request(Method::POST, SESSION, &[("x-request-id", "slow-1")], login_body(BOB, &BOB_LOGIN_SEED)),
    )
    .await;
    answer.assert(500, &expected, &NO_STORE);
    assert_eq!(answer.request_id(), "slow-1");
    assert_eq!(answer.extensions.get::<DeadlineExceeded>().map(DeadlineExceeded::deadline), Some(deadline));
    assert!(answer.flow_error().is_none());

    // A body that never ends.
    let answer = send(&endpoint, Request::post(SESSION).body(Stalled).unwrap()).await;
    answer.assert(500, &expected, &NO_STORE);
    assert!(answer.extensions.get::<DeadlineExceeded>().is_some());

    // A fallback that never answers.
    let endpoint = endpoint.fallback(tower::service_fn(|_: Request<Full<Bytes>>| {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
    }));
    let response = endpoint.oneshot(request(Method::GET, "/slow", &[], Bytes::new())).await.unwrap();
    let answer = Answer::read(response).await;
    answer.assert(500, &expected, &NO_STORE);
}

#[tokio::test]
async fn a_fallback_serves_the_other_paths() {
    let orders = tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let (status, body) = match (request.method(), request.uri().path()) {
            (&Method::POST, "/api/v1/orders") => (201, request.into_body().collect().await?.to_bytes()),
            _ => (418, Bytes::from_static(b"teapot")),
        };
        let response = Response::builder().status(status).header("x-kind", "orders").body(Full::new(body))?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(response)
    });
    let endpoint = Endpoint::new(service()).fallback(orders);
    let send = |request: Request<Full<Bytes>>| {
        let endpoint = endpoint.clone();
        async move { Answer::read(endpoint.oneshot(request).await.unwrap()).await }
    };

    let answer = send(request(Method::POST, "/api/v1/orders", &[("x-request-id", "o-1")], "two")).await;
    assert_eq!((answer.status.as_u16(), answer.text()), (201, "two"));
    assert_eq!(answer.headers_but_id(), [("x-kind".to_owned(), "orders".to_owned())]);
    assert_eq!(answer.request_id(), "o-1");
    let answer = send(request(Method::GET, "/elsewhere", &[], Bytes::new())).await;
    assert_eq!((answer.status.as_u16(), answer.text()), (418, "teapot"));
    // The endpoint's own paths are unchanged.
    let answer = send(request(Method::PUT, SESSION, &[], Bytes::new())).await;
    answer.assert(
        405,
        &failure(405, "METHOD_NOT_ALLOWED", "method not allowed"),
        &headers(&[("allow", "POST, PATCH, DELETE")]),
    );
}

#[tokio::test]
async fn paths_and_deadline_are_configurable() {
    let endpoint = EndpointConfig::new()
        .session_path("/session")
        .jwks_path("/keys")
        .deadline(Duration::from_secs(3))
        .build(service())
        .unwrap();
    assert_eq!(
        (endpoint.session_path(), endpoint.jwks_path(), endpoint.deadline()),
        ("/session", "/keys", Duration::from_secs(3))
    );
    let answer = send(&endpoint, request(Method::POST, "/session", &[], login_body(BOB, &BOB_LOGIN_SEED))).await;
    answer.assert(200, &pair_body(&answer), &PAIR);
    assert_eq!(send(&endpoint, request(Method::GET, "/keys", &[], Bytes::new())).await.status, 200);
    for path in [SESSION, JWKS] {
        assert_eq!(send(&endpoint, request(Method::GET, path, &[], Bytes::new())).await.status, 404);
    }

    let defaults = Endpoint::new(service());
    assert_eq!((defaults.session_path(), defaults.jwks_path(), defaults.deadline()), (SESSION, JWKS, DEFAULT_DEADLINE));
    assert_eq!(DEFAULT_DEADLINE, Duration::from_secs(10));

    let build = |config: EndpointConfig| config.build(service()).map(|_| ()).unwrap_err();
    assert_eq!(
        build(EndpointConfig::new().session_path("session")),
        EndpointConfigError::InvalidPath("session".into())
    );
    assert_eq!(build(EndpointConfig::new().jwks_path("/a?b")), EndpointConfigError::InvalidPath("/a?b".into()));
    assert_eq!(build(EndpointConfig::new().jwks_path(SESSION)), EndpointConfigError::SamePath);
    assert_eq!(build(EndpointConfig::new().deadline(Duration::ZERO)), EndpointConfigError::ZeroDeadline);
}

/// The axum integration and the endpoint build their answers with the same
/// code: the same bytes and headers.
#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_integration_answers_the_same() {
    use axum::routing::get;
    use token_refresh::axum::{jwks, session_routes};

    let service = service();
    let router =
        axum::Router::new().route(SESSION, session_routes()).route(JWKS, get(jwks)).with_state(service.clone());
    let endpoint = Endpoint::new(service);
    let over = " ".repeat(MAX_LOGIN_BODY + 1);
    let cases = [
        (Method::PUT, SESSION, vec![], String::new()),
        (Method::PATCH, SESSION, vec![], String::new()),
        (Method::PATCH, SESSION, vec![("authorization", "Bearer a.b")], String::new()),
        (Method::PATCH, SESSION, vec![("authorization", "a"), ("authorization", "b")], String::new()),
        (Method::DELETE, SESSION, vec![("authorization", "Basic dXNlcjpwdw==")], String::new()),
        (Method::POST, SESSION, vec![], "{".to_owned()),
        (Method::POST, SESSION, vec![], over),
        (Method::GET, JWKS, vec![], String::new()),
    ];
    for (method, path, headers, body) in cases {
        let label = format!("{method} {path} {headers:?}");
        let ours = send(&endpoint, request(method.clone(), path, &headers, body.clone())).await;
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let theirs = router.clone().oneshot(builder.body(axum::body::Body::from(body)).unwrap()).await.unwrap();
        let (parts, body) = theirs.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        assert_eq!(ours.status, parts.status, "{label}");
        assert_eq!(ours.text().as_bytes(), &body[..], "{label}");
        // axum adds the length the server would add for the endpoint.
        let theirs: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| *name != "content-length")
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(ours.headers_but_id(), theirs, "{label}");
    }
}

/// A user directory that never answers.
struct NeverAnswers;

impl UserStore for NeverAnswers {
    fn find(&self, _: &str) -> impl Future<Output = Result<Option<Arc<User>>, StoreError>> + Send {
        std::future::pending()
    }
}

/// A request body that never yields a byte and never ends.
struct Stalled;

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// `left` chunks of `size` spaces, length unknown.
struct Chunks {
    left: usize,
    size: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        this.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; this.size])))))
    }
}

/// A body sent as one-byte frames, length unknown.
struct Split(Option<Vec<u8>>);

impl Body for Split {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this.0.as_mut() {
            Some(rest) if !rest.is_empty() => {
                let byte = rest.remove(0);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![byte])))))
            }
            _ => {
                this.0 = None;
                Poll::Ready(None)
            }
        }
    }
}

/// `RequestScopeLayer` around any service: a plain incoming id is echoed, a
/// bad one replaced by a UUID, and past the deadline the answer is the 500
/// envelope with `DeadlineExceeded`, while the inner service is dropped.
#[tokio::test]
async fn the_request_scope_layer_gives_ids_and_a_deadline() {
    use token_refresh::http::RequestScopeLayer;
    use tower::Layer as _;

    let inner = tower::service_fn(|request: Request<Full<Bytes>>| async move {
        if request.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let scoped = RequestScopeLayer::new().deadline(Duration::from_millis(50)).layer(inner);
    let get = |path: &str, id: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.body(Full::default()).unwrap()
    };

    let echoed = scoped.clone().oneshot(get("/fast", Some("lb-7.a_B"))).await.unwrap();
    assert_eq!(echoed.status(), StatusCode::OK);
    assert_eq!(echoed.headers()["x-request-id"], "lb-7.a_B");
    assert_eq!(echoed.into_body().collect().await.unwrap().to_bytes(), "inner");

    let replaced = scoped.clone().oneshot(get("/fast", Some("two words"))).await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let late = scoped.oneshot(get("/slow", None)).await.unwrap();
    assert_eq!(late.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        late.extensions().get::<DeadlineExceeded>().map(DeadlineExceeded::deadline),
        Some(Duration::from_millis(50))
    );
    assert!(late.headers().contains_key("x-request-id"));
    let body = late.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        &br#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#[..]
    );
}
