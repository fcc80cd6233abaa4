//! The performance report (issue 6): one command, one markdown document.
//!
//! ```text
//! cargo bench --features aws-lc --bench report
//! ```
//!
//! It measures this build, then builds and runs itself again with
//! `RUSTFLAGS="-C target-cpu=native"` (in `<target>/native`, so the two
//! builds do not overwrite each other) and prints both side by side: on a
//! CPU with AVX-512 IFMA the native build switches curve25519-dalek's
//! verification to its IFMA backend. `REPORT_NATIVE=0` skips the second
//! build (its first compile takes several minutes).
//!
//! Every case runs in interleaved rounds (each round runs every case for a
//! short batch, in a rotating order), so slow phases of a shared machine hit
//! all cases alike. Per-case figures are medians over rounds; each ratio is
//! the median of the per-round ratios (numerator and denominator measured
//! back to back). Then: two-thread scaling of refresh beside the same figure
//! for the bare Ed25519 floor (the machine's own scaling), and heap bytes
//! per live session in `MemoryLedger`, counted by a global allocator (these
//! two do not depend on the CPU features, so only the first build runs them).
//!
//! Knobs (environment): `REPORT_ROUNDS` (default 40), `REPORT_BATCH_MS`
//! (20), `REPORT_SESSIONS` (1 000 000), `REPORT_SCALING_MS` (250),
//! `REPORT_NATIVE` (1).
// Bench code: a failed setup should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use common::{AwsLc, Chain, Crate, Floor, JsonWebToken, JwtSimple, block_on, with_aws_lc};
use token_refresh::{
    Grace, MemoryLedger, NewSession, PairClaims, Reply, Rotation, RotationRequest, SessionId, SessionLedger, TokenId,
    TokenPair,
};

// Counts heap bytes per thread (thread-local counters: no shared cache line,
// so it costs the timed cases a few ns per allocation and does not disturb
// the two-thread figure).
use allocation_counter as _;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

struct Case<'a> {
    name: &'static str,
    run: Box<dyn FnMut() + 'a>,
    batch: u64,
    /// Thread CPU time per operation, one per round (ns).
    samples: Vec<f64>,
    /// Wall time per operation, one per round (ns).
    wall: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, run: impl FnMut() + 'a) -> Self {
        Self { name, run: Box::new(run), batch: 1, samples: Vec::new(), wall: Vec::new() }
    }

    /// Runs `n` operations; returns (CPU, wall) nanoseconds per operation.
    fn time(&mut self, n: u64) -> (f64, f64) {
        let (cpu, wall) = (ThreadTime::now(), Instant::now());
        for _ in 0..n {
            (self.run)();
        }
        let (cpu, wall) = (cpu.elapsed(), wall.elapsed());
        (cpu.as_nanos() as f64 / n as f64, wall.as_nanos() as f64 / n as f64)
    }

    /// Warms up and sizes the batch to about `target` of CPU time.
    fn calibrate(&mut self, target: Duration) {
        let mut n = 1;
        let per_op = loop {
            let (cpu, _) = self.time(n);
            if cpu * n as f64 >= target.as_nanos() as f64 / 4.0 {
                break cpu;
            }
            n *= 2;
        };
        self.batch = ((target.as_nanos() as f64 / per_op).ceil() as u64).max(1);
    }
}

