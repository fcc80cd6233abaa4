//! The Redis ledger under operating faults, each on a throwaway
//! `redis-server` this test starts on a spare loopback port and stops by
//! PID (the shared Redis is never touched): a Redis at `maxmemory`
//! (logins refused with `StoreError::full`, refreshes and logouts still
//! working, nothing written past the limit), a Redis frozen with SIGSTOP
//! for longer than the client's response timeout (no session revoked by
//! the commands queued meanwhile), and an eviction policy switched at
//! runtime (readiness fails).
//!
//! Each test prints the figure it measures (`cargo test --all-features
//! --test redis_faults -- --nocapture`). Fails, never skips, when
//! `redis-server` is missing.

// Test code: a failed set-up or check should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use token_refresh::redis::aio::MultiplexedConnection;
use token_refresh::redis::{self, AsyncCommands};
use token_refresh::{
    Error, MemoryUserStore, Policy, RedisLedger, SystemClock, TokenService, User, ledger::Revocation, ledger::Rotation,
    ledger::SessionLedger,
};
use token_refresh_test_support::ledger::{SUBJECT, new_session, now, rotation};
use token_refresh_test_support::redis_server::RedisServer;

// ---------------------------------------------------------------------------
// Throwaway servers

/// A `redis-server` this test started on a spare loopback port (stopped
/// by PID when dropped), with an async client connection.
struct Throwaway(RedisServer);

impl Throwaway {
    async fn start(extra: &[&str]) -> Self {
        Self(RedisServer::start(extra))
    }

    async fn connection(&self) -> MultiplexedConnection {
        redis::Client::open(self.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }
}

impl std::ops::Deref for Throwaway {
    type Target = RedisServer;
    fn deref(&self) -> &RedisServer {
        &self.0
    }
}

/// A field of `INFO memory`, in bytes.
async fn memory(connection: &mut MultiplexedConnection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(connection).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
}

// ---------------------------------------------------------------------------
// Logs and metrics, captured process-wide (the ledger logs from tokio's
// worker threads)

/// Everything the `tracing` subscriber wrote, and the Prometheus rendering
/// of the metrics recorded, for this test binary.
struct Captured {
    logs: Arc<Mutex<Vec<u8>>>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(logs.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        Captured { logs, metrics: metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap() }
    })
}

