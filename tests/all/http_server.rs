//! The reference server (`examples/server.rs`, axum) over real HTTP on an
//! ephemeral loopback port: the whole SPEC through the wire.
//!
//! The server runs in process (the example's own `router`/`serve`, included
//! by path) so a `ManualClock` drives expiry and the user directory can be
//! edited mid-test; a hyper client talks to it over TCP.

#[allow(dead_code)]
#[path = "../../examples/server.rs"]
mod server;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use token_refresh::ed25519_dalek::{Signature, SigningKey, Verifier as _, VerifyingKey};
use token_refresh::{Clock, Ed25519Signer, KeyId, Policy, Signer as _, User, clock::ManualClock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use clap::error::ErrorKind;
use server::common::{self, App, Config, StoreUrl, VerifyKeyArg};
use token_refresh_test_support::http_client::{Http, SESSION, TestResult};
use token_refresh_test_support::keys::{
    SEED, jwk_x, private_der, private_pem, public_der, public_pem, signer, signing_key,
};
use token_refresh_test_support::tokens::{HEADER, bearer, mint_with, payload, refresh_claims};
use token_refresh_test_support::users::{ALICE, ALICE_LOGIN_SEED, BOB, BOB_LOGIN_SEED, demo, login_body};
use token_refresh_test_support::{NOW, clock};

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer error="invalid_request""#;

/// A server on 127.0.0.1:0 and what a test needs to steer it.
struct Running {
    http: Http,
    app: Arc<App>,
    clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> TestResult<Self> {
        Self::start_with(Policy::default(), signer()).await
    }

    async fn start_with(policy: Policy, signer: Ed25519Signer) -> TestResult<Self> {
        Self::start_tuned(policy, signer, |_| {}).await
    }

    /// Starts with `tune` applied to the state first.
    async fn start_tuned(policy: Policy, signer: Ed25519Signer, tune: impl FnOnce(&mut App)) -> TestResult<Self> {
        let clock = Arc::new(clock());
        let shared_clock: Arc<dyn Clock> = clock.clone();
        let mut app = App::new(common::memory_store(demo()), signer, policy, shared_clock);
        tune(&mut app);
        let app = Arc::new(app);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let http = Http::new(listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, Arc::clone(&app), async {
            let _ = stopped.await;
        }));
        Ok(Self { http, app, clock, stop: Some(stop), task })
    }

    /// Graceful shutdown; the server must end cleanly.
    async fn stop(mut self) -> TestResult {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?;
        Ok(())
    }
}