fn measure_cases(cases: &mut [Case<'_>], rounds: usize, batch: Duration) {
    for case in cases.iter_mut() {
        case.calibrate(batch);
    }
    let count = cases.len();
    for round in 0..rounds {
        for k in 0..count {
            let case = &mut cases[(round + k) % count];
            let n = case.batch;
            let (cpu, wall) = case.time(n);
            case.samples.push(cpu);
            case.wall.push(wall);
        }
        if round % 10 == 9 {
            eprintln!("  round {}/{rounds}", round + 1);
        }
    }
}

fn samples<'c>(cases: &'c [Case<'_>], name: &str) -> &'c [f64] {
    &cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}")).samples
}

/// Per-round ratios of `f(round)` to `g(round)`.
fn ratios(num: impl Fn(usize) -> f64, den: impl Fn(usize) -> f64, rounds: usize) -> Vec<f64> {
    (0..rounds).map(|r| num(r) / den(r)).collect()
}

const REFRESH: &str = "refresh (token-refresh)";
const FLOOR: &str = "floor: 2 × sign + the crate's check (verify + R check)";
const FLOOR_STRICT: &str = "floor: 2 × sign + verify_strict";
const REFRESH_AWS: &str = "refresh (token-refresh, aws-lc signer)";
const FLOOR_AWS: &str = "floor: 2 × aws-lc sign + the crate's check";
const FLOOR_PLAIN: &str = "floor: 2 × sign + verify";
const JWT: &str = "refresh (jsonwebtoken, aws-lc-rs)";
const SIMPLE: &str = "refresh (jwt-simple, pure-rust)";
const ISSUE: &str = "issue";
const SIGN2: &str = "2 × sign";
const VERIFY_ACCESS: &str = "verify_access";
const DECODE: &str = "decode (parse + verify + claims)";
const SIGN: &str = "dalek sign";
const VERIFY_STRICT: &str = "dalek verify_strict";
const VERIFY: &str = "dalek verify";
const VERIFY_BYTES: &str = "dalek verify + R small-order byte check";
const AWS_SIGN: &str = "aws-lc-rs sign";
const AWS_VERIFY: &str = "aws-lc-rs verify";
const R_REFRESH_FLOOR: &str = "refresh / floor (2 × sign + the crate's check)";
const R_AWS_FLOOR: &str = "refresh (aws-lc signer) / its floor";
const R_AWS_JWT: &str = "refresh (aws-lc signer) / jsonwebtoken";
const R_REFRESH_JWT: &str = "refresh / jsonwebtoken";
const R_REFRESH_SIMPLE: &str = "refresh / jwt-simple";
const R_VERIFY_ACCESS: &str = "verify_access / verify";
const RANDOM_ID: &str = "TokenId::random (uuid v4, getrandom)";
const ENVELOPE: &str = "Reply::from_result (200 envelope)";

/// Set (to a file path) in the native child: measure timings only and
/// write the summary there.
const CHILD_SUMMARY: &str = "REPORT_CHILD_SUMMARY";

/// What the side-by-side table needs from one build.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Summary {
    /// Median µs per operation, by case name.
    cases: BTreeMap<String, f64>,
    /// Median of paired per-round ratios, by ratio name.
    ratios: BTreeMap<String, f64>,
    /// Whether curve25519-dalek was compiled with its IFMA backend.
    ifma: bool,
}

fn main() {
    let rounds = env_or("REPORT_ROUNDS", 40) as usize;
    let batch = Duration::from_millis(env_or("REPORT_BATCH_MS", 20));
    let sessions = env_or("REPORT_SESSIONS", 1_000_000);
    let scaling = Duration::from_millis(env_or("REPORT_SCALING_MS", 250));

    if let Ok(path) = std::env::var(CHILD_SUMMARY) {
        let summary = time_cases(rounds, batch);
        std::fs::write(path, serde_json::to_vec(&summary).expect("summary json")).expect("write summary");
        return;
    }
    // The native build first: its compile would disturb our measurements.
    let native = if env_or("REPORT_NATIVE", 1) == 1 { run_native() } else { Err("skipped (REPORT_NATIVE=0)".into()) };

    println!("# token-refresh performance report\n");
    println!("## Default build\n");
    let default = time_cases(rounds, batch);
    let ours = Crate::new();
    let floor = Floor::new(&ours.long_lived);
    print_scaling(&ours, &floor, scaling);
    print_memory(sessions);
    match &native {
        Ok((markdown, _)) => {
            println!("\n## Built with `-C target-cpu=native`\n");
            print!("{markdown}");
        }
        Err(why) => println!("\n## Built with `-C target-cpu=native`\n\nNot measured: {why}."),
    }
    print_side_by_side(&default, native.as_ref().ok().map(|(_, summary)| summary));
}