impl Captured {
    fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

// ---------------------------------------------------------------------------
// H2: a full Redis

/// A Redis at `maxmemory` under `noeviction`: a login is refused before it
/// writes (`StoreError::full`, a 503 through the flows), while a refresh
/// and a logout of existing sessions, which do not grow Redis, still work;
/// `used_memory` does not creep past the limit however many logins are
/// tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_refuses_logins_and_keeps_refreshing() {
    const MAXMEMORY: u64 = 8 * 1024 * 1024;
    const LOGINS: usize = 20_000;
    let server = Throwaway::start(&["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]).await;
    let ledger = RedisLedger::connect(&server.url(), "full:").await.unwrap();
    let mut raw = server.connection().await;
    let t = now();
    let kept = new_session(SUBJECT, t, 100);
    let logged_out = new_session(SUBJECT, t, 100);
    ledger.create(&kept).await.unwrap();
    ledger.create(&logged_out).await.unwrap();
    // A live Redis has run every script before it fills up: a script's
    // first call loads and compiles it (tens of kilobytes, once), which
    // would otherwise count as growth below.
    let warm = new_session(SUBJECT, t, 100);
    ledger.create(&warm).await.unwrap();
    ledger.rotate(&rotation(warm.pair.refresh_id, t)).await.unwrap();
    ledger.revoke_session(SUBJECT, warm.session, t).await.unwrap();

    // Fill Redis with plain keys until it refuses one, then with small
    // ones until it refuses again: it is then past its limit by a few
    // bytes, as a plain `SET` shows.
    let mut i = 0;
    for size in [16 * 1024, 64] {
        let filler = vec![b'x'; size];
        loop {
            i += 1;
            assert!(i < 200_000, "the filler never reached maxmemory");
            if let Err(error) = raw.set::<_, _, ()>(format!("filler:{i}"), &filler).await {
                assert_eq!(error.code(), Some("OOM"), "{error}");
                break;
            }
        }
    }
    let full = memory(&mut raw, "used_memory").await;

    let mut accepted = 0;
    let mut refused_full = 0;
    let mut other_errors = Vec::new();
    for i in 0..LOGINS {
        match ledger.create(&new_session("flood@mail.com", t + (i / 1000) as i64, 100)).await {
            Ok(_) => accepted += 1,
            Err(error) if error.is_full() => refused_full += 1,
            Err(error) => other_errors.push(error.to_string()),
        }
    }
    let after_logins = memory(&mut raw, "used_memory").await;
    let rotated = ledger.rotate(&rotation(kept.pair.refresh_id, t + 1)).await;
    let logout = ledger.revoke_session(SUBJECT, logged_out.session, t + 1).await;
    let ready = ledger.ping().await;
    let after = memory(&mut raw, "used_memory").await;
    println!(
        "full Redis (maxmemory {MAXMEMORY} B): used_memory {full} B when full; {LOGINS} logins: {accepted} \
         accepted, {refused_full} refused as full, {} other errors; used_memory {after_logins} B after them \
         ({} B past maxmemory); refresh {rotated:?}; logout {logout:?}; ping {ready:?}",
        other_errors.len(),
        after_logins.saturating_sub(MAXMEMORY),
    );
    other_errors.truncate(3);
    // Redis's own memory moves by a few kilobytes (client buffers shrink
    // in its cron), and each time it dips under the limit a login gets
    // through, then the next is refused again: memory stays at the limit.
    assert!(other_errors.is_empty(), "logins fail as full, nothing else: {other_errors:?}");
    assert!(accepted < LOGINS / 100, "{accepted} of {LOGINS} logins accepted at maxmemory");
    assert!(after_logins <= MAXMEMORY + 64 * 1024, "used_memory {after_logins} B past maxmemory {MAXMEMORY} B");
    // A refused login writes nothing.
    loop {
        let keys: i64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        let login = ledger.create(&new_session("flood@mail.com", t + 30, 100)).await;
        let keys_after: i64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        if let Err(error) = login {
            assert!(error.is_full(), "{error}");
            assert_eq!(keys_after, keys, "a refused login wrote nothing");
            break;
        }
    }
    assert!(matches!(rotated, Ok(Rotation::Rotated { .. })), "a refresh still works: {rotated:?}");
    assert_eq!(logout.unwrap(), Revocation::Revoked { session: logged_out.session }, "a logout still works");
    assert!(after <= full + 64 * 1024, "used_memory grew from {full} to {after} B past the limit");
    let message = ready.expect_err("a full Redis is not ready").to_string();
    assert!(message.contains("maxmemory"), "the readiness error names the problem: {message}");

    // Through the flows: the login is a 503 with Retry-After, not a 500.
    let service = TokenService::new(
        Policy::default(),
        MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]),
        ledger.clone(),
        token_refresh_test_support::keys::signer(),
        SystemClock,
    );
    // (A login may get through while Redis's memory dips under the limit.)
    let mut issued = 0;
    let error = loop {
        match service.issue("bob@mail.com").await {
            Ok(_) => issued += 1,
            Err(error) => break error,
        }
        assert!(issued < 100, "a full ledger refuses logins");
    };
    assert!(matches!(error, Error::LedgerFull), "{error:?}");
    assert_eq!((error.status_code(), error.retry_after()), (503, Some("60")));

    // Memory freed: logins work again, and so does readiness.
    let _: () = redis::cmd("FLUSHDB").query_async(&mut raw).await.unwrap();
    ledger.create(&new_session(SUBJECT, t + 2, 100)).await.unwrap();
    ledger.ping().await.unwrap();
}

