//! SPEC §5: single use under concurrency, reuse, grace window, lifetimes,
//! access revocation, logout, and the event hook.

// A panic in a test is a failed assertion: the no-panic lints guard src/ only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};

use token_refresh::error::Unauthorized::{Reused, SessionRevoked};
use token_refresh::error::Unprocessable::Claims;
use token_refresh::{AccessVerifier, Event, Policy, Signer as _};
use token_refresh_test_support::NOW;
use token_refresh_test_support::flow::Fixture;
use token_refresh_test_support::outcome::{Refusal, assert_refused};
use token_refresh_test_support::tokens::payload;
use token_refresh_test_support::users::BOB;

fn grace_policy(window: i64, replays: u32) -> Policy {
    Policy::builder().grace_window(time::Duration::seconds(window)).grace_max_replays(replays).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_64_concurrent_refreshes_exactly_one_succeeds() {
    let fx = Arc::new(Fixture::strict());
    let token = Arc::new(fx.login(BOB).await.refresh_token);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (fx, token) = (Arc::clone(&fx), Arc::clone(&token));
            tokio::spawn(async move { fx.refresh(&token).await })
        })
        .collect();
    let (mut ok, mut reused, mut revoked) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap().map_err(|e| Refusal::of(&e)) {
            Ok(_) => ok += 1,
            Err(Refusal::Unauthorized(Reused)) => reused += 1,
            Err(Refusal::Unauthorized(SessionRevoked)) => revoked += 1,
            Err(other) => panic!("a loser of the race is refused as reuse or revoked, got {other:?}"),
        }
    }
    // One winner; the first loser is reuse (it revokes the session), every
    // later one meets a revoked session.
    assert_eq!((ok, reused, revoked), (1, 1, 62));
    // Reuse revoked the family, including the one winner's successor.
    assert_eq!(fx.store.ledger().stats().revoked_sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_grace_window_concurrent_retries_all_get_the_identical_pair() {
    let fx = Arc::new(Fixture::with_policy(grace_policy(10, 64)));
    let token = Arc::new(fx.login(BOB).await.refresh_token);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (fx, token) = (Arc::clone(&fx), Arc::clone(&token));
            tokio::spawn(async move { fx.refresh(&token).await })
        })
        .collect();
    let mut pairs = Vec::new();
    for task in tasks {
        pairs.push(task.await.unwrap().unwrap());
    }
    assert!(pairs.windows(2).all(|w| w[0] == w[1]), "every retry got the same bytes");
    assert_eq!(fx.store.ledger().stats().revoked_sessions, 0);
}

#[tokio::test]
async fn grace_window_is_bounded_three_ways() {
    // Replay limit.
    let fx = Fixture::with_policy(grace_policy(10, 2));
    let first = fx.login(BOB).await.refresh_token;
    let second = fx.refresh(&first).await.unwrap();
    assert_eq!(fx.refresh(&first).await.unwrap(), second);
    assert_eq!(fx.refresh(&first).await.unwrap(), second);
    assert_eq!(
        fx.refresh(&first).await.unwrap_err().public_message(),
        "refresh token was already used; the session is revoked"
    );

    // Timed from the rotation.
    let fx = Fixture::with_policy(grace_policy(10, 2));
    let first = fx.login(BOB).await.refresh_token;
    let second = fx.refresh(&first).await.unwrap();
    fx.advance(10);
    assert_eq!(fx.refresh(&first).await.unwrap(), second, "inside the window (inclusive)");
    fx.advance(1);
    assert_refused(fx.refresh(&first).await, Reused);
    assert_eq!(fx.store.ledger().stats().revoked_sessions, 1);

    // Only the immediate predecessor.
    let fx = Fixture::with_policy(grace_policy(10, 2));
    let first = fx.login(BOB).await.refresh_token;
    let second = fx.refresh(&first).await.unwrap().refresh_token;
    let _third = fx.refresh(&second).await.unwrap();
    assert_refused(fx.refresh(&first).await, Reused);
    assert_eq!(fx.store.ledger().stats().revoked_sessions, 1);
}

#[tokio::test]
async fn without_a_grace_window_an_immediate_retry_is_reuse() {
    let fx = Fixture::strict();
    let first = fx.login(BOB).await.refresh_token;
    fx.refresh(&first).await.unwrap();
    assert_refused(fx.refresh(&first).await, Reused);
}

