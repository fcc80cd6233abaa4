//! The Redis ledger against a real server: the conformance suite, killed
//! client connections, and key expiry.
//!
//! Needs Redis at `TOKEN_REFRESH_REDIS_URL` (default
//! `redis://127.0.0.1:6379/0`); `.ci/run` starts it. An unreachable server
//! fails these tests, it never skips them. Every test uses a key prefix of
//! its own (random) and deletes its keys at the end.

// Test code: helpers outside #[test] functions may panic on a failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::model::{check_sequence, op};
use common::{now, pair, recovers, rotate_through_faults, rotation};
use token_refresh::conformance::{self, Harness};
use token_refresh::redis::AsyncCommands;
use token_refresh::{
    Ed25519Signer, MemoryUserStore, NewSession, Policy, RedisLedger, Reply, Rotation, SessionId, SessionLedger, Store,
    StoreError, SystemClock, User,
};

fn url() -> String {
    std::env::var("TOKEN_REFRESH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn unique(name: &str) -> String {
    format!("tr_test:{}:{name}:", &SessionId::random().to_string()[..8])
}

async fn connect(prefix: &str) -> RedisLedger {
    let url = url();
    RedisLedger::connect(&url, prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis must be reachable at {url} for these tests: {e}"))
}

async fn keys(ledger: &RedisLedger) -> Vec<Vec<u8>> {
    let mut connection = ledger.connection();
    let pattern = format!("{}*", ledger.prefix());
    let mut found = Vec::new();
    let mut iter: token_refresh::redis::AsyncIter<'_, Vec<u8>> = connection.scan_match(&pattern).await.unwrap();
    while let Some(key) = iter.next_item().await {
        found.push(key.unwrap());
    }
    found
}

/// Runs `body` with a ledger on a fresh prefix, then deletes the prefix's
/// keys whatever happened, then passes on a failure.
async fn with_prefix<F, Fut>(name: &str, body: F)
where
    F: FnOnce(String, RedisLedger) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let prefix = unique(name);
    let ledger = connect(&prefix).await;
    let outcome = tokio::spawn(body(prefix.clone(), ledger.clone())).await;
    let cleanup = connect(&prefix).await;
    for key in keys(&cleanup).await {
        let _: () = cleanup.connection().del(key).await.unwrap();
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

struct Redis {
    prefix: String,
}

impl Harness for Redis {
    type Ledger = RedisLedger;
    /// A new connection each time: two handles are two service instances.
    async fn handle(&self) -> Result<RedisLedger, StoreError> {
        RedisLedger::connect(&url(), self.prefix.clone()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_ledger_passes_the_conformance_suite() {
    with_prefix("suite", |prefix, _| async move {
        let report = conformance::run(&Redis { prefix }).await;
        println!("{report}");
        assert!(report.is_success(), "{report}");
    })
    .await;
}

#[tokio::test]
async fn unreachable_server_fails_at_connect() {
    let error = RedisLedger::connect("redis://127.0.0.1:1/0", "x:").await.expect_err("nothing listens on port 1");
    assert!(error.to_string().contains("store failed"), "{error}");
    assert!(RedisLedger::connect("not a url", "x:").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_expires_with_its_session() {
    with_prefix("expiry", |_, ledger| async move {
        let t = now();
        let first = pair(t);
        let new = NewSession {
            session: SessionId::random(),
            pair: first.clone(),
            created_at: t,
            absolute_expires_at: t + 30 * 86_400,
            leeway: 7,
        };
        ledger.create(&new).await.unwrap();
        let rotated = ledger.rotate(&rotation(first.refresh_id, t)).await.unwrap();
        assert!(matches!(rotated, Rotation::Rotated { .. }), "{rotated:?}");
        let found = keys(&ledger).await;
        // Session, two token records, the subject index, one revoked access token.
        assert_eq!(found.len(), 5, "{found:?}");
        let mut connection = ledger.connection();
        for key in found {
            let ttl: i64 = connection.ttl(&key).await.unwrap();
            let name = String::from_utf8_lossy(&key).into_owned();
            assert!(ttl > 0, "{name} has no expiry");
            // TTLs follow the ledger's clock: retention minus now, plus 60 s
            // of slack for clock skew (less the real seconds the test took,
            // up to a minute allowed). The revoked access token until its
            // exp (300 s, rotation leeway 0), the rest until the refresh exp
            // plus the session's leeway (7).
            let (low, high) = if name.contains(":a:") { (300, 360) } else { (86_400, 86_467) };
            assert!((low..=high).contains(&ttl), "{name}: ttl {ttl}, expected {low}..={high}");
        }
    })
    .await;
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[0x5e; 32]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_work_across_two_instances() {
    with_prefix("flows", |prefix, ledger| async move {
        let users = || MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
        let one = Store::new(users(), ledger);
        let two = Store::new(users(), connect(&prefix).await);
        let policy = Policy::default();
        let first = policy.issue("bob@mail.com", &one, &signer(), &SystemClock).await.unwrap();
        let header = format!("Bearer {}", first.refresh_token);
        let second = policy.refresh(Some(header.as_bytes()), &two, &signer(), &SystemClock).await.unwrap();
        let reuse = policy.refresh(Some(header.as_bytes()), &one, &signer(), &SystemClock).await;
        assert_eq!(Reply::from_result(&reuse).status(), 401);
        let header = format!("Bearer {}", second.refresh_token);
        let after = policy.refresh(Some(header.as_bytes()), &two, &signer(), &SystemClock).await;
        assert_eq!(Reply::from_result(&after).status(), 401, "reuse on one instance revoked the session on both");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_never_leave_a_half_rotation() {
    with_prefix("faults", |prefix, _| async move {
        let ledger = connect(&prefix).await;
        let t = now();
        let first = pair(t);
        let new = NewSession {
            session: SessionId::random(),
            pair: first.clone(),
            created_at: t,
            absolute_expires_at: t + 30 * 86_400,
            leeway: 0,
        };
        ledger.create(&new).await.unwrap();

        // Kills the ledger's own connection by id (never anyone else's).
        let killer = connect(&prefix).await;
        let stop = Arc::new(AtomicBool::new(false));
        let kills = tokio::spawn({
            let (stop, victim) = (Arc::clone(&stop), ledger.connection());
            async move {
                let mut killed = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id: Result<i64, _> =
                        token_refresh::redis::cmd("CLIENT").arg("ID").query_async(&mut victim.clone()).await;
                    if let Ok(id) = id {
                        let n: i64 = token_refresh::redis::cmd("CLIENT")
                            .arg("KILL")
                            .arg("ID")
                            .arg(id)
                            .query_async(&mut killer.connection())
                            .await
                            .unwrap();
                        killed += n as u64;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                killed
            }
        });
        let (errors, committed, current) = rotate_through_faults(&ledger, first.refresh_id, 200).await;
        stop.store(true, Ordering::Relaxed);
        let killed = kills.await.unwrap();
        recovers(&ledger, current, 2).await;
        println!("connections killed: {killed}, failed rotations: {errors}, of which committed: {committed}");
        assert!(killed > 0 && errors > 0, "the test cut connections for real ({killed} kills, {errors} errors)");
        let reuse = ledger.rotate(&rotation(first.refresh_id, now())).await.unwrap();
        assert!(matches!(reuse, Rotation::Reused { .. }), "{reuse:?}");
    })
    .await;
}

/// Random operation sequences answer as the `HashMap` model does (the same
/// model `MemoryLedger` is held to), on the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_ledger_matches_the_model() {
    with_prefix("model", |_, ledger| async move {
        let runtime = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let config = proptest::test_runner::Config { cases: 32, ..proptest::test_runner::Config::default() };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            let sequences = proptest::collection::vec(op(), 1..60);
            runner.run(&sequences, |ops| runtime.block_on(check_sequence(&ledger, &ops)))
        })
        .await
        .unwrap();
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    })
    .await;
}