#[tokio::test]
async fn login_refresh_reuse_and_logout_over_http() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;

    let login = http.login(&login_body(BOB, &BOB_LOGIN_SEED)).await?;
    assert_eq!(login.status, 200);
    assert_eq!(login.header("content-type"), Some("application/json"));
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("pragma"), Some("no-cache"));
    assert!(login.header("www-authenticate").is_none());
    assert!(login.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let json = login.json()?;
    assert_eq!(json["status"], serde_json::json!({"code": 200, "name": "OK"}));
    assert_eq!(json["data"]["expirationTime"], 300);
    let access = login.data("accessToken")?;
    let first = login.data("refreshToken")?;
    // Seed shape: exact HEADER header, claims in order, refresh exp − access exp = 86 100.
    let header = URL_SAFE_NO_PAD.decode(first.split('.').next().ok_or("no header")?)?;
    assert_eq!(header, HEADER.as_bytes());
    let (access_claims, refresh_claims) = (payload(&access), payload(&first));
    assert_eq!(access_claims["exp"], NOW + 300);
    assert_eq!(refresh_claims["exp"], NOW + 86_400);
    assert_eq!(refresh_claims["acjti"], access_claims["jti"]);

    // Refresh with the bare token (the seed's form).
    let second = http.refresh(Some(&first)).await?;
    assert_eq!(second.status, 200, "{}", second.message());
    let second_token = second.data("refreshToken")?;
    assert_ne!(second_token, first);

    // Refresh with `Bearer` (RFC 6750 form), odd case and extra spaces.
    let third = http.refresh(Some(&format!("bEaReR   {second_token}"))).await?;
    assert_eq!(third.status, 200, "{}", third.message());
    let third_token = third.data("refreshToken")?;

    // Reuse of a rotated token: 401, and the whole family is revoked.
    let reuse = http.refresh(Some(&bearer(&first))).await?;
    assert_eq!((reuse.status, reuse.name().as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(reuse.message(), "refresh token was already used; the session is revoked");
    assert_eq!(reuse.header("www-authenticate"), Some(INVALID_TOKEN));
    assert_eq!(reuse.json()?["data"], serde_json::Value::Null);
    let victim = http.refresh(Some(&bearer(&third_token))).await?;
    assert_eq!((victim.status, victim.message().as_str()), (401, "session has been revoked"));

    // A fresh session, then logout: 200 with data null, and the token is dead.
    let (_, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let logout = http.logout(&bearer(&refresh)).await?;
    assert_eq!(logout.status, 200);
    assert_eq!(logout.body, br#"{"status":{"code":200,"name":"OK"},"data":null}"#);
    assert_eq!(logout.header("cache-control"), Some("no-store"));
    let after = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!((after.status, after.message().as_str()), (401, "session has been revoked"));
    // Logout is idempotent; logout without a token is a 400.
    assert_eq!(http.logout(&bearer(&refresh)).await?.status, 200);
    let no_token = http.send("DELETE", SESSION, &[], b"").await?;
    assert_eq!((no_token.status, no_token.header("www-authenticate")), (400, Some(INVALID_REQUEST)));

    server.stop().await
}

/// Every SPEC §4 row that a header or a hand-made token can reach, with the
/// exact status, name, message and `WWW-Authenticate`.
#[tokio::test]
async fn spec_section_4_rows_over_http() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    let (access, valid) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let [header_b64, payload_b64, signature_b64] = {
        let parts: Vec<&str> = valid.split('.').collect();
        <[&str; 3]>::try_from(parts).map_err(|_| "not three segments")?
    };
    let other_key = [0x77; 32];
    let good_claims = refresh_claims(BOB, NOW + 1000);

    struct Row {
        what: &'static str,
        authorization: Option<Vec<u8>>,
        status: u16,
        name: &'static str,
        message: &'static str,
        www_authenticate: Option<&'static str>,
    }
    let row = |what, authorization: Option<String>, status, message| Row {
        what,
        authorization: authorization.map(String::into_bytes),
        status,
        name: match status {
            400 => "BAD_REQUEST",
            401 => "UNAUTHORIZED",
            404 => "NOT_FOUND",
            422 => "UNPROCESSABLE_ENTITY",
            _ => "INTERNAL_SERVER_ERROR",
        },
        message,
        www_authenticate: match status {
            400 => Some(INVALID_REQUEST),
            401 => Some(INVALID_TOKEN),
            _ => None,
        },
    };
    let mut rows = vec![
        // Step 1.
        row("missing header", None, 400, "authorization header is missing"),
        row("empty header", Some(String::new()), 400, "authorization header is empty"),
        row("only spaces", Some("   ".into()), 400, "authorization header is empty"),
        row("over 8 KiB", Some(format!("Bearer {}", "a".repeat(8 * 1024))), 400, "authorization header is too long"),
        row(
            "tab inside",
            Some(format!("Bearer {header_b64}.\t{payload_b64}")),
            400,
            "authorization header is not visible ASCII",
        ),
        // Step 2.
        row("wrong scheme", Some(format!("Basic {valid}")), 401, "authorization scheme is not Bearer"),
        row("two segments", Some(format!("Bearer {header_b64}.{payload_b64}")), 401, "token could not be parsed"),
        row("not base64url", Some(format!("Bearer {header_b64}.{payload_b64}.***")), 401, "token could not be parsed"),
        row(
            "header not JSON",
            Some(bearer(&mint_with(&signing_key(), "not json", &good_claims))),
            401,
            "token could not be parsed",
        ),
        // Step 3.
        row(
            "alg HS256",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"HS256"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "alg none",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"none"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "alg Ed25519 not opted in",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"Ed25519"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "typ JWS",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWS","alg":"EdDSA"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "crit",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"EdDSA","crit":["exp"]}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "jku",
            Some(bearer(&mint_with(
                &signing_key(),
                r#"{"typ":"JWT","alg":"EdDSA","jku":"https://evil.example/k"}"#,
                &good_claims,
            ))),
            401,
            "token could not be parsed",
        ),
        row(
            "unknown kid",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"EdDSA","kid":"nope"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        row(
            "alg twice",
            Some(bearer(&mint_with(&signing_key(), r#"{"typ":"JWT","alg":"EdDSA","alg":"EdDSA"}"#, &good_claims))),
            401,
            "token could not be parsed",
        ),
        // Step 4.
        row(
            "foreign key",
            Some(bearer(&mint_with(&SigningKey::from_bytes(&other_key), HEADER, &good_claims))),
            401,
            "token signature is invalid",
        ),
        row(
            "payload swapped",
            Some(format!("Bearer {header_b64}.{}.{signature_b64}", URL_SAFE_NO_PAD.encode(&good_claims))),
            401,
            "token signature is invalid",
        ),
        // Step 5: authentic, but not a refresh token.
        row("access token", Some(bearer(&access)), 422, "token claims are malformed"),
        row(
            "missing jti",
            Some(bearer(&mint_with(
                &signing_key(),
                HEADER,
                format!(r#"{{"sub":"{BOB}","acjti":"{}","exp":{}}}"#, uuid::Uuid::new_v4(), NOW + 1000),
            ))),
            422,
            "token claims are malformed",
        ),
        row(
            "exp as string",
            Some(bearer(&mint_with(
                &signing_key(),
                HEADER,
                format!(
                    r#"{{"sub":"{BOB}","acjti":"{}","exp":"{}","jti":"{}"}}"#,
                    uuid::Uuid::new_v4(),
                    NOW + 1000,
                    uuid::Uuid::new_v4()
                ),
            ))),
            422,
            "token claims are malformed",
        ),
        row(
            "jti not a UUID",
            Some(bearer(&mint_with(
                &signing_key(),
                HEADER,
                format!(r#"{{"sub":"{BOB}","acjti":"{}","exp":{},"jti":"42"}}"#, uuid::Uuid::new_v4(), NOW + 1000),
            ))),
            422,
            "token claims are malformed",
        ),
        // Step 6.
        row(
            "expired",
            Some(bearer(&mint_with(&signing_key(), HEADER, refresh_claims(BOB, NOW - 1)))),
            401,
            "token has expired",
        ),
        row(
            "expires now",
            Some(bearer(&mint_with(&signing_key(), HEADER, refresh_claims(BOB, NOW)))),
            401,
            "token has expired",
        ),
        // Step 7.
        row(
            "unknown user",
            Some(bearer(&mint_with(&signing_key(), HEADER, refresh_claims("nobody@mail.com", NOW + 1000)))),
            404,
            "user not found",
        ),
        // Step 9: authentic, well-formed, but never issued.
        row(
            "never issued",
            Some(bearer(&mint_with(&signing_key(), HEADER, &good_claims))),
            401,
            "refresh token is not valid",
        ),
    ];
    // Step 1 again: a byte outside ASCII (obs-text), which `&str` cannot carry.
    let mut non_ascii = b"Bearer ".to_vec();
    non_ascii.extend_from_slice("é".as_bytes());
    rows.push(Row {
        authorization: Some(non_ascii),
        ..row("non-ASCII byte", Some(String::new()), 400, "authorization header is not visible ASCII")
    });

    for row in &rows {
        let response = match &row.authorization {
            None => http.refresh(None).await?,
            Some(value) => http.refresh_raw(value).await?,
        };
        let seen = (response.status, response.name(), response.message(), response.header("www-authenticate"));
        let want = (row.status, row.name.to_owned(), row.message.to_owned(), row.www_authenticate);
        assert_eq!(seen, want, "row '{}'", row.what);
        assert_eq!(response.json()?["data"], serde_json::Value::Null, "row '{}'", row.what);
        assert_eq!(response.header("cache-control"), Some("no-store"), "row '{}'", row.what);
    }

    // None of the refusals touched the real session.
    assert_eq!(http.refresh(Some(&bearer(&valid))).await?.status, 200);
    server.stop().await
}

/// Rows that need the server's state changed: disabled and removed users,
/// expiry by the clock, a failing clock (500).
#[tokio::test]
async fn stateful_rows_disabled_removed_expired_and_internal() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    let users = server.app.store.users();

    // Step 8: disabled after login.
    let (_, alice_refresh) = http.session(ALICE, &ALICE_LOGIN_SEED).await?;
    users.insert(User::new(ALICE, "alice@acme", "ROLE_USER").disabled());
    let disabled = http.refresh(Some(&bearer(&alice_refresh))).await?;
    assert_eq!((disabled.status, disabled.message().as_str()), (401, "user is disabled"));
    assert_eq!(disabled.header("www-authenticate"), Some(INVALID_TOKEN));

    // Step 7: removed after login.
    let (_, bob_refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let removed = users.remove(BOB).ok_or("bob was there")?;
    let gone = http.refresh(Some(&bearer(&bob_refresh))).await?;
    assert_eq!((gone.status, gone.name().as_str()), (404, "NOT_FOUND"));
    assert!(gone.header("www-authenticate").is_none());
    users.insert((*removed).clone());

    // Step 6 by the clock: the refresh token lives 86 400 s.
    let (access, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    server.clock.advance(time::Duration::seconds(300));
    let stale = http.me(&bearer(&access)).await?;
    assert_eq!((stale.status, stale.message().as_str()), (401, "token has expired"));
    server.clock.advance(time::Duration::seconds(86_100));
    let expired = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!((expired.status, expired.message().as_str()), (401, "token has expired"));

    // Step 11: a clock that cannot tell the time is a 500 that reveals nothing.
    let (_, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    server.clock.set(time::OffsetDateTime::UNIX_EPOCH);
    server.clock.advance(time::Duration::seconds(i64::MAX / 2));
    let broken = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!(broken.status, 500);
    assert_eq!(
        broken.body,
        br#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#
    );
    assert!(broken.header("www-authenticate").is_none());
    server.stop().await
}

/// Step 9's third case: a session past its absolute lifetime. The token's
/// own `exp` is capped at the same instant, so only a leeway lets the request
/// reach the ledger to be refused there.
#[tokio::test]
async fn session_past_its_absolute_lifetime_is_refused() -> TestResult {
    let policy =
        Policy::builder().session_lifetime(time::Duration::seconds(100)).leeway(time::Duration::seconds(60)).build()?;
    let server = Running::start_with(policy, signer()).await?;
    let (_, refresh) = server.http.session(BOB, &BOB_LOGIN_SEED).await?;
    assert_eq!(payload(&refresh)["exp"], NOW + 100, "refresh exp is capped by the session");
    server.clock.advance(time::Duration::seconds(110));
    let late = server.http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!((late.status, late.message().as_str()), (401, "session has expired"));
    assert_eq!(late.header("www-authenticate"), Some(INVALID_TOKEN));
    server.stop().await
}

#[tokio::test]
async fn twenty_four_concurrent_refreshes_of_one_token_give_exactly_one_200() -> TestResult {
    let server = Running::start().await?;
    let (_, refresh) = server.http.session(BOB, &BOB_LOGIN_SEED).await?;
    let authorization = bearer(&refresh);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let http = server.http.clone();
        let authorization = authorization.clone();
        tasks.spawn(async move {
            let response = http.refresh(Some(&authorization)).await?;
            let message = (response.status != 200).then(|| response.message());
            TestResult::Ok((response.status, message))
        });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome??);
    }
    outcomes.sort_unstable();
    // One winner; the first loser is reuse (it revokes the session), every
    // later one meets a revoked session.
    let reused = (401, Some("refresh token was already used; the session is revoked".to_owned()));
    let revoked = (401, Some("session has been revoked".to_owned()));
    let mut expected = vec![(200, None), reused];
    expected.extend(std::iter::repeat_n(revoked, 22));
    expected.sort_unstable();
    assert_eq!(outcomes, expected);
    server.stop().await
}

#[tokio::test]
async fn me_answers_claims_and_keeps_the_predecessor_access_token_until_logout() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    let (access, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;

    let me = http.me(&bearer(&access)).await?;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body,
        br#"{"status":{"code":200,"name":"OK"},"data":{"sub":"bob@mail.com","acc":"bob@admin","role":"ROLE_ADMIN"}}"#
    );
    assert_eq!(me.header("cache-control"), Some("no-store"));
    // The bare form works here too.
    assert_eq!(http.me(&access).await?.status, 200);

    let rotated = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!(rotated.status, 200);
    // Another tab's in-flight calls with the superseded access token still
    // pass: a normal rotation revokes nothing (the default policy).
    assert_eq!(http.me(&bearer(&access)).await?.status, 200);
    assert_eq!(http.me(&bearer(&rotated.data("accessToken")?)).await?.status, 200);

    // A refresh token is not an access token.
    let wrong_kind = http.me(&bearer(&rotated.data("refreshToken")?)).await?;
    assert_eq!((wrong_kind.status, wrong_kind.name().as_str()), (422, "UNPROCESSABLE_ENTITY"));

    // Logout revokes every access token of the session, superseded or not.
    assert_eq!(http.logout(&bearer(&rotated.data("refreshToken")?)).await?.status, 200);
    for token in [access, rotated.data("accessToken")?] {
        let after = http.me(&bearer(&token)).await?;
        assert_eq!((after.status, after.message().as_str()), (401, "access token has been revoked"));
        assert_eq!(after.header("www-authenticate"), Some(INVALID_TOKEN));
    }
    server.stop().await
}

#[tokio::test]
async fn a_strict_policy_refuses_the_predecessor_access_token() -> TestResult {
    let policy = Policy::builder().revoke_superseded_access(true).build()?;
    let server = Running::start_with(policy, signer()).await?;
    let http = &server.http;
    let (access, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let rotated = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!(rotated.status, 200);
    let predecessor = http.me(&bearer(&access)).await?;
    assert_eq!((predecessor.status, predecessor.message().as_str()), (401, "access token has been revoked"));
    assert_eq!(http.me(&bearer(&rotated.data("accessToken")?)).await?.status, 200);
    server.stop().await
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() -> TestResult {
    let kid = KeyId::new("test-key-1")?;
    let server = Running::start_with(Policy::default(), signer().with_key_id(kid)?).await?;
    let http = &server.http;
    let jwks = http.send("GET", "/.well-known/jwks.json", &[], b"").await?;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(jwks.header("content-type"), Some("application/json"));
    let public = SigningKey::from_bytes(&SEED).verifying_key();
    let expected = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{}","use":"sig","alg":"EdDSA","kid":"test-key-1"}}]}}"#,
        URL_SAFE_NO_PAD.encode(public.as_bytes())
    );
    assert_eq!(String::from_utf8(jwks.body.clone())?, expected);

    // A token from this server names the kid and verifies under the JWKS key
    // alone, as an independent resource server would check it.
    let (access, _) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let jwk = &jwks.json()?["keys"][0];
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().ok_or("no x")?)?;
    let key = VerifyingKey::from_bytes(&<[u8; 32]>::try_from(x.as_slice())?)?;
    let (input, signature) = access.rsplit_once('.').ok_or("no signature")?;
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature)?)?;
    key.verify(input.as_bytes(), &signature)?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(access.split('.').next().ok_or("no header")?)?)?;
    assert_eq!(header["kid"], "test-key-1");
    // The published thumbprint helper agrees with RFC 7638 over these members.
    let thumbprint = server.app.verification_key.as_ref().ok_or("a key")?.thumbprint();
    assert_eq!(thumbprint.len(), 43);
    server.stop().await
}

#[tokio::test]
async fn login_refusals_have_the_spec_statuses() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    let bob = SigningKey::from_bytes(&BOB_LOGIN_SEED);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let bob_key = hex(bob.verifying_key().as_bytes());
    let bob_signature = hex(&ed25519_dalek::Signer::sign(&bob, BOB.as_bytes()).to_bytes());
    let body = |email: &str, signature: &str, key: &str| {
        serde_json::json!({"email": email, "signature": signature, "publicKey": key}).to_string()
    };
    let other_signature = hex(&ed25519_dalek::Signer::sign(&bob, b"someone else's message").to_bytes());

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not JSON", "email=bob".into(), 400, "request body is malformed"),
        ("empty", String::new(), 400, "request body is malformed"),
        (
            "missing field",
            serde_json::json!({"email": BOB, "signature": bob_signature}).to_string(),
            400,
            "request body is malformed",
        ),
        (
            "extra field",
            serde_json::json!({"email": BOB, "signature": bob_signature, "publicKey": bob_key, "x": 1}).to_string(),
            400,
            "request body is malformed",
        ),
        (
            "oversized",
            format!(r#"{{"email":"{}"}}"#, "a".repeat(token_refresh::MAX_LOGIN_BODY)),
            400,
            "request body is malformed",
        ),
        ("signature not hex", body(BOB, &"zz".repeat(64), &bob_key), 422, "key or signature is malformed"),
        ("short key", body(BOB, &bob_signature, &bob_key[..62]), 422, "key or signature is malformed"),
        (
            "someone else's key",
            body(BOB, &bob_signature, &hex(SigningKey::from_bytes(&ALICE_LOGIN_SEED).verifying_key().as_bytes())),
            422,
            "public key does not match the user",
        ),
        ("wrong signature", body(BOB, &other_signature, &bob_key), 401, "signature is invalid"),
        ("unknown user", login_body("nobody@mail.com", &BOB_LOGIN_SEED), 404, "user not found"),
    ];
    for (what, body, status, message) in cases {
        let response = http.login(&body).await?;
        assert_eq!((response.status, response.message().as_str()), (status, message), "case '{what}'");
        assert_eq!(response.json()?["data"], serde_json::Value::Null, "case '{what}'");
    }

    // A declared length over the limit is refused without reading the body.
    let declared = http.send("POST", SESSION, &[("content-length", "5000")], &vec![b' '; 5000]).await?;
    assert_eq!((declared.status, declared.name().as_str()), (400, "BAD_REQUEST"));

    // Disabled user: the signature is checked first, then 401.
    server.app.store.users().insert(
        User::new(ALICE, "alice@acme", "ROLE_USER")
            .with_login_key(SigningKey::from_bytes(&ALICE_LOGIN_SEED).verifying_key())
            .disabled(),
    );
    let disabled = http.login(&login_body(ALICE, &ALICE_LOGIN_SEED)).await?;
    assert_eq!((disabled.status, disabled.message().as_str()), (401, "user is disabled"));
    server.stop().await
}

#[tokio::test]
async fn other_methods_get_405_with_allow_and_unknown_paths_404() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    for method in ["GET", "PUT", "OPTIONS"] {
        let response = http.send(method, SESSION, &[], b"").await?;
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("POST, PATCH, DELETE"), "{method}");
        assert_eq!(
            response.body,
            br#"{"status":{"code":405,"name":"METHOD_NOT_ALLOWED","message":"method not allowed"},"data":null}"#
        );
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    for path in ["/api/v1/me", "/.well-known/jwks.json"] {
        let response = http.send("POST", path, &[], b"").await?;
        assert_eq!((response.status, response.header("allow")), (405, Some("GET, HEAD")), "{path}");
    }
    let missing = http.send("GET", "/auth/api/v1/nope", &[], b"").await?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, br#"{"status":{"code":404,"name":"NOT_FOUND","message":"no such endpoint"},"data":null}"#);
    server.stop().await
}

#[tokio::test]
async fn request_ids_and_repeated_authorization() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    let echoed = http.send("GET", "/.well-known/jwks.json", &[("x-request-id", "edge-42.a_b")], b"").await?;
    assert_eq!(echoed.header("x-request-id"), Some("edge-42.a_b"));
    // An id that could smuggle text into logs is replaced by a fresh UUID.
    let replaced = http.send("GET", "/.well-known/jwks.json", &[("x-request-id", "a b\"c")], b"").await?;
    let id = replaced.header("x-request-id").ok_or("no id")?;
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let (_, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let twice = http
        .send("PATCH", SESSION, &[("authorization", &bearer(&refresh)), ("authorization", &bearer(&refresh))], b"")
        .await?;
    assert_eq!((twice.status, twice.message().as_str()), (400, "authorization header is repeated"));
    assert_eq!(twice.header("www-authenticate"), Some(INVALID_REQUEST));
    // Refused before the ledger: the token still works.
    assert_eq!(http.refresh(Some(&bearer(&refresh))).await?.status, 200);
    server.stop().await
}

/// `GET /metrics` in the Prometheus text format: a login, two refreshes and
/// a replayed token move the request, session, rotation and reuse counters
/// and the ledger histogram, and no token, subject or key appears in the
/// scrape. Other tests of this binary share the process's recorder, so the
/// counts are compared as "at least this much more".
#[cfg(feature = "metrics")]
#[tokio::test]
async fn metrics_count_the_flows_without_secrets() -> TestResult {
    common::init_metrics();
    let server = Running::start().await?;
    let http = &server.http;
    let scrape = || async {
        let response = http.send("GET", "/metrics", &[], b"").await?;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/plain; version=0.0.4"));
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(String::from_utf8(response.body)?)
    };
    let value = |text: &str, series: &str| -> f64 {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
    };
    let before = scrape().await?;
    let login = http.login(&login_body(BOB, &BOB_LOGIN_SEED)).await?;
    let first = login.data("refreshToken")?;
    let second = http.refresh(Some(&bearer(&first))).await?.data("refreshToken")?;
    assert_eq!(http.refresh(Some(&bearer(&second))).await?.status, 200);
    assert_eq!(http.refresh(Some(&bearer(&first))).await?.status, 401);
    let after = scrape().await?;
    for (series, at_least) in [
        (r#"token_refresh_requests_total{endpoint="login",status="OK"}"#, 1.0),
        (r#"token_refresh_requests_total{endpoint="refresh",status="OK"}"#, 2.0),
        (r#"token_refresh_requests_total{endpoint="refresh",status="UNAUTHORIZED"}"#, 1.0),
        ("token_refresh_sessions_started_total", 1.0),
        ("token_refresh_rotations_total", 2.0),
        ("token_refresh_reuse_detected_total", 1.0),
        (r#"token_refresh_ledger_duration_seconds_count{op="rotate"}"#, 3.0),
        (r#"token_refresh_ledger_duration_seconds_count{op="create"}"#, 1.0),
    ] {
        let grown = value(&after, series) - value(&before, series);
        assert!(grown >= at_least, "{series} grew by {grown}, expected at least {at_least}:\n{after}");
    }
    assert!(after.contains(r#"token_refresh_ledger_duration_seconds_bucket{op="rotate",le="0.0001"}"#), "{after}");
    for secret in [BOB, first.as_str(), second.as_str(), "bob@admin"] {
        assert!(!after.contains(secret), "the scrape holds {secret}");
    }
    server.stop().await
}

/// The probes: `/healthz` whenever the process serves, `/readyz` when the
/// ledger answers (the in-memory one always does); GET and HEAD only.
#[tokio::test]
async fn health_and_readiness_probes() -> TestResult {
    let server = Running::start().await?;
    let http = &server.http;
    for (path, message) in [("/healthz", "serving"), ("/readyz", "ready")] {
        let probe = http.send("GET", path, &[], b"").await?;
        assert_eq!(probe.status, 200, "{path}");
        assert_eq!(
            String::from_utf8(probe.body.clone())?,
            format!(r#"{{"status":{{"code":200,"name":"OK","message":"{message}"}},"data":null}}"#)
        );
        assert_eq!(probe.header("cache-control"), Some("no-store"));
        assert_eq!(http.send("HEAD", path, &[], b"").await?.status, 200, "HEAD {path}");
        let post = http.send("POST", path, &[], b"").await?;
        assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")), "POST {path}");
    }
    server.stop().await
}

/// At `--max-connections` the server stops accepting: a further connection
/// waits in the listen queue, unanswered, until an open one closes, and is
/// then served. (Before the cap, idle connections past the open-file limit
/// made the accept loop fail and real logins time out.)
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Running::start_tuned(Policy::default(), signer(), |app| app.max_connections = 2).await?;
    let address = server.http.address();
    let first = tokio::net::TcpStream::connect(address).await?;
    let _second = tokio::net::TcpStream::connect(address).await?;
    let mut third = tokio::net::TcpStream::connect(address).await?;
    third.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await?;
    let mut answer = Vec::new();
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), third.read_to_end(&mut answer)).await;
    assert!(waited.is_err(), "served beyond the cap: {:?}", String::from_utf8_lossy(&answer));
    drop(first);
    tokio::time::timeout(std::time::Duration::from_secs(10), third.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8(answer)?;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.stop().await
}

/// The built server, started under a 1 024-file soft limit (a common
/// service default), raises it to fit `--max-connections` (10 000 plus 256
/// other files, within the hard limit), and 1 100 idle connections then do
/// not keep a request from being served.
#[tokio::test]
async fn the_server_raises_its_open_file_limit() -> TestResult {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    // target/debug/deps/all-… → target/debug/examples/server (cargo test
    // builds the examples before it runs the tests).
    let binary = std::env::current_exe()?
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("examples").join("server"))
        .ok_or("no target dir")?;
    let mut child = tokio::process::Command::new("bash")
        .args(["-c", r#"ulimit -Sn 1024 && exec "$0" --listen 127.0.0.1:0"#])
        .arg(&binary)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    let address = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line()).await??;
        let line = line.ok_or("the server ended before listening")?;
        if let Some(address) = line.strip_prefix("listening on http://") {
            break address.to_owned();
        }
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let open_files: Vec<u64> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or("no open-file limit")?
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [soft, hard] = open_files[..] else { return Err(limits.into()) };
    assert_eq!(soft, hard.min(10_256), "{limits}");

    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(tokio::net::TcpStream::connect(&address).await?);
    }
    let mut probe = tokio::net::TcpStream::connect(&address).await?;
    probe.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), probe.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8(answer)?;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    drop(idle);
    child.kill().await?;
    Ok(())
}

/// A client that stops sending its login body mid-way gets the 500 envelope
/// when the request deadline passes, instead of holding the task.
#[tokio::test]
async fn a_stalled_body_hits_the_request_deadline() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Running::start_tuned(Policy::default(), signer(), |app| {
        app.request_timeout = std::time::Duration::from_millis(200);
    })
    .await?;
    let mut stream = tokio::net::TcpStream::connect(server.http.address()).await?;
    let head = format!(
        "POST {SESSION} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(br#"{"email":"#).await?;
    // Read until the envelope is complete (or the server closes); the outer
    // bound only keeps a broken server from hanging the suite.
    let mut received = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        while !received.ends_with(b"\"data\":null}") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            received.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await??;
    let text = String::from_utf8(received)?;
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(
        text.ends_with(
            r#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#
        ),
        "{text}"
    );
    server.stop().await
}

#[tokio::test]
async fn grace_window_replay_returns_the_same_pair_over_http() -> TestResult {
    let policy = Policy::builder().grace_window(time::Duration::seconds(10)).build()?;
    let server = Running::start_with(policy, signer()).await?;
    let http = &server.http;
    let (_, refresh) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let first = http.refresh(Some(&bearer(&refresh))).await?;
    server.clock.advance(time::Duration::seconds(5));
    let retry = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!((first.status, retry.status), (200, 200));
    assert_eq!(first.body, retry.body, "a grace replay returns the same pair, byte for byte");
    server.clock.advance(time::Duration::seconds(6));
    let late = http.refresh(Some(&bearer(&refresh))).await?;
    assert_eq!(late.status, 401);
    server.stop().await
}

/// Built with `aws-lc`, the reference server signs with `AwsLcSigner`
/// (about twice as fast, the same bytes); without it, with ed25519-dalek.
#[tokio::test]
async fn the_server_signs_with_the_signer_its_features_give() -> TestResult {
    let expected = if cfg!(feature = "aws-lc") { "AwsLcSigner" } else { "Ed25519Signer" };
    assert!(std::any::type_name::<common::ServerSigner>().ends_with(expected));
    assert_eq!(common::SIGNER_NAME, if cfg!(feature = "aws-lc") { "aws-lc" } else { "ed25519-dalek" });
    // Whichever it is, a token it signs verifies under the key it announces.
    let config = common::parse_args(Vec::<String>::new())?;
    let setup = common::setup(&config).await.map_err(|e| e.message)?;
    let pair = setup
        .app
        .policy
        .issue(common::DEMO_EMAIL, &setup.app.store, &setup.app.signer, &token_refresh::SystemClock)
        .await?;
    let announced = setup.app.verification_key.as_ref().ok_or("a key")?;
    let keyring = token_refresh::keys::Keyring::new([announced.clone()])?;
    assert!(
        setup
            .app
            .policy
            .verify_access(
                Some(format!("Bearer {}", pair.access_token).as_bytes()),
                &keyring,
                &token_refresh::SystemClock
            )
            .is_ok()
    );
    Ok(())
}

/// The demo user (whose admin login body is printed) and a per-start key
/// serve only on loopback unless `--demo` says otherwise; with a users file
/// and a signing key any address is fine.
#[tokio::test]
async fn the_demo_serves_only_on_loopback_without_demo() -> TestResult {
    let setup = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            let config = common::parse_args(args).map_err(|e| e.to_string())?;
            common::setup(&config).await.map(|_| ()).map_err(|e| format!("{}: {}", e.code, e.message))
        }
    };
    let refused = setup(&["--listen", "0.0.0.0:0"]).await.expect_err("the demo on 0.0.0.0");
    assert!(refused.starts_with("2: --listen 0.0.0.0:0: "), "{refused}");
    assert!(refused.contains("give --users and --signing-key, or --demo"), "{refused}");
    setup(&["--listen", "0.0.0.0:0", "--demo"]).await?;
    setup(&["--listen", "127.0.0.1:0"]).await?;
    setup(&["--listen", "[::1]:0"]).await?;
    let dir = std::env::temp_dir().join(format!("tr-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key = dir.join("key.pem");
    std::fs::write(&key, private_pem(&SEED))?;
    let only_key = setup(&["--listen", "0.0.0.0:0", "--signing-key", key.to_str().ok_or("path")?]).await;
    assert!(only_key.expect_err("still the demo user").contains("give --users, or --demo"));
    let error = common::parse_args(["--demo=yes".to_owned()]).err().ok_or("--demo takes no value")?;
    assert!(error.to_string().contains("'--demo'"), "{error}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn command_line_flags() -> TestResult {
    let parse = |args: &[&str]| common::parse_args(args.iter().map(|a| (*a).to_owned()));
    assert_eq!(parse(&[])?, Config::default());
    let capped = parse(&["--max-sessions-per-user", "5"])?;
    assert_eq!(capped.max_sessions_per_user, Some(5));
    for bad in ["0", "10001", "-1", "many"] {
        // clap names the flag in every refusal, a negative number included.
        let error = parse(&["--max-sessions-per-user", bad]).err().ok_or(bad)?;
        assert!(error.to_string().contains("'--max-sessions-per-user <N>'"), "{error}");
    }
    let cluster = parse(&["--store", "redis-cluster://127.0.0.1:7101,127.0.0.1:7102"])?;
    assert_eq!(format!("{:?}", cluster.store), "Redis(SecretUrl(redis-cluster://…))");
    assert_eq!(Config::default().listen.to_string(), "127.0.0.1:8080");
    let config = parse(&[
        "--listen",
        "127.0.0.1:0",
        "--signing-key=key.pem",
        "--users",
        "users.json",
        "--store",
        "memory",
        "--access-ttl",
        "60",
        "--refresh-ttl=3600",
        "--grace",
        "5",
        "--kid",
        "k1",
        "--verify-key",
        "old.pub#k0",
        "--verify-key=older.pem",
        "--verify-key",
        "odd#name.pem#",
    ])?;
    assert_eq!(config.listen.port(), 0);
    assert_eq!(config.signing_key.as_deref(), Some(std::path::Path::new("key.pem")));
    assert_eq!(config.users.as_deref(), Some(std::path::Path::new("users.json")));
    assert_eq!((config.access_ttl, config.refresh_ttl, config.grace), (Some(60), Some(3600), Some(5)));
    assert_eq!(config.kid.as_deref(), Some("k1"));
    let verify_key = |path: &str, kid: Option<&str>| VerifyKeyArg { path: path.into(), kid: kid.map(str::to_owned) };
    assert_eq!(
        config.verify_keys,
        [verify_key("old.pub", Some("k0")), verify_key("older.pem", None), verify_key("odd#name.pem", None)]
    );
    assert_eq!(config.store, StoreUrl::Memory);
    let kind = |args: &[&str]| parse(args).err().map(|error| error.kind());
    assert_eq!(kind(&["--help"]), Some(ErrorKind::DisplayHelp));
    assert_eq!(kind(&["--version"]), Some(ErrorKind::DisplayVersion));
    assert_eq!(kind(&["--bogus"]), Some(ErrorKind::UnknownArgument));
    assert_eq!(kind(&["--kid", "a", "--kid", "b"]), Some(ErrorKind::ArgumentConflict));
    assert_eq!(parse(&["--"])?, Config::default());
    assert_eq!(parse(&["--max-connections", "50"])?.max_connections, 50);
    assert_eq!(kind(&["--max-connections", "0"]), Some(ErrorKind::ValueValidation));
    // A CA bundle is for a TLS store only.
    assert_eq!(kind(&["--store-ca", "ca.pem"]), Some(ErrorKind::ArgumentConflict));
    assert_eq!(
        parse(&["--store", "rediss://cache:6380", "--store-ca", "ca.pem"])?.store_ca.as_deref(),
        Some(std::path::Path::new("ca.pem"))
    );
    for bad in [
        &["--listen"][..],
        &["--listen", "localhost"],
        &["--nope", "1"],
        &["positional"],
        &["--grace", "-1"],
        &["--access-ttl", "5m"],
        &["--kid", "a", "--kid", "b"],
        &["--store", "mysql://x"],
        &["--store", "redis"],
        &["--verify-key", "#kid"],
        &["--store-prefix", "tenant_a"],
        &["--store", "redis://cache", "--store-prefix", "Tenant"],
        &["--store", "redis://cache", "--store-prefix", "1tenant"],
        &["--store", "redis://cache", "--store-prefix", "a:b"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }

    // An unknown scheme is refused without repeating the value (it may be a
    // URL with a password).
    let error = parse(&["--store", "mysql://app:hunter2@db/tokens"]).err().ok_or("mysql must be refused")?.to_string();
    assert!(!error.contains("hunter2") && !error.contains("mysql"), "{error}");

    // Shared ledgers: the URL is kept for connecting but never shown.
    let config = parse(&["--store", "postgres://app:hunter2@db/tokens", "--store-prefix", "tenant_a"])?;
    let StoreUrl::Postgres(url) = &config.store else { return Err("expected postgres".into()) };
    assert_eq!(url.expose(), "postgres://app:hunter2@db/tokens");
    assert_eq!(config.store_prefix.as_deref(), Some("tenant_a"));
    assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    assert_eq!(
        url.redact("failed at postgres://app:hunter2@db/tokens as app:hunter2 (hunter2)"),
        "failed at … as … (…)"
    );
    let config = parse(&["--store", "postgresql://db/tokens"])?;
    assert!(matches!(config.store, StoreUrl::Postgres(_)));
    let config = parse(&["--store", "redis://:pw@cache:6379/0"])?;
    assert!(matches!(config.store, StoreUrl::Redis(_)));
    assert!(!format!("{config:?}").contains("pw@"), "{config:?}");
    // Built without the backend's feature: a configuration error naming it.
    #[cfg(not(feature = "redis"))]
    {
        let error = common::setup(&config).await.err().ok_or("redis needs its feature")?;
        assert_eq!(error.code, 2);
        assert!(error.message.contains("`redis` feature") && !error.message.contains("pw@"), "{}", error.message);
    }

    // Out-of-range policy values are configuration errors too.
    let config = parse(&["--grace", "61"])?;
    assert_eq!(common::setup(&config).await.err().map(|e| e.code), Some(2));
    Ok(())
}

#[tokio::test]
async fn key_and_users_files_drive_a_login() -> TestResult {
    let dir = std::env::temp_dir().join(format!("token-refresh-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    // RFC 8410 §10.3's sample key, as `openssl genpkey -algorithm ed25519` writes it.
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.join("key.pem"), pem)?;
    let carol_seed = [0xc0; 32];
    let carol_key: String =
        SigningKey::from_bytes(&carol_seed).verifying_key().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let users = format!(
        r#"[{{"email":"carol@mail.com","account":"carol@ops","role":"ROLE_OPS","publicKey":"{carol_key}"}},
            {{"email":"dave@mail.com","account":"dave@ops","role":"ROLE_OPS","publicKey":"{carol_key}","disabled":true}}]"#
    );
    std::fs::write(dir.join("users.json"), users)?;
    let config = Config {
        signing_key: Some(dir.join("key.pem")),
        users: Some(dir.join("users.json")),
        kid: Some("ops-1".into()),
        access_ttl: Some(60),
        ..Config::default()
    };
    let setup = common::setup(&config).await.map_err(|e| e.message)?;
    assert!(!setup.ephemeral_key && setup.demo_login.is_none());
    let expected_key = Ed25519Signer::from_pkcs8_pem(pem)?;
    assert_eq!(
        setup.app.verification_key.as_ref().ok_or("a key")?.to_bytes(),
        expected_key.verification_key().to_bytes()
    );

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let http = Http::new(listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, Arc::clone(&setup.app), async {
        let _ = stopped.await;
    }));
    let login = http.login(&login_body("carol@mail.com", &carol_seed)).await?;
    assert_eq!(login.status, 200, "{}", login.message());
    assert_eq!(login.json()?["data"]["expirationTime"], 60);
    let header = URL_SAFE_NO_PAD.decode(login.data("accessToken")?.split('.').next().ok_or("no header")?)?;
    assert_eq!(header, br#"{"typ":"JWT","alg":"EdDSA","kid":"ops-1"}"#);
    assert_eq!(http.login(&login_body("dave@mail.com", &carol_seed)).await?.status, 401);

    // Bad files are configuration errors (exit code 2) naming the entry, not key bytes.
    std::fs::write(dir.join("bad.json"), r#"[{"email":"x@y","account":"a","role":"r","publicKey":"00"}]"#)?;
    let bad = common::setup(&Config { users: Some(dir.join("bad.json")), ..Config::default() })
        .await
        .err()
        .ok_or("bad users")?;
    assert!(bad.code == 2 && bad.message.contains("entry 0"), "{}", bad.message);
    std::fs::write(dir.join("bad.pem"), "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")?;
    let bad = common::setup(&Config { signing_key: Some(dir.join("bad.pem")), ..Config::default() })
        .await
        .err()
        .ok_or("bad key")?;
    assert_eq!(bad.code, 2);

    let _ = stop.send(());
    task.await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `--verify-key` takes a public key PEM or a private key PEM (only the
/// public half is kept), with an optional `#KID`; the JWKS lists every key,
/// active first; bad files and key sets are configuration errors that quote
/// no key material.
#[tokio::test]
async fn verify_only_keys_load_and_are_published() -> TestResult {
    let dir = std::env::temp_dir().join(format!("token-refresh-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let path = |name: &str| dir.join(name).display().to_string();
    let seeds = [[0x11; 32], [0x22; 32], [0x33; 32], [0x44; 32]];
    std::fs::write(dir.join("active.pem"), private_pem(&SEED))?;
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.pub")), public_pem(seed))?;
        std::fs::write(dir.join(format!("{i}.pem")), private_pem(seed))?;
    }
    let start = |extra: Vec<String>| async move {
        let mut args = vec!["--signing-key".to_owned(), path("active.pem"), "--kid".to_owned(), "now".to_owned()];
        args.extend(extra);
        let config = common::parse_args(args).map_err(|e| e.to_string())?;
        common::setup(&config).await.map_err(|e| format!("{}: {}", e.code, e.message))
    };

    let setup =
        start(vec!["--verify-key".into(), format!("{}#old", path("0.pub")), "--verify-key".into(), path("1.pem")])
            .await?;
    let jwks: serde_json::Value = serde_json::from_slice(&setup.app.jwks().body)?;
    let keys: Vec<(&str, Option<&str>)> = jwks["keys"]
        .as_array()
        .ok_or("keys")?
        .iter()
        .map(|key| Ok((key["x"].as_str().ok_or("no x")?, key["kid"].as_str())))
        .collect::<TestResult<_>>()?;
    let (active, old, older) = (jwk_x(&SEED), jwk_x(&seeds[0]), jwk_x(&seeds[1]));
    assert_eq!(keys, [(active.as_str(), Some("now")), (old.as_str(), Some("old")), (older.as_str(), None)]);
    // DER works too, public or private.
    std::fs::write(dir.join("2.der"), public_der(&seeds[2]))?;
    std::fs::write(dir.join("3.der"), private_der(&seeds[3]))?;
    let setup_der = start(vec!["--verify-key".into(), path("2.der"), "--verify-key".into(), path("3.der")]).await?;
    let ring: Vec<[u8; 32]> = setup_der.app.signer.keyring().keys().iter().map(|key| key.to_bytes()).collect();
    let public = |seed: &[u8; 32]| SigningKey::from_bytes(seed).verifying_key().to_bytes();
    assert_eq!(ring, [public(&SEED), public(&seeds[2]), public(&seeds[3])]);
    // Verify-only keys verify, never sign.
    assert_eq!(
        setup.app.verification_key.as_ref().ok_or("a key")?.to_bytes(),
        Ed25519Signer::from_seed(&SEED)?.verification_key().to_bytes()
    );

    // Configuration errors, exit code 2, no key material in the message.
    let verify = |value: String| vec!["--verify-key".to_owned(), value];
    let four: Vec<String> = (0..4).flat_map(|i| verify(path(&format!("{i}.pub")))).collect();
    std::fs::write(dir.join("cert.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")?;
    std::fs::write(dir.join("junk.der"), [0x30, 0x03, 0x02, 0x01, 0x00])?;
    for (what, extra) in [
        ("more than 3 verify-only keys", four),
        ("the active key again", verify(path("active.pem"))),
        ("a key twice", [verify(path("0.pub")), verify(path("0.pem"))].concat()),
        ("a kid twice", verify(format!("{}#now", path("2.pub")))),
        ("a bad kid", verify(format!("{}#a/b", path("2.pub")))),
        ("a missing file", verify(path("missing.pub"))),
        ("a certificate", verify(path("cert.pem"))),
        ("junk DER", verify(path("junk.der"))),
    ] {
        let error = start(extra).await.err().ok_or(what)?;
        assert!(error.starts_with("2: --verify-key "), "{what}: {error}");
        assert!(!error.contains("BEGIN") && !error.contains("AAAA"), "{what}: {error}");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The demo user's printed login body works, and the walkthrough the server
/// prints names the bound address.
#[tokio::test]
async fn demo_login_body_logs_in() -> TestResult {
    let setup = common::setup(&Config::default()).await.map_err(|e| e.message)?;
    assert!(setup.ephemeral_key);
    let body = setup.demo_login.clone().ok_or("demo body")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let http = Http::new(address);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, Arc::clone(&setup.app), async {
        let _ = stopped.await;
    }));
    let login = http.login(&body).await?;
    assert_eq!(login.status, 200, "{}", login.message());
    assert_eq!(payload(&login.data("accessToken")?)["sub"], BOB);
    let walkthrough = common::walkthrough(address, &body);
    assert!(walkthrough.starts_with(&format!("BASE=http://{address}\n")));
    assert!(walkthrough.contains(&format!("LOGIN='{body}'")));
    let _ = stop.send(());
    task.await?;
    Ok(())
}
