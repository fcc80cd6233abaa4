//! The PostgreSQL ledger against a real server: the conformance suite, the
//! model test, one row per session, the isolation level, concurrency, the
//! per-user cap, lost connections, a service restart, migrations and
//! purge.
//!
//! Needs PostgreSQL at `TOKEN_REFRESH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `.ci/run` starts it. An
//! unreachable server fails these tests, it never skips them. Every test
//! works in a schema of its own (random name) and drops it at the end.

// Test code: helpers outside #[test] functions may panic on a failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use token_refresh::deadpool_postgres::{self, tokio_postgres};
use token_refresh::ledger::conformance::model::{check_sequence, op};
use token_refresh::ledger::conformance::{self, CONCURRENT_ROTATIONS, Harness};
use token_refresh::{
    Ed25519Signer, MemoryUserStore, Policy, PostgresLedger, PostgresOptions, Reply, SessionId, StoreError, SystemClock,
    TokenService, User, ledger::AccessState, ledger::Grace, ledger::NewSession, ledger::Rotation,
    ledger::RotationRequest, ledger::SessionLedger, ledger::postgres::MIGRATION_0001, token::TokenId,
};

use token_refresh_test_support::flow::strict_policy;
use token_refresh_test_support::ledger::{SUBJECT, new_session, now, pair_of};

// ---------------------------------------------------------------------------
// Server, schemas, sessions

