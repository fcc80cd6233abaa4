//! The session against a fake endpoint with the reference server's rotation
//! rules (tests/fake): single flight, the generation check, 401 handling,
//! transient versus terminal failures, lost answers, and the monotonic
//! schedule. Time is tokio's paused clock where the test is about timing.

mod fake;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fake::{Fake, Fault};
use token_refresh_client::{
    AccessToken, Config, Credentials, EndReason, Error, MemoryTokenStore, Session, SessionState, TokenStore,
    TransientKind,
};

fn credentials() -> Credentials {
    Credentials::sign("carol@example.com", &ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
}

#[allow(clippy::panic)] // test support
async fn login(fake: &Fake, config: Config) -> (Session, MemoryTokenStore) {
    let store = MemoryTokenStore::new();
    match Session::login(fake.clone(), store.clone(), &credentials(), config).await {
        Ok(session) => (session, store),
        Err(error) => panic!("login: {error}"),
    }
}

/// Past the refresh instant of a 300 s token whatever the jitter (margin
/// 30 s plus up to 7.5 s).
const DUE: Duration = Duration::from_secs(270);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_share_one_refresh() {
    let fake = Fake::new(1);
    fake.0.delay_ms.store(50, Ordering::SeqCst);
    let (session, _) = login(&fake, Config::default()).await;
    // A 1 s token is due after half its life.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.access_token().await.map(|token| token.as_str().to_owned()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "a1.2");
    }
    assert_eq!(fake.refreshes(), 1, "one refresh for 32 callers");
    assert_eq!(fake.count(|s| &s.reuse_detected), 0);
}