#[tokio::test]
async fn idle_lifetime_is_renewed_by_each_rotation() {
    let fx = Fixture::new();
    let mut token = fx.login(BOB).await.refresh_token;
    // Five days of refreshing every 20 hours: each rotation renews the idle
    // lifetime (86 400 s), though the first token would have died on day 1.
    for _ in 0..6 {
        fx.advance(20 * 3600);
        token = fx.refresh(&token).await.unwrap().refresh_token;
    }
    fx.advance(86_400);
    assert_eq!(fx.refresh(&token).await.unwrap_err().public_message(), "token has expired");
}

#[tokio::test]
async fn a_consumed_token_is_remembered_until_its_own_expiry() {
    let fx = Fixture::new();
    let first = fx.login(BOB).await.refresh_token;
    let mut current = fx.refresh(&first).await.unwrap().refresh_token;
    // Much later (but before the first token's exp), after many writes that
    // drive the ledger's incremental expiry, reuse is still recognised.
    for _ in 0..50 {
        fx.advance(1000);
        current = fx.refresh(&current).await.unwrap().refresh_token;
        fx.login("alice@mail.com").await;
    }
    assert_eq!(
        fx.refresh(&first).await.unwrap_err().public_message(),
        "refresh token was already used; the session is revoked"
    );
}

#[tokio::test]
async fn logout_revokes_every_access_token_of_the_session_until_its_exp() {
    let fx = Fixture::new();
    let first = fx.login(BOB).await;
    let check = |token: String| {
        let header = format!("Bearer {token}");
        let fx = &fx;
        async move { fx.service.verify_access_unrevoked(Some(header.as_bytes())).await }
    };
    let claims = check(first.access_token.clone()).await.unwrap();
    assert_eq!(
        (claims.subject.as_str(), claims.account.as_str(), claims.role.as_str()),
        (BOB, "bob@admin", "ROLE_ADMIN")
    );

    // A rotation supersedes the access token; the default policy keeps it
    // valid until its own exp (other tabs' in-flight calls).
    let second = fx.refresh(&first.refresh_token).await.unwrap();
    assert!(check(first.access_token.clone()).await.is_ok());
    assert!(check(second.access_token.clone()).await.is_ok());

    // Logout revokes the session and every access token of it; idempotent.
    let logout = || fx.service.logout(Some(second.refresh_token.as_bytes()));
    logout().await.unwrap();
    logout().await.unwrap();
    for token in [&first.access_token, &second.access_token] {
        assert_eq!(check(token.clone()).await.unwrap_err().public_message(), "access token has been revoked");
    }
    // Stateless verification still accepts it until exp (documented).
    assert!(fx.service.verify_access(Some(first.access_token.as_bytes())).is_ok());
    assert_eq!(fx.refresh(&second.refresh_token).await.unwrap_err().public_message(), "session has been revoked");

    // After its exp the access token is simply expired.
    fx.advance(300);
    assert_eq!(check(second.access_token).await.unwrap_err().public_message(), "token has expired");
}

#[tokio::test]
async fn a_strict_policy_refuses_superseded_access_tokens() {
    let fx = Fixture::with_policy(Policy::builder().revoke_superseded_access(true).build().unwrap());
    let check = |token: &str| {
        let header = format!("Bearer {token}");
        let fx = &fx;
        async move { fx.service.verify_access_unrevoked(Some(header.as_bytes())).await }
    };
    let first = fx.login(BOB).await;
    let second = fx.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(check(&first.access_token).await.unwrap_err().public_message(), "access token has been revoked");
    assert!(check(&second.access_token).await.is_ok());
    // A grace replay hands out the current pair, whose access token passes.
    let policy = Policy::builder().revoke_superseded_access(true).grace_window(time::Duration::seconds(5)).build();
    let fx = Fixture::with_policy(policy.unwrap());
    let first = fx.login(BOB).await;
    let second = fx.refresh(&first.refresh_token).await.unwrap();
    let replayed = fx.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(replayed, second);
}