fn url() -> String {
    std::env::var("TOKEN_REFRESH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url()` with `params` (`key=value&…`, already percent-encoded) added.
fn url_with(params: &str) -> String {
    let base = url();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{params}")
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

/// A plain connection of the test's own (not the ledger's pool).
async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
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
    let outcome = tokio::spawn(body(schema.clone(), ledger)).await;
    drop_schema(&schema).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn drop_schema(schema: &str) {
    admin().await.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.expect("drop the schema");
}

/// A rotation of `subject`'s token `presented`, proposing a fresh
/// successor of its session.
fn rotation_of(subject: &str, presented: TokenId, now: i64) -> RotationRequest {
    RotationRequest {
        presented,
        subject: subject.into(),
        successor: pair_of(subject, presented.session(), now),
        now,
        grace: Grace::default(),
        leeway: 0,
    }
}

use token_refresh_test_support::ledger::rotation;

/// Every table of `schema` with its row count, by name.
async fn table_rows(schema: &str) -> Vec<(String, i64)> {
    let client = admin().await;
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
            &[&schema],
        )
        .await
        .unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let name: String = table.get(0);
        let row = client.query_one(&format!("SELECT count(*) FROM {schema}.{name}"), &[]).await.unwrap();
        counts.push((name, row.get(0)));
    }
    counts
}

// ---------------------------------------------------------------------------
// The suite and the model

/// The suite's view of the server: every handle's pool connects under one
/// `application_name`, so that `disrupt` terminates exactly their
/// backends (never another test's).
struct Postgres {
    url: String,
    schema: String,
    app: String,
    admin: tokio_postgres::Client,
}

impl Harness for Postgres {
    type Ledger = PostgresLedger;
    /// A new pool each time: two handles are two service instances.
    async fn handle(&self) -> Result<PostgresLedger, StoreError> {
        PostgresLedger::connect(&self.url, options(&self.schema)).await
    }

    /// `pg_terminate_backend` of every backend the handles' pools hold.
    async fn disrupt(&self) -> Result<Option<u64>, StoreError> {
        let rows = self
            .admin
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&self.app])
            .await
            .map_err(StoreError::new)?;
        Ok(Some(rows.len() as u64))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_passes_the_conformance_suite() {
    with_schema("suite", |schema, _| async move {
        let app = format!("{schema}_app");
        let url = url_with(&format!("application_name={app}"));
        let report = conformance::run(&Postgres { url, schema, app, admin: admin().await }).await;
        println!("{report}");
        assert!(report.is_complete(), "every check runs, faults and purge included: {report}");
    })
    .await;
}

/// Random operation sequences answer as the model does (the same model
/// `MemoryLedger` is held to), on the real server.
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

// ---------------------------------------------------------------------------
// One row per session

/// Logs in `sessions` sessions spread over `users` users and rotates each
/// 20 times, 16 sessions at a time; then the schema holds exactly one row
/// per session and no table but `sessions` and `migrations`.
async fn one_row_per_session(sessions: usize, users: usize) {
    const ROTATIONS: u64 = 20;
    with_schema("rows", move |schema, ledger| async move {
        let t = now();
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (ledger, next) = (ledger.clone(), Arc::clone(&next));
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sessions {
                        break;
                    }
                    let subject = format!("user-{}@mail.com", i % users);
                    let new = NewSession { leeway: 7, ..new_session(&subject, t, 100) };
                    ledger.create(&new).await.unwrap();
                    let mut current = new.pair.refresh_id;
                    for round in 1..=ROTATIONS {
                        let outcome = ledger.rotate(&rotation_of(&subject, current, t + round as i64)).await.unwrap();
                        let Rotation::Rotated { pair, generation, .. } = outcome else {
                            panic!("round {round}: {outcome:?}")
                        };
                        assert_eq!(generation, round);
                        current = pair.refresh_id;
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let elapsed = started.elapsed();
        let tables = table_rows(&schema).await;
        let total: i64 = tables.iter().map(|(_, rows)| rows).sum();
        println!(
            "{sessions} sessions of {users} users, {ROTATIONS} rotations each ({} logins and rotations in \
             {elapsed:?}): {tables:?}: {:.3} session rows/session, {:.3} rows/session in all tables",
            sessions as u64 * (ROTATIONS + 1),
            tables.iter().find(|(name, _)| name == "sessions").map_or(0, |(_, rows)| *rows) as f64 / sessions as f64,
            total as f64 / sessions as f64,
        );
        let expected = [
            ("migrations".to_owned(), 5),
            ("session_counts".to_owned(), users as i64),
            ("sessions".to_owned(), sessions as i64),
        ];
        assert_eq!(tables, expected, "one row per session, one count per user, and no per-token table");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_per_session_after_20_rotations_each() {
    // The figure for docs/performance.md: 1 000 sessions, 20 rotations
    // each, one user each and 10 sessions per user.
    one_row_per_session(1000, 1000).await;
    one_row_per_session(1000, 100).await;
}

/// Only the index of each user's listed sessions by end of life covers a
/// column a rotation sets (`ends_at`): the price of a login that never
/// walks the user's rows is that rotations are not HOT updates (one entry
/// in each index per rotation; docs/ledgers.md measures it). The other
/// indexes cover columns no statement changes.
#[tokio::test]
async fn only_the_end_of_life_index_covers_a_column_a_rotation_changes() {
    with_schema("hot", |schema, _| async move {
        let indexes = admin()
            .await
            .query(
                "SELECT c.relname::text, a.attname::text, i.indpred IS NOT NULL
                 FROM pg_index i
                 JOIN pg_class t ON t.oid = i.indrelid
                 JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey)
                 WHERE n.nspname = $1 AND t.relname = 'sessions' AND i.indexprs IS NULL
                 ORDER BY 1, 2",
                &[&schema],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, bool>(2)))
            .collect::<Vec<_>>();
        let index = |name: &str, column: &str, partial| (name.to_owned(), column.to_owned(), partial);
        assert_eq!(
            indexes,
            [
                index("sessions_listed_seq_idx", "ends_at", true),
                index("sessions_listed_seq_idx", "login_seq", true),
                index("sessions_listed_seq_idx", "subject", true),
                index("sessions_pkey", "session_id", false),
                index("sessions_subject_seq_idx", "login_seq", false),
                index("sessions_subject_seq_idx", "subject", false),
            ]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Isolation and concurrency

/// `CONCURRENT_ROTATIONS` concurrent rotations of one token over the two
/// handles: exactly one rotates, the first other one detects reuse and
/// the rest find the session revoked. Never an error.
async fn rotate_concurrently(a: &PostgresLedger, b: &PostgresLedger) {
    let t = now();
    let new = new_session(SUBJECT, t, 100);
    a.create(&new).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT_ROTATIONS {
        let ledger = if i % 2 == 0 { a.clone() } else { b.clone() };
        let request = rotation(new.pair.refresh_id, t + 1);
        tasks.push(tokio::spawn(async move { ledger.rotate(&request).await }));
    }
    let mut counts = [0; 5];
    for task in tasks {
        counts[match task.await.unwrap() {
            Ok(Rotation::Rotated { .. }) => 0,
            Ok(Rotation::Reused { .. }) => 1,
            Ok(Rotation::Revoked { .. }) => 2,
            Ok(_) => 3,
            Err(error) => {
                println!("error: {error:?}");
                4
            }
        }] += 1;
    }
    assert_eq!(counts, [1, 1, CONCURRENT_ROTATIONS - 2, 0, 0], "rotated, reused, revoked, other, errors");
}

/// A TCP proxy to the server that counts the round trips its clients
/// start: the frontend messages the server answers (`Sync`, `S`, ending an
/// extended-protocol exchange, and a simple `Query`, `Q`). Other messages
/// (`Parse`, `Bind`, `Execute`, …) travel in the same round trip.
struct RoundTrips {
    url: String,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl RoundTrips {
    async fn start() -> Self {
        let config: tokio_postgres::Config = url().parse().unwrap();
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let server = format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        tokio::spawn({
            let count = Arc::clone(&count);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let upstream = tokio::net::TcpStream::connect(&server).await.unwrap();
                    tokio::spawn(Self::relay(client, upstream, Arc::clone(&count)));
                }
            }
        });
        // Plaintext: the proxy counts the protocol's messages, which TLS
        // (a loopback URL's default `prefer`) would hide.
        let mut url =
            format!("host=127.0.0.1 port={port} user={} sslmode=disable", config.get_user().unwrap_or("postgres"));
        if let Some(dbname) = config.get_dbname() {
            url += &format!(" dbname={dbname}");
        }
        if let Some(password) = config.get_password() {
            url += &format!(" password={}", String::from_utf8_lossy(password));
        }
        Self { url, count }
    }

    async fn relay(
        client: tokio::net::TcpStream,
        upstream: tokio::net::TcpStream,
        count: Arc<std::sync::atomic::AtomicU64>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client_read, mut client_write) = client.into_split();
        let (mut upstream_read, mut upstream_write) = upstream.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut upstream_read, &mut client_write).await });
        let (mut pending, mut buffer, mut startup) = (Vec::new(), vec![0; 64 * 1024], true);
        loop {
            let Ok(read) = client_read.read(&mut buffer).await else { return };
            if read == 0 || upstream_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
            pending.extend_from_slice(&buffer[..read]);
            loop {
                // Startup messages (and SSL or GSS encryption requests before
                // them) have no type byte; every later message has one.
                let header = usize::from(!startup);
                let Some(length) = pending.get(header..header + 4) else { break };
                let total = header + u32::from_be_bytes(length.try_into().unwrap()) as usize;
                if pending.len() < total {
                    break;
                }
                let message: Vec<u8> = pending.drain(..total).collect();
                if startup {
                    let code = u32::from_be_bytes(message[4..8].try_into().unwrap());
                    startup = matches!(code, 80_877_103 | 80_877_104);
                } else if matches!(message[0], b'S' | b'Q') {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// The round trips `operation` takes.
    async fn of<T>(&self, operation: impl Future<Output = T>) -> (u64, T) {
        let before = self.count();
        let outcome = operation.await;
        (self.count() - before, outcome)
    }
}

/// The common refresh is one round trip: one statement, its own
/// transaction. The other answers take the slow path's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_one_round_trip() {
    with_schema("round_trips", |schema, _| async move {
        let proxy = RoundTrips::start().await;
        let ledger = PostgresLedger::connect(&proxy.url, options(&schema).pool_size(1)).await.unwrap();
        let t = now();
        // Prepare every statement once (a prepared statement is cached per
        // connection).
        let warm_up = new_session(SUBJECT, t, 100);
        ledger.create(&warm_up).await.unwrap();
        ledger.rotate(&rotation(warm_up.pair.refresh_id, t)).await.unwrap();
        ledger.rotate(&rotation(warm_up.pair.refresh_id, t)).await.unwrap();

        let new = new_session(SUBJECT, t, 100);
        let (login, created) = proxy.of(ledger.create(&new)).await;
        created.unwrap();
        let mut current = new.pair.refresh_id;
        for round in 1..=5 {
            let (trips, outcome) = proxy.of(ledger.rotate(&rotation(current, t + round))).await;
            let Ok(Rotation::Rotated { pair, .. }) = outcome else { panic!("{outcome:?}") };
            assert_eq!(trips, 1, "a refresh is one round trip");
            current = pair.refresh_id;
        }
        let (reuse, outcome) = proxy.of(ledger.rotate(&rotation(new.pair.refresh_id, t + 6))).await;
        assert!(matches!(outcome, Ok(Rotation::Reused { .. })), "{outcome:?}");
        println!("round trips: login {login}, refresh 1, reuse {reuse}");
        assert_eq!(reuse, 6, "the statement, then BEGIN, the user's lock, SELECT … FOR UPDATE, the write, COMMIT");
        assert_eq!(login, 5, "BEGIN, the user's lock, pruning the user's index, the insert, COMMIT");
    })
    .await;
}

/// A stricter default isolation (here from the URL; a role's or the
/// server's default behaves the same) would turn a concurrent rotation
/// into a serialization error, a 500. `connect` pins `READ COMMITTED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_pins_read_committed() {
    with_schema("isolation", |schema, _| async move {
        for level in ["repeatable%5C%20read", "serializable"] {
            let strict = url_with(&format!("options=-c%20default_transaction_isolation%3D{level}"));
            let (a, b) = (connect(&strict, &schema).await, connect(&strict, &schema).await);
            let client = a.pool().get().await.unwrap();
            let row = client.query_one("SHOW default_transaction_isolation", &[]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), "read committed", "the ledger's setting comes after the URL's");
            drop(client);
            for _ in 0..5 {
                rotate_concurrently(&a, &b).await;
            }
        }
    })
    .await;
}

/// A pool built elsewhere keeps its own default isolation: the rotation's
/// single statement may then fail to serialize (changing nothing), and
/// the ledger decides again at `READ COMMITTED`, so the answers are the
/// same and never an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_strict_pool_from_elsewhere_still_rotates_once() {
    with_schema("strict_pool", |schema, _| async move {
        for level in ["repeatable%5C%20read", "serializable"] {
            let strict = url_with(&format!("options=-c%20default_transaction_isolation%3D{level}"));
            let strict_pool = || {
                let config: tokio_postgres::Config = strict.parse().unwrap();
                let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
                let pool = deadpool_postgres::Pool::builder(manager).max_size(8).build().unwrap();
                PostgresLedger::from_pool(pool, PostgresOptions::new().schema(&schema)).unwrap()
            };
            let (a, b) = (strict_pool(), strict_pool());
            let client = a.pool().get().await.unwrap();
            let row = client.query_one("SHOW default_transaction_isolation", &[]).await.unwrap();
            assert_ne!(row.get::<_, String>(0), "read committed", "the pool's own setting: {level}");
            drop(client);
            for _ in 0..5 {
                rotate_concurrently(&a, &b).await;
            }
            // Logout racing rotations and logins racing each other: no
            // error either.
            let t = now();
            let new = new_session(SUBJECT, t, 100);
            a.create(&new).await.unwrap();
            let request = rotation(new.pair.refresh_id, t);
            let (revoked, rotated) = tokio::join!(b.revoke_session(SUBJECT, new.session, t), a.rotate(&request));
            revoked.unwrap();
            rotated.unwrap();

            // A current token whose row another transaction writes (say a
            // grace replay's count) while the rotation waits for it: the
            // rotation's statement fails to serialize, and the rotation is
            // decided again, still current, and rotates.
            let new = new_session(SUBJECT, t, 100);
            a.create(&new).await.unwrap();
            let mut other = admin().await;
            let writer = other.transaction().await.unwrap();
            let touch = format!("UPDATE {schema}.sessions SET replays = replays WHERE session_id = $1");
            writer.execute(&touch, &[new.session.as_uuid()]).await.unwrap();
            let waiting = tokio::spawn({
                let (a, request) = (a.clone(), rotation(new.pair.refresh_id, t + 1));
                async move { a.rotate(&request).await }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            writer.commit().await.unwrap();
            let outcome = waiting.await.unwrap().unwrap();
            assert!(matches!(outcome, Rotation::Rotated { generation: 1, .. }), "{level}: {outcome:?}");
        }
    })
    .await;
}

/// Ties in end of life go by the login sequence, not by the login time the
/// caller gave: an instance whose clock is 5 s behind logs in after
/// another, its session ending at the same second (a refresh lifetime 5 s
/// longer). The cap evicts the earlier login, and the listing puts it
/// first, although its `created_at` is the later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_go_by_login_order_not_by_the_callers_clock() {
    with_schema("ties", |_, ledger| async move {
        let t = now();
        let first = new_session(SUBJECT, t, 2);
        let mut second = new_session(SUBJECT, t - 5, 2);
        second.pair.refresh_expires_at = first.pair.refresh_expires_at;
        ledger.create(&first).await.unwrap();
        ledger.create(&second).await.unwrap();
        let listed = ledger.sessions(SUBJECT, t).await.unwrap();
        let order: Vec<SessionId> = listed.iter().map(|info| info.session).collect();
        assert_eq!(order, vec![first.session, second.session], "listed in login order");
        let created = ledger.create(&new_session(SUBJECT, t, 2)).await.unwrap();
        assert_eq!(created.evicted, vec![first.session], "the earlier login goes, whatever its clock said");
    })
    .await;
}

#[tokio::test]
async fn a_taken_session_id_is_refused_and_changes_nothing() {
    with_schema("taken", |_, ledger| async move {
        let t = now();
        let bob = new_session(SUBJECT, t, 1);
        ledger.create(&bob).await.unwrap();
        // Carol at her cap of one, then a login of hers with bob's session
        // id: refused, and her first session is not evicted by it.
        let carol = new_session("carol@mail.com", t, 1);
        ledger.create(&carol).await.unwrap();
        let mut taken = new_session("carol@mail.com", t, 1);
        taken.session = bob.session;
        taken.pair = pair_of("carol@mail.com", bob.session, t);
        assert!(ledger.create(&taken).await.is_err());
        let listed = ledger.sessions("carol@mail.com", t).await.unwrap();
        assert_eq!(listed.iter().map(|info| info.session).collect::<Vec<_>>(), vec![carol.session]);
        assert_eq!(ledger.access_state(SUBJECT, bob.pair.access_id).await.unwrap(), AccessState::Current);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Faults and flows

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
    token_refresh_test_support::keys::signer()
}

fn users() -> MemoryUserStore {
    MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")])
}

#[tokio::test]
async fn a_down_backend_is_a_500_never_a_401() {
    // A pool aimed at nothing: every ledger call fails as on a lost server.
    let config: tokio_postgres::Config = "postgres://postgres@127.0.0.1:1/test".parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap();
    let ledger = PostgresLedger::from_pool(pool, PostgresOptions::new()).unwrap();
    let service = TokenService::new(Policy::default(), users(), ledger, signer(), SystemClock);
    let issued = service.issue("bob@mail.com").await;
    let reply = Reply::from_result(&issued);
    assert_eq!(reply.status(), 500);
    let body = String::from_utf8_lossy(reply.body()).into_owned();
    assert!(body.contains("INTERNAL_SERVER_ERROR"), "{body}");
    assert!(!body.contains("127.0.0.1") && !body.contains("connect"), "the cause stays out of the body: {body}");
}

/// Issue on one instance, refresh on another, reuse on the first: the
/// flows see one ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_work_across_two_instances() {
    with_schema("flows", |schema, ledger| async move {
        let one = TokenService::new(strict_policy(), users(), ledger, signer(), SystemClock);
        let two = TokenService::new(strict_policy(), users(), connect(&url(), &schema).await, signer(), SystemClock);
        let first = one.issue("bob@mail.com").await.unwrap();
        let header = format!("Bearer {}", first.refresh_token);
        let second = two.refresh(Some(header.as_bytes())).await.unwrap();
        let reuse = one.refresh(Some(header.as_bytes())).await;
        assert_eq!(Reply::from_result(&reuse).status(), 401);
        let header = format!("Bearer {}", second.refresh_token);
        let after = two.refresh(Some(header.as_bytes())).await;
        assert_eq!(Reply::from_result(&after).status(), 401, "reuse on one instance revoked the session on both");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_service_restart() {
    with_schema("restart", |schema, _| async move {
        let first = {
            let service =
                TokenService::new(strict_policy(), users(), connect(&url(), &schema).await, signer(), SystemClock);
            service.issue("bob@mail.com").await.unwrap()
            // The store, its pool and every connection are dropped here.
        };
        let service =
            TokenService::new(strict_policy(), users(), connect(&url(), &schema).await, signer(), SystemClock);
        let header = format!("Bearer {}", first.refresh_token);
        let second = service.refresh(Some(header.as_bytes())).await;
        let second = second.expect("the session outlived the restart");
        let reuse = service.refresh(Some(header.as_bytes())).await;
        assert_eq!(Reply::from_result(&reuse).status(), 401, "the consumed token was remembered too");
        let header = format!("Bearer {}", second.refresh_token);
        let after = service.refresh(Some(header.as_bytes())).await;
        assert_eq!(Reply::from_result(&after).status(), 401, "reuse revoked the session");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Migrations and purge

#[tokio::test]
async fn migration_is_idempotent_and_purge_removes_only_expired_rows() {
    with_schema("purge", |schema, ledger| async move {
        // Twice more, concurrently: the advisory lock serialises them.
        let other = connect(&url(), &schema).await;
        let (a, b) = tokio::join!(ledger.migrate(), other.migrate());
        a.unwrap();
        b.unwrap();

        // A stalled transaction cannot hold its locks for long.
        let client = ledger.pool().get().await.unwrap();
        let row = client.query_one("SHOW idle_in_transaction_session_timeout", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "5s");
        drop(client);

        let t = now();
        let mut new = new_session(SUBJECT, t, 100);
        new.pair.refresh_expires_at = t + 100;
        new.absolute_expires_at = t + 1000;
        // Kept 3 s past its tokens (the rotation below asks for no leeway:
        // the session's own still counts).
        new.leeway = 3;
        let first = new.pair.clone();
        ledger.create(&new).await.unwrap();
        // A second session, idle from t + 200 (leeway 5): kept until 205.
        let mut short = new_session(SUBJECT, t, 100);
        short.pair.access_expires_at = t + 100;
        short.pair.refresh_expires_at = t + 200;
        short.leeway = 5;
        ledger.create(&short).await.unwrap();
        let Rotation::Rotated { pair: second, .. } = ledger.rotate(&rotation(first.refresh_id, t + 10)).await.unwrap()
        else {
            panic!("rotation")
        };
        assert_eq!(second.refresh_expires_at, t + 1000, "capped at the absolute expiry");
        // Rows are kept 60 s past their retention.
        assert_eq!(ledger.purge(t + 264).await.unwrap().sessions, 0);
        assert_eq!(ledger.purge(t + 265).await.unwrap().sessions, 1, "the short session");
        assert_eq!(ledger.purge(t + 1062).await.unwrap().sessions, 0);
        assert_eq!(ledger.purge(t + 1063).await.unwrap().sessions, 1, "the rotated session, at its retention");
        assert_eq!(
            table_rows(&schema).await,
            [("migrations".to_owned(), 5), ("session_counts".to_owned(), 0), ("sessions".to_owned(), 0)],
            "the user's count went with the user's last row"
        );
    })
    .await;
}

/// A version-1 ledger with sessions upgrades to version 2: the per-token
/// tables go, the old sessions (unreachable by session-scoped ids) are
/// deleted, and running the migrations again, by `migrate` or by hand,
/// keeps the sessions created since.
#[tokio::test]
async fn version_1_upgrades_and_the_upgrade_runs_once() {
    let schema = unique("upgrade");
    let client = admin().await;
    let outcome = tokio::spawn({
        let schema = schema.clone();
        async move {
            let client = admin().await;
            let v1 = MIGRATION_0001.replace("{schema}", &schema);
            client.batch_execute(&format!("BEGIN; {v1} COMMIT;")).await.unwrap();
            client
                .batch_execute(&format!(
                    "INSERT INTO {schema}.sessions VALUES (gen_random_uuid(), 'bob@mail.com', 'bob@admin', 'ROLE_ADMIN',
                        gen_random_uuid(), 300, gen_random_uuid(), 86400, 0, 2592000, 0, 0, false, 86400);
                     INSERT INTO {schema}.tokens SELECT refresh_id, session_id, 0, 86400 FROM {schema}.sessions;
                     INSERT INTO {schema}.revoked_access VALUES (gen_random_uuid(), 300);"
                ))
                .await
                .unwrap();

            let ledger = connect(&url(), &schema).await;
            ledger.migrate().await.unwrap();
            assert_eq!(
                table_rows(&schema).await,
                [("migrations".to_owned(), 5), ("session_counts".to_owned(), 0), ("sessions".to_owned(), 0)]
            );
            let indexes = client
                .query("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 ORDER BY 1", &[&schema])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>();
            assert_eq!(
                indexes,
                [
                    "migrations_pkey",
                    "session_counts_pkey",
                    "sessions_listed_seq_idx",
                    "sessions_pkey",
                    "sessions_subject_seq_idx"
                ]
            );

            let t = now();
            let new = new_session(SUBJECT, t, 100);
            ledger.create(&new).await.unwrap();
            ledger.migrate().await.unwrap();
            let v2 = token_refresh::ledger::postgres::MIGRATION_0002.replace("{schema}", &schema);
            let v3 = token_refresh::ledger::postgres::MIGRATION_0003.replace("{schema}", &schema);
            let v4 = token_refresh::ledger::postgres::MIGRATION_0004.replace("{schema}", &schema);
            let v5 = token_refresh::ledger::postgres::MIGRATION_0005.replace("{schema}", &schema);
            client.batch_execute(&format!("BEGIN; {v1} {v2} {v3} {v4} {v5} COMMIT;")).await.unwrap();
            assert_eq!(table_rows(&schema).await.last(), Some(&("sessions".to_owned(), 1)), "kept");
            ledger.migrate().await.unwrap();
            assert_eq!(table_rows(&schema).await.len(), 3, "no per-token table came back");
            let outcome = ledger.rotate(&rotation(new.pair.refresh_id, t + 1)).await.unwrap();
            assert!(matches!(outcome, Rotation::Rotated { generation: 1, .. }), "{outcome:?}");
        }
    })
    .await;
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.unwrap();
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Rows of the ledger's `sessions` table PostgreSQL has read and written,
/// by its own statistics: `(index tuples fetched, heap tuples read by
/// sequential scans, tuples updated)`.
async fn sessions_table_work(schema: &str) -> (i64, i64, i64) {
    let client = admin().await;
    client.batch_execute("SELECT pg_stat_clear_snapshot()").await.unwrap();
    let row = client
        .query_one(
            "SELECT COALESCE(idx_tup_fetch, 0), COALESCE(seq_tup_read, 0), n_tup_upd
             FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'sessions'",
            &[&schema],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A login at the cap does bounded work however many sessions the user
/// holds: with 10 000 live sessions, the login that evicts one fetches and
/// updates a handful of rows (the victim, the new row), never the user's
/// 10 000. Counted by PostgreSQL's own statistics of the ledger's one
/// connection, flushed when its transaction ends.
#[tokio::test]
async fn a_login_at_the_cap_does_not_walk_the_users_rows() {
    const CAP: u32 = 10_000;
    with_schema("cap_work", |schema, _| async move {
        let options = PostgresOptions::new().schema(&schema).pool_size(1).timeout(Duration::from_secs(5));
        let ledger = PostgresLedger::connect(&url(), options).await.unwrap();
        let t = now();
        let mut first = Vec::new();
        for i in 0..CAP {
            let new = new_session(SUBJECT, t + i64::from(i / 1000), CAP);
            first.push(new.session);
            assert!(ledger.create(&new).await.unwrap().evicted.is_empty());
        }
        admin().await.batch_execute(&format!("ANALYZE {schema}.sessions")).await.unwrap();
        let flush = || async {
            let client = ledger.pool().get().await.unwrap();
            client.batch_execute("SELECT pg_stat_force_next_flush()").await.unwrap();
        };
        flush().await;
        flush().await;
        let before = sessions_table_work(&schema).await;
        flush().await;
        let created = ledger.create(&new_session(SUBJECT, t + 20, CAP)).await.unwrap();
        flush().await;
        let after = sessions_table_work(&schema).await;
        let (fetched, scanned, updated) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        println!("a login at a cap of {CAP}: {fetched} index fetches, {scanned} scanned, {updated} updated");
        assert_eq!(created.evicted.len(), 1, "the login at the cap evicts one session");
        assert!(first[..1000].contains(&created.evicted[0]), "one of the sessions that end first");
        assert!(fetched < 20 && scanned == 0 && updated <= 2, "({fetched}, {scanned}, {updated})");
    })
    .await;
}

/// The spawnable purge loop removes what `purge` would, on its own.
#[tokio::test]
async fn the_purge_loop_purges_on_its_own() {
    with_schema("purge_loop", |schema, ledger| async move {
        let long_ago = now() - 10 * 86_400;
        let mut gone = new_session(SUBJECT, long_ago, 100);
        gone.absolute_expires_at = long_ago + 1000;
        ledger.create(&gone).await.unwrap();
        ledger.create(&new_session(SUBJECT, now(), 100)).await.unwrap();
        let task = tokio::spawn({
            let ledger = ledger.clone();
            async move { ledger.purge_every(Duration::from_millis(50)).await }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rows = i64::MAX;
        while Instant::now() < deadline {
            rows = table_rows(&schema).await.iter().find(|(name, _)| name == "sessions").map_or(0, |(_, n)| *n);
            if rows == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        task.abort();
        assert_eq!(rows, 1, "the expired session was purged, the live one kept");
    })
    .await;
}

/// `from_pool` takes the schema from the options and nothing else: a pool
/// size or a timeout it could not apply is refused, not ignored.
#[tokio::test]
async fn from_pool_refuses_options_it_cannot_apply() {
    let pool = || {
        let config: tokio_postgres::Config = url().parse().unwrap();
        deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(config, tokio_postgres::NoTls))
            .build()
            .unwrap()
    };
    for options in [PostgresOptions::new().pool_size(4), PostgresOptions::new().timeout(Duration::from_secs(1))] {
        let error = PostgresLedger::from_pool(pool(), options).expect_err("refused");
        assert!(error.to_string().contains("set them on the pool"), "{error}");
    }
    let ledger = PostgresLedger::from_pool(pool(), PostgresOptions::new().schema("from_pool_schema")).unwrap();
    assert_eq!(ledger.schema(), "from_pool_schema");
}

// ---------------------------------------------------------------------------
// Bounded rows (one login body replayed), purge through the trait

/// The rows of `schema.sessions`, counted by the test's own connection.
async fn session_rows(schema: &str) -> i64 {
    admin().await.query_one(&format!("SELECT count(*) FROM {schema}.sessions"), &[]).await.unwrap().get(0)
}

/// One login body replayed 10 000 times at a cap of 100 (security review
/// H1): the sessions the cap evicts are deleted by the login that evicts
/// them, so the table holds the cap's rows, not one per login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_leaves_the_caps_rows() {
    const LOGINS: usize = 10_000;
    const CAP: u32 = 100;
    with_schema("flood", |schema, ledger| async move {
        let t = now();
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        // Logins of one subject queue on its lock: four connections keep it
        // busy, as the review's four keep-alive clients did.
        for _ in 0..4 {
            let (ledger, next) = (ledger.clone(), Arc::clone(&next));
            tasks.spawn(async move {
                let mut evicted = 0;
                while next.fetch_add(1, Ordering::Relaxed) < LOGINS {
                    evicted += ledger.create(&new_session(SUBJECT, t, CAP)).await.unwrap().evicted.len();
                }
                evicted
            });
        }
        let mut evicted = 0;
        while let Some(done) = tasks.join_next().await {
            evicted += done.unwrap();
        }
        let rows = session_rows(&schema).await;
        println!(
            "{LOGINS} logins of one subject at cap {CAP} in {:?}: {rows} session rows, {evicted} evicted",
            started.elapsed()
        );
        assert_eq!(evicted, LOGINS - CAP as usize, "every login past the cap evicts one session");
        assert!(rows <= i64::from(CAP) + 2, "{rows} rows: the cap's and no more");
        assert_eq!(ledger.sessions(SUBJECT, t).await.unwrap().len(), CAP as usize);
        let counted: i32 = admin()
            .await
            .query_one(&format!("SELECT listed FROM {schema}.session_counts WHERE subject = $1"), &[&SUBJECT])
            .await
            .unwrap()
            .get(0);
        assert_eq!(counted, CAP as i32, "the user's count follows the listed sessions");
    })
    .await;
}

/// A ledger chosen by URL is a `BoxLedger`: `SessionLedger::purge` (what
/// `TokenService::purge_every` runs) reaches `PostgresLedger::purge`. An
/// evicted session's row is gone at its eviction; a revoked one's (logout,
/// reuse, `revoke_user`) is a tombstone answering `Revoked` for
/// `TOMBSTONE_SECONDS`, which purge removes a minute (the clock slack)
/// after that; an expired one's goes at its retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_chosen_by_url_purges_through_the_trait() {
    use token_refresh::ledger::{LedgerOptions, LedgerUrl, Revocation, TOMBSTONE_SECONDS};
    with_schema("url_purge", |schema, _| async move {
        let url: LedgerUrl = url().parse().unwrap();
        let connected = url.connect(&LedgerOptions::new().name(schema.as_str())).await.unwrap();
        assert_eq!(connected.description, format!("postgres, schema {schema}"));
        let ledger = connected.ledger;
        let t = now();

        // Five logins at a cap of two: three evicted, their rows deleted.
        let mut kept = Vec::new();
        for _ in 0..5 {
            let new = new_session("eve@mail.com", t, 2);
            ledger.create(&new).await.unwrap();
            kept.push(new);
        }
        assert_eq!(session_rows(&schema).await, 2, "the evicted sessions' rows went with their eviction");
        let evicted = ledger.rotate(&rotation_of("eve@mail.com", kept[0].pair.refresh_id, t)).await.unwrap();
        assert_eq!(evicted, Rotation::Unknown, "an evicted session's token is unknown");

        // A logout, a detected reuse, a revoke_user: tombstones.
        let logout = &kept[4];
        let revoked = ledger.revoke_session("eve@mail.com", logout.session, t).await.unwrap();
        assert_eq!(revoked, Revocation::Revoked { session: logout.session });
        let reused = new_session(SUBJECT, t, 100);
        ledger.create(&reused).await.unwrap();
        ledger.rotate(&rotation(reused.pair.refresh_id, t)).await.unwrap();
        let outcome = ledger.rotate(&rotation(reused.pair.refresh_id, t)).await.unwrap();
        assert!(matches!(outcome, Rotation::Reused { .. }), "{outcome:?}");
        for _ in 0..2 {
            ledger.create(&new_session("mallory@mail.com", t, 100)).await.unwrap();
        }
        assert_eq!(ledger.revoke_user("mallory@mail.com", t).await.unwrap(), 2);
        // A session that ended long ago, and one that lives on.
        let long_ago = t - 10 * 86_400;
        let mut old = new_session("old@mail.com", long_ago, 100);
        old.absolute_expires_at = long_ago + 1000;
        ledger.create(&old).await.unwrap();
        let live = new_session("alice@mail.com", t, 100);
        ledger.create(&live).await.unwrap();
        let before = session_rows(&schema).await;

        // Now: only the long-ended session goes; the tombstones still answer.
        let purged = SessionLedger::purge(&ledger, t).await.unwrap();
        let tombstone = ledger.rotate(&rotation_of("eve@mail.com", logout.pair.refresh_id, t)).await.unwrap();
        assert_eq!(tombstone, Rotation::Revoked { session: logout.session }, "a fresh tombstone");
        // Past the tombstones' minute and the purge's slack.
        let later = t + TOMBSTONE_SECONDS + 60;
        let purged_later = SessionLedger::purge(&ledger, later).await.unwrap();
        let after = session_rows(&schema).await;
        println!(
            "sessions rows: {before} before purge, {purged} purged at now, {purged_later} purged {} s later, {after} left",
            later - t
        );
        assert_eq!((before, purged, purged_later, after), (7, 1, 4, 2), "eve's live session and alice's are left");
        let gone = ledger.rotate(&rotation_of("eve@mail.com", logout.pair.refresh_id, later)).await.unwrap();
        assert_eq!(gone, Rotation::Unknown, "the tombstone is gone");
        let listed = ledger.sessions("eve@mail.com", later).await.unwrap();
        assert_eq!(listed.iter().map(|info| info.session).collect::<Vec<_>>(), vec![kept[3].session]);
        let outcome = ledger.rotate(&rotation_of("alice@mail.com", live.pair.refresh_id, later)).await.unwrap();
        assert!(matches!(outcome, Rotation::Rotated { .. }), "the live session is untouched: {outcome:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Stalls (security review M1): a rotation the caller gave up on never
// commits later

/// What the ledger recorded about its timeouts (features `metrics` and
/// `tracing`): one recorder and one subscriber for the whole test binary,
/// installed by the first test that asks.
struct Observed {
    #[cfg(feature = "metrics")]
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    #[cfg(feature = "tracing")]
    logs: Arc<std::sync::Mutex<Vec<u8>>>,
}

/// A `MakeWriter` keeping the log in memory.
#[cfg(feature = "tracing")]
#[derive(Clone)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "tracing")]
impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn observed() -> &'static Observed {
    static OBSERVED: std::sync::OnceLock<Observed> = std::sync::OnceLock::new();
    OBSERVED.get_or_init(|| Observed {
        #[cfg(feature = "metrics")]
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap(),
        #[cfg(feature = "tracing")]
        logs: {
            let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
            let writer = Captured(Arc::clone(&logs));
            let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            logs
        },
    })
}

/// The ledger's timeouts counted so far (0 without the `metrics` feature).
fn timeouts_counted() -> u64 {
    #[cfg(feature = "metrics")]
    {
        let rendered = observed().metrics.render();
        rendered
            .lines()
            .filter(|line| line.starts_with("token_refresh_ledger_timeouts_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
    #[cfg(not(feature = "metrics"))]
    0
}

/// Holds `session`'s row lock in a transaction of the test's own for
/// `hold`, as a slow transaction of another process would; the lock is
/// taken when this returns.
async fn hold_row_lock(schema: &str, session: SessionId, hold: Duration) -> tokio::task::JoinHandle<()> {
    let client = admin().await;
    client.batch_execute("BEGIN").await.unwrap();
    let lock = format!("SELECT 1 FROM {schema}.sessions WHERE session_id = $1 FOR UPDATE");
    client.query_one(&lock, &[session.as_uuid()]).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        client.batch_execute("COMMIT").await.unwrap();
    })
}

/// The review's M1 scenario on PostgreSQL. A session's row is locked by
/// another transaction for longer than the ledger's timeout; a client's
/// refresh and its retry after the 500 are attempted meanwhile, each given
/// up by its caller (the request deadline, `ledger timeout + 500 ms`) if the
/// ledger has not answered by then. The lock is released; then the client
/// retries once more with the same token. No attempt may have committed
/// behind the client's back: the last one rotates, and nothing is revoked.
async fn abandoned_rotations_never_commit_later(
    ledger: &PostgresLedger,
    schema: &str,
    ledger_timeout: Duration,
    attempts: u32,
) {
    let timeouts_before = timeouts_counted();
    let t = now();
    let new = new_session(SUBJECT, t, 100);
    ledger.create(&new).await.unwrap();
    let caller_deadline = ledger_timeout + Duration::from_millis(500);
    let lock = hold_row_lock(schema, new.session, caller_deadline * attempts + Duration::from_millis(500)).await;
    let mut seen = Vec::new();
    for _ in 0..attempts {
        let started = Instant::now();
        let attempt = tokio::time::timeout(caller_deadline, ledger.rotate(&rotation(new.pair.refresh_id, t + 1))).await;
        let elapsed = started.elapsed().as_millis();
        seen.push(match attempt {
            Err(_) => format!("given up by the caller after {elapsed} ms"),
            Ok(Err(error)) => format!("error after {elapsed} ms ({error})"),
            Ok(Ok(outcome)) => format!("{outcome:?} after {elapsed} ms"),
        });
    }
    lock.await.unwrap();
    // Whatever was left waiting for the lock runs now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let retry = ledger.rotate(&rotation(new.pair.refresh_id, t + 2)).await.unwrap();
    let revoked: i64 = admin()
        .await
        .query_one(&format!("SELECT count(*) FROM {schema}.sessions WHERE revoked"), &[])
        .await
        .unwrap()
        .get(0);
    let timeouts = timeouts_counted() - timeouts_before;
    println!("attempts behind the lock: {seen:?}; the retry after it: {retry:?}; sessions revoked: {revoked}");
    println!("timeouts counted: {timeouts}");
    assert!(matches!(retry, Rotation::Rotated { generation: 1, .. }), "{retry:?}");
    assert_eq!(revoked, 0, "no abandoned rotation committed later and made the retry reuse");
    assert!(seen.iter().all(|attempt| attempt.starts_with("error")), "the ledger answers first: {seen:?}");
    if cfg!(feature = "metrics") {
        assert!(timeouts >= u64::from(attempts), "every timeout is counted: {timeouts}");
    }
    #[cfg(feature = "tracing")]
    {
        let logs = String::from_utf8(observed().logs.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("WARN") && logs.contains("ledger call timed out"), "{logs}");
        assert!(!logs.contains(&new.pair.refresh_id.to_string()), "no token id is logged");
    }
}

/// On a ledger from `connect`, the server's `lock_timeout` ends the waiting
/// statement before the ledger's timeout: the client gets its 500 in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_stalled_behind_a_lock_never_commits_after_the_timeout() {
    observed();
    with_schema("stall", |schema, _| async move {
        let timeout = Duration::from_secs(1);
        let ledger = PostgresLedger::connect(&url(), options(&schema).timeout(timeout)).await.unwrap();
        abandoned_rotations_never_commit_later(&ledger, &schema, timeout, 2).await;
    })
    .await;
}

/// A pool from elsewhere has no server-side timeout of ours: the statement
/// stays queued on the lock after the ledger gave up, and the deadline the
/// rotation carries refuses it when it finally runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_stalled_on_a_pool_from_elsewhere_never_commits_after_the_timeout() {
    observed();
    with_schema("stall_pool", |schema, _| async move {
        let config: tokio_postgres::Config = url().parse().unwrap();
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager).max_size(4).build().unwrap();
        let ledger = PostgresLedger::from_pool(pool, PostgresOptions::new().schema(&schema)).unwrap();
        abandoned_rotations_never_commit_later(&ledger, &schema, Duration::from_secs(5), 1).await;
    })
    .await;
}