/// Builds and runs this report with `-C target-cpu=native` in a separate
/// target directory; returns its markdown and summary.
fn run_native() -> Result<(String, Summary), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // <target>/release/deps/report-<hash>
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| exe.ancestors().nth(3).map(PathBuf::from))
        .ok_or("cannot locate the target directory")?;
    let summary_path = target.join("report-native-summary.json");
    let _ = std::fs::remove_file(&summary_path);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("native build: {} (RUSTFLAGS=\"-C target-cpu=native\")", target.join("native").display());
    let output = Command::new(cargo)
        .args(["bench", "--features", "aws-lc", "--bench", "report"])
        .env("RUSTFLAGS", "-C target-cpu=native")
        .env("CARGO_TARGET_DIR", target.join("native"))
        .env(CHILD_SUMMARY, &summary_path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("the native build failed ({})", output.status));
    }
    let summary = std::fs::read(&summary_path).map_err(|e| format!("no summary from the native run: {e}"))?;
    let summary = serde_json::from_slice(&summary).map_err(|e| e.to_string())?;
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), summary))
}

/// The timed cases: prints their tables and returns the summary.
fn time_cases(rounds: usize, batch: Duration) -> Summary {
    let ours = Crate::new();
    let floor = Floor::new(&ours.long_lived);
    let jwt = JsonWebToken::new();
    let simple = JwtSimple::new();
    let aws = AwsLc::new(floor.access_input());
    let access_header = format!("Bearer {}", ours.long_lived.access_token);
    let refresh_token = ours.long_lived.refresh_token.clone();
    let reply_input: Result<TokenPair, token_refresh::Error> = Ok(ours.long_lived.clone());

    let ours_aws = with_aws_lc();
    let mut ours_chain = Chain::new(&ours);
    let mut aws_chain = Chain::new(&ours_aws);
    let mut jwt_chain = Chain::new(&jwt);
    let mut simple_chain = Chain::new(&simple);
    let mut cases = vec![
        Case::new(REFRESH, || {
            black_box(ours_chain.step());
        }),
        Case::new(FLOOR, || {
            black_box(floor.sign_pair());
            black_box(floor.verify_small_order_bytes());
        }),
        Case::new(FLOOR_STRICT, || {
            black_box(floor.floor_strict());
        }),
        Case::new(REFRESH_AWS, || {
            black_box(aws_chain.step());
        }),
        Case::new(FLOOR_AWS, || {
            black_box(aws.sign());
            black_box(aws.sign());
            black_box(floor.verify_small_order_bytes());
        }),
        Case::new(FLOOR_PLAIN, || {
            black_box(floor.floor_plain());
        }),
        Case::new(JWT, || {
            black_box(jwt_chain.step());
        }),
        Case::new(SIMPLE, || {
            black_box(simple_chain.step());
        }),
        Case::new(ISSUE, || {
            black_box(ours.issue());
        }),
        Case::new(SIGN2, || {
            black_box(floor.sign_pair());
        }),
        Case::new(VERIFY_ACCESS, || {
            black_box(ours.verify_access(black_box(access_header.as_bytes())));
        }),
        Case::new(DECODE, || {
            black_box(ours.decode(black_box(&refresh_token)));
        }),
        Case::new(SIGN, || {
            black_box(floor.sign());
        }),
        Case::new(VERIFY_STRICT, || {
            black_box(floor.verify_strict());
        }),
        Case::new(VERIFY, || {
            black_box(floor.verify());
        }),
        Case::new(VERIFY_BYTES, || {
            black_box(floor.verify_small_order_bytes());
        }),
        Case::new(AWS_SIGN, || {
            black_box(aws.sign());
        }),
        Case::new(AWS_VERIFY, || {
            black_box(aws.verify());
        }),
        Case::new(RANDOM_ID, || {
            black_box(TokenId::random());
        }),
        Case::new(ENVELOPE, || {
            black_box(Reply::from_result(black_box(&reply_input)).into_body());
        }),
    ];
    eprintln!("timing {} cases: {rounds} rounds of ~{} ms batches", cases.len(), batch.as_millis());
    measure_cases(&mut cases, rounds, batch);

    print_machine();
    println!(
        "\nMedians over {rounds} interleaved rounds (batches of ~{} ms of CPU per case per round). Times are the \
         thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time spent descheduled on a busy machine is not \
         counted; wall-clock medians are shown for reference.\n",
        batch.as_millis()
    );
    println!("| case | median µs/op (CPU) | p25–p75 µs | median µs/op (wall) |");
    println!("|---|---:|---:|---:|");
    for case in &cases {
        let s = &case.samples;
        println!(
            "| {} | {:.2} | {:.2}–{:.2} | {:.2} |",
            case.name,
            median(s) / 1e3,
            percentile(s, 0.25) / 1e3,
            percentile(s, 0.75) / 1e3,
            median(&case.wall) / 1e3
        );
    }

    let s = |name| samples(&cases, name);
    let one = |name: &'static str| move |r: usize| s(name)[r];
    let rows: Vec<(&str, Vec<f64>, &str)> = vec![
        (R_REFRESH_FLOOR, ratios(one(REFRESH), one(FLOOR), rounds), "≤ 1.05"),
        ("refresh / floor with verify_strict", ratios(one(REFRESH), one(FLOOR_STRICT), rounds), ""),
        (R_AWS_FLOOR, ratios(one(REFRESH_AWS), one(FLOOR_AWS), rounds), "≤ 1.05"),
        (R_AWS_JWT, ratios(one(REFRESH_AWS), one(JWT), rounds), "< 1"),
        ("refresh / floor (2 × sign + verify)", ratios(one(REFRESH), one(FLOOR_PLAIN), rounds), ""),
        (R_REFRESH_JWT, ratios(one(REFRESH), one(JWT), rounds), "< 1"),
        (R_REFRESH_SIMPLE, ratios(one(REFRESH), one(SIMPLE), rounds), "< 1"),
        ("verify_access / verify_strict", ratios(one(VERIFY_ACCESS), one(VERIFY_STRICT), rounds), "≤ 1.05"),
        (R_VERIFY_ACCESS, ratios(one(VERIFY_ACCESS), one(VERIFY), rounds), "≤ 1.05"),
        ("decode / verify_strict", ratios(one(DECODE), one(VERIFY_STRICT), rounds), ""),
        ("issue / (2 × sign)", ratios(one(ISSUE), one(SIGN2), rounds), ""),
        ("verify_strict / verify", ratios(one(VERIFY_STRICT), one(VERIFY), rounds), ""),
        ("(verify + R byte check) / verify_strict", ratios(one(VERIFY_BYTES), one(VERIFY_STRICT), rounds), ""),
        ("dalek sign / aws-lc-rs sign", ratios(one(SIGN), one(AWS_SIGN), rounds), ""),
        ("dalek verify_strict / aws-lc-rs verify", ratios(one(VERIFY_STRICT), one(AWS_VERIFY), rounds), ""),
    ];
    println!("\n| ratio (per-round, paired) | median | p25–p75 | target |");
    println!("|---|---:|---:|---|");
    for (name, values, target) in &rows {
        println!(
            "| {name} | {:.3} | {:.3}–{:.3} | {target} |",
            median(values),
            percentile(values, 0.25),
            percentile(values, 0.75)
        );
    }
    let overhead: Vec<f64> = (0..rounds).map(|r| s(REFRESH)[r] - s(FLOOR)[r]).collect();
    println!(
        "\nrefresh − floor: {:.2} µs per refresh (median of per-round differences; p25–p75 {:.2}–{:.2}).",
        median(&overhead) / 1e3,
        percentile(&overhead, 0.25) / 1e3,
        percentile(&overhead, 0.75) / 1e3
    );
    Summary {
        cases: cases.iter().map(|c| (c.name.to_owned(), median(&c.samples) / 1e3)).collect(),
        ratios: rows.iter().map(|(name, values, _)| ((*name).to_owned(), median(values))).collect(),
        ifma: cfg!(all(target_feature = "avx512ifma", target_feature = "avx512vl")),
    }
}

