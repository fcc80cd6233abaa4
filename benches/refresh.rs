//! Criterion benches: the refresh end to end beside its Ed25519
//! floor and two peers, plus the other flows and the primitives.
//!
//! ```text
//! cargo bench --bench refresh
//! ```
//!
//! `cargo bench --bench report` prints the same cases as one table of
//! medians and ratios; this target gives criterion's statistics per case.
//!
//! Measured in thread CPU time, not wall time: on a small shared machine a
//! benchmark thread is often descheduled, and wall-clock samples then spread
//! by 2-3x. CPU time leaves out time spent waiting for a core.
// Bench code: a failed setup should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../tools/benches/measured/mod.rs"]
mod measured;

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use measured::{AwsLc, Chain, Crate, Floor, JsonWebToken, JwtSimple};
use token_refresh_test_support::ready;

/// The benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
struct CpuTime;

static WALL: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Same unit (a duration), so the same formatting as wall time.
        WALL.formatter()
    }
}

fn refresh(c: &mut Criterion<CpuTime>) {
    // With the `metrics` feature, record into a real exporter: the cost of
    // the counters and the ledger histogram is then part of every refresh.
    #[cfg(feature = "metrics")]
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let ours = Crate::new();
    let floor = Floor::new(&ours.long_lived);
    let jwt = JsonWebToken::new();
    let simple = JwtSimple::new();
    let mut group = c.benchmark_group("refresh");
    let mut chain = Chain::new(&ours);
    group.bench_function("token-refresh", |b| b.iter(|| chain.step()));
    let service = measured::Service::new();
    let mut service_chain = Chain::new(&service);
    group.bench_function("token-refresh via TokenService (boxed parts)", |b| b.iter(|| service_chain.step()));
    group.bench_function("floor (2 sign + verify_strict)", |b| b.iter(|| floor.floor_strict()));
    group.bench_function("floor (2 sign + verify)", |b| b.iter(|| floor.floor_plain()));
    let aws_lc = measured::with_aws_lc();
    let aws = AwsLc::new(floor.access_input());
    let mut chain = Chain::new(&aws_lc);
    group.bench_function("token-refresh (aws-lc signer)", |b| b.iter(|| chain.step()));
    group.bench_function("floor (3 aws-lc sign)", |b| {
        b.iter(|| {
            black_box(aws.sign());
            black_box(aws.sign());
            black_box(aws.sign())
        })
    });
    group.bench_function("floor (2 aws-lc sign + the crate's check)", |b| {
        b.iter(|| {
            black_box(aws.sign());
            black_box(aws.sign());
            floor.verify_small_order_bytes()
        })
    });
    let mut chain = Chain::new(&jwt);
    group.bench_function("jsonwebtoken (aws-lc-rs)", |b| b.iter(|| chain.step()));
    let mut chain = Chain::new(&simple);
    group.bench_function("jwt-simple (pure-rust)", |b| b.iter(|| chain.step()));
    group.finish();
}

fn flows(c: &mut Criterion<CpuTime>) {
    let ours = Crate::new();
    let floor = Floor::new(&ours.long_lived);
    let access = format!("Bearer {}", ours.long_lived.access_token);
    let refresh = ours.long_lived.refresh_token.clone();
    let mut group = c.benchmark_group("flows");
    group.bench_function("issue", |b| b.iter(|| ours.issue()));
    group.bench_function("2 x sign", |b| b.iter(|| floor.sign_pair()));
    group.bench_function("verify_access", |b| b.iter(|| ours.verify_access(black_box(access.as_bytes()))));
    group.bench_function("decode (parse + verify + claims)", |b| b.iter(|| ours.decode(black_box(&refresh))));
    group.finish();
}

fn ed25519(c: &mut Criterion<CpuTime>) {
    let ours = Crate::new();
    let floor = Floor::new(&ours.long_lived);
    let aws = AwsLc::new(floor.access_input());
    let mut group = c.benchmark_group("ed25519");
    group.bench_function("dalek sign", |b| b.iter(|| floor.sign()));
    group.bench_function("dalek verify_strict", |b| b.iter(|| floor.verify_strict()));
    group.bench_function("dalek verify", |b| b.iter(|| floor.verify()));
    group.bench_function("dalek verify + R small-order byte check", |b| b.iter(|| floor.verify_small_order_bytes()));
    group.bench_function("aws-lc-rs sign", |b| b.iter(|| aws.sign()));
    group.bench_function("aws-lc-rs verify", |b| b.iter(|| aws.verify()));
    group.finish();
}

/// A login at the per-user cap on the memory ledger, for a user holding
/// `cap` live sessions: each login evicts the one nearest its end. The cost
/// should barely move from 100 to 10 000 sessions (O(log n), no walk of the
/// user's list).
fn ledger_cap(c: &mut Criterion<CpuTime>) {
    use token_refresh::{MemoryLedger, SessionId, ledger::NewSession, ledger::SessionLedger};
    let mut group = c.benchmark_group("memory ledger: login at the cap");
    for cap in [100_u32, 1_000, 10_000] {
        let ledger = MemoryLedger::new();
        let mut now = 1_000_000_000_i64;
        let mut login = move || {
            now += 1;
            let session = SessionId::random();
            let pair = token_refresh_test_support::ledger::pair(session, now);
            let new = NewSession {
                session,
                pair,
                created_at: now,
                absolute_expires_at: now + 30 * 86_400,
                leeway: 0,
                max_sessions_per_user: cap,
            };
            ready(ledger.create(&new)).unwrap()
        };
        for _ in 0..cap {
            assert!(login().evicted.is_empty());
        }
        group.bench_function(format!("{cap} live sessions"), |b| b.iter(|| assert_eq!(login().evicted.len(), 1)));
    }
    group.finish();
}

fn config() -> Criterion<CpuTime> {
    // Short runs: the machine is shared, so ratios from one run matter more
    // than tight absolute intervals.
    Criterion::default()
        .with_measurement(CpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = refresh, flows, ed25519, ledger_cap }
criterion_main!(benches);
