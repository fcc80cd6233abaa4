//! The PostgreSQL ledger against a real server: the conformance suite,
//! lost connections, a service restart, migration and purge.
//!
//! Needs PostgreSQL at `TOKEN_REFRESH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `.ci/run` starts it. An
//! unreachable server fails these tests, it never skips them. Every test
//! works in a schema of its own (random name) and drops it at the end.

// Test code: helpers outside #[test] functions may panic on a failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod common;

use common::model::{check_sequence, op};
use common::{now, pair, recovers, rotate_through_faults, rotation};
use token_refresh::conformance::{self, Harness};
use token_refresh::{
    Ed25519Signer, MemoryUserStore, NewSession, Policy, PostgresLedger, PostgresOptions, Reply, Rotation, SessionId,
    SessionLedger, Store, StoreError, SystemClock, User,
};

fn url() -> String {
    std::env::var("TOKEN_REFRESH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(name: &str) -> String {
    format!("tr_test_{}_{name}", &SessionId::random().to_string()[..8])
}

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::new().schema(schema).pool_size(8).timeout(Duration::from_secs(5))
}

async fn connect(url: &str, schema: &str) -> PostgresLedger {
    PostgresLedger::connect(url, options(schema))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {url} for these tests: {e}"))
}

/// Runs `body` with a migrated ledger on a fresh schema, then drops the
/// schema whatever happened, then passes on a failure.
async fn with_schema<F, Fut>(name: &str, body: F)
where
    F: FnOnce(String, PostgresLedger) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = unique(name);
    let ledger = connect(&url(), &schema).await;
    ledger.migrate().await.expect("migration");
    let outcome = tokio::spawn(body(schema.clone(), ledger.clone())).await;
    let client = ledger.pool().get().await.expect("a connection for clean-up");
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.expect("drop the test schema");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

struct Postgres {
    url: String,
    schema: String,
}