/// The table the README quotes: the targets, default build beside native.
fn print_side_by_side(default: &Summary, native: Option<&Summary>) {
    println!("\n## Side by side: default build | `-C target-cpu=native`\n");
    let cell = |summary: Option<&Summary>, pick: &dyn Fn(&Summary) -> Option<f64>, digits: usize| {
        summary.and_then(pick).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
    };
    let case = |name: &'static str| move |s: &Summary| s.cases.get(name).copied();
    let ratio = |name: &'static str| move |s: &Summary| s.ratios.get(name).copied();
    println!("| median µs per operation (CPU time) | default | native |");
    println!("|---|---:|---:|");
    for name in [
        REFRESH,
        FLOOR,
        REFRESH_AWS,
        FLOOR_AWS,
        JWT,
        SIMPLE,
        VERIFY_ACCESS,
        ISSUE,
        SIGN,
        VERIFY,
        VERIFY_BYTES,
        AWS_SIGN,
        AWS_VERIFY,
    ] {
        println!("| {name} | {} | {} |", cell(Some(default), &case(name), 2), cell(native, &case(name), 2));
    }
    println!("\n| ratio (median of paired rounds) | target | default | native |");
    println!("|---|---|---:|---:|");
    for (name, target) in [
        (R_REFRESH_FLOOR, "≤ 1.05"),
        (R_REFRESH_JWT, "< 1"),
        (R_VERIFY_ACCESS, "≤ 1.05"),
        (R_AWS_FLOOR, "≤ 1.05 (native: the hybrid floor)"),
        (R_AWS_JWT, "native with IFMA ≈ 0.6 (1.7 × faster)"),
        (R_REFRESH_SIMPLE, "< 1"),
    ] {
        println!(
            "| {name} | {target} | {} | {} |",
            cell(Some(default), &ratio(name), 3),
            cell(native, &ratio(name), 3)
        );
    }
    let ifma = |s: Option<&Summary>| s.map_or("n/a", |s| yes(s.ifma));
    println!(
        "\ncurve25519-dalek IFMA backend compiled in: default {}, native {}. Two-thread scaling and memory are \
         in the default build's section (they do not depend on CPU features).",
        ifma(Some(default)),
        ifma(native)
    );
    if native.is_some_and(|n| n.ifma) {
        println!(
            "In the native build the aws-lc signer's floor is the hybrid one: aws-lc-rs signing with dalek's \
             IFMA verification."
        );
    } else {
        println!(
            "This CPU has no AVX-512 IFMA, so the hybrid floor (aws-lc-rs signing with dalek's IFMA \
             verification) and its target cannot be measured here; the native column shows what \
             `target-cpu=native` buys on this CPU instead."
        );
    }
}

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let has = |flag: &str| cpuinfo.split_whitespace().any(|w| w == flag);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("- CPU: {model}, {cores} logical cores available");
    println!(
        "- CPU flags: avx2 {}, avx512f {}, avx512ifma {}, bmi2 {}, adx {}, sha_ni {}",
        yes(has("avx2")),
        yes(has("avx512f")),
        yes(has("avx512ifma")),
        yes(has("bmi2")),
        yes(has("adx")),
        yes(has("sha_ni"))
    );
    let why = if has("avx512ifma") && has("avx512vl") {
        "i.e. `-C target-cpu=native` on this CPU"
    } else {
        "which this CPU does not have: no build of it can use that backend here"
    };
    println!(
        "- compiled for: avx2 {}, avx512ifma {}, bmi2 {}, adx {} (curve25519-dalek uses its AVX-512 IFMA backend \
         only when built with avx512ifma + avx512vl, {why})",
        yes(cfg!(target_feature = "avx2")),
        yes(cfg!(target_feature = "avx512ifma")),
        yes(cfg!(target_feature = "bmi2")),
        yes(cfg!(target_feature = "adx"))
    );
    println!("- load average at start: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One measurement of `threads` threads, each running its own `op` (built
/// before the clock starts) for `duration`.
struct Throughput {
    /// Operations per wall-clock second, all threads.
    ops_per_s: f64,
    /// CPUs the threads actually got: CPU time / wall time, summed.
    cpus: f64,
}

fn throughput<'env, F, Op>(threads: usize, duration: Duration, make: &F) -> Throughput
where
    F: Fn() -> Op + Sync,
    Op: FnMut() + 'env,
{
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut op = make();
                    op();
                    barrier.wait();
                    let (start, cpu) = (Instant::now(), ThreadTime::now());
                    let mut count = 0_u64;
                    // Bounded in time and in count.
                    while start.elapsed() < duration && count < 10_000_000 {
                        op();
                        count += 1;
                    }
                    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu.elapsed().as_secs_f64());
                    (count as f64 / wall, cpu / wall)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).fold(
            Throughput { ops_per_s: 0.0, cpus: 0.0 },
            |acc, (ops, cpus)| Throughput { ops_per_s: acc.ops_per_s + ops, cpus: acc.cpus + cpus },
        )
    })
}

