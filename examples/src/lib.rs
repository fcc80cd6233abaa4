//! What the HTTP examples (`src/bin/{server,actix,hyper,postgres_users}.rs`)
//! share, none of it HTTP: the command line, keys, users, the `--store`
//! ledger, the announcement, metrics and signals. Nothing here logs or
//! prints a token, key, signature or store URL.

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::http::ServeOptions;
use token_refresh::keys::SecretKey;
use token_refresh::ledger::{Connected, LedgerKind, LedgerOptions, LedgerUrl};
use token_refresh::{AccessClaims, KeyId, MemoryUserStore, Policy, Reply, Signer, SystemClock, TokenService, User};
use token_refresh::{VerificationKey, time::Duration};
use zeroize::Zeroizing;

/// The session endpoint: log in (POST), refresh (PATCH), log out (DELETE).
pub const SESSION_PATH: &str = "/auth/api/v1/authentication-management/session";
/// A protected resource: who the access token belongs to.
pub const ME_PATH: &str = "/api/v1/me";
/// The public key set (RFC 8037 OKP JWKs).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Prometheus text, when the process has a recorder.
pub const METRICS_PATH: &str = "/metrics";
/// Liveness probe.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness probe (the ledger answers).
pub const READY_PATH: &str = "/readyz";
/// The demo user the `--demo` walkthrough logs in as.
pub const DEMO_EMAIL: &str = "bob@mail.com";

// The flags are a public interface: change them only compatibly.
/// A reference token-refresh service.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(
    name = "server",
    version,
    after_help = "Environment: RUST_LOG sets the log filter [default: info; with the access log:\n\
                  info,token_refresh::access=debug]. Logs go to stderr; stdout carries the\n\
                  `listening on http://ADDR` line (after `admin listening on http://ADDR` with\n\
                  --admin-listen) and the demo walkthrough."
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Ed25519 PKCS#8 PEM signing key (openssl genpkey -algorithm ed25519
    /// -out key.pem); without it a fresh key is made per start and tokens
    /// die with the process.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// Key id written into tokens and the JWKS (A-Z a-z 0-9 - _ . ~, at
    /// most 64).
    #[arg(long, value_name = "ID")]
    pub kid: Option<String>,
    /// JSON array of {"email","account","role","publicKey"} (publicKey: hex
    /// of the user's 32-byte Ed25519 login key; optional "disabled": true);
    /// without it one demo user bob@mail.com with a fresh login key, whose
    /// login body is printed.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Also accept tokens signed by this key, never sign with it (key
    /// rotation); FILE is a public key PEM (openssl pkey -pubout) or a
    /// PKCS#8 private key PEM, of which only the public half is kept; #KID
    /// gives its key id; repeatable, at most 3.
    #[arg(long = "verify-key", value_name = "FILE[#KID]", value_parser = parse_verify_key)]
    pub verify_keys: Vec<(PathBuf, Option<String>)>,
    /// Session ledger: memory (one process), redis://… or
    /// redis-cluster://HOST:PORT[,HOST:PORT…] (feature redis; the server
    /// must run maxmemory-policy noeviction) or postgres://… /
    /// postgresql://… (feature postgres; tables created at start) for
    /// several instances sharing sessions; the URL is never printed.
    #[arg(long, value_name = "URL", default_value = "memory", value_parser = StoreUrlParser)]
    pub store: LedgerUrl,
    /// PEM bundle of the CA certificates to trust for a TLS store
    /// (rediss://, rediss-cluster://, postgres://…?sslmode=verify-ca or
    /// verify-full) instead of the platform's roots; a server certificate
    /// that does not verify is refused at start.
    #[arg(long, value_name = "FILE")]
    pub store_ca: Option<PathBuf>,
    /// Redis key prefix NAME: / PostgreSQL schema NAME (a-z 0-9 _, at most
    /// 63) [default: token_refresh].
    #[arg(long, value_name = "NAME", value_parser = parse_store_prefix)]
    pub store_prefix: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value_t = default_secs(Policy::access_lifetime))]
    pub access_ttl: u32,
    /// Refresh token (idle session) lifetime in seconds.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value_t = default_secs(Policy::refresh_lifetime))]
    pub refresh_ttl: u32,
    /// Grace window for a retried refresh, 0 (off: strict rotation) to 60
    /// seconds.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value_t = default_secs(Policy::grace_window))]
    pub grace: u32,
    /// Replays of one rotation the grace window tolerates (1 to 100).
    #[arg(long, value_name = "N", allow_hyphen_values = true, default_value_t = Policy::default().grace_max_replays(),
          value_parser = clap::value_parser!(u32).range(1..=i64::from(token_refresh::policy::MAX_GRACE_REPLAYS)))]
    pub grace_replays: u32,
    /// Live sessions one user may hold; the login beyond it ends the user's
    /// session nearest its end of life.
    #[arg(long, value_name = "N", allow_hyphen_values = true, default_value_t = Policy::default().max_sessions_per_user(),
          value_parser = clap::value_parser!(u32).range(1..=i64::from(token_refresh::policy::MAX_SESSIONS_PER_USER)))]
    pub max_sessions_per_user: u32,
    /// Authentic logins one user may make per minute (a burst of N, then one
    /// every 60/N s; beyond it 429); 0 turns the limit off (load tests).
    #[arg(long, value_name = "N", allow_hyphen_values = true, default_value_t = Policy::default().login_rate_limit())]
    pub login_rate_limit: u32,
    /// Clock tolerance in seconds (0 to 300) for token expiry and the grace
    /// window's lower bound: set it to the clock skew between instances
    /// that share a ledger, or a retry on a slower instance is reuse.
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value_t = default_secs(Policy::leeway))]
    pub leeway: u32,
    /// Verify every token with an Ed25519 verification, never by
    /// re-signing it with our own key (`PolicyBuilder::verify_by_resigning(false)`):
    /// for measuring the difference, or a deployment whose key is also
    /// used by a non-deterministic signer.
    #[arg(long)]
    pub no_verify_by_resigning: bool,
    /// Open connections served at once; beyond it new connections wait in
    /// the listen queue. The open-file limit is raised at start to fit it
    /// where the hard limit allows (otherwise the cap is lowered to fit).
    #[arg(long, value_name = "N", default_value_t = 10_000, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Serve /healthz, /readyz and /metrics on this address only (an
    /// internal port for probes and scrapes; 404 on --listen); without it
    /// they share --listen. The `server` example only.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Serve the demo user and a per-start signing key on a non-loopback
    /// --listen too (refused without it: anyone reaching the address could
    /// log in as the admin).
    #[arg(long)]
    pub demo: bool,
}