#[tokio::test(start_paused = true)]
async fn fresh_tokens_need_no_refresh_and_a_settled_round_is_not_repeated() {
    let fake = Fake::new(300);
    let (session, store) = login(&fake, Config::default()).await;
    assert_eq!(session.state(), SessionState::Fresh { generation: 1 });
    for _ in 0..100 {
        assert_eq!(session.access_token().await.unwrap().as_str(), "a1.1");
    }
    assert_eq!(fake.refreshes(), 0);
    tokio::time::advance(DUE).await;
    let first = session.access_token().await.unwrap();
    let second = session.access_token().await.unwrap();
    assert_eq!((first.as_str(), second.as_str(), first.generation()), ("a1.2", "a1.2", 2));
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(store.load().await.unwrap().unwrap().generation(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_only_the_current_token() {
    let fake = Fake::new(300);
    let (session, _) = login(&fake, Config::default()).await;
    let old = session.access_token().await.unwrap();
    // 32 calls report the same rejected token: one refresh.
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let (session, old) = (session.clone(), old.clone());
            tokio::spawn(async move { session.on_unauthorized(&old).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().as_str(), "a1.2");
    }
    assert_eq!(fake.refreshes(), 1);
    // A stale token (the session has moved on) refreshes nothing.
    assert_eq!(session.on_unauthorized(&old).await.unwrap().as_str(), "a1.2");
    assert_eq!(fake.refreshes(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_retried_with_the_same_token_and_the_grace_window_returns_the_pair() {
    for fault in [Fault::LoseAnswer, Fault::Hang] {
        let fake = Fake::new(300);
        let (session, _) = login(&fake, Config::default().request_timeout(Duration::from_secs(2))).await;
        tokio::time::advance(DUE).await;
        fake.fault(fault.clone());
        assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2", "{fault:?}");
        assert_eq!(fake.refreshes(), 2, "{fault:?}: the lost request and its replay");
        assert_eq!(fake.rotations(), 1, "{fault:?}");
        assert_eq!(fake.count(|s| &s.grace_replays), 1, "{fault:?}");
        assert_eq!(fake.count(|s| &s.reuse_detected), 0, "{fault:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_servers_stated_grace_window_overrides_the_configured_one() {
    // Configured: none (margin 30 s plus jitter). Stated: 60 s, so the
    // margin is at least 60 s and a 300 s token is due by 240 s.
    let fake = Fake::new(300).stating_grace("60;replays=20");
    let (session, store) = login(&fake, Config::default()).await;
    assert_eq!(session.grace_window(), Duration::from_secs(60));
    tokio::time::advance(Duration::from_secs(241)).await;
    assert_eq!(session.access_token().await.unwrap().generation(), 2);
    assert_eq!(fake.refreshes(), 1);
    // Stored with the pair: a process that adopts it keeps the promise.
    let resumed = Session::resume(fake.clone(), store, Config::default()).await.unwrap().unwrap();
    assert_eq!(resumed.grace_window(), Duration::from_secs(60));

    // Without the header the configured window stays.
    let plain = Fake::new(300);
    let (session, _) = login(&plain, Config::default().grace_window(Duration::from_secs(7))).await;
    assert_eq!(session.grace_window(), Duration::from_secs(7));
    tokio::time::advance(Duration::from_secs(241)).await;
    session.access_token().await.unwrap();
    assert_eq!(plain.refreshes(), 0, "a 30 s margin: not due at 241 s");

    // A strict server's `0` overrides a configured window.
    let strict = Fake::new(300).strict().stating_grace("0");
    let (session, _) = login(&strict, Config::default().grace_window(Duration::from_secs(10))).await;
    assert_eq!(session.grace_window(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn lost_answers_are_retried_no_more_often_than_the_server_tolerates_replays() {
    let fake = Fake::new(300).stating_grace("10;replays=1");
    let (session, _) = login(&fake, Config::default()).await;
    tokio::time::advance(DUE).await;
    fake.fault(Fault::LoseAnswer);
    fake.fault(Fault::LoseAnswer);
    fake.fault(Fault::LoseAnswer);
    let error = session.access_token().await;
    // The old token is still valid: the caller keeps it, the session cools down.
    assert_eq!(error.unwrap().generation(), 1);
    assert_eq!(fake.refreshes(), 2, "the request and one replay, not the configured four attempts");
    assert!(matches!(session.state(), SessionState::CoolingDown { .. }));
    assert_eq!(fake.count(|s| &s.reuse_detected), 0);
}

#[tokio::test(start_paused = true)]
async fn without_a_grace_window_a_lost_answer_ends_the_session_with_the_reason() {
    let fake = Fake::new(300).strict();
    let (session, store) = login(&fake, Config::default()).await;
    tokio::time::advance(DUE).await;
    fake.fault(Fault::LoseAnswer);
    let error = session.access_token().await.unwrap_err();
    assert!(matches!(error, Error::Ended(EndReason::Reused)), "{error:?}");
    assert!(error.ends_session() && !error.is_transient());
    assert_eq!(session.state(), SessionState::Ended(EndReason::Reused));
    assert!(store.load().await.unwrap().is_none(), "an ended session leaves the store");
    // No more requests once ended.
    let sent = fake.refreshes();
    assert!(session.access_token().await.unwrap_err().ends_session());
    assert_eq!(fake.refreshes(), sent);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_and_keep_the_session() {
    let fake = Fake::new(300);
    let (session, _) = login(&fake, Config::default()).await;
    tokio::time::advance(DUE).await;
    fake.fault(Fault::NotSent);
    fake.fault(Fault::Status(503, Some("1")));
    fake.fault(Fault::Status(502, None));
    assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2");
    assert_eq!(fake.refreshes(), 4);
    assert_eq!(fake.rotations(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_round_cools_down_instead_of_letting_every_caller_retry() {
    let fake = Fake::new(300);
    let (session, _) = login(&fake, Config::default()).await;
    tokio::time::advance(DUE).await;
    for _ in 0..4 {
        fake.fault(Fault::Status(503, None));
    }
    // The round fails, but the token has some 30 s left: callers keep it.
    let token = session.access_token().await.unwrap();
    assert_eq!(token.as_str(), "a1.1");
    assert_eq!(fake.refreshes(), 4);
    assert!(matches!(session.state(), SessionState::CoolingDown { .. }));
    // Past the token's end, during the cooldown: the error at once, no request.
    for _ in 0..4 {
        fake.fault(Fault::Status(503, Some("60")));
    }
    session.access_token().await.unwrap(); // cooling down, the token still valid
    tokio::time::advance(Duration::from_secs(31)).await;
    let error = session.access_token().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    // The 60 s Retry-After does not fit the round budget: one attempt, then
    // the session waits the server's minute.
    assert_eq!(fake.refreshes(), 5);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    tokio::time::advance(Duration::from_secs(50)).await;
    let error = session.access_token().await.unwrap_err();
    assert!(matches!(error, Error::Transient(ref t) if matches!(t.kind(), TransientKind::CoolingDown)), "{error:?}");
    assert_eq!(fake.refreshes(), 5, "no request while cooling down");
    // The server is back after the minute.
    fake.clear_faults();
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2");
    assert_eq!(session.state(), SessionState::Fresh { generation: 2 });
}

#[tokio::test(start_paused = true)]
async fn waiting_callers_share_a_failed_round_instead_of_retrying_in_turn() {
    let fake = Fake::new(300);
    fake.0.delay_ms.store(100, Ordering::SeqCst);
    let (session, _) = login(&fake, Config::default().retries(1, Duration::from_secs(20))).await;
    tokio::time::advance(Duration::from_secs(301)).await; // expired: callers must wait
    fake.fault(Fault::Status(503, None));
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move { session.access_token().await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap_err().is_transient());
    }
    assert_eq!(fake.refreshes(), 1, "one failed request for 32 callers");
}

#[tokio::test(start_paused = true)]
async fn terminal_answers_end_the_session() {
    let fake = Fake::new(300);
    let (session, _) = login(&fake, Config::default()).await;
    let mut watch = session.watch();
    fake.revoke();
    tokio::time::advance(DUE).await;
    assert!(matches!(session.access_token().await, Err(Error::Ended(EndReason::Revoked))));
    watch.changed().await.unwrap();
    assert_eq!(*watch.borrow_and_update(), SessionState::Ended(EndReason::Revoked));

    let fake = Fake::new(300);
    let (session, _) = login(&fake, Config::default()).await;
    fake.delete_user();
    let token = session.access_token().await.unwrap();
    assert!(matches!(session.on_unauthorized(&token).await, Err(Error::Ended(EndReason::UserGone))));
}

#[tokio::test(start_paused = true)]
async fn a_refused_login_says_so() {
    #[derive(Clone)]
    struct Refusing;
    impl token_refresh_client::Transport for Refusing {
        async fn send(
            &self,
            _: token_refresh_client::Request,
        ) -> Result<token_refresh_client::Response, token_refresh_client::TransportError> {
            Ok(token_refresh_client::Response::new(
                429,
                r#"{"status":{"code":429,"name":"TOO_MANY_REQUESTS","message":"too many logins for this user; retry later"},"data":null}"#,
            )
            .with_header("Retry-After", "60"))
        }
    }
    let error = Session::login(Refusing, MemoryTokenStore::new(), &credentials(), Config::default()).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn logout_revokes_and_forgets() {
    let fake = Fake::new(300);
    let (session, store) = login(&fake, Config::default()).await;
    let other = Session::resume(fake.clone(), store.clone(), Config::default()).await.unwrap().unwrap();
    session.logout().await.unwrap();
    assert_eq!(fake.count(|s| &s.logouts), 1);
    assert!(store.load().await.unwrap().is_none());
    assert!(matches!(session.access_token().await, Err(Error::Ended(EndReason::LoggedOut))));
    session.logout().await.unwrap();
    // A session sharing the store learns it at its next round, without
    // presenting the revoked token.
    tokio::time::advance(DUE).await;
    assert!(matches!(other.access_token().await, Err(Error::Ended(EndReason::LoggedOut))));
    assert_eq!(fake.refreshes(), 0);
}

/// The schedule follows `expirationTime` and the monotonic clock only: the
/// access tokens here are JWTs whose `exp` says "expired in 1970" or "valid
/// until 2286", as a client clock an hour (or decades) off would read them,
/// and the refreshes happen at the same instants either way.
#[tokio::test(start_paused = true)]
async fn the_wall_clock_and_the_jwt_exp_do_not_matter() {
    for exp in [1, 9_999_999_999] {
        let fake = Fake::new(300);
        fake.0.exp_claim.store(exp, Ordering::SeqCst);
        let (session, _) = login(&fake, Config::default()).await;
        tokio::time::advance(Duration::from_secs(250)).await;
        session.access_token().await.unwrap();
        assert_eq!(fake.refreshes(), 0, "exp {exp}: still fresh by the monotonic clock");
        tokio::time::advance(Duration::from_secs(20)).await;
        let token = session.access_token().await.unwrap();
        assert_eq!((fake.refreshes(), token.generation()), (1, 2), "exp {exp}");
    }
}

/// A wall clock `.0` seconds off the system's.
#[derive(Debug)]
struct Skewed(i64);

impl token_refresh_client::WallClock for Skewed {
    fn now(&self) -> std::time::SystemTime {
        let skew = Duration::from_secs(self.0.unsigned_abs());
        let now = std::time::SystemTime::now();
        if self.0 >= 0 { now + skew } else { now - skew }
    }
}

/// Sessions whose wall clocks are an hour apart share one store: each
/// adoption of the other's pair finds its age impossible and counts it as
/// due, which costs one refresh under the store's lock, never a reuse.
/// (Processes on one machine read one clock; this is the worst case, a
/// store shared across machines or a clock stepped between write and read.)
#[tokio::test(start_paused = true)]
async fn clocks_an_hour_apart_cost_a_refresh_never_the_session() {
    let fake = Fake::new(300);
    let (ahead, store) = login(&fake, Config::default().wall_clock(Skewed(3600))).await;
    let behind = Session::resume(fake.clone(), store.clone(), Config::default().wall_clock(Skewed(-3600)))
        .await
        .unwrap()
        .unwrap();
    // `behind` reads a pair stamped two hours in its future: due at once.
    assert_eq!(behind.access_token().await.unwrap().generation(), 2);
    assert_eq!(fake.refreshes(), 1);
    // `ahead` keeps its own schedule until due, then adopts generation 2,
    // finds it stamped two hours ago, and refreshes it under the lock.
    assert_eq!(ahead.access_token().await.unwrap().generation(), 1);
    tokio::time::advance(DUE).await;
    assert_eq!(ahead.access_token().await.unwrap().generation(), 3);
    // `behind` is due too: it adopts generation 3, stamped two hours in its
    // future, and refreshes it. One refresh per adoption, serialised.
    assert_eq!(behind.access_token().await.unwrap().generation(), 4);
    assert_eq!(ahead.access_token().await.unwrap().generation(), 3, "not due again by its monotonic clock");
    assert_eq!((fake.refreshes(), fake.rotations(), fake.count(|s| &s.reuse_detected)), (3, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_refresh() {
    let fake = Fake::new(300);
    fake.0.delay_ms.store(1000, Ordering::SeqCst);
    let (session, _) = login(&fake, Config::default()).await;
    tokio::time::advance(DUE).await;
    let impatient = tokio::time::timeout(Duration::from_millis(10), session.access_token()).await;
    assert!(impatient.is_err());
    assert_eq!(session.access_token().await.unwrap().as_str(), "a1.2");
    assert_eq!((fake.refreshes(), fake.rotations()), (1, 1));
}

#[test]
fn sessions_and_their_futures_are_send() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync_clone::<Session>();
    send_sync_clone::<AccessToken>();
    let fake = Fake::new(300);
    let store = MemoryTokenStore::new();
    send(&Session::login(fake.clone(), store.clone(), &credentials(), Config::default()));
    send(&Session::resume(fake.clone(), store.clone(), Config::default()));
    send(&Session::resume_or_login(fake, store, &credentials(), Config::default()));
    fn session_futures(session: &Session, token: &AccessToken) {
        send(&session.access_token());
        send(&session.on_unauthorized(token));
        send(&session.logout());
    }
    let _ = session_futures;
}
