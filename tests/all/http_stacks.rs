//! The three HTTP stacks (axum `server`, `actix`, bare `hyper` serving the
//! library's `token_refresh::http::Endpoint`) send the same bytes: one scripted exchange runs against each over real HTTP, and
//! the transcripts (status, headers, body; tokens reduced to their
//! deterministic parts) must be identical.

// Each example is its own crate with its own copy of `examples/common`; here
// all three are included side by side, so the glue is compiled three times.
#![allow(clippy::duplicate_mod)]

#[allow(dead_code)]
#[path = "../../examples/actix.rs"]
mod actix_stack;
#[allow(dead_code)]
#[path = "../../examples/server.rs"]
mod axum_stack;
// The hyper example serves the library's endpoint (feature `http`).
#[cfg(feature = "http")]
#[allow(dead_code)]
#[path = "../../examples/hyper.rs"]
mod hyper_stack;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use token_refresh::{Clock, Policy};
use tokio::sync::oneshot;

use token_refresh_test_support::NOW;
use token_refresh_test_support::http_client::{Http, Response, SESSION, TestResult};
use token_refresh_test_support::keys::{signer, signing_key};
use token_refresh_test_support::tokens::mint_with;
use token_refresh_test_support::users::{ALICE, ALICE_LOGIN_SEED, BOB, BOB_LOGIN_SEED, demo, login_body};

/// A running server of one stack.
struct Stack {
    name: &'static str,
    http: Http,
    stop: Stop,
}

enum Stop {
    Tokio(oneshot::Sender<()>, tokio::task::JoinHandle<()>),
    Actix(actix_web::dev::ServerHandle, std::thread::JoinHandle<std::io::Result<()>>),
}

impl Stack {
    async fn stop(self) -> TestResult {
        match self.stop {
            Stop::Tokio(stop, task) => {
                let _ = stop.send(());
                task.await?;
            }
            Stop::Actix(handle, thread) => {
                handle.stop(true).await;
                thread.join().map_err(|_| "actix thread panicked")??;
            }
        }
        Ok(())
    }
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(token_refresh_test_support::clock())
}

async fn start_axum() -> TestResult<Stack> {
    let app = Arc::new(axum_stack::common::App::new(
        axum_stack::common::memory_store(demo()),
        signer(),
        Policy::default(),
        clock(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = Http::new(listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(axum_stack::serve(listener, app, async {
        let _ = stopped.await;
    }));
    Ok(Stack { name: "axum", http, stop: Stop::Tokio(stop, task) })
}

#[cfg(feature = "http")]
async fn start_hyper() -> TestResult<Stack> {
    let app = Arc::new(hyper_stack::common::App::new(
        hyper_stack::common::memory_store(demo()),
        signer(),
        Policy::default(),
        clock(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = Http::new(listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(hyper_stack::serve(listener, app, async {
        let _ = stopped.await;
    }));
    Ok(Stack { name: "hyper", http, stop: Stop::Tokio(stop, task) })
}

async fn start_actix() -> TestResult<Stack> {
    let app = Arc::new(actix_stack::common::App::new(
        actix_stack::common::memory_store(demo()),
        signer(),
        Policy::default(),
        clock(),
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let http = Http::new(listener.local_addr()?);
    // actix runs its own single-threaded system; it lives on its own thread
    // and hands back the handle that stops it.
    let (handle_tx, handle_rx) = oneshot::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_stack::server(listener, app, false)?;
            let _ = handle_tx.send(server.handle());
            server.await
        })
    });
    let handle = handle_rx.await?;
    Ok(Stack { name: "actix", http, stop: Stop::Actix(handle, thread) })
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
            NOW + 60,
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

    // Concurrency holds on every stack: 24 refreshes of one token, one 200.
    let (_, shared) = http.session(BOB, &BOB_LOGIN_SEED).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (http, authorization) = (http.clone(), bearer(&shared));
        tasks.spawn(async move { http.refresh(Some(&authorization)).await.map(|r| r.status) });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        ok += usize::from(status?? == 200);
    }
    transcript.push(format!("concurrent 200s: {ok}"));
    Ok(transcript)
}

#[tokio::test]
async fn axum_actix_and_hyper_send_the_same_bytes() -> TestResult {
    let mut transcripts = Vec::new();
    let stacks = [start_axum().await?, start_actix().await?].into_iter();
    #[cfg(feature = "http")]
    let stacks = stacks.chain([start_hyper().await?]);
    for stack in stacks {
        let transcript = exchange(&stack.http).await?;
        transcripts.push((stack.name, transcript));
        stack.stop().await?;
    }
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
        ("concurrent 200s: 1", ""),
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
    Ok(())
}
