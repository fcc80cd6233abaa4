//! The client through `HyperTransport` against the reference server's
//! routes, in process on loopback: the wire format, the server's real
//! rotation and reuse detection, its 429, and logout.
//!
//! Not packaged (it needs the workspace's server crate and fixtures, which
//! are dev-dependencies by path only).
#![cfg(feature = "hyper")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use token_refresh::Event;
use token_refresh::{MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
use token_refresh_client::{Config, Credentials, Error, HyperTransport, MemoryTokenStore, Session};
use token_refresh_test_support::http_client::Http;
use token_refresh_test_support::keys::signer;
use token_refresh_test_support::reference;
use token_refresh_test_support::users::{BOB, BOB_LOGIN_SEED, demo};
use tokio::sync::oneshot;

#[derive(Default)]
struct Counts {
    rotations: AtomicUsize,
    grace_replays: AtomicUsize,
    reuse: AtomicUsize,
}

struct Server {
    http: Http,
    base: String,
    counts: Arc<Counts>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

#[allow(clippy::unwrap_used)] // a fixture: a failure here is a failed test
async fn start(policy: token_refresh::policy::PolicyBuilder) -> Server {
    let counts = Arc::new(Counts::default());
    let sink = Arc::clone(&counts);
    let policy = policy.build().unwrap();
    let service = TokenService::new(policy, MemoryUserStore::new(demo()), MemoryLedger::new(), signer(), SystemClock)
        .with_event_sink(move |event: &Event| match event {
            Event::Rotated { .. } => _ = sink.rotations.fetch_add(1, Ordering::SeqCst),
            Event::GraceReplay { .. } => _ = sink.grace_replays.fetch_add(1, Ordering::SeqCst),
            Event::ReuseDetected { .. } => _ = sink.reuse.fetch_add(1, Ordering::SeqCst),
            _ => {}
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(reference::serve_router(listener, service, Duration::from_secs(10), 10_000, async {
        let _ = stopped.await;
    }));
    Server { http: Http::new(address), base: format!("http://{address}"), counts, stop, task }
}

impl Server {
    #[allow(clippy::unwrap_used)] // a fixture: a failure here is a failed test
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

fn bob() -> Credentials {
    Credentials::sign(BOB, &ed25519_dalek::SigningKey::from_bytes(&BOB_LOGIN_SEED))
}

/// 32 tasks calling a protected resource for about 3 s with a 2 s access
/// lifetime: every call succeeds, the server detects no reuse, and the
/// session refreshes once per half lifetime, not once per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_keep_one_session_alive() {
    let server =
        start(Policy::builder().access_lifetime(time::Duration::seconds(2)).grace_window(time::Duration::seconds(5)))
            .await;
    let transport = HyperTransport::new(&server.base).unwrap();
    let config = Config::default().grace_window(Duration::from_secs(5));
    let session = Session::login(transport, MemoryTokenStore::new(), &bob(), config).await.unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (session, http, failed) = (session.clone(), server.http.clone(), Arc::clone(&failed));
            tokio::spawn(async move {
                for _ in 0..30 {
                    let token = session.access_token().await.unwrap();
                    let mut answer = http.me(&token.bearer()).await.unwrap();
                    if answer.status == 401 {
                        let token = session.on_unauthorized(&token).await.unwrap();
                        answer = http.me(&token.bearer()).await.unwrap();
                    }
                    if answer.status != 200 {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert_eq!(server.counts.reuse.load(Ordering::SeqCst), 0);
    let rotations = server.counts.rotations.load(Ordering::SeqCst);
    assert!((1..=6).contains(&rotations), "{rotations} rotations in about 3 s of a 2 s lifetime");
    session.logout().await.unwrap();
    server.stop().await;
}

/// The reference server states its grace window on every 200; the session
/// takes it over its configured assumption.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_learns_the_servers_grace_window() {
    let server = start(Policy::builder()).await;
    let transport = HyperTransport::new(&server.base).unwrap();
    let store = MemoryTokenStore::new();
    let session = Session::login(transport.clone(), store.clone(), &bob(), Config::default()).await.unwrap();
    assert_eq!(session.grace_window(), Duration::from_secs(10), "the server's default");
    let resumed = Session::resume(transport, store, Config::default()).await.unwrap().unwrap();
    assert_eq!(resumed.grace_window(), Duration::from_secs(10), "stored with the pair");
    server.stop().await;

    let strict = start(Policy::builder().grace_window(time::Duration::ZERO)).await;
    let transport = HyperTransport::new(&strict.base).unwrap();
    let config = Config::default().grace_window(Duration::from_secs(10));
    let session = Session::login(transport, MemoryTokenStore::new(), &bob(), config).await.unwrap();
    assert_eq!(session.grace_window(), Duration::ZERO, "strict rotation, stated");
    strict.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_session_on_the_server() {
    let server = start(Policy::builder()).await;
    let transport = HyperTransport::new(&server.base).unwrap();
    let session = Session::login(transport, MemoryTokenStore::new(), &bob(), Config::default()).await.unwrap();
    let token = session.access_token().await.unwrap();
    assert_eq!(server.http.me(&token.bearer()).await.unwrap().status, 200);
    session.logout().await.unwrap();
    assert_eq!(server.http.me(&token.bearer()).await.unwrap().status, 401);
    assert!(session.access_token().await.unwrap_err().ends_session());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_rate_limit_is_transient_with_its_retry_after() {
    let server = start(Policy::builder().login_rate_limit(1)).await;
    let transport = HyperTransport::new(&server.base).unwrap();
    let wrong_key = Credentials::sign(BOB, &ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
    let error =
        Session::login(transport.clone(), MemoryTokenStore::new(), &wrong_key, Config::default()).await.unwrap_err();
    assert!(matches!(error, Error::LoginRefused(ref refusal) if refusal.status == 422), "{error:?}");
    let store = MemoryTokenStore::new();
    Session::login(transport.clone(), store.clone(), &bob(), Config::default()).await.unwrap();
    let error = Session::login(transport, store, &bob(), Config::default()).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_away_is_transient_and_fast() {
    // Nothing listens on this port once the listener is dropped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = std::time::Instant::now();
    let error = Session::login(HyperTransport::new(&base).unwrap(), MemoryTokenStore::new(), &bob(), Config::default())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
