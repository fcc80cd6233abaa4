//! The baseline of the HTTP speed comparison: what a team writes instead of
//! this crate, on axum + `jsonwebtoken` (aws-lc-rs) + a mutexed map.
//!
//! ```text
//! cargo run --release -p token-refresh-tools --bin baseline -- --listen 127.0.0.1:8081
//! ```
//!
//! Same endpoint and wire shape as the reference server for what the load
//! generator drives: `POST` login with `{email, signature, publicKey}` (the
//! signature is checked against the user's key, made per start and printed
//! as `login body: …`), and `PATCH` refresh with `Authorization: Bearer`,
//! answering `{"status":…,"data":{"accessToken","refreshToken",
//! "expirationTime"}}`. A presented refresh token is valid once: the map
//! keeps the current token id of each session.
//!
//! It is a yardstick, not a service: no reuse detection beyond the map, no
//! revocation, no session cap, no request deadline. `docs/performance.md`
//! has the comparison and `scripts/http-speed.sh` runs it.
// A yardstick: a failed start should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const PATH: &str = "/auth/api/v1/authentication-management/session";
const ACCESS_TTL: i64 = 300;
const REFRESH_TTL: i64 = 86_400;

/// The HTTP speed comparison's baseline server (axum + jsonwebtoken).
#[derive(Debug, Parser)]
#[command(name = "baseline", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

struct User {
    email: String,
    account: String,
    role: String,
    login_key: [u8; 32],
}

struct App {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    user: User,
    /// The current refresh token id of every session, and its subject.
    sessions: Mutex<HashMap<Uuid, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    email: String,
    signature: String,
    public_key: String,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    acc: &'a str,
    sub: &'a str,
    role: &'a str,
    exp: i64,
    jti: String,
}

#[derive(Serialize, Deserialize)]
struct RefreshClaims {
    sub: String,
    acjti: String,
    exp: i64,
    jti: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pair {
    access_token: String,
    refresh_token: String,
    expiration_time: i64,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn answer(code: StatusCode, data: Option<Pair>) -> Response {
    let body = serde_json::json!({
        "status": { "code": code.as_u16(), "name": code.canonical_reason() },
        "data": data,
    });
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];
    (code, headers, body.to_string()).into_response()
}

impl App {
    /// Signs a new pair for `subject` and records its refresh token id.
    fn issue(&self, subject: &str) -> Response {
        let (access_id, refresh_id, now) = (Uuid::new_v4(), Uuid::new_v4(), now());
        let header = Header::new(Algorithm::EdDSA);
        let access = AccessClaims {
            acc: &self.user.account,
            sub: subject,
            role: &self.user.role,
            exp: now + ACCESS_TTL,
            jti: access_id.to_string(),
        };
        let refresh = RefreshClaims {
            sub: subject.to_owned(),
            acjti: access_id.to_string(),
            exp: now + REFRESH_TTL,
            jti: refresh_id.to_string(),
        };
        let (Ok(access_token), Ok(refresh_token)) = (
            jsonwebtoken::encode(&header, &access, &self.encoding),
            jsonwebtoken::encode(&header, &refresh, &self.encoding),
        ) else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, None);
        };
        self.sessions.lock().unwrap().insert(refresh_id, subject.to_owned());
        answer(StatusCode::OK, Some(Pair { access_token, refresh_token, expiration_time: ACCESS_TTL }))
    }
}

async fn login(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let Ok(login) = serde_json::from_slice::<Login>(&body) else { return answer(StatusCode::BAD_REQUEST, None) };
    let key_matches = hex(&app.user.login_key) == login.public_key.to_ascii_lowercase();
    let signature = unhex(&login.signature).and_then(|bytes| Signature::from_slice(&bytes).ok());
    let verified = signature.is_some_and(|signature| {
        ed25519_dalek::VerifyingKey::from_bytes(&app.user.login_key)
            .is_ok_and(|key| key.verify(login.email.as_bytes(), &signature).is_ok())
    });
    if login.email != app.user.email || !key_matches || !verified {
        return answer(StatusCode::UNAUTHORIZED, None);
    }
    app.issue(&login.email)
}

async fn refresh(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else { return answer(StatusCode::UNAUTHORIZED, None) };
    let Ok(claims) = jsonwebtoken::decode::<RefreshClaims>(token, &app.decoding, &app.validation) else {
        return answer(StatusCode::UNAUTHORIZED, None);
    };
    let Ok(presented) = Uuid::try_parse(&claims.claims.jti) else { return answer(StatusCode::UNAUTHORIZED, None) };
    // Single use: the token id must be its session's current one.
    let subject = app.sessions.lock().unwrap().remove(&presented);
    match subject {
        Some(subject) if subject == claims.claims.sub => app.issue(&subject),
        _ => answer(StatusCode::UNAUTHORIZED, None),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    digits.len().is_multiple_of(2).then_some(())?;
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("randomness");
    let signing = SigningKey::from_bytes(&seed);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&signing).expect("PKCS#8");
    let mut login_seed = [0u8; 32];
    getrandom::fill(&mut login_seed).expect("randomness");
    let login_key = SigningKey::from_bytes(&login_seed);
    let user = User {
        email: "bob@mail.com".into(),
        account: "bob@admin".into(),
        role: "ROLE_ADMIN".into(),
        login_key: login_key.verifying_key().to_bytes(),
    };
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub", "jti"]);
    let app = Arc::new(App {
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        decoding: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
        validation,
        user,
        sessions: Mutex::new(HashMap::new()),
    });
    let body = serde_json::json!({
        "email": app.user.email,
        "signature": hex(&login_key.sign(app.user.email.as_bytes()).to_bytes()),
        "publicKey": hex(&app.user.login_key),
    });
    let router = Router::new().route(PATH, post(login).patch(refresh)).with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await.expect("listen");
    println!("listening on http://{}", listener.local_addr().expect("address"));
    println!("login body: {body}");
    axum::serve(listener, router).await.expect("serve");
}
