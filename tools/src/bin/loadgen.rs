//! Load generator for the session endpoint: logs in N sessions, then drives
//! chained refreshes on all of them concurrently for a while, and reports
//! requests/s, p50/p99 latency and the non-200 count.
//!
//! ```text
//! # against the example server (cargo run --release -p token-refresh-examples --bin server):
//! cargo run --release -p token-refresh-tools --bin loadgen -- --login-body login.json --sessions 64 --duration 10
//! # self-contained: an in-process stub server backed by this crate's
//! # in-memory stores, on 127.0.0.1 (client and server share the cores):
//! cargo run --release -p token-refresh-tools --bin loadgen -- --stub --sessions 64 --duration 10
//! ```
//!
//! Login (`POST`, body `{email, signature, publicKey}`) needs the user's
//! private key, so the body is given: `--login-body '{"email":…}'` or
//! `--login-body FILE`; repeat it to spread sessions over several bodies
//! (round robin). The same body can log in any number of sessions. Each
//! session then `PATCH`es with `Authorization: Bearer <refresh>` and uses
//! the returned refresh token for its next request. A non-200 refresh is
//! counted and the session logs in again.
//!
//! Targets are restricted to loopback addresses, and every run is bounded
//! in time (`--duration`, at most 300 s) and in requests (`--max-requests`).
// Example code: a failed setup should stop the run loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use token_refresh::{
    Ed25519Signer, Envelope, MemoryLedger, MemoryUserStore, Policy, Reply, SystemClock, TokenPair, TokenService, User,
};

const PATH: &str = "/auth/api/v1/authentication-management/session";
const MAX_DURATION: Duration = Duration::from_secs(300);

/// Drives chained refreshes against a local session endpoint and reports
/// requests/s, p50/p99 latency and the non-200 count.
#[derive(Debug, clap::Parser)]
#[command(name = "loadgen", version)]
#[command(group = clap::ArgGroup::new("logins").required(true).args(["login_body", "stub"]))]
struct Options {
    /// The session endpoint (loopback only).
    #[arg(long, default_value_t = format!("http://127.0.0.1:8080{PATH}"))]
    url: String,
    /// Concurrent sessions, each a chain of refreshes.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    sessions: u16,
    /// How long to run, in seconds (at most 300).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_duration)]
    duration: f64,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// A login body (JSON, or a file holding it); repeat to spread sessions
    /// over several users (round robin).
    #[arg(long, value_name = "JSON|FILE", value_parser = read_login_body)]
    login_body: Vec<String>,
    /// Serve an in-process stub server on this crate's in-memory stores and
    /// load it (client and server share the cores).
    #[arg(long)]
    stub: bool,
}

fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if seconds > 0.0 && seconds <= MAX_DURATION.as_secs_f64() {
        Ok(seconds)
    } else {
        Err(format!("from 0 to {} seconds", MAX_DURATION.as_secs()))
    }
}

fn read_login_body(value: &str) -> Result<String, String> {
    if value.trim_start().starts_with('{') {
        Ok(value.to_owned())
    } else {
        std::fs::read_to_string(value).map_err(|e| format!("reading {value}: {e}"))
    }
}

/// Only loopback targets: this tool must never load anything but a local
/// server.
fn check_loopback(url: &str) -> Uri {
    let Ok(uri) = url.parse::<Uri>() else {
        eprintln!("bad URL {url}");
        std::process::exit(2)
    };
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if uri.scheme_str() != Some("http") || !loopback {
        eprintln!("refusing {url}: only http:// on loopback (127.0.0.0/8, localhost, [::1]) is allowed");
        std::process::exit(2)
    }
    uri
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One request; `Ok((status, body))`, or `Err` on a transport failure.
async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

fn refresh_token_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Envelope<TokenPair>>(body).ok()?.data.map(|pair| pair.refresh_token)
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    non_200: u64,
    transport_errors: u64,
    logins: u64,
    failed_logins: u64,
}

struct Shared {
    client: HttpClient,
    uri: Uri,
    issued: AtomicU64,
    max_requests: u64,
    deadline: Instant,
}

impl Shared {
    /// Takes one request from the budget; `false` once time or count is up.
    fn take(&self) -> bool {
        Instant::now() < self.deadline && self.issued.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }

    async fn login(&self, body: &str, tally: &mut Tally) -> Option<String> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        tally.logins += 1;
        match send(&self.client, request).await {
            Ok((StatusCode::OK, body)) => refresh_token_of(&body),
            Ok((status, body)) => {
                if tally.failed_logins == 0 {
                    eprintln!("login refused: {status} {}", String::from_utf8_lossy(&body));
                }
                tally.failed_logins += 1;
                None
            }
            Err(e) => {
                tally.failed_logins += 1;
                tally.transport_errors += 1;
                if tally.failed_logins == 1 {
                    eprintln!("login failed: {e}");
                }
                None
            }
        }
    }
}

