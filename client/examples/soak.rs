//! Soak: many tasks in several processes keep one session alive against a
//! server, and count what failed.
//!
//! ```text
//! soak --base http://127.0.0.1:8080 --login-body login.json --tasks 16 --requests 150 \
//!      --processes 3 --store /tmp/soak-session.json --path /api/v1/me
//! ```
//!
//! `--processes P` OS processes (this program re-executes itself as its
//! children) share one session through a `FileTokenStore` at `--store`: one
//! login in all, one refresh per generation. In each, `--tasks T` tasks make
//! `--requests R` calls of `GET PATH` with the access token, `--interval-ms`
//! apart. A call that fails transiently (5xx, 429, a reset, a timeout, a
//! session error that keeps the session) is retried with backoff, at most
//! `--attempts` times in all; it counts as failed only when it gives up. A
//! 401 from the resource refreshes through the session (only if that token
//! is still the current one) and counts as one attempt.
//!
//! `--naive` runs the same calls the way a hand-written client without
//! single flight does: every task that finds the shared token due (or gets
//! a 401) refreshes it itself and writes the result to the shared file
//! without a lock; a refused refresh logs in again. It is here to compare.
//!
//! `--wall-clock-skew SECS` runs every process with its wall clock that
//! many seconds off (negative: behind), through `Config::wall_clock`: the
//! session never schedules by the wall clock, so the outcome must not
//! change (`tests/chaos.rs` runs ±3600).
//!
//! The last line printed is `requests=N failed=F refreshes=K` (refresh
//! requests sent, retries of lost answers included); the line before it
//! adds `logins=` and `retries=`. Exit code 0 when every request succeeded,
//! 1 otherwise, 2 for a usage error. Nothing printed carries a token.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Parser;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use token_refresh_client::{
    Config, Credentials, FileTokenStore, HyperTransport, Request, Response, SESSION_PATH, Session, StoredSession,
    TokenPair, TokenStore, Transport, TransportError, WallClock,
};
use tokio::time::Instant;

/// Soak a session endpoint: P processes × T tasks × R calls sharing one
/// session through a file store.
#[derive(Debug, Clone, Parser)]
#[command(version)]
struct Options {
    /// The server, `http://HOST:PORT` (the session endpoint is at its
    /// reference path).
    #[arg(long)]
    base: String,
    /// A file holding the signed login body (`{"email","signature","publicKey"}`).
    #[arg(long, value_name = "FILE")]
    login_body: PathBuf,
    /// Tasks per process.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    tasks: u32,
    /// Calls per task.
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    requests: u32,
    /// OS processes sharing the session.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    processes: u32,
    /// The shared session file (created if missing; its directory must
    /// exist). Remove it to start with a new login.
    #[arg(long, value_name = "FILE")]
    store: PathBuf,
    /// The resource every call gets.
    #[arg(long, default_value = "/api/v1/me")]
    path: String,
    /// Pause between a task's calls, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Attempts per call before it counts as failed.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// Timeout of one resource call, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    /// Run with the wall clock this many seconds ahead (negative: behind);
    /// the outcome must be the same.
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_hyphen_values = true)]
    wall_clock_skew: i64,
    /// Refresh the naive way (every task on its own, no lock) to compare.
    #[arg(long)]
    naive: bool,
    /// Run as one of the processes (set by the parent).
    #[arg(long, hide = true)]
    child: bool,
}

/// What one process counted.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    failed: AtomicU64,
    refreshes: AtomicU64,
    logins: AtomicU64,
    retries: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        format!(
            "logins={} retries={} requests={} failed={} refreshes={}",
            get(&self.logins),
            get(&self.retries),
            get(&self.requests),
            get(&self.failed),
            get(&self.refreshes)
        )
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    if !options.base.starts_with("http://") {
        eprintln!("soak: --base must be http://HOST:PORT");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if options.child { runtime.block_on(child(options)) } else { runtime.block_on(parent(options)) }
}