fn print_scaling(ours: &Crate, floor: &Floor, duration: Duration) {
    const ROUNDS: usize = 7;
    eprintln!("two-thread scaling: {ROUNDS} rounds of {} ms per measurement", duration.as_millis());
    let refresh_op = || {
        let mut chain = Chain::new(ours);
        move || {
            black_box(chain.step());
        }
    };
    let floor_op = || {
        move || {
            black_box(floor.floor_strict());
        }
    };
    let (mut r1, mut r2, mut f1, mut f2) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        r1.push(throughput(1, duration, &refresh_op));
        r2.push(throughput(2, duration, &refresh_op));
        f1.push(throughput(1, duration, &floor_op));
        f2.push(throughput(2, duration, &floor_op));
    }
    let ops = |v: &[Throughput]| v.iter().map(|t| t.ops_per_s).collect::<Vec<_>>();
    let cpus = |v: &[Throughput]| v.iter().map(|t| t.cpus).collect::<Vec<_>>();
    let per_cpu = |v: &[Throughput]| v.iter().map(|t| t.ops_per_s / t.cpus).collect::<Vec<_>>();
    let paired = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>();
    let (rs, fs) = (paired(&ops(&r2), &ops(&r1)), paired(&ops(&f2), &ops(&f1)));
    let (re, fe) = (paired(&per_cpu(&r2), &per_cpu(&r1)), paired(&per_cpu(&f2), &per_cpu(&f1)));
    println!("\n### Two threads, in-memory ledger (independent sessions)\n");
    println!(
        "Median of {ROUNDS} interleaved rounds of {} ms per figure. \"CPUs\" is what the threads actually got \
         (their CPU time ÷ wall time): on a shared machine two threads rarely get two CPUs. \"per CPU\" compares \
         operations per CPU-second, which is what contention inside the process (locks, shared cache lines) \
         would lower.\n",
        duration.as_millis()
    );
    println!("| workload | 1 thread ops/s (CPUs) | 2 threads ops/s (CPUs) | 2 / 1 | per CPU 2 / 1 | target |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, one, two, scale, efficiency, target) in [
        ("refresh (token-refresh)", &r1, &r2, &rs, &re, "≥ 1.8"),
        ("floor: 2 × sign + verify_strict", &f1, &f2, &fs, &fe, "(the machine)"),
    ] {
        println!(
            "| {name} | {:.0} ({:.2}) | {:.0} ({:.2}) | {:.2} | {:.2} | {target} |",
            median(&ops(one)),
            median(&cpus(one)),
            median(&ops(two)),
            median(&cpus(two)),
            median(scale),
            median(efficiency)
        );
    }
    println!(
        "\nrefresh scaling ÷ floor scaling: {:.2} (1.00 = the ledger adds no contention beyond what the machine \
         itself shows).",
        median(&paired(&rs, &fs))
    );
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn pair(subject: String, account: String, now: i64) -> PairClaims {
    PairClaims {
        subject,
        account,
        role: "ROLE_USER".into(),
        access_id: TokenId::random(),
        access_expires_at: now + 300,
        refresh_id: TokenId::random(),
        refresh_expires_at: now + 86_400,
    }
}