// ---------------------------------------------------------------------------
// M1: a stalled Redis

/// Eight sessions refresh while Redis is frozen (SIGSTOP) for longer than
/// the ledger's response timeout; each client retries its same token 0.5 s
/// after every error, as clients do. The commands queued in the socket run
/// when Redis resumes: without a guard the first rotates (its caller gone)
/// and the retries behind it are reuse, revoking every session. Returns
/// how many sessions no longer rotate with their current token.
async fn refresh_through_a_stall(stall: Duration, timeout: Duration) -> usize {
    const SESSIONS: usize = 8;
    let server = Throwaway::start(&[]).await;
    let ledger = RedisLedger::builder(&server.url()).prefix("stall:").timeout(timeout).connect().await.unwrap();
    let t = now();
    let mut tokens = Vec::new();
    for _ in 0..SESSIONS {
        let new = new_session(SUBJECT, t, 100);
        ledger.create(&new).await.unwrap();
        // One refresh each before the stall, as live clients do: it also
        // loads the rotation script, so the queued calls find it (an
        // unloaded script would answer NOSCRIPT to every queued call).
        let Rotation::Rotated { pair, .. } = ledger.rotate(&rotation(new.pair.refresh_id, t)).await.unwrap() else {
            panic!("the first refresh rotates")
        };
        tokens.push(pair.refresh_id);
    }

    server.signal("STOP");
    let stopped = Instant::now();
    let tasks: Vec<_> = tokens
        .iter()
        .map(|&token| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut errors = 0;
                loop {
                    match ledger.rotate(&rotation(token, now())).await {
                        Ok(outcome) => return (outcome, errors),
                        Err(_) => errors += 1,
                    }
                    // Bounded: a stalled Redis answers after its SIGCONT.
                    assert!(errors < 200, "still failing after {errors} attempts");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(stall).await;
    server.signal("CONT");
    let frozen = stopped.elapsed();

    let mut lost = 0;
    let mut outcomes = Vec::new();
    for (task, token) in tasks.into_iter().zip(&tokens) {
        let (outcome, errors) = tokio::time::timeout(Duration::from_secs(60), task).await.unwrap().unwrap();
        // The session must still rotate with its current token.
        let current = match &outcome {
            Rotation::Rotated { pair, .. } => pair.refresh_id,
            _ => *token,
        };
        let next = ledger.rotate(&rotation(current, now())).await.unwrap();
        if !matches!((&outcome, &next), (Rotation::Rotated { .. }, Rotation::Rotated { .. })) {
            lost += 1;
        }
        outcomes.push((short(&outcome), errors));
    }
    println!(
        "stall of {:.1} s at a response timeout of {} ms: {lost} of {SESSIONS} sessions revoked; \
         (first answer after the stall, errors before it): {outcomes:?}",
        frozen.as_secs_f64(),
        timeout.as_millis()
    );
    lost
}

fn short(outcome: &Rotation) -> &'static str {
    match outcome {
        Rotation::Rotated { .. } => "rotated",
        Rotation::Replayed { .. } => "replayed",
        Rotation::Reused { .. } => "reused",
        Rotation::Unknown => "unknown",
        Rotation::Revoked { .. } => "revoked",
        Rotation::Expired { .. } => "expired",
        _ => "other",
    }
}

/// A 5 s stall at a 1 s response timeout: the same mechanism as the 20 s
/// stall at the default 5 s below (several timeouts and retries queued
/// behind each other), in a quarter of the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_revokes_no_session() {
    let captured = captured();
    let lost = refresh_through_a_stall(Duration::from_secs(5), Duration::from_secs(1)).await;
    assert_eq!(lost, 0, "sessions revoked by the stall");
    let logs = captured.logs();
    assert!(logs.contains("WARN") && logs.contains("timed out"), "the timeouts were logged: {logs}");
    let rendered = captured.metrics.render();
    let timeouts: f64 = rendered
        .lines()
        .filter(|line| line.starts_with("token_refresh_ledger_timeouts_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(timeouts >= 8.0, "every session's first attempt timed out and was counted: {rendered}");
}

/// The review's reproduction, as issue 23 words it: a 20 s SIGSTOP at the
/// default 5 s timeout (runs beside the other tests of this file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_second_stall_revokes_no_session() {
    let lost = refresh_through_a_stall(Duration::from_secs(20), Duration::from_secs(5)).await;
    assert_eq!(lost, 0, "sessions revoked by the stall");
}

// ---------------------------------------------------------------------------
// L1: an eviction policy switched at runtime

/// Waits until `ping` fails (or, with `ready`, succeeds), at most
/// `within`; returns the last answer and how long it took.
async fn ping_until(ledger: &RedisLedger, ready: bool, within: Duration) -> (Result<(), String>, Duration) {
    let started = Instant::now();
    loop {
        let answer = ledger.ping().await.map_err(|error| error.to_string());
        if answer.is_ok() == ready || started.elapsed() > within {
            return (answer, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_policy(connection: &mut MultiplexedConnection, policy: &str) {
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query_async(connection).await.unwrap();
}

/// `maxmemory-policy` switched to an evicting one after connect (a `CONFIG
/// SET`, a restart or failover with another configuration): readiness
/// fails within the re-check interval, naming the setting, and a WARN says
/// so; switched back, it recovers. A ledger whose check was skipped does
/// not re-check either.
async fn policy_switch(server: &Throwaway, target: &str) {
    let captured = captured();
    let interval = Duration::from_millis(500);
    let ledger =
        RedisLedger::builder(target).prefix("policy:").policy_recheck_interval(interval).connect().await.unwrap();
    let skipping = RedisLedger::builder(target)
        .prefix("policy:")
        .policy_recheck_interval(interval)
        .skip_eviction_policy_check()
        .connect()
        .await
        .unwrap();
    ledger.ping().await.unwrap();
    let mut admin = server.connection().await;

    set_policy(&mut admin, "allkeys-lru").await;
    let (answer, after) = ping_until(&ledger, false, interval * 4).await;
    let message = answer.expect_err("an evicting Redis is not ready");
    println!("{target}: readiness failed {after:?} after the switch to allkeys-lru: {message}");
    assert!(after <= interval * 2, "noticed within the re-check interval, not after {after:?}");
    assert!(message.contains("allkeys-lru") && message.contains("noeviction"), "{message}");
    if target.starts_with("redis-cluster://") {
        assert!(message.contains(&server.port.to_string()), "names the node: {message}");
    }
    let logs = captured.logs();
    assert!(
        logs.lines().any(|line| line.contains("WARN") && line.contains("allkeys-lru")),
        "a WARN names the setting: {logs}"
    );
    skipping.ping().await.expect("a ledger that skips the policy check does not re-check it");

    set_policy(&mut admin, "noeviction").await;
    let (answer, after) = ping_until(&ledger, true, interval * 4).await;
    assert!(answer.is_ok(), "ready again {after:?} after the switch back: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_policy_switched_at_runtime_fails_readiness() {
    let server = Throwaway::start(&["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]).await;
    policy_switch(&server, &server.url()).await;
}

/// The same on a (one-node, private) Redis Cluster: every primary is
/// re-checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_policy_switched_at_runtime_fails_readiness_on_a_cluster() {
    let dir = std::env::temp_dir().join(format!("tr-faults-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("nodes.conf");
    let server = Throwaway::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        config.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--maxmemory-policy",
        "noeviction",
    ])
    .await;
    let mut admin = server.connection().await;
    let _: () = redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(0).arg(16383).query_async(&mut admin).await.unwrap();
    for _ in 0..100 {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut admin).await.unwrap();
        if info.contains("cluster_state:ok") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    policy_switch(&server, &format!("redis-cluster://127.0.0.1:{}", server.port)).await;
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
