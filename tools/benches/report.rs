//! The performance report: one command, one markdown document.
//!
//! ```text
//! cargo bench -p token-refresh-tools --bench report
//! ```
//!
//! It measures this build, then builds and runs itself again with
//! `RUSTFLAGS="-C target-cpu=native"` (in `<target>/native`, so the two
//! builds do not overwrite each other) and prints both side by side: on a
//! CPU with AVX-512 IFMA the native build switches curve25519-dalek's
//! verification to its IFMA backend. `REPORT_NATIVE=0` skips the second
//! build (its first compile takes several minutes).
//!
//! The timing runs in several processes of its own (`REPORT_PROCESSES`),
//! one after another: each process gets a fresh address layout, and on the
//! machines we measured one layout can make one case 15–29 % slower than
//! another layout does, for the whole life of the process. Within a
//! process every case runs in interleaved rounds (each round runs every
//! case for a short batch, in a rotating order), so slow phases of a shared
//! machine hit all cases alike. A process's figure for a case is its median
//! over rounds; for a ratio, the median of the per-round ratios (numerator
//! and denominator measured back to back). The report gives the median over
//! processes and the lowest and highest process. Then: two-thread scaling
//! of refresh beside the same figure for the bare Ed25519 floor (the
//! machine's own scaling), and heap bytes per live session in
//! `MemoryLedger`, counted by a global allocator (these two do not depend
//! on the CPU features, so only the first build runs them).
//!
//! Knobs (environment): `REPORT_PROCESSES` (default 5), `REPORT_ROUNDS`
//! (rounds per process, 20), `REPORT_BATCH_MS` (20), `REPORT_SESSIONS`
//! (1 000 000), `REPORT_MEMORY_ROTATIONS` (rotations per session in the
//! memory table, 100), `REPORT_SCALING_MS` (250), `REPORT_NATIVE` (1),
//! `REPORT_ONLY=memory` (the memory table alone).
// Bench code: a failed setup should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod measured;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use measured::{AwsLc, Chain, Crate, Floor, Issuer, JsonWebToken, JwtSimple, plain_verification, with_aws_lc};
use token_refresh::{
    MemoryLedger, Reply, SessionId, TokenPair, ledger::Grace, ledger::NewSession, ledger::PairClaims, ledger::Rotation,
    ledger::RotationRequest, ledger::SessionLedger, token::TokenId,
};
use token_refresh_test_support::ready;

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
const REFRESH_PLAIN: &str = "refresh (token-refresh, verify_by_resigning(false))";
const REFRESH_AWS_PLAIN: &str = "refresh (token-refresh, aws-lc signer, verify_by_resigning(false))";
const FLOOR3: &str = "floor: 3 × sign (re-signing)";
const FLOOR3_AWS: &str = "floor: 3 × aws-lc sign (re-signing)";
const ISSUER_ACCESS: &str = "verify_access on the issuer (TokenService, dalek signer)";
const ISSUER_ACCESS_AWS: &str = "verify_access on the issuer (TokenService, aws-lc signer)";
const R_REFRESH_FLOOR3: &str = "refresh / its floor (3 × sign)";
const R_AWS_FLOOR3: &str = "refresh (aws-lc signer) / its floor (3 × aws-lc sign)";
const R_AWS_JWT_PLAIN: &str = "refresh (aws-lc signer, verify_by_resigning(false)) / jsonwebtoken";
const R_REFRESH_JWT_PLAIN: &str = "refresh (verify_by_resigning(false)) / jsonwebtoken";
const R_ISSUER_AWS: &str = "verify_access on the issuer (aws-lc signer) / dalek verify";
const R_ISSUER: &str = "verify_access on the issuer (dalek signer) / dalek verify";
const RANDOM_ID: &str = "TokenId::random (uuid v4, getrandom)";
const ENVELOPE: &str = "Reply::from_result (200 envelope)";

