//! The three HTTP stacks send the same bytes: the built example binaries
//! (axum `server`, `actix`, and bare `hyper` serving the library's
//! `token_refresh::http::Endpoint`), started as processes with the same key
//! and users files, and the in-process reference router the other HTTP
//! tests drive (`token_refresh_test_support::reference`). One scripted
//! exchange runs against each over real HTTP; the transcripts (status,
//! headers, body; tokens reduced to their deterministic parts, times to
//! their distance from now) must be identical.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use token_refresh::{MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
use tokio::sync::oneshot;

use token_refresh_test_support::http_client::{Http, Response, SESSION, TestResult};
use token_refresh_test_support::keys::{SEED, private_pem, signer, signing_key};
use token_refresh_test_support::process::{self, Server};
use token_refresh_test_support::reference;
use token_refresh_test_support::tokens::mint_with;
use token_refresh_test_support::users::{
    ALICE, ALICE_LOGIN_SEED, BOB, BOB_LOGIN_SEED, demo, demo_users_json, login_body,
};

/// A running stack.
enum Stack {
    Process(Box<Server>),
    InProcess(Http, oneshot::Sender<()>, tokio::task::JoinHandle<()>),
}

impl Stack {
    fn http(&self) -> &Http {
        match self {
            Self::Process(server) => &server.http,
            Self::InProcess(http, ..) => http,
        }
    }

    async fn stop(self) -> TestResult {
        match self {
            Self::Process(server) => {
                server.stop().await?;
            }
            Self::InProcess(_, stop, task) => {
                let _ = stop.send(());
                task.await?;
            }
        }
        Ok(())
    }
}

/// The built binary of example `name` (Cargo builds a package's binaries
/// before its integration tests).
fn binary(name: &str) -> TestResult<&'static str> {
    match name {
        "server" => Ok(env!("CARGO_BIN_EXE_server")),
        "actix" => Ok(env!("CARGO_BIN_EXE_actix")),
        "hyper" => Ok(env!("CARGO_BIN_EXE_hyper")),
        other => Err(format!("no example {other}").into()),
    }
}

/// The example `name` on the fixture key (no `kid`) and the demo users.
async fn start_example(name: &str, dir: &std::path::Path) -> TestResult<Stack> {
    let path = |file: &str| dir.join(file).display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--signing-key", &path("key.pem"), "--users", &path("users.json")];
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    Ok(Stack::Process(Box::new(process::running(binary(name)?, &args).await?)))
}

/// The reference router in process, on the same key, users and the system
/// clock.
async fn start_reference() -> TestResult<Stack> {
    let users = MemoryUserStore::new(demo());
    let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer(), SystemClock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = Http::new(listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(reference::serve_router(listener, service, Duration::from_secs(10), 10_000, async {
        let _ = stopped.await;
    }));
    Ok(Stack::InProcess(http, stop, task))
}

/// The issue's program as a team would write it: the library's session
/// routes and JWKS handler plus a route of its own behind [`AccessToken`],
/// on plain `axum::serve` (no request scope, probes or 404 envelope), on
/// the same key and users.
async fn start_issue_program() -> TestResult<Stack> {
    use axum::{Router, routing::get};
    use token_refresh::axum::{AccessToken, jwks, session_routes};

    async fn orders(AccessToken(claims): AccessToken) -> String {
        claims.subject
    }

    let users = MemoryUserStore::new(demo());
    let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer(), SystemClock);
    let app = Router::new()
        .route("/auth/api/v1/authentication-management/session", session_routes())
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/v1/orders", get(orders))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = Http::new(listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Stack::InProcess(http, stop, task))
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// `exp` as its distance from now, rounded to 10 s: the stacks run one
/// after another on the system clock.
fn from_now(exp: i64) -> String {
    format!("now+{}", (exp - now() + 5) / 10 * 10)
}

/// A token reduced to what is the same on every stack: its JOSE header and
/// its claims without the random ids.
fn token_shape(token: &str) -> TestResult<String> {
    let mut segments = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(segments.next().ok_or("no header")?)?;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments.next().ok_or("no payload")?)?)?;
    let claims = claims.as_object_mut().ok_or("claims not an object")?;
    for id in ["jti", "acjti"] {
        if let Some(value) = claims.get_mut(id) {
            *value = serde_json::Value::String("<uuid>".into());
        }
    }
    if let Some(exp) = claims.get_mut("exp") {
        *exp = serde_json::Value::String(from_now(exp.as_i64().ok_or("exp not a number")?));
    }
    let keys: Vec<&String> = claims.keys().collect();
    Ok(format!("{} {} {keys:?}", String::from_utf8(header)?, serde_json::Value::Object(claims.clone())))
}