/// One session: log in, then refresh with each returned token until the
/// budget is spent.
async fn run_session(shared: Arc<Shared>, login_body: String) -> Tally {
    let mut tally = Tally::default();
    let mut token = None;
    while shared.take() {
        let current = match token.take() {
            Some(t) => t,
            None => match shared.login(&login_body, &mut tally).await {
                Some(t) => t,
                None => {
                    // Do not spin on a refusing server.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let request = Request::builder()
            .method(Method::PATCH)
            .uri(shared.uri.clone())
            .header(AUTHORIZATION, format!("Bearer {current}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let start = Instant::now();
        let outcome = send(&shared.client, request).await;
        tally.latencies_us.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
        match outcome {
            Ok((StatusCode::OK, body)) => token = refresh_token_of(&body),
            Ok(_) => tally.non_200 += 1,
            Err(_) => {
                tally.non_200 += 1;
                tally.transport_errors += 1;
            }
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------- the stub server

struct Stub {
    service: TokenService,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A minimal server for the session endpoint on 127.0.0.1 (random port),
/// backed by this crate's in-memory stores. Returns its URL and a login
/// body for its one user.
async fn start_stub() -> (String, String) {
    let email = "bob@mail.com";
    let user_key = SigningKey::from_bytes(&[0x42; 32]);
    let login_body = serde_json::json!({
        "email": email,
        "signature": hex(&user_key.sign(email.as_bytes()).to_bytes()),
        "publicKey": hex(user_key.verifying_key().as_bytes()),
    })
    .to_string();
    let user = User::new(email, "bob@admin", "ROLE_ADMIN").with_login_key(user_key.verifying_key());
    let signer = Ed25519Signer::from_seed(&[0x5e; 32]).expect("server key");
    let stub = Arc::new(Stub {
        service: TokenService::new(
            Policy::default(),
            MemoryUserStore::new([user]),
            MemoryLedger::new(),
            signer,
            SystemClock,
        ),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let stub = Arc::clone(&stub);
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(request, Arc::clone(&stub)));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (format!("http://{address}{PATH}"), login_body)
}

async fn handle(request: Request<Incoming>, stub: Arc<Stub>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = if request.uri().path() != PATH {
        None
    } else if request.method() == Method::PATCH {
        let header = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes().to_vec());
        let result = stub.service.refresh(header.as_deref()).await;
        Some(Reply::from_result(&result))
    } else if request.method() == Method::POST {
        let body = Limited::new(request.into_body(), token_refresh::MAX_LOGIN_BODY + 1).collect().await;
        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
        let result = stub.service.login(&body).await;
        Some(Reply::from_result(&result))
    } else {
        None
    };
    let Some(reply) = reply else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    };
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        response = response.header(name, value);
    }
    Ok(response.body(Full::new(Bytes::from(reply.into_body()))).expect("response"))
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() {
    let mut options = <Options as clap::Parser>::parse();
    if options.stub {
        let (url, body) = start_stub().await;
        eprintln!("stub server on {url}");
        options.url = url;
        options.login_body = vec![body];
    }
    let uri = check_loopback(&options.url);
    let client: HttpClient =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(usize::from(options.sessions)).build_http();
    let shared = Arc::new(Shared {
        client,
        uri,
        issued: AtomicU64::new(0),
        max_requests: options.max_requests,
        deadline: Instant::now() + Duration::from_secs_f64(options.duration),
    });
    eprintln!(
        "{} sessions, {:.0} s, at most {} requests, against {}",
        options.sessions, options.duration, options.max_requests, options.url
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..usize::from(options.sessions))
        .map(|i| {
            let body = options.login_body[i % options.login_body.len()].clone();
            tokio::spawn(run_session(Arc::clone(&shared), body))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("session task");
        total.latencies_us.extend(tally.latencies_us);
        total.non_200 += tally.non_200;
        total.transport_errors += tally.transport_errors;
        total.logins += tally.logins;
        total.failed_logins += tally.failed_logins;
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let refreshes = total.latencies_us.len();
    println!("| metric | value |");
    println!("|---|---:|");
    println!("| sessions | {} |", options.sessions);
    println!("| refresh requests | {refreshes} |");
    println!("| refreshes/s | {:.0} |", refreshes as f64 / elapsed);
    println!("| p50 latency | {} µs |", percentile(&total.latencies_us, 0.50));
    println!("| p99 latency | {} µs |", percentile(&total.latencies_us, 0.99));
    println!("| max latency | {} µs |", total.latencies_us.last().copied().unwrap_or(0));
    println!("| non-200 refreshes | {} (transport errors {}) |", total.non_200, total.transport_errors);
    println!("| logins (failed) | {} ({}) |", total.logins, total.failed_logins);
    if refreshes == 0 || total.non_200 > 0 {
        std::process::exit(1);
    }
}