/// The cases in the order the tables list them.
const CASES: [&str; 26] = [
    REFRESH,
    REFRESH_PLAIN,
    FLOOR3,
    FLOOR,
    FLOOR_STRICT,
    REFRESH_AWS,
    REFRESH_AWS_PLAIN,
    FLOOR3_AWS,
    FLOOR_AWS,
    FLOOR_PLAIN,
    JWT,
    SIMPLE,
    ISSUE,
    SIGN2,
    VERIFY_ACCESS,
    ISSUER_ACCESS,
    ISSUER_ACCESS_AWS,
    DECODE,
    SIGN,
    VERIFY_STRICT,
    VERIFY,
    VERIFY_BYTES,
    AWS_SIGN,
    AWS_VERIFY,
    RANDOM_ID,
    ENVELOPE,
];

/// The ratios: name, numerator case, denominator case, target.
const RATIOS: [(&str, &str, &str, &str); 21] = [
    (R_AWS_JWT, REFRESH_AWS, JWT, "≤ 0.45"),
    (R_AWS_JWT_PLAIN, REFRESH_AWS_PLAIN, JWT, ""),
    (R_REFRESH_JWT, REFRESH, JWT, "≤ 0.80"),
    (R_REFRESH_JWT_PLAIN, REFRESH_PLAIN, JWT, ""),
    (R_REFRESH_FLOOR3, REFRESH, FLOOR3, "≤ 1.08"),
    (R_AWS_FLOOR3, REFRESH_AWS, FLOOR3_AWS, "≤ 1.08"),
    (R_ISSUER_AWS, ISSUER_ACCESS_AWS, VERIFY, "≤ 0.40"),
    (R_ISSUER, ISSUER_ACCESS, VERIFY, ""),
    (R_REFRESH_FLOOR, REFRESH, FLOOR, "≤ 1.05"),
    ("refresh / floor with verify_strict", REFRESH, FLOOR_STRICT, ""),
    (R_AWS_FLOOR, REFRESH_AWS, FLOOR_AWS, "≤ 1.05"),
    ("refresh / floor (2 × sign + verify)", REFRESH, FLOOR_PLAIN, ""),
    (R_REFRESH_SIMPLE, REFRESH, SIMPLE, "< 1"),
    ("verify_access / verify_strict", VERIFY_ACCESS, VERIFY_STRICT, "≤ 1.05"),
    (R_VERIFY_ACCESS, VERIFY_ACCESS, VERIFY, "≤ 1.05"),
    ("decode / verify_strict", DECODE, VERIFY_STRICT, ""),
    ("issue / (2 × sign)", ISSUE, SIGN2, ""),
    ("verify_strict / verify", VERIFY_STRICT, VERIFY, ""),
    ("(verify + R byte check) / verify_strict", VERIFY_BYTES, VERIFY_STRICT, ""),
    ("dalek sign / aws-lc-rs sign", SIGN, AWS_SIGN, ""),
    ("dalek verify_strict / aws-lc-rs verify", VERIFY_STRICT, AWS_VERIFY, ""),
];

/// Set (to a file path) in the native build: time the cases (in processes
/// of its own), print their tables and write the combined summary there.
const CHILD_SUMMARY: &str = "REPORT_CHILD_SUMMARY";
/// Set (to a file path) in one timing process: time the cases once, print
/// nothing, write this process's summary there.
const PROCESS_SUMMARY: &str = "REPORT_PROCESS_SUMMARY";

/// A figure with its spread: over rounds within one process (quartiles), or
/// over processes in a combined summary (lowest and highest process).
#[derive(Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of_rounds(values: &[f64]) -> Self {
        Self { median: median(values), low: percentile(values, 0.25), high: percentile(values, 0.75) }
    }

    /// Median, lowest and highest of per-process medians.
    fn across<'s>(medians: impl Iterator<Item = &'s Spread>) -> Option<Self> {
        let values: Vec<f64> = medians.map(|s| s.median).collect();
        let (low, high) = (values.iter().copied().reduce(f64::min)?, values.iter().copied().reduce(f64::max)?);
        Some(Self { median: median(&values), low, high })
    }
}

