//! What the reference server's routes log (the library's request scope
//! and the core's events): request ids and outcomes, never a token, a
//! token signature or a login signature.
//!
//! Its own test binary: `tracing` caches per call site whether anyone
//! listens, so a scoped subscriber only sees everything when no other test
//! in the process reaches the same call sites first.

use std::sync::Arc;
use std::time::Duration;

use token_refresh::{Clock, MemoryLedger, MemoryUserStore, TokenService};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use token_refresh_test_support::clock;
use token_refresh_test_support::http_client::{Http, SESSION, TestResult};
use token_refresh_test_support::keys::signer;
use token_refresh_test_support::reference;
use token_refresh_test_support::tokens::bearer;
use token_refresh_test_support::users::{ALICE_LOGIN_SEED, BOB, BOB_LOGIN_SEED, demo, login_body};

/// A `MakeWriter` that keeps everything written in memory.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one session's life logs at `level`: a login, a refresh, a
/// protected call, a reuse, a malformed token and a bad login signature.
/// Returns the log text and every credential that crossed the wire.
async fn logs_at(level: tracing::Level, deadline: Duration) -> TestResult<(String, Vec<String>)> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(level).with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock: Arc<dyn Clock> = Arc::new(clock());
    // Strict rotation: the reuse below is presented inside what would be the
    // default grace window.
    let policy = token_refresh_test_support::flow::strict_policy();
    let service = TokenService::new(policy, MemoryUserStore::new(demo()), MemoryLedger::new(), signer(), clock);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let listener_address = listener.local_addr()?;
    let http = &Http::new(listener_address);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(reference::serve_router(listener, service, deadline, 10_000, async {
        let _ = stopped.await;
    }));
    let body = login_body(BOB, &BOB_LOGIN_SEED);
    let login = http.login(&body).await?;
    let (access, first) = (login.data("accessToken")?, login.data("refreshToken")?);
    let second = http.refresh(Some(&bearer(&first))).await?;
    let _ = http.me(&bearer(&access)).await?;
    let _ = http.refresh(Some(&bearer(&first))).await?; // reuse: logged as a warning
    let _ = http.refresh(Some("Bearer not.a.token")).await?;
    let _ = http.login(&login_body(BOB, &ALICE_LOGIN_SEED)).await?;
    // A login whose body never comes: the deadline answers it.
    let mut stalled = tokio::net::TcpStream::connect(listener_address).await?;
    let head = format!("POST {SESSION} HTTP/1.1\r\nhost: x\r\nx-request-id: stalled-7\r\ncontent-length: 10\r\n\r\n");
    stalled.write_all(head.as_bytes()).await?;
    let mut answer = vec![0; 12];
    stalled.read_exact(&mut answer).await?;
    assert_eq!(answer, b"HTTP/1.1 500");
    let _ = stop.send(());
    task.await?;

    let logs = String::from_utf8(captured.0.lock().map_err(|_| "poisoned")?.clone())?;
    let login_json: serde_json::Value = serde_json::from_str(&body)?;
    let mut secrets = vec![access, first, second.data("accessToken")?, second.data("refreshToken")?];
    secrets.push(login_json.get("signature").and_then(serde_json::Value::as_str).ok_or("signature")?.to_owned());
    Ok((logs, secrets))
}

/// Logs at the most verbose level carry request ids and outcomes, never a
/// token, a token's signature, or a login signature. At `INFO` the access
/// log (span and `answered` line, `DEBUG`) is off and the security events
/// are still there.
// One thread: the server's tasks then log through this test's scoped
// subscriber. Both levels in one test, one after the other: each
// `set_default` rebuilds the call sites' interest for its subscriber.
#[tokio::test(flavor = "current_thread")]
async fn logs_carry_request_ids_and_no_credentials() -> TestResult {
    let (logs, secrets) = logs_at(tracing::Level::TRACE, Duration::from_secs(2)).await?;
    assert!(logs.contains("answered") && logs.contains("request{id="), "{logs}");
    assert!(logs.contains("reuse"), "the reuse decision is logged: {logs}");
    for secret in &secrets {
        // Whole tokens, and each signature segment on its own.
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        assert!(!logs.contains(secret.as_str()) && !logs.contains(signature), "a credential reached the logs");
    }
    assert!(!logs.contains("not.a.token"), "presented header values stay out of the logs");

    let (info, _) = logs_at(tracing::Level::INFO, Duration::from_secs(2)).await?;
    assert!(!info.contains("answered") && !info.contains("request{"), "the access log is DEBUG: {info}");
    assert!(info.contains("session started") && info.contains("reuse"), "security events stay at INFO: {info}");
    assert!(
        info.contains("request deadline exceeded id=\"stalled-7\""),
        "a missed deadline is a WARN with its id: {info}"
    );
    Ok(())
}
