//! The axum integration (`token_refresh::axum`) served in process: the
//! README's program, driven through `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::get;
use ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::axum::{AccessToken, jwks, session_routes};
use token_refresh::{
    Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, Reply, TokenPair, TokenService, User, clock::ManualClock,
};
use tower::ServiceExt as _;

const SESSION: &str = "/auth/api/v1/authentication-management/session";
const BOB: &str = "bob@mail.com";
const NOW: i64 = 1_700_000_000;

struct App {
    router: Router,
    service: TokenService,
    clock: Arc<ManualClock>,
    login_key: SigningKey,
}

fn app() -> App {
    let login_key = SigningKey::from_bytes(&[0x21; 32]);
    let users =
        MemoryUserStore::new([User::new(BOB, "bob@admin", "ROLE_ADMIN").with_login_key(login_key.verifying_key())]);
    let signer = Ed25519Signer::from_seed(&[7u8; 32]).unwrap();
    let clock = Arc::new(ManualClock::at_unix(NOW));
    // Strict rotation: the reuse checks below present a rotated token at once.
    let policy = Policy::builder().grace_window(time::Duration::ZERO).build().unwrap();
    let service = TokenService::new(policy, users, MemoryLedger::new(), signer, Arc::clone(&clock));
    let router = Router::new()
        .route(SESSION, session_routes())
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/v1/orders", get(orders))
        .with_state(service.clone());
    App { router, service, clock, login_key }
}