/// Creates `sessions` sessions spread over `users` users; returns
/// (counted heap bytes, RSS growth) per session.
fn sessions_memory(sessions: u64, users: u64, now: i64) -> (MemoryLedger, f64, f64) {
    let ledger = MemoryLedger::new();
    let rss_before = rss_bytes();
    let info = allocation_counter::measure(|| {
        for i in 0..sessions {
            let user = i % users;
            let new = NewSession {
                session: SessionId::random(),
                pair: pair(format!("user{user}@mail.com"), format!("user{user}@acct"), now),
                created_at: now,
                absolute_expires_at: now + 30 * 86_400,
                leeway: 0,
            };
            block_on(ledger.create(&new)).expect("create");
        }
    });
    let rss = rss_bytes().saturating_sub(rss_before) as f64;
    assert_eq!(ledger.stats().sessions as u64, sessions);
    (ledger, info.bytes_current as f64 / sessions as f64, rss / sessions as f64)
}

fn print_memory(sessions: u64) {
    eprintln!("memory: {sessions} sessions");
    let now = unix_now();
    println!("\n### Memory per live session (`MemoryLedger`, {sessions} sessions)\n");
    println!("Heap bytes allocated minus freed while `SessionLedger::create` records the sessions (counting global");
    println!("allocator; requested sizes, so malloc's own headers are not included), and the process RSS growth.\n");
    println!("| sessions spread over | heap bytes / session | RSS growth / session | target |");
    println!("|---|---:|---:|---|");
    for (i, (label, users)) in
        [("one user each", sessions), ("10 sessions per user", (sessions / 10).max(1))].into_iter().enumerate()
    {
        let (ledger, heap, rss) = sessions_memory(sessions, users, now);
        // After the first row, malloc reuses what the previous ledger freed:
        // RSS growth no longer means anything.
        let rss = if i == 0 { format!("{rss:.0}") } else { "n/a".into() };
        println!("| {label} | {heap:.0} | {rss} | ≤ 256 |");
        drop(ledger);
    }

    // Rotations: each keeps the consumed token's record until that token's
    // own exp (SPEC §5), so an active session holds one record per rotation
    // of the last refresh lifetime.
    let (count, per) = ((sessions / 100).max(1), 100_u64);
    let ledger = MemoryLedger::new();
    let mut current = Vec::with_capacity(count as usize);
    for i in 0..count {
        let first = pair(format!("user{i}@mail.com"), format!("user{i}@acct"), now);
        current.push((first.subject.clone(), first.refresh_id));
        let new = NewSession {
            session: SessionId::random(),
            pair: first,
            created_at: now,
            absolute_expires_at: now + 30 * 86_400,
            leeway: 0,
        };
        block_on(ledger.create(&new)).expect("create");
    }
    // One rotation per session every 300 s (a client refreshing when its
    // access token expires): revoked access ids age out as they would.
    let info = allocation_counter::measure(|| {
        for round in 0..per {
            let now = now + 300 * i64::try_from(round).expect("small");
            for (subject, presented) in &mut current {
                let successor = pair(subject.clone(), format!("{subject}/acct"), now);
                let request = RotationRequest {
                    presented: *presented,
                    subject: subject.clone(),
                    successor,
                    now,
                    grace: Grace::default(),
                    leeway: 0,
                };
                match block_on(ledger.rotate(&request)).expect("rotate") {
                    Rotation::Rotated { pair, .. } => *presented = pair.refresh_id,
                    other => panic!("rotation refused: {other:?}"),
                }
            }
        }
    });
    let stats = ledger.stats();
    println!(
        "\nEach rotation keeps the consumed token's record until its own `exp` (SPEC §5). After {per} rotations \
         of each of {count} sessions, one every 300 s ({} token records, {} revoked access ids held), {:.0} heap \
         bytes per rotation are held. A session refreshed every 300 s holds 288 consumed-token records at steady \
         state (86 400 s refresh lifetime), about {:.0} KB.",
        stats.token_records,
        stats.revoked_access_tokens,
        info.bytes_current as f64 / (count * per) as f64,
        288.0 * info.bytes_current as f64 / (count * per) as f64 / 1000.0
    );
}