#[tokio::test]
async fn the_login_past_the_cap_ends_the_oldest_session_with_an_event() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let policy = Policy::builder().max_sessions_per_user(2).build().unwrap();
    let fx =
        Fixture::with_policy(policy).with_event_sink(move |event: &Event| sink.lock().unwrap().push(event.clone()));
    let oldest = fx.login(BOB).await;
    fx.advance(1);
    let middle = fx.login(BOB).await;
    fx.advance(1);
    let newest = fx.login(BOB).await;
    // The evicted session's record went with it (a login flood leaves no
    // record per login): its token is unknown, a 401 all the same.
    assert_eq!(fx.refresh(&oldest.refresh_token).await.unwrap_err().public_message(), "refresh token is not valid");
    assert!(fx.refresh(&middle.refresh_token).await.is_ok());
    assert!(fx.refresh(&newest.refresh_token).await.is_ok());
    let events = seen.lock().unwrap().clone();
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::SessionStarted { session } => Some(*session),
            _ => None,
        })
        .collect();
    assert!(events.contains(&Event::SessionEvicted { session: started[0] }), "{events:?}");

    // The library lists the user's sessions and revokes one by id.
    let listed = fx.service.sessions(BOB).await.unwrap();
    assert_eq!(listed.iter().map(|info| info.session).collect::<Vec<_>>(), started[1..]);
    assert!(listed.iter().all(|info| info.generation == 1));
    let revoked = fx.service.revoke_session(BOB, started[1]).await.unwrap();
    assert!(revoked);
    assert!(!fx.service.revoke_session(BOB, started[1]).await.unwrap());
    assert!(!fx.service.revoke_session("alice@mail.com", started[2]).await.unwrap());
    assert_eq!(fx.service.sessions(BOB).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_101st_login_of_one_user_ends_the_oldest_session_by_default() {
    let fx = Fixture::new();
    let mut pairs = Vec::new();
    for _ in 0..101 {
        pairs.push(fx.login(BOB).await);
        fx.advance(1);
    }
    assert_eq!(fx.refresh(&pairs[0].refresh_token).await.unwrap_err().public_message(), "refresh token is not valid");
    assert!(fx.refresh(&pairs[1].refresh_token).await.is_ok());
    assert_eq!(fx.service.sessions(BOB).await.unwrap().len(), 100);
}

/// Login times have one-second resolution: 101 logins inside one second
/// must still end the first login's session, not a random one of them.
#[tokio::test]
async fn the_101st_login_within_one_second_ends_the_first() {
    let fx = Fixture::new();
    let mut pairs = Vec::new();
    for _ in 0..101 {
        pairs.push(fx.login(BOB).await);
    }
    assert_eq!(fx.refresh(&pairs[0].refresh_token).await.unwrap_err().public_message(), "refresh token is not valid");
    for pair in &pairs[1..] {
        assert!(fx.refresh(&pair.refresh_token).await.is_ok());
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let fx = Fixture::new();
    let pair = fx.login(BOB).await;
    let error = fx.service.verify_access(Some(pair.refresh_token.as_bytes()));
    assert_refused(error, Claims);
}

#[tokio::test]
async fn revoke_user_ends_every_session_of_that_user_only() {
    let fx = Fixture::new();
    let a = fx.login(BOB).await;
    let b = fx.login(BOB).await;
    let other = fx.login("alice@mail.com").await;
    let revoked = token_refresh::ledger::SessionLedger::revoke_user(fx.store.ledger(), BOB, NOW).await.unwrap();
    assert_eq!(revoked, 2);
    for pair in [a, b] {
        assert_eq!(fx.refresh(&pair.refresh_token).await.unwrap_err().public_message(), "session has been revoked");
    }
    assert!(fx.refresh(&other.refresh_token).await.is_ok());
}

#[tokio::test]
async fn events_report_rotation_grace_and_reuse_without_tokens() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let policy = Policy::builder().grace_window(time::Duration::seconds(5)).build().unwrap();
    let fx =
        Fixture::with_policy(policy).with_event_sink(move |event: &Event| sink.lock().unwrap().push(event.clone()));
    let first = fx.login(BOB).await;
    let second = fx.refresh(&first.refresh_token).await.unwrap();
    fx.refresh(&first.refresh_token).await.unwrap();
    fx.refresh(&second.refresh_token).await.unwrap();
    fx.refresh(&first.refresh_token).await.unwrap_err();

    let events = seen.lock().unwrap().clone();
    let Event::SessionStarted { session } = events[0] else { panic!("{events:?}") };
    assert_eq!(
        events[1..],
        [
            Event::Rotated { session, generation: 1 },
            Event::GraceReplay { session, generation: 1, replay: 1 },
            Event::Rotated { session, generation: 2 },
            Event::ReuseDetected { session, presented_generation: None, current_generation: 2 },
        ]
    );
    let shown = format!("{events:?} {}", events.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "));
    for token in [&first.refresh_token, &first.access_token, &second.refresh_token] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!shown.contains(signature));
    }
    assert!(!shown.contains(BOB), "events carry ids, not identities");
}

#[tokio::test]
async fn the_successor_names_its_access_token() {
    let fx = Fixture::new();
    let first = fx.login(BOB).await;
    let second = fx.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(payload(&second.refresh_token)["acjti"], payload(&second.access_token)["jti"]);
    assert_ne!(payload(&second.refresh_token)["jti"], payload(&first.refresh_token)["jti"]);
}