/// One line of a transcript: status, stable headers, and the body with the
/// tokens replaced by their shapes.
fn line(label: &str, response: &Response) -> TestResult<String> {
    let mut body = String::from_utf8(response.body.clone())?;
    for field in ["accessToken", "refreshToken"] {
        if let Ok(token) = response.data(field) {
            body = body.replace(&token, &token_shape(&token)?);
        }
    }
    Ok(format!("{label}: {} {:?} {body}", response.status, response.stable_headers()))
}

/// The scripted exchange; returns its transcript.
async fn exchange(http: &Http) -> TestResult<Vec<String>> {
    let mut transcript = Vec::new();
    let bearer = |token: &str| format!("Bearer {token}");

    let login = http.login(&login_body(BOB, &BOB_LOGIN_SEED)).await?;
    transcript.push(line("login", &login)?);
    let (access, first) = (login.data("accessToken")?, login.data("refreshToken")?);

    transcript.push(line("me", &http.me(&bearer(&access)).await?)?);
    let second = http.refresh(Some(&first)).await?;
    transcript.push(line("refresh bare", &second)?);
    transcript.push(line("me predecessor", &http.me(&bearer(&access)).await?)?);
    let third = http.refresh(Some(&bearer(&second.data("refreshToken")?))).await?;
    transcript.push(line("refresh bearer", &third)?);
    transcript.push(line("reuse", &http.refresh(Some(&bearer(&first))).await?)?);
    transcript.push(line("after reuse", &http.refresh(Some(&bearer(&third.data("refreshToken")?))).await?)?);
    transcript.push(line("me after reuse", &http.me(&bearer(&access)).await?)?);

    let (alice_access, alice_refresh) = http.session(ALICE, &ALICE_LOGIN_SEED).await?;
    transcript.push(line("no header", &http.refresh(None).await?)?);
    transcript.push(line("garbage", &http.refresh(Some("Bearer a.b")).await?)?);
    let long = format!("Bearer {}", "a".repeat(8 * 1024));
    transcript.push(line("over 8 KiB", &http.refresh(Some(&long)).await?)?);
    transcript.push(line("non-ASCII", &http.refresh_raw("Bearer é".as_bytes()).await?)?);
    transcript.push(line("wrong scheme", &http.refresh(Some("Basic dXNlcjpwdw==")).await?)?);
    transcript.push(line("access as refresh", &http.refresh(Some(&bearer(&alice_access))).await?)?);
    let stranger = mint_with(
        &signing_key(),
        r#"{"typ":"JWT","alg":"EdDSA"}"#,
        format!(
            r#"{{"sub":"nobody@mail.com","acjti":"{}","exp":{},"jti":"{}"}}"#,
            uuid::Uuid::new_v4(),
            now() + 60,
            uuid::Uuid::new_v4()
        ),
    );
    transcript.push(line("unknown user", &http.refresh(Some(&bearer(&stranger))).await?)?);
    let repeated = http
        .send(
            "PATCH",
            SESSION,
            &[("authorization", &bearer(&alice_refresh)), ("authorization", &bearer(&alice_refresh))],
            b"",
        )
        .await?;
    transcript.push(line("repeated authorization", &repeated)?);
    transcript.push(line("logout", &http.logout(&bearer(&alice_refresh)).await?)?);
    transcript.push(line("after logout", &http.refresh(Some(&bearer(&alice_refresh))).await?)?);

    transcript.push(line("login not JSON", &http.login("{").await?)?);
    transcript.push(line("login oversized", &http.login(&" ".repeat(token_refresh::MAX_LOGIN_BODY + 1)).await?)?);
    transcript.push(line("login wrong key", &http.login(&login_body(BOB, &ALICE_LOGIN_SEED)).await?)?);
    transcript.push(line("login unknown", &http.login(&login_body("nobody@mail.com", &BOB_LOGIN_SEED)).await?)?);

    transcript.push(line("put session", &http.send("PUT", SESSION, &[], b"").await?)?);
    transcript.push(line("post me", &http.send("POST", "/api/v1/me", &[], b"").await?)?);
    transcript.push(line("unknown path", &http.send("GET", "/nope", &[], b"").await?)?);
    transcript.push(line("jwks", &http.send("GET", "/.well-known/jwks.json", &[], b"").await?)?);
    let echoed = http.send("GET", "/.well-known/jwks.json", &[("x-request-id", "trace-7")], b"").await?;
    transcript.push(format!("request id: {:?}", echoed.header("x-request-id")));

    // Concurrency holds on every stack: 24 refreshes of one token under the
    // default grace window (10 s, 20 replays) are one rotation and 20
    // replays of the same pair; the 22nd presentation is reuse.
    let (_, shared) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (http, authorization) = (http.clone(), bearer(&shared));
        tasks.spawn(async move {
            let answer = http.refresh(Some(&authorization)).await?;
            let pair = (answer.status == 200).then(|| answer.body.clone());
            TestResult::Ok((answer.status, pair, answer.header("token-refresh-grace").map(str::to_owned)))
        });
    }
    let (mut ok, mut pairs, mut graces) = (0, std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    while let Some(answer) = tasks.join_next().await {
        let (status, pair, grace) = answer??;
        ok += usize::from(status == 200);
        pairs.extend(pair);
        graces.extend(grace);
    }
    transcript.push(format!("concurrent 200s: {ok}, distinct pairs: {}, grace: {graces:?}", pairs.len()));
    Ok(transcript)
}