/// `--store`'s parser. Not a plain function: clap quotes the refused value
/// in a function parser's error, and a store URL may carry a password.
#[derive(Debug, Clone, Copy)]
struct StoreUrlParser;

impl clap::builder::TypedValueParser for StoreUrlParser {
    type Value = LedgerUrl;

    fn parse_ref(&self, cmd: &clap::Command, _: Option<&clap::Arg>, value: &OsStr) -> Result<LedgerUrl, clap::Error> {
        let refused = |e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("--store: {e}\n"));
        value.to_str().unwrap_or_default().parse().map_err(|e| refused(e).with_cmd(cmd))
    }
}

/// `FILE` or `FILE#KID`, split at the last `#` (`FILE#`: no key id).
fn parse_verify_key(value: &str) -> Result<(PathBuf, Option<String>), String> {
    let (path, kid) = value.rsplit_once('#').map_or((value, None), |(path, kid)| (path, Some(kid)));
    if path.is_empty() {
        return Err("--verify-key needs a file: FILE or FILE#KID".to_owned());
    }
    Ok((PathBuf::from(path), kid.filter(|kid| !kid.is_empty()).map(str::to_owned)))
}

fn parse_store_prefix(name: &str) -> Result<String, String> {
    let refused = "--store-prefix: use 1 to 63 of a-z, 0-9 and _, not starting with a digit";
    LedgerOptions::is_valid_name(name).then(|| name.to_owned()).ok_or_else(|| refused.to_owned())
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The stacks that serve `--admin-listen` (the others refuse it rather
/// than serve the probes and metrics where the operator said not to).
const ADMIN_LISTEN_STACKS: [&str; 1] = ["axum"];

/// The `--admin-listen` listener's connection cap: probes and scrapes need
/// few, and they fit in the 256 files the open-file limit keeps beside the
/// API's cap.
const ADMIN_CONNECTIONS: usize = 64;

/// The service, its shutdown signal, its connection cap, and what the
/// announcement tells.
#[allow(missing_debug_implementations, reason = "the shutdown future has no Debug")]
pub struct Setup {
    /// The service every stack serves.
    pub service: TokenService,
    /// When to drain and stop.
    pub shutdown: Shutdown,
    /// The API listener's serve options (connection cap, timeouts).
    pub serve: ServeOptions,
    /// The `--admin-listen` socket, bound.
    pub admin: Option<tokio::net::TcpListener>,
    /// The demo login body, printed for `--demo`.
    pub demo_login: Option<String>,
    /// No `--signing-key`: the key is fresh and dies with the process.
    pub ephemeral_key: bool,
    /// The ledger's kind for the announcement (never its URL).
    pub store: String,
}

/// Start-up: flags, logs, metrics, keys, users, policy, the ledger
/// (inside the runtime that will serve, as its connections live there),
/// then the socket and the announcement. Usage errors exit as clap says,
/// configuration errors with 2.
pub async fn start(stack: &str) -> Result<(tokio::net::TcpListener, Setup), ExitCode> {
    let config = <Config as clap::Parser>::try_parse().map_err(|error| {
        let _ = error.print();
        ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
    })?;
    init_logging();
    std::sync::LazyLock::force(&PROMETHEUS);
    let refused = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    if config.admin_listen.is_some() && !ADMIN_LISTEN_STACKS.contains(&stack) {
        return Err(refused(format!("--admin-listen: the {stack} example does not serve it; the server example does")));
    }
    let mut setup = setup(&config).await.map_err(refused)?;
    let listener = bind(config.listen).await?;
    let admin_address = match config.admin_listen {
        Some(address) => {
            let admin = bind(address).await?;
            let bound = admin.local_addr().unwrap_or(address);
            setup.admin = Some(admin);
            Some(bound)
        }
        None => None,
    };
    announce(listener.local_addr().unwrap_or(config.listen), admin_address, &setup, stack);
    Ok((listener, setup))
}

/// A listener on `address`; exit 1 if it cannot be had.
async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ExitCode> {
    tokio::net::TcpListener::bind(address).await.map_err(|error| {
        eprintln!("error: cannot listen on {address}: {error}");
        ExitCode::FAILURE
    })
}

/// The `--admin-listen` listener's limits.
pub fn admin_serve_options() -> ServeOptions {
    ServeOptions::new().max_connections(ADMIN_CONNECTIONS)
}

/// Builds what `config` describes: the cheap checks first, then the ledger.
async fn setup(config: &Config) -> Result<Setup, String> {
    if config.store.kind() == LedgerKind::Memory && (config.store_ca.is_some() || config.store_prefix.is_some()) {
        let flag = if config.store_ca.is_some() { "--store-ca" } else { "--store-prefix" };
        return Err(format!("{flag} applies to a redis:// or postgres:// --store only"));
    }
    refuse_demo_beyond_loopback(config)?;
    let (signer, ephemeral_key) = load_signer(config)?;
    let policy = build_policy(config)?;
    let (users, demo_login) = match &config.users {
        Some(path) => (load_users(path)?, None),
        None => demo_user().map(|(user, body)| (vec![user], Some(body)))?,
    };
    let mut options = LedgerOptions::new();
    if let Some(name) = &config.store_prefix {
        options = options.name(name);
    }
    if let Some(path) = &config.store_ca {
        options = options.trust_pem(std::fs::read(path).map_err(|e| format!("--store-ca {}: {e}", path.display()))?);
    }
    let url = &config.store;
    let connected = url.connect(&options).await.map_err(|error| format!("--store {url}: {error}"))?;
    let Connected { ledger, description: store } = connected;
    let service = TokenService::new(policy, MemoryUserStore::new(users), ledger, signer, SystemClock);
    // Retention for whichever ledger --store chose (a PostgreSQL one is
    // never purged otherwise).
    tokio::spawn(service.clone().purge_every(std::time::Duration::from_secs(60)));
    let connections = usize::try_from(config.max_connections).unwrap_or(usize::MAX);
    let serve = ServeOptions::new().max_connections(connections).fit_open_file_limit();
    Ok(Setup { service, shutdown: shutdown_signal(), serve, admin: None, demo_login, ephemeral_key, store })
}

/// The demo user and a per-start key are for trying the server on one
/// machine; on an address others can reach they need `--demo`.
fn refuse_demo_beyond_loopback(config: &Config) -> Result<(), String> {
    let missing = match (&config.users, &config.signing_key) {
        (Some(_), Some(_)) => return Ok(()),
        (None, None) => "--users and --signing-key",
        (None, Some(_)) => "--users",
        (Some(_), None) => "--signing-key",
    };
    if config.listen.ip().is_loopback() || config.demo {
        return Ok(());
    }
    Err(format!(
        "--listen {}: the demo user and the per-start key serve only on loopback; give {missing}, or --demo to \
         serve them on this address anyway",
        config.listen
    ))
}

/// AWS-LC with the `aws-lc` feature (twice as fast), else ed25519-dalek.
/// The signer the servers sign with.
#[cfg(feature = "aws-lc")]
pub type ServerSigner = token_refresh::AwsLcSigner;
/// The signer the servers sign with.
#[cfg(not(feature = "aws-lc"))]
pub type ServerSigner = token_refresh::Ed25519Signer;

/// The signer's name, for the announcement.
pub const SIGNER_NAME: &str = if cfg!(feature = "aws-lc") { "aws-lc" } else { "ed25519-dalek" };

/// The signing key (or a fresh one), `--kid`, `--verify-key`s. Key files
/// are wiped after reading; messages never quote key bytes.
fn load_signer(config: &Config) -> Result<(ServerSigner, bool), String> {
    let mut signer = match &config.signing_key {
        Some(path) => {
            let failed = |e: &dyn std::fmt::Display| format!("--signing-key {}: {e}", path.display());
            let pem = std::fs::read_to_string(path).map(Zeroizing::new).map_err(|e| failed(&e))?;
            ServerSigner::new(SecretKey::from_pkcs8_pem(&pem).map_err(|e| failed(&e))?).map_err(|e| failed(&e))?
        }
        None => ServerSigner::from_seed(&random_seed()?).map_err(|e| e.to_string())?,
    };
    if let Some(kid) = &config.kid {
        let kid = KeyId::new(kid).map_err(|e| format!("--kid: {e}"))?;
        signer = signer.with_key_id(kid).map_err(|e| format!("--kid: {e}"))?;
    }
    for (path, kid) in &config.verify_keys {
        let shown =
            format!("--verify-key {}{}", path.display(), kid.as_ref().map_or(String::new(), |k| format!("#{k}")));
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?);
        let mut key = VerificationKey::from_key_document(&bytes).map_err(|e| format!("{shown}: {e}"))?;
        if let Some(kid) = kid {
            key = key.with_key_id(KeyId::new(kid).map_err(|e| format!("{shown}: {e}"))?);
        }
        signer = signer.with_verify_only_key(key).map_err(|e| format!("{shown}: {e}"))?;
    }
    Ok((signer, config.signing_key.is_none()))
}

fn random_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
    Ok(seed)
}

