//! The reference server (`examples/src/bin/server.rs`, axum) over real HTTP on an
//! ephemeral loopback port: the whole SPEC through the wire.
//!
//! The server's routes run in process, composed from the library's pieces
//! exactly as the example composes them (`token_refresh_test_support::reference`),
//! so a `ManualClock` drives expiry and the user directory can be edited
//! mid-test; a hyper client talks to them over TCP. `http_stacks.rs` checks
//! the built example binaries send the same bytes; `server_cli.rs` runs
//! them for their command line.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use token_refresh::ed25519_dalek::{Signature, SigningKey, Verifier as _, VerifyingKey};
use token_refresh::{
    Clock, Ed25519Signer, KeyId, MemoryLedger, MemoryUserStore, Policy, Signer as _, TokenService, User,
    clock::ManualClock,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use token_refresh::http::ServeOptions;
use token_refresh_test_support::flow::strict_policy;
use token_refresh_test_support::http_client::{Http, SESSION, TestResult};
use token_refresh_test_support::keys::{SEED, signer, signing_key};
use token_refresh_test_support::raw::{HEALTHZ, RawConnection};
use token_refresh_test_support::reference;
use token_refresh_test_support::tokens::{HEADER, bearer, mint_with, payload, refresh_claims};
use token_refresh_test_support::users::{ALICE, ALICE_LOGIN_SEED, BOB, BOB_LOGIN_SEED, demo, login_body};
use token_refresh_test_support::{NOW, clock};

/// The reference server's request deadline.
const DEADLINE: Duration = Duration::from_secs(10);

/// How long a test waits for the server to close a connection: a bound
/// that keeps a broken server from hanging the suite.
const PATIENCE: Duration = Duration::from_secs(10);

const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer error="invalid_request""#;

/// A server on 127.0.0.1:0 and what a test needs to steer it.
struct Running {
    http: Http,
    service: TokenService,
    users: Arc<MemoryUserStore>,
    clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> TestResult<Self> {
        Self::start_with(Policy::default(), signer()).await
    }

    async fn start_with(policy: Policy, signer: Ed25519Signer) -> TestResult<Self> {
        Self::start_tuned(policy, signer, DEADLINE, 10_000).await
    }

    /// Starts with a request deadline and a connection cap of its own.
    async fn start_tuned(
        policy: Policy,
        signer: Ed25519Signer,
        deadline: Duration,
        max_connections: usize,
    ) -> TestResult<Self> {
        let clock = Arc::new(clock());
        let shared_clock: Arc<dyn Clock> = clock.clone();
        let users = Arc::new(MemoryUserStore::new(demo()));
        let service = TokenService::new(policy, Arc::clone(&users), MemoryLedger::new(), signer, shared_clock);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let http = Http::new(listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(reference::serve_router(listener, service.clone(), deadline, max_connections, async {
            let _ = stopped.await;
        }));
        Ok(Self { http, service, users, clock, stop: Some(stop), task })
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
    let users = &server.users;

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
    let server = Running::start_with(strict_policy(), signer()).await?;
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
    let thumbprint = server.service.signer().keyring().keys().first().ok_or("a key")?.thumbprint();
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
    server.users.insert(
        User::new(ALICE, "alice@acme", "ROLE_USER")
            .with_login_key(SigningKey::from_bytes(&ALICE_LOGIN_SEED).verifying_key())
            .disabled(),
    );
    let disabled = http.login(&login_body(ALICE, &ALICE_LOGIN_SEED)).await?;
    assert_eq!((disabled.status, disabled.message().as_str()), (401, "user is disabled"));
    server.stop().await
}

/// A login body replayed in a loop (review H1): past the policy's login
/// rate limit the login answers 429 with the envelope and `Retry-After`,
/// and the limit is per user.
#[tokio::test]
async fn logins_past_the_rate_limit_get_429_with_retry_after() -> TestResult {
    let policy = Policy::builder().login_rate_limit(3).build()?;
    let server = Running::start_with(policy, signer()).await?;
    let http = &server.http;
    let bob = login_body(BOB, &BOB_LOGIN_SEED);
    for _ in 0..3 {
        assert_eq!(http.login(&bob).await?.status, 200);
    }
    let limited = http.login(&bob).await?;
    assert_eq!((limited.status, limited.name().as_str()), (429, "TOO_MANY_REQUESTS"));
    assert_eq!(limited.message(), "too many logins for this user; retry later");
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(limited.json()?["data"], serde_json::Value::Null);
    server.users.insert(
        User::new(ALICE, "alice@acme", "ROLE_USER")
            .with_login_key(SigningKey::from_bytes(&ALICE_LOGIN_SEED).verifying_key()),
    );
    assert_eq!(http.login(&login_body(ALICE, &ALICE_LOGIN_SEED)).await?.status, 200, "another user's allowance");
    server.clock.advance(time::Duration::seconds(20));
    assert_eq!(http.login(&bob).await?.status, 200, "20 s refill one login at 3 a minute");
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

/// At `--max-connections` with every connection busy, a further connection
/// waits unanswered until one closes, and is then served: a request in
/// progress is never cut short to make room. (Before the cap, idle
/// connections past the open-file limit made the accept loop fail and real
/// logins time out.)
#[tokio::test]
async fn connections_beyond_the_cap_wait_while_all_are_busy() -> TestResult {
    let server = Running::start_tuned(Policy::default(), signer(), DEADLINE, 2).await?;
    let address = server.http.address();
    let first = busy_login(address).await?;
    let second = busy_login(address).await?;
    let mut third = RawConnection::connect(address).await?;
    third.send(b"GET /.well-known/jwks.json HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await?;
    let waited = third.answer_within(Duration::from_millis(500)).await;
    assert!(waited.is_err(), "served beyond the cap: {waited:?}");
    drop(first);
    let answer = third.answer().await?.ok_or("closed unanswered")?;
    assert_eq!(answer.status(), Some(200), "{}", answer.head);
    drop(second);
    server.stop().await
}

/// A login whose body is still on its way: `Expect: 100-continue` makes the
/// server say when it is reading the body, so the request is in progress
/// once this returns.
async fn busy_login(address: std::net::SocketAddr) -> TestResult<RawConnection> {
    let mut connection = RawConnection::connect(address).await?;
    let answer = connection.exchange(&login_head(100)).await?.ok_or("closed")?;
    assert_eq!(answer.status(), Some(100), "{}", answer.head);
    Ok(connection)
}

/// A login's head for a body of `length` bytes, asking the server to say
/// when it reads the body (`100 Continue`).
fn login_head(length: usize) -> Vec<u8> {
    format!(
        "POST {SESSION} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\
         expect: 100-continue\r\n\r\n"
    )
    .into_bytes()
}

/// At the cap, a newcomer is admitted at once: the oldest connection that
/// is between requests is closed to make room (review finding M2: keep-alive
/// clients sending a request now and then held every connection and locked
/// newcomers out). A younger idle connection is left alone.
#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_makes_room() -> TestResult {
    let served = Served::start(ServeOptions::new().max_connections(2)).await?;
    let mut oldest = RawConnection::connect(served.address).await?;
    let mut younger = RawConnection::connect(served.address).await?;
    for connection in [&mut oldest, &mut younger] {
        let answer = connection.exchange(HEALTHZ).await?.ok_or("closed")?;
        assert_eq!((answer.status(), answer.closes()), (Some(200), false), "{}", answer.head);
    }
    let mut newcomer = RawConnection::connect(served.address).await?;
    let answer = newcomer.exchange(HEALTHZ).await?.ok_or("the newcomer was not served")?;
    assert_eq!(answer.status(), Some(200), "{}", answer.head);
    oldest.closed_within(PATIENCE).await?;
    let answer = younger.exchange(HEALTHZ).await?.ok_or("the younger idle connection was closed")?;
    assert_eq!(answer.status(), Some(200), "{}", answer.head);
    served.stop().await
}

/// After its last allowed request a connection's answer says
/// `Connection: close`, and the connection closes.
#[tokio::test]
async fn a_connection_closes_after_its_last_allowed_request() -> TestResult {
    let served = Served::start(ServeOptions::new().max_requests_per_connection(3)).await?;
    let mut connection = RawConnection::connect(served.address).await?;
    for closes in [false, false, true] {
        let answer = connection.exchange(HEALTHZ).await?.ok_or("closed early")?;
        assert_eq!((answer.status(), answer.closes()), (Some(200), closes), "{}", answer.head);
    }
    connection.closed_within(PATIENCE).await?;
    served.stop().await
}

/// A connection past its age is closed: at once when it is between
/// requests (long before the header-read timeout would close it), after
/// the answer in progress when it is busy, which says `Connection: close`.
#[tokio::test]
async fn a_connection_past_its_age_is_closed() -> TestResult {
    let options =
        ServeOptions::new().max_connection_age(Duration::from_millis(300)).header_read_timeout(Duration::from_secs(60));
    let served = Served::start(options).await?;
    let mut idle = RawConnection::connect(served.address).await?;
    let answer = idle.exchange(HEALTHZ).await?.ok_or("closed early")?;
    assert_eq!((answer.status(), answer.closes()), (Some(200), false), "{}", answer.head);
    idle.closed_within(PATIENCE).await?;

    let body = login_body(BOB, &BOB_LOGIN_SEED);
    let mut busy = RawConnection::connect(served.address).await?;
    let answer = busy.exchange(&login_head(body.len())).await?.ok_or("closed early")?;
    assert_eq!(answer.status(), Some(100), "{}", answer.head);
    // The login is in progress when the connection comes of age.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let answer = busy.exchange(body.as_bytes()).await?.ok_or("the busy connection was cut short")?;
    assert_eq!((answer.status(), answer.closes()), (Some(200), true), "{}", answer.head);
    busy.closed_within(PATIENCE).await?;
    served.stop().await
}

/// On the shutdown signal the loop stops accepting, closes idle
/// connections at once, lets a request in progress finish (its answer says
/// `Connection: close`), and returns once all are closed.
#[tokio::test]
async fn shutdown_drains_the_requests_in_progress() -> TestResult {
    let served = Served::start(ServeOptions::new()).await?;
    let mut idle = RawConnection::connect(served.address).await?;
    let answer = idle.exchange(HEALTHZ).await?.ok_or("closed early")?;
    assert_eq!(answer.status(), Some(200), "{}", answer.head);
    let body = login_body(BOB, &BOB_LOGIN_SEED);
    let mut busy = RawConnection::connect(served.address).await?;
    let answer = busy.exchange(&login_head(body.len())).await?.ok_or("closed early")?;
    assert_eq!(answer.status(), Some(100), "{}", answer.head);
    let Served { stop, task, .. } = served;
    let _ = stop.send(());
    idle.closed_within(PATIENCE).await?;
    let answer = busy.exchange(body.as_bytes()).await?.ok_or("the request in progress was cut short")?;
    assert_eq!((answer.status(), answer.closes()), (Some(200), true), "{}", answer.head);
    busy.closed_within(PATIENCE).await?;
    tokio::time::timeout(PATIENCE, task).await??;
    Ok(())
}

/// A request head over `max_header_bytes` (16 KiB by default: an 8 KiB
/// `Authorization` header fits) or with more than `max_headers` fields (64)
/// gets 431, finished or not: hyper's default buffered up to 400 KiB of an
/// unfinished head per connection (review finding M3). A limit below
/// hyper's 8 KiB read buffer holds too.
#[tokio::test]
async fn request_heads_over_the_limits_get_431() -> TestResult {
    let request = |headers: &str| format!("GET /healthz HTTP/1.1\r\nhost: test\r\n{headers}\r\n").into_bytes();
    let status = |address, request: Vec<u8>| async move {
        let mut connection = RawConnection::connect(address).await?;
        let answer = connection.exchange(&request).await?.ok_or("closed unanswered")?;
        TestResult::Ok(answer.status().ok_or("no status")?)
    };
    let served = Served::start(ServeOptions::new()).await?;
    let address = served.address;
    let authorization = format!("authorization: Bearer {}\r\n", "a".repeat(8 * 1024 - "Bearer ".len()));
    assert_eq!(status(address, request(&authorization)).await?, 200);
    assert_eq!(status(address, request(&format!("x-pad: {}\r\n", "a".repeat(20_000)))).await?, 431);
    let fields = |count: usize| (0..count).map(|i| format!("x-{i}: 1\r\n")).collect::<String>();
    // 63 fields and `host`: the most allowed.
    assert_eq!(status(address, request(&fields(63))).await?, 200);
    assert_eq!(status(address, request(&fields(64))).await?, 431);
    let unfinished = format!("GET /healthz HTTP/1.1\r\nhost: test\r\nx-pad: {}", "a".repeat(20_000)).into_bytes();
    assert_eq!(status(address, unfinished).await?, 431);
    served.stop().await?;

    let served = Served::start(ServeOptions::new().max_header_bytes(1024)).await?;
    assert_eq!(status(served.address, request(&format!("x-pad: {}\r\n", "a".repeat(500)))).await?, 200);
    assert_eq!(status(served.address, request(&format!("x-pad: {}\r\n", "a".repeat(2_000)))).await?, 431);
    served.stop().await
}

/// A client that stops sending its login body mid-way gets the 500 envelope
/// when the request deadline passes, instead of holding the task.
#[tokio::test]
async fn a_stalled_body_hits_the_request_deadline() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Running::start_tuned(Policy::default(), signer(), Duration::from_millis(200), 10_000).await?;
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
    tokio::time::timeout(Duration::from_secs(60), read).await??;
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

/// The library's serving loop cuts off a client that trickles its request
/// headers once the header-read timeout passes, instead of holding the
/// connection (and a file) for as long as the client likes.
#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let served = Served::start(ServeOptions::new().header_read_timeout(Duration::from_millis(300))).await?;
    let mut stream = tokio::net::TcpStream::connect(served.address).await?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: te").await?;
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    // The server closes the connection (perhaps after a 408): the read ends.
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    assert!(started.elapsed() < Duration::from_secs(5), "cut off after {:?}", started.elapsed());
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer));
    served.stop().await
}

/// The reference routes in the library's loop with `options` of a test's
/// own, on a fixed clock.
struct Served {
    address: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start(options: ServeOptions) -> TestResult<Self> {
        let users = MemoryUserStore::new(demo());
        let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer(), Arc::new(clock()));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = reference::router(service, DEADLINE);
        let task = tokio::spawn(token_refresh::http::serve(listener, router, options, async {
            let _ = stopped.await;
        }));
        Ok(Self { address, stop, task })
    }

    /// Graceful shutdown; the loop must end cleanly.
    async fn stop(self) -> TestResult {
        let _ = self.stop.send(());
        self.task.await?;
        Ok(())
    }
}