#[tokio::test]
async fn axum_actix_and_hyper_send_the_same_bytes() -> TestResult {
    let dir = std::env::temp_dir().join(format!("token-refresh-stacks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("key.pem"), private_pem(&SEED))?;
    std::fs::write(dir.join("users.json"), demo_users_json())?;
    let mut transcripts = Vec::new();
    for name in ["server", "actix", "hyper", "reference"] {
        let stack = match name {
            "reference" => start_reference().await?,
            example => start_example(example, &dir).await?,
        };
        let transcript = exchange(stack.http()).await?;
        transcripts.push((name, transcript));
        stack.stop().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (reference_name, reference) = transcripts.first().ok_or("no stacks")?;
    // Spot-check the reference so "all equal" cannot mean "all equally wrong".
    let expect = [
        ("login: 200", ""),
        ("me predecessor: 200", "bob@mail.com"),
        ("me after reuse: 401", "access token has been revoked"),
        ("reuse: 401", "refresh token was already used"),
        ("no header: 400", "authorization header is missing"),
        ("over 8 KiB: 400", "authorization header is too long"),
        ("non-ASCII: 400", "authorization header is not visible ASCII"),
        ("wrong scheme: 401", "authorization scheme is not Bearer"),
        ("access as refresh: 422", "UNPROCESSABLE_ENTITY"),
        ("unknown user: 404", "NOT_FOUND"),
        ("repeated authorization: 400", "authorization header is repeated"),
        ("logout: 200", r#""data":null"#),
        ("login oversized: 400", "request body is malformed"),
        ("login wrong key: 422", "public key does not match the user"),
        ("login unknown: 404", "user not found"),
        ("put session: 405", r#"("allow", "POST, PATCH, DELETE")"#),
        ("unknown path: 404", "no such endpoint"),
        ("jwks: 200", r#"("cache-control", "public, max-age=300")"#),
        ("request id: Some(\"trace-7\")", ""),
        ("concurrent 200s: 21, distinct pairs: 1, grace: {\"10;replays=20\"}", ""),
    ];
    for (prefix, needle) in expect {
        let found = reference.iter().find(|l| l.starts_with(prefix));
        assert!(
            found.is_some_and(|l| l.contains(needle)),
            "{reference_name}: no '{prefix}' with '{needle}': {found:?}"
        );
    }
    for (name, transcript) in &transcripts {
        assert_eq!(transcript.len(), reference.len(), "{name}");
        for (ours, theirs) in transcript.iter().zip(reference) {
            assert_eq!(ours, theirs, "{name} differs from {reference_name}");
        }
    }

    // The issue's program answers the session path and the key set with
    // the reference's bytes; only what it does not serve differs (its
    // protected route is `/api/v1/orders`, it has no `/api/v1/me`, 404
    // envelope or request ids), and its own route takes the same tokens.
    let program = start_issue_program().await?;
    let transcript = exchange(program.http()).await?;
    let (access, _) = program.http().session(BOB, &BOB_LOGIN_SEED).await?;
    let authorization = format!("Bearer {access}");
    let orders = program.http().send("GET", "/api/v1/orders", &[("authorization", &authorization)], b"").await?;
    program.stop().await?;
    assert_eq!((orders.status, orders.body.as_slice()), (200, BOB.as_bytes()));
    let not_served = ["me", "me predecessor", "me after reuse", "post me", "unknown path", "request id"];
    let served = |line: &&String| !not_served.contains(&line.split(':').next().unwrap_or_default());
    let theirs: Vec<_> = reference.iter().filter(served).collect();
    let ours: Vec<_> = transcript.iter().filter(served).collect();
    assert_eq!(ours.len(), theirs.len(), "the issue's program");
    assert!(ours.len() >= 20, "the comparison covers the session path: {ours:?}");
    for (ours, theirs) in ours.iter().zip(&theirs) {
        assert_eq!(ours, theirs, "the issue's program differs from {reference_name}");
    }
    Ok(())
}