/// The timings of one build.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Summary {
    /// µs per operation (CPU time), by case name.
    cases: BTreeMap<String, Spread>,
    /// Wall-clock µs per operation, by case name.
    wall: BTreeMap<String, Spread>,
    /// Paired per-round ratios, by ratio name.
    ratios: BTreeMap<String, Spread>,
    /// refresh − floor (3 × sign), µs: per-round differences.
    overhead: Spread,
    /// Whether curve25519-dalek was compiled with its IFMA backend.
    ifma: bool,
}

impl Summary {
    /// One summary of several processes' timings: medians over processes.
    fn combine(runs: &[Self]) -> Self {
        let keys = |pick: fn(&Self) -> &BTreeMap<String, Spread>| {
            let names = runs.first().map(|s| pick(s).keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            names
                .into_iter()
                .filter_map(|name| {
                    Spread::across(runs.iter().filter_map(|s| pick(s).get(&name))).map(|spread| (name, spread))
                })
                .collect()
        };
        Self {
            cases: keys(|s| &s.cases),
            wall: keys(|s| &s.wall),
            ratios: keys(|s| &s.ratios),
            overhead: Spread::across(runs.iter().map(|s| &s.overhead)).unwrap_or_default(),
            ifma: runs.iter().all(|s| s.ifma),
        }
    }

    fn case(&self, name: &str) -> Option<f64> {
        self.cases.get(name).map(|s| s.median)
    }

    fn ratio(&self, name: &str) -> Option<f64> {
        self.ratios.get(name).map(|s| s.median)
    }
}

fn main() {
    let processes = env_or("REPORT_PROCESSES", 5).max(1) as usize;
    let rounds = env_or("REPORT_ROUNDS", 20).max(1) as usize;
    let batch = Duration::from_millis(env_or("REPORT_BATCH_MS", 20));
    let sessions = env_or("REPORT_SESSIONS", 1_000_000);
    let scaling = Duration::from_millis(env_or("REPORT_SCALING_MS", 250));

    if std::env::var("REPORT_ONLY").as_deref() == Ok("memory") {
        print_memory(sessions);
        return;
    }
    if let Ok(path) = std::env::var(PROCESS_SUMMARY) {
        let summary = time_cases(rounds, batch);
        std::fs::write(path, serde_json::to_vec(&summary).expect("summary json")).expect("write summary");
        return;
    }
    if let Ok(path) = std::env::var(CHILD_SUMMARY) {
        let summary = time_and_print(processes, rounds, batch);
        std::fs::write(path, serde_json::to_vec(&summary).expect("summary json")).expect("write summary");
        return;
    }
    // The native build first: its compile would disturb our measurements.
    let native = if env_or("REPORT_NATIVE", 1) == 1 { run_native() } else { Err("skipped (REPORT_NATIVE=0)".into()) };

    println!("# token-refresh performance report\n");
    println!("## Default build\n");
    let default = time_and_print(processes, rounds, batch);
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
        .args(["bench", "-p", "token-refresh-tools", "--bench", "report"])
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

/// The timed cases, measured in this process; prints nothing.
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
    let ours_plain = plain_verification(Crate::new());
    let ours_aws_plain = plain_verification(with_aws_lc());
    let issuer = Issuer::new(token_refresh::Ed25519Signer::from_seed(&token_refresh_test_support::keys::SEED).unwrap());
    let issuer_aws =
        Issuer::new(token_refresh::AwsLcSigner::from_seed(&token_refresh_test_support::keys::SEED).unwrap());
    // `issue` gets a store of its own: its sessions would fill Bob's cap
    // (100) on `ours`, and the cap evicts the chain's session (ties on
    // expiry go to the earliest login).
    let issuing = Crate::new();
    let mut ours_chain = Chain::new(&ours);
    let mut aws_chain = Chain::new(&ours_aws);
    let mut plain_chain = Chain::new(&ours_plain);
    let mut aws_plain_chain = Chain::new(&ours_aws_plain);
    let mut jwt_chain = Chain::new(&jwt);
    let mut simple_chain = Chain::new(&simple);
    let mut cases = vec![
        Case::new(REFRESH, || {
            black_box(ours_chain.step());
        }),
        Case::new(REFRESH_PLAIN, || {
            black_box(plain_chain.step());
        }),
        Case::new(FLOOR3, || {
            black_box(floor.floor_resign());
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
        Case::new(REFRESH_AWS_PLAIN, || {
            black_box(aws_plain_chain.step());
        }),
        Case::new(FLOOR3_AWS, || {
            black_box(aws.sign());
            black_box(aws.sign());
            black_box(aws.sign());
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
            black_box(issuing.issue());
        }),
        Case::new(SIGN2, || {
            black_box(floor.sign_pair());
        }),
        Case::new(VERIFY_ACCESS, || {
            black_box(ours.verify_access(black_box(access_header.as_bytes())));
        }),
        Case::new(ISSUER_ACCESS, || {
            black_box(issuer.verify_access());
        }),
        Case::new(ISSUER_ACCESS_AWS, || {
            black_box(issuer_aws.verify_access());
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

    let s = |name| samples(&cases, name);
    let micros = |values: &[f64]| values.iter().map(|v| v / 1e3).collect::<Vec<_>>();
    // A refresh's floor is three signatures now that the presented token
    // is verified by re-signing it.
    let overhead: Vec<f64> = s(REFRESH).iter().zip(s(FLOOR3)).map(|(r, f)| (r - f) / 1e3).collect();
    Summary {
        cases: cases.iter().map(|c| (c.name.to_owned(), Spread::of_rounds(&micros(&c.samples)))).collect(),
        wall: cases.iter().map(|c| (c.name.to_owned(), Spread::of_rounds(&micros(&c.wall)))).collect(),
        ratios: RATIOS
            .iter()
            .map(|(name, num, den, _)| {
                let values: Vec<f64> = s(num).iter().zip(s(den)).map(|(n, d)| n / d).collect();
                ((*name).to_owned(), Spread::of_rounds(&values))
            })
            .collect(),
        overhead: Spread::of_rounds(&overhead),
        ifma: cfg!(all(target_feature = "avx512ifma", target_feature = "avx512vl")),
    }
}

/// Times the cases in `processes` fresh processes of this binary, one after
/// another; prints the machine and the combined tables.
fn time_and_print(processes: usize, rounds: usize, batch: Duration) -> Summary {
    let exe = std::env::current_exe().expect("the report's own path");
    let runs: Vec<Summary> = (0..processes)
        .map(|i| {
            eprintln!("timing process {}/{processes}", i + 1);
            let path = std::env::temp_dir().join(format!("token-refresh-report-{}-{i}.json", std::process::id()));
            let status = Command::new(&exe)
                .arg("--bench")
                .env(PROCESS_SUMMARY, &path)
                .env_remove(CHILD_SUMMARY)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .status()
                .expect("start a timing process");
            assert!(status.success(), "timing process {} failed: {status}", i + 1);
            let bytes = std::fs::read(&path).expect("a timing process's summary");
            let _ = std::fs::remove_file(&path);
            serde_json::from_slice(&bytes).expect("summary json")
        })
        .collect();
    let summary = Summary::combine(&runs);

    print_machine();
    println!(
        "\n{processes} processes, one after another, each timing every case in {rounds} interleaved rounds \
         (batches of ~{} ms of CPU per case per round). A process's figure is its median over rounds (for a \
         ratio, the median of per-round ratios, numerator and denominator measured back to back); the tables \
         give the median over processes and the lowest and highest process. Separate processes because each \
         gets a fresh address layout, which on these machines can move one case by 15 % for the whole life \
         of a process. Times are the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time spent \
         descheduled on a busy machine is not counted; wall-clock medians are shown for reference.\n",
        batch.as_millis()
    );
    println!("| case | median µs/op (CPU) | processes: lowest–highest | median µs/op (wall) |");
    println!("|---|---:|---:|---:|");
    for name in CASES {
        if let Some(case) = summary.cases.get(name) {
            let wall = summary.wall.get(name).map_or(f64::NAN, |w| w.median);
            println!("| {name} | {:.2} | {:.2}–{:.2} | {wall:.2} |", case.median, case.low, case.high);
        }
    }
    println!("\n| ratio (per-round, paired) | median | processes: lowest–highest | target |");
    println!("|---|---:|---:|---|");
    for (name, _, _, target) in RATIOS {
        if let Some(ratio) = summary.ratios.get(name) {
            println!("| {name} | {:.3} | {:.3}–{:.3} | {target} |", ratio.median, ratio.low, ratio.high);
        }
    }
    let overhead = summary.overhead;
    println!(
        "\nrefresh − floor (3 × sign): {:.2} µs per refresh (median over processes of the per-round differences; \
         processes {:.2}–{:.2}).",
        overhead.median, overhead.low, overhead.high
    );
    summary
}

/// The table the README quotes: the targets, default build beside native.
fn print_side_by_side(default: &Summary, native: Option<&Summary>) {
    println!("\n## Side by side: default build | `-C target-cpu=native`\n");
    let cell = |summary: Option<&Summary>, pick: &dyn Fn(&Summary) -> Option<f64>, digits: usize| {
        summary.and_then(pick).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
    };
    let case = |name: &'static str| move |s: &Summary| s.case(name);
    let ratio = |name: &'static str| move |s: &Summary| s.ratio(name);
    println!("| median µs per operation (CPU time) | default | native |");
    println!("|---|---:|---:|");
    for name in [
        REFRESH,
        REFRESH_PLAIN,
        FLOOR3,
        FLOOR,
        REFRESH_AWS,
        REFRESH_AWS_PLAIN,
        FLOOR3_AWS,
        FLOOR_AWS,
        JWT,
        SIMPLE,
        VERIFY_ACCESS,
        ISSUER_ACCESS_AWS,
        ISSUE,
        SIGN,
        VERIFY,
        VERIFY_BYTES,
        AWS_SIGN,
        AWS_VERIFY,
    ] {
        println!("| {name} | {} | {} |", cell(Some(default), &case(name), 2), cell(native, &case(name), 2));
    }
    println!("\n| ratio (median over processes) | target | default | native |");
    println!("|---|---|---:|---:|");
    for (name, target) in [
        (R_AWS_JWT, "≤ 0.45"),
        (R_REFRESH_JWT, "≤ 0.80"),
        (R_REFRESH_FLOOR3, "≤ 1.08"),
        (R_AWS_FLOOR3, "≤ 1.08"),
        (R_ISSUER_AWS, "≤ 0.40"),
        (R_REFRESH_FLOOR, "≤ 1.05"),
        (R_VERIFY_ACCESS, "≤ 1.05"),
        (R_AWS_FLOOR, "≤ 1.05 (native: the hybrid floor)"),
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

fn pair(session: SessionId, subject: &str, account: &str, now: i64) -> PairClaims {
    PairClaims {
        subject: subject.to_owned(),
        account: account.to_owned(),
        role: "ROLE_USER".into(),
        access_id: session.new_token_id(),
        access_expires_at: now + 300,
        refresh_id: session.new_token_id(),
        refresh_expires_at: now + 86_400,
    }
}

/// What one layout of sessions costs in a `MemoryLedger`.
struct MemoryFigures {
    /// Heap bytes per session right after the logins.
    created: f64,
    /// Heap bytes per session after every session rotated `rotations`
    /// times, 300 s apart.
    steady: f64,
    /// Heap bytes kept per rotation (steady minus created, per rotation).
    per_rotation: f64,
    /// Process RSS growth per session, for the first layout measured.
    rss: f64,
}

/// Creates `sessions` sessions spread over `users` users, then rotates
/// each `rotations` times, 300 s apart (a client refreshing when its
/// access token expires).
fn sessions_memory(sessions: u64, users: u64, rotations: u64, now: i64) -> MemoryFigures {
    let ledger = MemoryLedger::new();
    let rss_before = rss_bytes();
    let mut current = Vec::with_capacity(sessions as usize);
    let subjects: Vec<(String, String)> =
        (0..users).map(|user| (format!("user{user}@mail.com"), format!("user{user}@acct"))).collect();
    let created = allocation_counter::measure(|| {
        for i in 0..sessions {
            let (subject, account) = &subjects[(i % users) as usize];
            let session = SessionId::random();
            let new = NewSession {
                session,
                pair: pair(session, subject, account, now),
                created_at: now,
                absolute_expires_at: now + 30 * 86_400,
                leeway: 0,
                max_sessions_per_user: 100,
            };
            current.push(((i % users) as usize, new.pair.refresh_id));
            ready(ledger.create(&new)).expect("create");
        }
    });
    let rss = rss_bytes().saturating_sub(rss_before) as f64;
    assert_eq!(ledger.stats().sessions as u64, sessions);
    let rotated = allocation_counter::measure(|| {
        for round in 1..=rotations {
            let now = now + 300 * i64::try_from(round).expect("small");
            for (user, presented) in &mut current {
                let (subject, account) = &subjects[*user];
                let request = RotationRequest {
                    presented: *presented,
                    subject: subject.clone(),
                    successor: pair(presented.session(), subject, account, now),
                    now,
                    grace: Grace::default(),
                    leeway: 0,
                };
                match ready(ledger.rotate(&request)).expect("rotate") {
                    Rotation::Rotated { pair, .. } => *presented = pair.refresh_id,
                    other => panic!("rotation refused: {other:?}"),
                }
            }
        }
    });
    assert_eq!(ledger.stats().rotations, sessions * rotations);
    let per_session = |bytes: i64| bytes as f64 / sessions as f64;
    let created_bytes = created.bytes_current;
    let steady_bytes = created_bytes + rotated.bytes_current;
    drop(current);
    drop(ledger);
    MemoryFigures {
        created: per_session(created_bytes),
        steady: per_session(steady_bytes),
        per_rotation: rotated.bytes_current as f64 / (sessions * rotations).max(1) as f64,
        rss: per_session(i64::try_from(rss as u64).unwrap_or(0)),
    }
}

fn print_memory(sessions: u64) {
    let rotations = env_or("REPORT_MEMORY_ROTATIONS", 100);
    eprintln!("memory: {sessions} sessions, {rotations} rotations each");
    let now = unix_now();
    println!("\n### Memory per live session (`MemoryLedger`, {sessions} sessions)\n");
    println!("Heap bytes allocated minus freed (counting global allocator; requested sizes, so malloc's own");
    println!("headers are not included) after the logins, and at steady state after every session rotated");
    println!("{rotations} times, 300 s apart; the process RSS growth at the logins; and the heap bytes kept per");
    println!("rotation (one record per session: the goal is 0).\n");
    println!(
        "| sessions spread over | heap B / session at login | heap B / session after rotations | kept B / rotation | RSS growth / session | target |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (i, (label, users, target)) in
        [("one user each", sessions, "≤ 320"), ("10 sessions per user", (sessions / 10).max(1), "≤ 256")]
            .into_iter()
            .enumerate()
    {
        let figures = sessions_memory(sessions, users, rotations, now);
        // After the first row, malloc reuses what the previous ledger freed:
        // RSS growth no longer means anything.
        let rss = if i == 0 { format!("{:.0}", figures.rss) } else { "n/a".into() };
        println!(
            "| {label} | {:.0} | {:.0} | {:.2} | {rss} | {target} |",
            figures.created, figures.steady, figures.per_rotation
        );
    }
}