/// Every public flow future is `Send`, so it can run on a multi-threaded
/// executor; this fails to compile if that regresses.
#[allow(dead_code)]
fn flow_futures_are_send(fx: &'static Fixture) {
    fn is_send<T: Send>(_: T) {}
    is_send(fx.service.refresh(None));
    is_send(fx.service.issue(BOB));
    is_send(fx.service.login(b""));
    is_send(fx.service.logout(None));
    is_send(fx.service.verify_access_unrevoked(None));
    is_send(fx.service.sessions(BOB));
    is_send(fx.service.revoke_session(BOB, token_refresh::SessionId::random()));
    is_send(fx.service.purge());
    is_send(token_refresh::refresh(None, &fx.store, &fx.signer, &fx.clock));
}

/// The three doors answer an access token alike: the service's own check,
/// the verifier it hands out (both re-sign our tokens), and a resource
/// server's verifier with the public keys only; a refresh token is 422 at
/// each, and a forged signature 401.
#[tokio::test]
async fn the_verifier_doors_agree_with_the_service() {
    let fx = Fixture::new();
    let pair = fx.login(BOB).await;
    let public = AccessVerifier::new(Policy::default(), fx.signer.keyring().clone(), Arc::clone(&fx.clock));
    let handed_out = fx.service.verifier();
    let access = format!("Bearer {}", pair.access_token);
    let mut forged = pair.access_token.clone();
    forged.pop();
    forged.push(if pair.access_token.ends_with('A') { 'B' } else { 'A' });
    for header in [access.as_str(), pair.refresh_token.as_str(), forged.as_str(), "Basic x"] {
        let want = fx.service.verify_access(Some(header.as_bytes())).map_err(|e| Refusal::of(&e));
        assert_eq!(handed_out.verify(Some(header.as_bytes())).map_err(|e| Refusal::of(&e)), want, "{header}");
        assert_eq!(public.verify(Some(header.as_bytes())).map_err(|e| Refusal::of(&e)), want, "{header}");
    }
    assert_eq!(fx.service.verify_access(Some(access.as_bytes())).unwrap().subject, BOB);
    assert_eq!(handed_out.keyring(), fx.signer.keyring());
}

/// A sink set on a service sees its events; a service built without one,
/// over the same ledger, reports to nobody.
#[tokio::test]
async fn the_event_sink_is_wired_on_the_service() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let fx = Fixture::new().with_event_sink(move |event: &Event| sink.lock().unwrap().push(event.clone()));
    let quiet = token_refresh_test_support::flow::service_over(&fx.policy, &fx.store, &fx.signer, &fx.clock);
    quiet.issue(BOB).await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "the quiet service has no sink");
    fx.login(BOB).await;
    assert!(matches!(seen.lock().unwrap()[..], [Event::SessionStarted { .. }]));
}

/// Every operation is counted once under its label, whatever the door:
/// before the core's entry did it, the stateless access check was never
/// counted and `sessions` neither.
#[cfg(feature = "metrics")]
#[test]
fn every_operation_is_counted_once_whatever_the_door() {
    use token_refresh_test_support::flow::TwoSessions;
    use token_refresh_test_support::ready;

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let fx = TwoSessions::new(); // two `issue`s
        let access = format!("Bearer {}", fx.bob.access_token);
        fx.service.verify_access(Some(access.as_bytes())).unwrap();
        fx.service.verifier().verify(Some(access.as_bytes())).unwrap();
        ready(fx.service.verify_access_unrevoked(Some(access.as_bytes()))).unwrap();
        ready(fx.service.sessions(BOB)).unwrap();
        let refresh = format!("Bearer {}", fx.bob.refresh_token);
        ready(token_refresh::refresh(Some(refresh.as_bytes()), &fx.store, &fx.signer, &fx.clock)).unwrap();
        fx.refresh(None).unwrap_err();
        ready(fx.service.logout(Some(fx.alice.refresh_token.as_bytes()))).unwrap();
    });
    let text = handle.render();
    let value = |series: &str| -> f64 {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
    };
    for (series, expected) in [
        (r#"token_refresh_requests_total{endpoint="issue",status="OK"}"#, 2.0),
        (r#"token_refresh_requests_total{endpoint="verify_access",status="OK"}"#, 3.0),
        (r#"token_refresh_requests_total{endpoint="sessions",status="OK"}"#, 1.0),
        (r#"token_refresh_requests_total{endpoint="refresh",status="OK"}"#, 1.0),
        (r#"token_refresh_requests_total{endpoint="refresh",status="BAD_REQUEST"}"#, 1.0),
        (r#"token_refresh_requests_total{endpoint="logout",status="OK"}"#, 1.0),
    ] {
        assert!((value(series) - expected).abs() < f64::EPSILON, "{series}: want {expected}\n{text}");
    }
}