/// Starts the processes, sums their counts, prints the totals.
async fn parent(options: Options) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("soak: cannot find myself to start the processes: {error}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut children = Vec::new();
    for _ in 0..options.processes {
        let spawned = tokio::process::Command::new(&exe)
            .args(&args)
            .arg("--child")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(error) => {
                eprintln!("soak: cannot start a process: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut totals = [0u64; 5];
    let mut all_ok = true;
    for child in children {
        let output = match child.wait_with_output().await {
            Ok(output) => output,
            Err(error) => {
                eprintln!("soak: a process failed: {error}");
                all_ok = false;
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.lines().last().and_then(parse_counts) {
            Some(counts) => totals.iter_mut().zip(counts).for_each(|(total, count)| *total += count),
            None => {
                eprintln!("soak: a process printed no counts (exit {})", output.status);
                all_ok = false;
            }
        }
    }
    let [logins, retries, requests, failed, refreshes] = totals;
    println!("processes={} tasks={} logins={logins} retries={retries}", options.processes, options.tasks);
    println!("requests={requests} failed={failed} refreshes={refreshes}");
    if all_ok && failed == 0 && requests == u64::from(options.processes * options.tasks) * u64::from(options.requests) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `logins=… retries=… requests=… failed=… refreshes=…`, in that order.
fn parse_counts(line: &str) -> Option<[u64; 5]> {
    let mut counts = [0u64; 5];
    let mut fields = line.split_whitespace();
    for (count, name) in counts.iter_mut().zip(["logins", "retries", "requests", "failed", "refreshes"]) {
        *count = fields.next()?.strip_prefix(name)?.strip_prefix('=')?.parse().ok()?;
    }
    Some(counts)
}

/// One process: its tasks, then its counts as the last line.
async fn child(options: Options) -> ExitCode {
    let counts = Arc::new(Counts::default());
    let result = if options.naive { naive::run(&options, &counts).await } else { run(&options, &counts).await };
    if let Err(error) = result {
        eprintln!("soak: {error}");
        return ExitCode::FAILURE;
    }
    println!("{}", counts.line());
    ExitCode::SUCCESS
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The system clock moved by `--wall-clock-skew` seconds.
#[derive(Debug, Clone, Copy)]
struct SkewedClock(i64);

impl WallClock for SkewedClock {
    fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let skew = Duration::from_secs(self.0.unsigned_abs());
        let skewed = if self.0 >= 0 { now.checked_add(skew) } else { now.checked_sub(skew) };
        skewed.unwrap_or(now)
    }
}

/// The session's transport, counting what it sends.
#[derive(Clone)]
struct Counting {
    inner: HyperTransport,
    counts: Arc<Counts>,
}

impl Transport for Counting {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let counter = match request.call() {
            token_refresh_client::Call::Refresh => Some(&self.counts.refreshes),
            token_refresh_client::Call::Login => Some(&self.counts.logins),
            _ => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request).await
    }
}

/// The client way: one `Session` per process, shared by its tasks and, through
/// the file store, by the other processes.
async fn run(options: &Options, counts: &Arc<Counts>) -> Result<(), BoxError> {
    let credentials = Credentials::from_json(std::fs::read(&options.login_body)?)?;
    let transport = Counting { inner: HyperTransport::new(&options.base)?, counts: Arc::clone(counts) };
    let store = FileTokenStore::new(&options.store);
    // The server states its grace window with every pair; the defaults
    // assume none until it does.
    let mut attempt = 0;
    let session = loop {
        attempt += 1;
        let config = Config::default().wall_clock(SkewedClock(options.wall_clock_skew));
        match Session::resume_or_login(transport.clone(), store.clone(), &credentials, config).await {
            Ok(session) => break session,
            Err(error) if error.is_transient() && attempt < 5 => {
                tokio::time::sleep(
                    error.retry_after().unwrap_or(Duration::from_millis(200)).min(Duration::from_secs(5)),
                )
                .await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    let resources = Resources::new(options)?;
    let tasks: Vec<_> = (0..options.tasks)
        .map(|_| {
            let (session, resources, counts, options) =
                (session.clone(), resources.clone(), Arc::clone(counts), options.clone());
            tokio::spawn(async move {
                for _ in 0..options.requests {
                    let ok = call(&session, &resources, &options, &counts).await;
                    counts.requests.fetch_add(1, Ordering::SeqCst);
                    if !ok {
                        counts.failed.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(options.interval_ms)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// One call, retried while it fails transiently; `true` when it succeeded.
async fn call(session: &Session, resources: &Resources, options: &Options, counts: &Counts) -> bool {
    let mut refused = None;
    for attempt in 1..=options.attempts {
        if attempt > 1 {
            counts.retries.fetch_add(1, Ordering::SeqCst);
        }
        let token = match refused.take() {
            // The resource refused this token: refresh it if it is still current.
            Some(token) => session.on_unauthorized(&token).await,
            None => session.access_token().await,
        };
        let token = match token {
            Ok(token) => token,
            Err(error) if error.is_transient() => {
                backoff(attempt, error.retry_after()).await;
                continue;
            }
            Err(error) => {
                eprintln!("soak: {error}");
                return false;
            }
        };
        match resources.get(&token.bearer()).await {
            Ok((StatusCode::OK, _)) => return true,
            Ok((StatusCode::UNAUTHORIZED, _)) => refused = Some(token),
            Ok((status, retry_after)) if transient(status) => backoff(attempt, retry_after).await,
            Ok((status, _)) => {
                eprintln!("soak: the resource answered {status}");
                return false;
            }
            // Reset, refused, timed out: transient.
            Err(_) => backoff(attempt, None).await,
        }
    }
    false
}

fn transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}

/// 50 ms doubling up to 2 s, equal jitter; a `Retry-After` (capped at 5 s)
/// wins.
async fn backoff(attempt: u32, retry_after: Option<Duration>) {
    let delay = retry_after.map(|after| after.min(Duration::from_secs(5))).unwrap_or_else(|| {
        let base = Duration::from_millis(50).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(2));
        base / 2 + (base / 2).mul_f64(fastrand::f64())
    });
    tokio::time::sleep(delay).await;
}

/// The resource and session calls, over one connection pool.
#[derive(Clone)]
struct Resources {
    client: Client<HttpConnector, Full<Bytes>>,
    resource: http::Uri,
    session: http::Uri,
    timeout: Duration,
}

impl Resources {
    fn new(options: &Options) -> Result<Self, BoxError> {
        let base = options.base.trim_end_matches('/');
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            resource: format!("{base}{}", options.path).parse()?,
            session: format!("{base}{SESSION_PATH}").parse()?,
            timeout: Duration::from_millis(options.timeout_ms),
        })
    }

    /// `GET` the resource with `bearer`: its status and `Retry-After`.
    async fn get(&self, bearer: &str) -> Result<(StatusCode, Option<Duration>), BoxError> {
        let (status, retry_after, _) = self.send(Method::GET, &self.resource, Some(bearer), Bytes::new()).await?;
        Ok((status, retry_after))
    }

    async fn send(
        &self,
        method: Method,
        uri: &http::Uri,
        authorization: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), BoxError> {
        let mut request = http::Request::builder().method(method).uri(uri.clone());
        if let Some(authorization) = authorization {
            let mut value = HeaderValue::from_str(authorization)?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(body))?;
        let exchange = async {
            let answer = self.client.request(request).await?;
            let (parts, body) = answer.into_parts();
            let body = Limited::new(body, 64 * 1024).collect().await?.to_bytes();
            let retry_after = parts
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.trim().parse().ok())
                .map(Duration::from_secs);
            Ok::<_, BoxError>((parts.status, retry_after, body))
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| "timed out")?
    }
}

/// The hand-written client this crate replaces: a shared token, and every
/// task that finds it due refreshes it itself.
mod naive {
    use std::sync::Mutex;

    use super::*;

    /// The token every task of the process reads, and when it is due.
    struct Shared {
        pair: TokenPair,
        due: Instant,
    }

    struct Naive {
        shared: Mutex<Shared>,
        store: FileTokenStore,
        resources: Resources,
        login_body: Bytes,
        counts: Arc<Counts>,
        clock: SkewedClock,
    }

    #[derive(serde::Deserialize)]
    struct Envelope {
        data: Option<TokenPair>,
    }

    pub(super) async fn run(options: &Options, counts: &Arc<Counts>) -> Result<(), BoxError> {
        let resources = Resources::new(options)?;
        let store = FileTokenStore::new(&options.store);
        let login_body = Bytes::from(std::fs::read(&options.login_body)?);
        let clock = SkewedClock(options.wall_clock_skew);
        // One login in all, as the client does it (under the store's lock),
        // so the comparison is about refreshing only.
        let lock = store.lock().await?;
        let stored = match store.load().await? {
            Some(stored) => stored,
            None => {
                counts.logins.fetch_add(1, Ordering::SeqCst);
                let (status, _, body) =
                    resources.send(Method::POST, &resources.session, None, login_body.clone()).await?;
                let pair = pair_of(status, &body).ok_or(format!("login answered {status}"))?;
                let stored = StoredSession::received_at(1, pair, clock.now());
                store.compare_and_swap(&lock, None, Some(stored.clone())).await?;
                stored
            }
        };
        drop(lock);
        let shared =
            Mutex::new(Shared { due: due(stored.pair(), stored.age_at(clock.now())), pair: stored.pair().clone() });
        let naive = Arc::new(Naive { shared, store, resources, login_body, counts: Arc::clone(counts), clock });
        let tasks: Vec<_> = (0..options.tasks)
            .map(|_| {
                let (naive, options) = (Arc::clone(&naive), options.clone());
                tokio::spawn(async move {
                    for _ in 0..options.requests {
                        let ok = naive.call(&options).await;
                        naive.counts.requests.fetch_add(1, Ordering::SeqCst);
                        if !ok {
                            naive.counts.failed.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(options.interval_ms)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        Ok(())
    }

    fn pair_of(status: StatusCode, body: &[u8]) -> Option<TokenPair> {
        if status != StatusCode::OK {
            return None;
        }
        serde_json::from_slice::<Envelope>(body).ok()?.data
    }

    /// Due at half the lifetime, the client's schedule for short lifetimes.
    fn due(pair: &TokenPair, age: Option<Duration>) -> Instant {
        let half = Duration::from_secs(pair.expiration_time()) / 2;
        let now = Instant::now();
        match age {
            Some(age) => (now + half).checked_sub(age).unwrap_or(now),
            None => now,
        }
    }

    impl Naive {
        fn current(&self) -> (TokenPair, bool) {
            let shared = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (shared.pair.clone(), Instant::now() >= shared.due)
        }

        fn publish(&self, pair: TokenPair) {
            let mut shared = self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            shared.due = due(&pair, Some(Duration::ZERO));
            shared.pair = pair;
        }

        async fn call(&self, options: &Options) -> bool {
            let mut refused = false;
            for attempt in 1..=options.attempts {
                if attempt > 1 {
                    self.counts.retries.fetch_add(1, Ordering::SeqCst);
                }
                let (mut pair, due) = self.current();
                if due || refused {
                    match self.refresh(&pair).await {
                        Some(fresh) => pair = fresh,
                        None => {
                            backoff(attempt, None).await;
                            continue;
                        }
                    }
                }
                let bearer = format!("Bearer {}", pair.access_token());
                match self.resources.get(&bearer).await {
                    Ok((StatusCode::OK, _)) => return true,
                    Ok((StatusCode::UNAUTHORIZED, _)) => refused = true,
                    Ok((status, retry_after)) if transient(status) => backoff(attempt, retry_after).await,
                    Ok(_) => return false,
                    Err(_) => backoff(attempt, None).await,
                }
            }
            false
        }

        /// Refreshes with the token this task holds, no lock: another
        /// process's newer pair in the file is taken first; a refused
        /// refresh logs in again, as hand-written clients do.
        async fn refresh(&self, held: &TokenPair) -> Option<TokenPair> {
            if let Ok(Some(stored)) = self.store.load().await
                && stored.pair().refresh_token() != held.refresh_token()
                && stored
                    .age_at(self.clock.now())
                    .is_some_and(|age| age < Duration::from_secs(stored.pair().expiration_time()) / 2)
            {
                let pair = stored.pair().clone();
                self.publish(pair.clone());
                return Some(pair);
            }
            self.counts.refreshes.fetch_add(1, Ordering::SeqCst);
            let bearer = format!("Bearer {}", held.refresh_token());
            let resources = &self.resources;
            let answer = resources.send(Method::PATCH, &resources.session, Some(&bearer), Bytes::new()).await.ok()?;
            let pair = match answer {
                (StatusCode::OK, _, body) => pair_of(StatusCode::OK, &body)?,
                (status, _, _) if transient(status) => return None,
                _ => {
                    self.counts.logins.fetch_add(1, Ordering::SeqCst);
                    let login = resources.send(Method::POST, &resources.session, None, self.login_body.clone()).await;
                    let (status, _, body) = login.ok()?;
                    pair_of(status, &body)?
                }
            };
            self.publish(pair.clone());
            self.save(&pair).await;
            Some(pair)
        }

        /// Overwrites the file with `pair` whatever it holds (the lock is
        /// only the store's rule for writing, not a single flight).
        async fn save(&self, pair: &TokenPair) {
            let Ok(lock) = self.store.lock().await else { return };
            let stored = self.store.load().await.ok().flatten().map(|stored| stored.generation());
            let next = StoredSession::received_at(stored.unwrap_or(0) + 1, pair.clone(), self.clock.now());
            let _ = self.store.compare_and_swap(&lock, stored, Some(next)).await;
        }
    }
}