fn build_policy(config: &Config) -> Result<Policy, String> {
    let seconds = |value: u32| Duration::seconds(i64::from(value));
    Policy::builder()
        .access_lifetime(seconds(config.access_ttl))
        .refresh_lifetime(seconds(config.refresh_ttl))
        .grace_window(seconds(config.grace))
        .grace_max_replays(config.grace_replays)
        .max_sessions_per_user(config.max_sessions_per_user)
        .login_rate_limit(config.login_rate_limit)
        .leeway(seconds(config.leeway))
        .verify_by_resigning(!config.no_verify_by_resigning)
        .build()
        .map_err(|e| e.to_string())
}

/// A lifetime of the default policy in seconds, for the flags' defaults.
fn default_secs(lifetime: fn(&Policy) -> Duration) -> u32 {
    u32::try_from(lifetime(&Policy::default()).whole_seconds()).unwrap_or(0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserEntry {
    email: String,
    account: String,
    role: String,
    public_key: String,
    #[serde(default)]
    disabled: bool,
}

fn load_users(path: &Path) -> Result<Vec<User>, String> {
    let where_ = path.display();
    let text = std::fs::read(path).map_err(|e| format!("--users {where_}: {e}"))?;
    let entries: Vec<UserEntry> = serde_json::from_slice(&text).map_err(|e| format!("--users {where_}: {e}"))?;
    let mut users = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let key = VerificationKey::from_hex(&entry.public_key).map_err(|_| {
            let email = &entry.email;
            format!("--users {where_}: entry {index} ({email}): publicKey is not the hex of a usable Ed25519 key")
        })?;
        let user = User::new(entry.email, entry.account, entry.role).with_login_key(*key.verifying_key());
        users.push(if entry.disabled { user.disabled() } else { user });
    }
    Ok(users)
}

/// The demo user (`bob@mail.com`, account `bob@admin`, `ROLE_ADMIN`) with a
/// fresh login key, and the FIB login body signed for it (`signature`: the
/// hex Ed25519 signature of the e-mail's bytes; `publicKey`: the hex key).
fn demo_user() -> Result<(User, String), String> {
    let key = SigningKey::from_bytes(&random_seed()?);
    let user = User::new(DEMO_EMAIL, "bob@admin", "ROLE_ADMIN").with_login_key(key.verifying_key());
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (signature, public_key) =
        (hex(&key.sign(DEMO_EMAIL.as_bytes()).to_bytes()), hex(key.verifying_key().as_bytes()));
    Ok((user, format!(r#"{{"email":"{DEMO_EMAIL}","signature":"{signature}","publicKey":"{public_key}"}}"#)))
}

/// The `listening on http://ADDR` line scripts wait for (after the
/// `admin listening on http://ADDR` line, so both are known once it shows),
/// the key in the log, and for the demo user a walkthrough to paste.
fn announce(bound: SocketAddr, admin: Option<SocketAddr>, setup: &Setup, stack: &str) {
    let (policy, keys) = (setup.service.policy(), setup.service.signer().keyring().keys());
    let kid = |key: &VerificationKey| key.key_id().map_or("-", KeyId::as_str).to_owned();
    tracing::info!(
        %bound,
        stack,
        signer = SIGNER_NAME,
        key_thumbprint = %keys.first().map_or_else(String::new, VerificationKey::thumbprint),
        kid = keys.first().map_or_else(|| "-".to_owned(), kid),
        alg = policy.algorithm().as_str(),
        access_ttl = policy.access_lifetime().whole_seconds(),
        refresh_ttl = policy.refresh_lifetime().whole_seconds(),
        grace = policy.grace_window().whole_seconds(),
        grace_replays = policy.grace_max_replays(),
        store = %setup.store,
        "token-refresh listening"
    );
    for key in keys.iter().skip(1) {
        let thumbprint = key.thumbprint();
        tracing::info!(key_thumbprint = %thumbprint, kid = kid(key), "also accepting tokens signed by a verify-only key");
    }
    if setup.ephemeral_key {
        tracing::warn!(
            "no --signing-key: using a fresh random key; every token dies with this process \
             (make a key with: openssl genpkey -algorithm ed25519 -out key.pem)"
        );
    }
    if let Some(admin) = admin {
        tracing::info!(%admin, "probes and metrics on the admin listener only");
        println!("admin listening on http://{admin}");
    }
    println!("listening on http://{bound}");
    if let Some(body) = &setup.demo_login {
        // An unspecified listen address (0.0.0.0, [::]) is reached through loopback.
        let mut address = bound;
        if bound.ip().is_unspecified() {
            address.set_ip(if bound.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        println!("\nDemo user {DEMO_EMAIL} (account bob@admin, role ROLE_ADMIN) has a fresh login key.");
        println!("login body: {body}\n\nPaste into a shell (needs curl and sed):\n");
        println!("{}", walkthrough(address, body));
    }
}

/// The curl walkthrough, the same lines the README shows.
pub fn walkthrough(address: SocketAddr, login_body: &str) -> String {
    format!(
        r#"BASE=http://{address}
API=$BASE/auth/api/v1/authentication-management/session
LOGIN='{login_body}'

# Log in: 200 and a token pair.
curl -s -w '\nHTTP %{{http_code}}\n' -X POST "$API" -H 'Content-Type: application/json' -d "$LOGIN" | tee login.out
REFRESH=$(sed -nE 's/.*"refreshToken":"([^"]*)".*/\1/p' login.out)

# Refresh: 200 and a new pair; the refresh token just sent is now spent.
curl -s -w '\nHTTP %{{http_code}}\n' -X PATCH "$API" -H "Authorization: Bearer $REFRESH" | tee refresh.out
ACCESS=$(sed -nE 's/.*"accessToken":"([^"]*)".*/\1/p' refresh.out)
NEXT=$(sed -nE 's/.*"refreshToken":"([^"]*)".*/\1/p' refresh.out)

# Call a protected resource with the new access token: 200.
curl -s -w '\nHTTP %{{http_code}}\n' "$BASE/api/v1/me" -H "Authorization: Bearer $ACCESS"

# Log out: 200; the whole session is revoked.
curl -s -w '\nHTTP %{{http_code}}\n' -X DELETE "$API" -H "Authorization: Bearer $NEXT"

# After logout neither token works: 401 and 401.
curl -s -w '\nHTTP %{{http_code}}\n' -X PATCH "$API" -H "Authorization: Bearer $NEXT"
curl -s -w '\nHTTP %{{http_code}}\n' "$BASE/api/v1/me" -H "Authorization: Bearer $ACCESS""#
    )
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

/// Runs a tokio stack: [`start`], then `serve` until it returns.
pub async fn run_tokio<F, Fut>(stack: &str, serve: F) -> ExitCode
where
    F: FnOnce(tokio::net::TcpListener, Setup) -> Fut,
    Fut: Future<Output = ()>,
{
    let (listener, setup) = match start(stack).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    serve(listener, setup).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// `shutdown` for two listeners: both resolve when it does.
pub fn shutdown_twice(shutdown: Shutdown) -> (Shutdown, Shutdown) {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = sender.send(true);
    });
    // A sender gone without a word (the runtime ending) stops the loop too.
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| -> Shutdown {
        Box::pin(async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        })
    };
    (stopped(receiver.clone()), stopped(receiver))
}

/// SIGINT or SIGTERM (what orchestrators send), listened for from now
/// on: a signal sent as soon as `listening on` is printed stops the server
/// gracefully instead of killing it.
fn shutdown_signal() -> Shutdown {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
    Box::pin(async move {
        tokio::select! {
            Some(()) = async { interrupt.as_mut()?.recv().await } => tracing::info!("SIGINT: shutting down"),
            Some(()) = async { terminate.as_mut()?.recv().await } => tracing::info!("SIGTERM: shutting down"),
            else => std::future::pending::<()>().await,
        }
    })
}

/// The process's Prometheus recorder, installed at start; buckets from
/// 100 µs to 2.5 s, so latency percentiles aggregate across instances.
static PROMETHEUS: std::sync::LazyLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::LazyLock::new(|| {
        const BUCKETS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 2.5];
        let builder = metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
        builder.install_recorder().map_err(|error| tracing::warn!(%error, "no metrics recorder")).ok()
    });

/// Whether the process has a recorder: without one there is no `/metrics`
/// route (404), rather than a 200 with an empty body that a scraper would
/// take for "no traffic".
pub fn serves_metrics() -> bool {
    PROMETHEUS.is_some()
}

/// `GET /metrics` (labels are fixed words, never a token, subject or key);
/// `None` without a recorder ([`serves_metrics`]).
pub fn metrics() -> Option<String> {
    PROMETHEUS.as_ref().map(|handle| handle.render())
}

/// The `/metrics` answer's headers.
pub const METRICS_HEADERS: [(&str, &str); 2] =
    [("content-type", "text/plain; version=0.0.4"), ("cache-control", "no-store")];

/// The `/api/v1/me` answer: who a checked access token belongs to.
pub fn me(claims: &AccessClaims) -> Reply {
    #[derive(Serialize)]
    struct Me<'a> {
        sub: &'a str,
        acc: &'a str,
        role: &'a str,
    }
    Reply::ok(Me { sub: &claims.subject, acc: &claims.account, role: &claims.role })
}
