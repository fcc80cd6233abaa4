//! Test helpers for driving the example servers over real HTTP: a small
//! hyper client, fixed keys, and a token forge for the SPEC §4 rows that need
//! hand-made tokens.

#![allow(dead_code)]

use std::error::Error as StdError;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::{Ed25519Signer, ManualClock, User};

pub(crate) type TestResult<T = ()> = Result<T, Box<dyn StdError + Send + Sync>>;

pub(crate) const SESSION: &str = "/auth/api/v1/authentication-management/session";
/// The token signing seed of every test server.
pub(crate) const SIGNING_SEED: [u8; 32] = [0x5e; 32];
/// The demo user's login key seed.
pub(crate) const BOB_LOGIN_SEED: [u8; 32] = [0xb0; 32];
pub(crate) const BOB: &str = "bob@mail.com";
/// A second user, for "unknown user" and "disabled user" rows.
pub(crate) const ALICE: &str = "alice@mail.com";
pub(crate) const ALICE_LOGIN_SEED: [u8; 32] = [0xa1; 32];
/// A fixed "now" for the manual clock.
pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) fn signer() -> TestResult<Ed25519Signer> {
    Ok(Ed25519Signer::from_seed(&SIGNING_SEED)?)
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::at_unix(NOW)
}

pub(crate) fn users() -> Vec<User> {
    vec![
        User::new(BOB, "bob@admin", "ROLE_ADMIN")
            .with_login_key(SigningKey::from_bytes(&BOB_LOGIN_SEED).verifying_key()),
        User::new(ALICE, "alice@acme", "ROLE_USER")
            .with_login_key(SigningKey::from_bytes(&ALICE_LOGIN_SEED).verifying_key()),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A FIB login body: `email`, signed with the key of `seed`.
pub(crate) fn login_body(email: &str, seed: &[u8; 32]) -> String {
    let key = SigningKey::from_bytes(seed);
    serde_json::json!({
        "email": email,
        "signature": hex(&key.sign(email.as_bytes()).to_bytes()),
        "publicKey": hex(key.verifying_key().as_bytes()),
    })
    .to_string()
}

/// A compact JWS over exactly these header and payload bytes, signed with
/// the key of `seed`.
pub(crate) fn forge(header: &str, payload: &str, seed: &[u8; 32]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = SigningKey::from_bytes(seed).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The decoded payload of a compact token.
pub(crate) fn payload(token: &str) -> TestResult<serde_json::Value> {
    let segment = token.split('.').nth(1).ok_or("not a compact JWS")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment)?)?)
}

/// One response, fully read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(&self) -> TestResult<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// `status.name` of the envelope; panics (failing the test) if the body
    /// is not an envelope, so two broken answers never compare equal.
    pub(crate) fn name(&self) -> String {
        self.status_field("name")
    }

    /// `status.message` of the envelope; panics like [`Self::name`].
    pub(crate) fn message(&self) -> String {
        self.status_field("message")
    }

    #[expect(clippy::panic, reason = "a test helper: failing the test is its job")]
    fn status_field(&self, field: &str) -> String {
        self.json()
            .ok()
            .and_then(|v| v.pointer(&format!("/status/{field}")).and_then(serde_json::Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "status {}: body is not an envelope with status.{field}: {:?}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `data.<field>` as a string.
    pub(crate) fn data(&self, field: &str) -> TestResult<String> {
        let json = self.json()?;
        Ok(json
            .get("data")
            .and_then(|data| data.get(field))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("no data.{field} in {json}"))?
            .to_owned())
    }

    /// The headers an adapter chose, without the ones that vary per request
    /// (`date`, `x-request-id`), sorted: for comparing stacks.
    pub(crate) fn stable_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or("<binary>").to_owned()))
            .collect();
        headers.sort();
        headers
    }
}

/// A plain HTTP/1 client for one server.
#[derive(Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    address: std::net::SocketAddr,
    base: String,
}

impl Http {
    pub(crate) fn new(address: std::net::SocketAddr) -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http(), address, base: format!("http://{address}") }
    }

    /// The server's address, for raw TCP.
    pub(crate) fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResult<Response> {
        let mut request = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::copy_from_slice(body)))?;
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, headers, body })
    }

    /// PATCH with an `Authorization` value given as raw bytes (for values
    /// `&str` cannot carry).
    pub(crate) async fn refresh_raw(&self, authorization: &[u8]) -> TestResult<Response> {
        let request = http::Request::builder()
            .method("PATCH")
            .uri(format!("{}{SESSION}", self.base))
            .header("authorization", http::HeaderValue::from_bytes(authorization)?)
            .body(Full::new(Bytes::new()))?;
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, headers, body })
    }

    pub(crate) async fn login(&self, body: &str) -> TestResult<Response> {
        self.send("POST", SESSION, &[("content-type", "application/json")], body.as_bytes()).await
    }

    /// PATCH with `Authorization: <authorization>` (`None`: no header).
    pub(crate) async fn refresh(&self, authorization: Option<&str>) -> TestResult<Response> {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        self.send("PATCH", SESSION, &headers, b"").await
    }

    pub(crate) async fn logout(&self, authorization: &str) -> TestResult<Response> {
        self.send("DELETE", SESSION, &[("authorization", authorization)], b"").await
    }

    pub(crate) async fn me(&self, authorization: &str) -> TestResult<Response> {
        self.send("GET", "/api/v1/me", &[("authorization", authorization)], b"").await
    }

    /// Logs `email` in with the key of `seed`; expects 200 and returns
    /// `(access, refresh)`.
    pub(crate) async fn session(&self, email: &str, seed: &[u8; 32]) -> TestResult<(String, String)> {
        let response = self.login(&login_body(email, seed)).await?;
        if response.status != 200 {
            return Err(format!("login failed: {} {}", response.status, String::from_utf8_lossy(&response.body)).into());
        }
        Ok((response.data("accessToken")?, response.data("refreshToken")?))
    }
}

/// The PKCS#8 v1 PEM of the key of `seed`, as `openssl genpkey -algorithm
/// ed25519` writes it.
pub(crate) fn private_pem(seed: &[u8; 32]) -> String {
    pem("PRIVATE KEY", &private_der(seed))
}

/// The PKCS#8 v1 DER of the key of `seed`.
pub(crate) fn private_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    PREFIX.iter().chain(seed).copied().collect()
}

/// The SPKI PEM of the public key of `seed`, as `openssl pkey -pubout`
/// writes it.
pub(crate) fn public_pem(seed: &[u8; 32]) -> String {
    pem("PUBLIC KEY", &public_der(seed))
}

/// The SPKI DER of the public key of `seed`.
pub(crate) fn public_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let public = SigningKey::from_bytes(seed).verifying_key();
    PREFIX.iter().chain(public.as_bytes()).copied().collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    // Both documents fit one 64-column line.
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

/// The JWK `x` of the public key of `seed`.
pub(crate) fn jwk_x(seed: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// The decoded JOSE header of a compact token.
pub(crate) fn jose_header(token: &str) -> TestResult<serde_json::Value> {
    let segment = token.split('.').next().ok_or("not a compact JWS")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment)?)?)
}

/// Whether `token`'s signature verifies under the public key of `seed`.
pub(crate) fn signed_by(token: &str, seed: &[u8; 32]) -> TestResult<bool> {
    let (input, signature) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let signature = token_refresh::ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature)?)?;
    Ok(SigningKey::from_bytes(seed).verifying_key().verify_strict(input.as_bytes(), &signature).is_ok())
}