impl Harness for Postgres {
    type Ledger = PostgresLedger;
    /// A new pool each time: two handles are two service instances.
    async fn handle(&self) -> Result<PostgresLedger, StoreError> {
        PostgresLedger::connect(&self.url, options(&self.schema)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_passes_the_conformance_suite() {
    with_schema("suite", |schema, _| async move {
        let report = conformance::run(&Postgres { url: url(), schema }).await;
        println!("{report}");
        assert!(report.is_success(), "{report}");
    })
    .await;
}

#[tokio::test]
async fn unreachable_server_fails_at_connect() {
    let error = PostgresLedger::connect("postgres://postgres@127.0.0.1:1/test", options("token_refresh"))
        .await
        .expect_err("nothing listens on port 1");
    assert!(error.to_string().contains("store failed"), "{error}");
    let bad_schema = PostgresLedger::connect(&url(), PostgresOptions::new().schema("x; DROP TABLE y")).await;
    assert!(bad_schema.is_err(), "a schema name that is not a plain identifier is refused");
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[0x5e; 32]).unwrap()
}

fn users() -> MemoryUserStore {
    MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")])
}

#[tokio::test]
async fn a_down_backend_is_a_500_never_a_401() {
    // A pool aimed at nothing: every ledger call fails as on a lost server.
    let config: token_refresh::deadpool_postgres::tokio_postgres::Config =
        "postgres://postgres@127.0.0.1:1/test".parse().unwrap();
    let manager = token_refresh::deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = token_refresh::deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap();
    let ledger = PostgresLedger::from_pool(pool, PostgresOptions::new()).unwrap();
    let store = Store::new(users(), ledger);
    let issued = Policy::default().issue("bob@mail.com", &store, &signer(), &SystemClock).await;
    let reply = Reply::from_result(&issued);
    assert_eq!(reply.status(), 500);
    let body = String::from_utf8_lossy(reply.body()).into_owned();
    assert!(body.contains("INTERNAL_SERVER_ERROR"), "{body}");
    assert!(!body.contains("127.0.0.1") && !body.contains("connect"), "the cause stays out of the body: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_service_restart() {
    with_schema("restart", |schema, _| async move {
        let policy = Policy::default();
        let first = {
            let store = Store::new(users(), connect(&url(), &schema).await);
            policy.issue("bob@mail.com", &store, &signer(), &SystemClock).await.unwrap()
            // The store, its pool and every connection are dropped here.
        };
        let store = Store::new(users(), connect(&url(), &schema).await);
        let header = format!("Bearer {}", first.refresh_token);
        let second = policy.refresh(Some(header.as_bytes()), &store, &signer(), &SystemClock).await;
        let second = second.expect("the session outlived the restart");
        let reuse = policy.refresh(Some(header.as_bytes()), &store, &signer(), &SystemClock).await;
        assert_eq!(Reply::from_result(&reuse).status(), 401, "the consumed token was remembered too");
        let header = format!("Bearer {}", second.refresh_token);
        let after = policy.refresh(Some(header.as_bytes()), &store, &signer(), &SystemClock).await;
        assert_eq!(Reply::from_result(&after).status(), 401, "reuse revoked the session");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_never_leave_a_half_rotation() {
    with_schema("faults", |schema, _| async move {
        let app = format!("{schema}_app");
        let url_with_name = format!("{}?application_name={app}", url());
        let ledger = connect(&url_with_name, &schema).await;
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

        let (killer, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let stop = Arc::new(AtomicBool::new(false));
        let kills = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let mut killed = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let rows = killer
                        .query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                            &[&app],
                        )
                        .await
                        .unwrap();
                    killed += rows.len() as u64;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                killed
            }
        });
        let started = std::time::Instant::now();
        let (errors, committed, current) = rotate_through_faults(&ledger, first.refresh_id, 100).await;
        stop.store(true, Ordering::Relaxed);
        let killed = kills.await.unwrap();
        recovers(&ledger, current, 8).await;
        println!("fault loop took {:?}", started.elapsed());
        println!("backends killed: {killed}, failed rotations: {errors}, of which committed: {committed}");
        assert!(killed > 0 && errors > 0, "the test cut connections for real ({killed} kills, {errors} errors)");
        // The presented token of the first rotation is consumed: reuse.
        let reuse = ledger.rotate(&rotation(first.refresh_id, now())).await.unwrap();
        assert!(matches!(reuse, Rotation::Reused { .. }), "{reuse:?}");
    })
    .await;
}

#[tokio::test]
async fn migration_is_idempotent_and_purge_removes_only_expired_rows() {
    with_schema("purge", |schema, ledger| async move {
        // Twice more, concurrently: the advisory lock serialises them.
        let other = connect(&url(), &schema).await;
        let (a, b) = tokio::join!(ledger.migrate(), other.migrate());
        a.unwrap();
        b.unwrap();

        // A stalled rotation cannot hold its row lock for long.
        let client = ledger.pool().get().await.unwrap();
        let row = client.query_one("SHOW idle_in_transaction_session_timeout", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "5s");
        drop(client);

        let t = now();
        let mut first = pair(t);
        first.refresh_expires_at = t + 100;
        let new = NewSession {
            session: SessionId::random(),
            pair: first.clone(),
            created_at: t,
            absolute_expires_at: t + 1000,
            leeway: 0,
        };
        ledger.create(&new).await.unwrap();
        let Rotation::Rotated { pair: second, .. } = ledger.rotate(&rotation(first.refresh_id, t + 10)).await.unwrap()
        else {
            panic!("rotation")
        };
        assert_eq!(second.refresh_expires_at, t + 1000, "capped at the absolute expiry");
        let nothing = ledger.purge(t + 99).await.unwrap();
        assert_eq!((nothing.tokens, nothing.sessions, nothing.revoked_access), (0, 0, 0));
        let consumed = ledger.purge(t + 100).await.unwrap();
        assert_eq!((consumed.tokens, consumed.sessions, consumed.revoked_access), (1, 0, 0), "the consumed token");
        let access = ledger.purge(t + 300).await.unwrap();
        assert_eq!(access.revoked_access, 1, "the first access token's revocation, at its exp");
        let rest = ledger.purge(t + 1000).await.unwrap();
        assert_eq!((rest.tokens, rest.sessions), (1, 1), "the session and its last token, at their retention");
    })
    .await;
}

/// Random operation sequences answer as the `HashMap` model does (the same
/// model `MemoryLedger` is held to), on the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_matches_the_model() {
    with_schema("model", |_, ledger| async move {
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