async fn orders(AccessToken(claims): AccessToken) -> String {
    claims.subject
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `(code, name, message)` of the envelope.
    fn status_line(&self) -> (u64, String, String) {
        let json = self.json();
        let status = &json["status"];
        (
            status["code"].as_u64().unwrap(),
            status["name"].as_str().unwrap().to_owned(),
            status["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

async fn send(app: &App, method: Method, uri: &str, authorization: &[&str], body: Vec<u8>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for value in authorization {
        request = request.header("authorization", *value);
    }
    let response = app.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: to_bytes(body, 1 << 20).await.unwrap().to_vec() }
}

fn login_body(key: &SigningKey, email: &str) -> Vec<u8> {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    serde_json::json!({
        "email": email,
        "signature": hex(&key.sign(email.as_bytes()).to_bytes()),
        "publicKey": hex(key.verifying_key().as_bytes()),
    })
    .to_string()
    .into_bytes()
}

fn pair_of(answer: &Answer) -> TokenPair {
    assert_eq!(answer.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&answer.body));
    serde_json::from_value(answer.json()["data"].clone()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn login_refresh_logout_answer_the_envelope_with_its_headers() {
    let app = app();
    let login = send(&app, Method::POST, SESSION, &[], login_body(&app.login_key, BOB)).await;
    let first = pair_of(&login);
    assert_eq!(first.expiration_time, 300);
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("pragma"), Some("no-cache"));
    assert_eq!(login.header("content-type"), Some("application/json"));
    // The body is the one every other adapter writes for this pair.
    assert_eq!(login.body, Reply::from_result(&Ok::<_, token_refresh::Error>(first.clone())).into_body());

    let refreshed = send(&app, Method::PATCH, SESSION, &[&first.refresh_token], Vec::new()).await;
    let second = pair_of(&refreshed);
    assert_ne!(second.refresh_token, first.refresh_token);

    let orders = send(&app, Method::GET, "/api/v1/orders", &[&bearer(&second.access_token)], Vec::new()).await;
    assert_eq!((orders.status, orders.body.as_slice()), (StatusCode::OK, BOB.as_bytes()));

    let logout = send(&app, Method::DELETE, SESSION, &[&second.refresh_token], Vec::new()).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert_eq!(logout.body, br#"{"status":{"code":200,"name":"OK"},"data":null}"#);
}

#[tokio::test]
async fn the_extractor_refuses_expired_forged_revoked_and_refresh_tokens() {
    let app = app();
    let pair = app.service.issue(BOB).await.unwrap();
    let get_orders = |token: String| {
        let app = &app;
        async move { send(app, Method::GET, "/api/v1/orders", &[&bearer(&token)], Vec::new()).await }
    };

    // A refresh token offered as an access token: 422.
    let wrong_kind = get_orders(pair.refresh_token.clone()).await;
    assert_eq!(wrong_kind.status_line(), (422, "UNPROCESSABLE_ENTITY".into(), "token claims are malformed".into()));

    // Forged: the same claims signed by another key.
    let other = TokenService::new(
        Policy::default(),
        MemoryUserStore::new([User::new(BOB, "bob@admin", "ROLE_ADMIN")]),
        MemoryLedger::new(),
        Ed25519Signer::from_seed(&[8u8; 32]).unwrap(),
        Arc::clone(&app.clock),
    );
    let forged = get_orders(other.issue(BOB).await.unwrap().access_token).await;
    assert_eq!(forged.status_line(), (401, "UNAUTHORIZED".into(), "token signature is invalid".into()));
    assert_eq!(forged.header("www-authenticate"), Some(r#"Bearer error="invalid_token""#));

    // Revoked by logout.
    app.service.logout(Some(pair.refresh_token.as_bytes())).await.unwrap();
    let after_logout = get_orders(pair.access_token.clone()).await;
    assert_eq!(after_logout.status_line(), (401, "UNAUTHORIZED".into(), "access token has been revoked".into()));

    // Revoked by reuse: presenting a consumed refresh token ends the session.
    let session = app.service.issue(BOB).await.unwrap();
    let next = app.service.refresh(Some(session.refresh_token.as_bytes())).await.unwrap();
    let reuse = send(&app, Method::PATCH, SESSION, &[&session.refresh_token], Vec::new()).await;
    assert_eq!(
        reuse.status_line(),
        (401, "UNAUTHORIZED".into(), "refresh token was already used; the session is revoked".into())
    );
    let after_reuse = get_orders(next.access_token.clone()).await;
    assert_eq!(after_reuse.status_line(), (401, "UNAUTHORIZED".into(), "access token has been revoked".into()));

    // Expired: the access token's lifetime (300 s) has passed.
    let fresh = app.service.issue(BOB).await.unwrap();
    assert_eq!(get_orders(fresh.access_token.clone()).await.status, StatusCode::OK);
    app.clock.advance(time::Duration::seconds(301));
    let expired = get_orders(fresh.access_token).await;
    assert_eq!(expired.status_line(), (401, "UNAUTHORIZED".into(), "token has expired".into()));

    // No header at all: 400.
    let missing = send(&app, Method::GET, "/api/v1/orders", &[], Vec::new()).await;
    assert_eq!(missing.status_line(), (400, "BAD_REQUEST".into(), "authorization header is missing".into()));
}

#[tokio::test]
async fn the_session_path_refuses_what_it_does_not_serve() {
    let app = app();
    let put = send(&app, Method::PUT, SESSION, &[], Vec::new()).await;
    assert_eq!(put.status_line(), (405, "METHOD_NOT_ALLOWED".into(), "method not allowed".into()));
    assert_eq!(put.header("allow"), Some("POST, PATCH, DELETE"));
    assert_eq!(put.header("cache-control"), Some("no-store"));

    let oversized = send(&app, Method::POST, SESSION, &[], vec![b' '; 4 * 1024 + 1]).await;
    assert_eq!(oversized.status_line(), (400, "BAD_REQUEST".into(), "request body is malformed".into()));
    assert_eq!(oversized.header("connection"), Some("close"));

    let pair = app.service.issue(BOB).await.unwrap();
    let repeated = send(&app, Method::PATCH, SESSION, &[&pair.refresh_token, &pair.refresh_token], Vec::new()).await;
    assert_eq!(repeated.status_line(), (400, "BAD_REQUEST".into(), "authorization header is repeated".into()));
    assert_eq!(repeated.header("www-authenticate"), Some(r#"Bearer error="invalid_request""#));
    // The refused request changed nothing: the token still rotates.
    let still = send(&app, Method::PATCH, SESSION, &[&pair.refresh_token], Vec::new()).await;
    assert_eq!(still.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_serves_the_signing_key_cacheably() {
    let app = app();
    let answer = send(&app, Method::GET, "/.well-known/jwks.json", &[], Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    let keys = answer.json()["keys"].clone();
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
    let expected = serde_json::to_value(app.service.jwks()).unwrap();
    assert_eq!(answer.json(), expected);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
}

async fn admin(token: AccessToken) -> Result<String, token_refresh::Error> {
    Ok(token.require_role(&["ROLE_ADMIN"])?.subject.clone())
}

async fn auditors(token: AccessToken) -> Result<String, token_refresh::Error> {
    Ok(token.require_role(&["ROLE_AUDITOR"])?.subject.clone())
}

/// The rejection as a value: the handler answers its own 401 body.
async fn lenient(token: Result<AccessToken, token_refresh::Error>) -> String {
    match token {
        Ok(AccessToken(claims)) => claims.subject,
        Err(error) => format!("anonymous ({})", error.status_code()),
    }
}

#[tokio::test]
async fn applications_answer_403_and_their_own_refusals_in_the_envelope() {
    let mut app = app();
    app.router = Router::new()
        .route("/admin", get(admin))
        .route("/audit", get(auditors))
        .route("/lenient", get(lenient))
        .with_state(app.service.clone());
    let pair = app.service.issue(BOB).await.unwrap();
    let access = bearer(&pair.access_token);

    let allowed = send(&app, Method::GET, "/admin", &[&access], Vec::new()).await;
    assert_eq!((allowed.status, allowed.body.as_slice()), (StatusCode::OK, BOB.as_bytes()));

    let refused = send(&app, Method::GET, "/audit", &[&access], Vec::new()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body,
        br#"{"status":{"code":403,"name":"FORBIDDEN","message":"the token's role is not allowed here"},"data":null}"#
    );
    assert_eq!(refused.header("www-authenticate"), Some(r#"Bearer error="insufficient_scope""#));
    assert_eq!(refused.header("cache-control"), Some("no-store"));

    let anonymous = send(&app, Method::GET, "/lenient", &[], Vec::new()).await;
    assert_eq!((anonymous.status, anonymous.body.as_slice()), (StatusCode::OK, &b"anonymous (400)"[..]));
    let known = send(&app, Method::GET, "/lenient", &[&access], Vec::new()).await;
    assert_eq!(known.body, BOB.as_bytes());

    // The application's own refusal, any status, same envelope and headers.
    let own = axum::response::IntoResponse::into_response(Reply::failure(
        token_refresh::error::StatusName::MethodNotAllowed,
        "orders are read-only",
    ));
    assert_eq!(own.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = to_bytes(own.into_body(), 1 << 20).await.unwrap();
    assert_eq!(
        &body[..],
        br#"{"status":{"code":405,"name":"METHOD_NOT_ALLOWED","message":"orders are read-only"},"data":null}"#
    );
}
