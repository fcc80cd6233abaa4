//! Glue shared by the HTTP examples (`server` on axum, `actix`, `hyper`) and
//! by the tests that run them in process.
//!
//! Everything that is not framework code lives here once: the command line,
//! the state (store, signer, policy, clock), the demo user, the users file,
//! routing, and the "request → [`Answer`]" handlers. A framework adapter only
//! moves the method, the path, the `Authorization` header and (for login) a
//! bounded body in, and writes an [`Answer`] out, so every stack sends the
//! same bytes.
//!
//! Nothing here logs a token, a key or a signature: request logs carry the
//! request id, method, path, status and duration only.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
#[cfg(feature = "redis")]
use token_refresh::RedisLedger;
use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::{
    Clock, Ed25519Signer, Envelope, Error, Event, KeyId, MAX_LOGIN_BODY, MemoryLedger, MemoryUserStore, Policy, Reply,
    SessionId, SessionInfo, Signer, Status, Store, StoreError, SystemClock, User, VerificationKey, error::BadRequest,
    keys::BoxSigner, ledger::AccessState, ledger::Created, ledger::NewSession, ledger::Revocation, ledger::Rotation,
    ledger::RotationRequest, ledger::SessionLedger, token::TokenId,
};
#[cfg(feature = "postgres")]
use token_refresh::{PostgresLedger, PostgresOptions};
use tracing::Instrument as _;
use zeroize::Zeroizing;

/// The session endpoint of the FIB API: `POST` login, `PATCH` refresh,
/// `DELETE` logout.
pub(crate) const SESSION_PATH: &str = "/auth/api/v1/authentication-management/session";
/// A protected resource: who the access token belongs to.
pub(crate) const ME_PATH: &str = "/api/v1/me";
/// The public keys, for resource servers that verify access tokens alone.
pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Prometheus text exposition of the crate's metrics (feature `metrics`).
pub(crate) const METRICS_PATH: &str = "/metrics";
/// Liveness: 200 whenever the process serves requests.
pub(crate) const HEALTH_PATH: &str = "/healthz";
/// Readiness: 200 when the session ledger answers a ping within
/// [`READY_TIMEOUT`], else 503.
pub(crate) const READY_PATH: &str = "/readyz";
/// How long the readiness probe waits for the ledger: well inside the 2 s a
/// probe's own timeout usually allows, so a hung ledger reads as "not
/// ready", never as a probe timeout.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// The methods the session path answers, for `Allow` on a 405.
pub(crate) const SESSION_METHODS: &str = "POST, PATCH, DELETE";
/// The methods the read-only paths answer.
pub(crate) const GET_METHODS: &str = "GET, HEAD";
/// How long one request may take, body included. A slow store or a client
/// trickling its body gets a 500 envelope instead of holding a task forever.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send its request headers (slow-header
/// clients are cut off).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `--max-connections` by default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Files the process needs besides its connections: the listener, the
/// ledger's pool, logs, the runtime's own.
const OTHER_OPEN_FILES: u64 = 256;
/// How long open connections get to finish after a shutdown signal.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long JWKS responses may be cached: short enough that a key rotation
/// reaches resource servers within minutes.
pub(crate) const JWKS_CACHE_CONTROL: &str = "public, max-age=300";
/// The demo user created when no `--users` file is given.
pub(crate) const DEMO_EMAIL: &str = "bob@mail.com";

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// Where sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreUrl {
    /// The in-process ledger.
    Memory,
    /// A Redis ledger (`redis://`, `rediss://`, `redis-cluster://`).
    Redis(SecretUrl),
    /// A PostgreSQL ledger (`postgres://`, `postgresql://`).
    Postgres(SecretUrl),
}

/// A store URL. It may carry a password, so it is never shown: `Debug`
/// prints the scheme only, and error messages pass through [`redact`].
///
/// [`redact`]: SecretUrl::redact
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, for the ledger's `connect` only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme, lower case (`redis`, `postgres`, …).
    pub(crate) fn scheme(&self) -> String {
        self.0.split_once("://").map_or_else(String::new, |(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// `text` with the URL, and its `user:password` and password, replaced
    /// by `…`: for error messages from drivers, which may quote them.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut secrets = vec![self.0.clone()];
        if let Some((_, rest)) = self.0.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            // The user name alone is no secret (and helps read "password
            // authentication failed for user …"); the password is.
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                secrets.push(userinfo.to_owned());
                secrets.push(password.to_owned());
            }
        }
        let mut text = text.to_owned();
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            text = text.replace(secret.as_str(), "…");
        }
        text
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({}://…)", self.scheme())
    }
}

/// A `--verify-key FILE[#KID]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifyKeyArg {
    /// The key file.
    pub(crate) path: PathBuf,
    /// The key id after `#`, if any.
    pub(crate) kid: Option<String>,
}

// The flags are a public interface: change them only compatibly.
/// A reference token-refresh service.
#[derive(Debug, Clone, PartialEq, Eq, clap::Parser)]
#[command(
    name = "server",
    version,
    after_help = "Environment: RUST_LOG sets the log filter [default: info]. Logs go to stderr;\n\
                  stdout carries the `listening on http://ADDR` line and the demo walkthrough."
)]
pub(crate) struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Ed25519 PKCS#8 PEM signing key (openssl genpkey -algorithm ed25519
    /// -out key.pem); without it a fresh key is made per start and tokens
    /// die with the process.
    #[arg(long, value_name = "FILE")]
    pub(crate) signing_key: Option<PathBuf>,
    /// Key id written into tokens and the JWKS (A-Z a-z 0-9 - _ . ~, at
    /// most 64).
    #[arg(long, value_name = "ID")]
    pub(crate) kid: Option<String>,
    /// JSON array of {"email","account","role","publicKey"} (publicKey: hex
    /// of the user's 32-byte Ed25519 login key; optional "disabled": true);
    /// without it one demo user bob@mail.com with a fresh login key, whose
    /// login body is printed.
    #[arg(long, value_name = "FILE")]
    pub(crate) users: Option<PathBuf>,
    /// Also accept tokens signed by this key, never sign with it (key
    /// rotation); FILE is a public key PEM (openssl pkey -pubout) or a
    /// PKCS#8 private key PEM, of which only the public half is kept; #KID
    /// gives its key id; repeatable, at most 3.
    #[arg(long = "verify-key", value_name = "FILE[#KID]", value_parser = parse_verify_key)]
    pub(crate) verify_keys: Vec<VerifyKeyArg>,
    /// Session ledger: memory (one process), redis://… or
    /// redis-cluster://HOST:PORT[,HOST:PORT…] (feature redis; the server
    /// must run maxmemory-policy noeviction) or postgres://… /
    /// postgresql://… (feature postgres; tables created at start) for
    /// several instances sharing sessions; the URL is never printed.
    #[arg(long, value_name = "URL", default_value = "memory", value_parser = StoreUrlParser)]
    pub(crate) store: StoreUrl,
    /// PEM bundle of the CA certificates to trust for a TLS store
    /// (rediss://, rediss-cluster://, postgres://…?sslmode=verify-ca or
    /// verify-full) instead of the platform's roots; a server certificate
    /// that does not verify is refused at start.
    #[arg(long, value_name = "FILE")]
    pub(crate) store_ca: Option<PathBuf>,
    /// Redis key prefix NAME: / PostgreSQL schema NAME (a-z 0-9 _, at most
    /// 63) [default: token_refresh].
    #[arg(long, value_name = "NAME", value_parser = parse_store_prefix)]
    pub(crate) store_prefix: Option<String>,
    /// Access token lifetime in seconds [default: 300].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) access_ttl: Option<u32>,
    /// Refresh token (idle session) lifetime in seconds [default: 86400].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) refresh_ttl: Option<u32>,
    /// Grace window for a retried refresh, 0 to 60 seconds [default: 0 =
    /// off].
    #[arg(long, value_name = "SECS", allow_hyphen_values = true)]
    pub(crate) grace: Option<u32>,
    /// Live sessions one user may hold; the login beyond it ends the user's
    /// session nearest its end of life [default: 100].
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(token_refresh::policy::MAX_SESSIONS_PER_USER))
    )]
    pub(crate) max_sessions_per_user: Option<u32>,
    /// Open connections served at once; beyond it new connections wait in
    /// the listen queue. The open-file limit is raised at start to fit it
    /// where the hard limit allows (otherwise the cap is lowered to fit).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub(crate) max_connections: u32,
    /// Serve the demo user and a per-start signing key on a non-loopback
    /// --listen too (refused without it: anyone reaching the address could
    /// log in as the admin).
    #[arg(long)]
    pub(crate) demo: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            signing_key: None,
            kid: None,
            users: None,
            verify_keys: Vec::new(),
            store: StoreUrl::Memory,
            store_ca: None,
            store_prefix: None,
            access_ttl: None,
            refresh_ttl: None,
            grace: None,
            max_sessions_per_user: None,
            max_connections: 10_000,
            demo: false,
        }
    }
}

/// Parses the arguments after the program name. A flag given twice is an
/// error rather than a silent override, except the repeatable
/// `--verify-key`.
pub(crate) fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, clap::Error> {
    let config = <Config as clap::Parser>::try_parse_from(std::iter::once("server".to_owned()).chain(args))?;
    if config.store_ca.is_some() && config.store == StoreUrl::Memory {
        let mut command = <Config as clap::CommandFactory>::command();
        return Err(command.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--store-ca applies to a redis:// or postgres:// --store only",
        ));
    }
    if config.store_prefix.is_some() && config.store == StoreUrl::Memory {
        let mut command = <Config as clap::CommandFactory>::command();
        return Err(command.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--store-prefix applies to a redis:// or postgres:// --store only",
        ));
    }
    Ok(config)
}

/// `--store`'s parser. Not a plain function: clap quotes the refused value
/// in a function parser's error, and a store URL may carry a password.
#[derive(Debug, Clone, Copy)]
struct StoreUrlParser;

impl clap::builder::TypedValueParser for StoreUrlParser {
    type Value = StoreUrl;

    fn parse_ref(
        &self,
        command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<StoreUrl, clap::Error> {
        value.to_str().and_then(parse_store).ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                "--store: expected memory, redis://…, redis-cluster://… or postgres://… (the value is not repeated here)\n",
            )
            .with_cmd(command)
        })
    }
}

/// `memory`, `redis://…` or `postgres://…`.
fn parse_store(url: &str) -> Option<StoreUrl> {
    if url == "memory" {
        return Some(StoreUrl::Memory);
    }
    let url = SecretUrl(url.to_owned());
    match url.scheme().as_str() {
        "redis" | "rediss" | "redis-cluster" | "rediss-cluster" => Some(StoreUrl::Redis(url)),
        "postgres" | "postgresql" => Some(StoreUrl::Postgres(url)),
        _ => None,
    }
}

/// `FILE` or `FILE#KID`, split at the last `#`; an empty `KID` (`FILE#`)
/// means no key id, which is how a path containing `#` is given.
fn parse_verify_key(value: &str) -> Result<VerifyKeyArg, String> {
    let (path, kid) = match value.rsplit_once('#') {
        Some((path, "")) => (path, None),
        Some((path, kid)) => (path, Some(kid.to_owned())),
        None => (value, None),
    };
    if path.is_empty() {
        return Err("--verify-key needs a file: FILE or FILE#KID".to_owned());
    }
    Ok(VerifyKeyArg { path: PathBuf::from(path), kid })
}

/// A name that is both a PostgreSQL schema name the ledger accepts and a
/// plain Redis key prefix: 1 to 63 of `a-z 0-9 _`, not starting with a digit.
fn parse_store_prefix(name: &str) -> Result<String, String> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if first_ok && name.len() <= 63 && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(name.to_owned())
    } else {
        Err("--store-prefix: use 1 to 63 of a-z, 0-9 and _, not starting with a digit".to_owned())
    }
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

/// A configuration that cannot start: the message for stderr and the exit
/// code.
#[derive(Debug)]
pub(crate) struct StartError {
    /// What went wrong, without secrets.
    pub(crate) message: String,
    /// 2 for a usage or configuration error (the convention of most Unix
    /// tools), 1 for anything else.
    pub(crate) code: u8,
}

impl StartError {
    fn config(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 2 }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A ready-to-serve [`App`] and what start-up should tell the operator.
pub(crate) struct Setup {
    /// The state every request shares.
    pub(crate) app: Arc<App>,
    /// The demo user's login body, when no users file was given.
    pub(crate) demo_login: Option<String>,
    /// Whether the signing key is a throw-away made at start.
    pub(crate) ephemeral_key: bool,
    /// Which ledger serves sessions, for the start-up log (never the URL).
    pub(crate) store: String,
}

/// Reads the command line; on `--help`, `--version` or an error prints what
/// is needed and returns the exit code to end with (2 for a usage error).
pub(crate) fn config_from_args() -> Result<Config, ExitCode> {
    parse_args(std::env::args().skip(1)).map_err(|error| {
        let _ = error.print();
        ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
    })
}

/// Parses the command line, starts logging and builds the state (connecting
/// to a shared ledger): the whole start-up shared by every example, up to
/// binding the socket. Runs inside the runtime that will serve, because a
/// shared ledger's connections live there.
pub(crate) async fn start() -> Result<(Config, Setup), ExitCode> {
    let config = config_from_args()?;
    init_logging();
    init_metrics();
    match setup(&config).await {
        Ok(setup) => Ok((config, setup)),
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::from(error.code))
        }
    }
}

/// Builds the state `config` describes: keys, users and policy first (the
/// cheap checks), then the ledger, connecting to a shared one. Every failure
/// is a configuration error (exit code 2), a store that cannot be reached
/// included, and no message repeats a store URL or key material.
pub(crate) async fn setup(config: &Config) -> Result<Setup, StartError> {
    refuse_demo_beyond_loopback(config)?;
    let (signer, ephemeral_key) = load_signer(config)?;
    let policy = build_policy(config)?;
    let (users, demo_login) = match &config.users {
        Some(path) => (load_users(path)?, None),
        None => {
            let (user, body) = demo_user()?;
            (vec![user], Some(body))
        }
    };
    let (ledger, store) = connect_ledger(config).await?;
    let mut app = App::new(Store::new(MemoryUserStore::new(users), ledger), signer, policy, Arc::new(SystemClock));
    app.max_connections = fit_open_file_limit(config.max_connections);
    Ok(Setup { app: Arc::new(app), demo_login, ephemeral_key, store })
}

/// The demo user (whose admin login body is printed) and a per-start key
/// are for trying the server on one machine. On an address other machines
/// can reach they need `--demo`, said on purpose.
fn refuse_demo_beyond_loopback(config: &Config) -> Result<(), StartError> {
    let demo = config.users.is_none() || config.signing_key.is_none();
    if demo && !config.listen.ip().is_loopback() && !config.demo {
        let missing = match (&config.users, &config.signing_key) {
            (None, None) => "--users and --signing-key",
            (None, Some(_)) => "--users",
            _ => "--signing-key",
        };
        return Err(StartError::config(format!(
            "--listen {}: the demo user and the per-start key serve only on loopback; give {missing}, or --demo \
             to serve them on this address anyway",
            config.listen
        )));
    }
    Ok(())
}

/// The ledger `--store` names, and a label for the start-up log.
async fn connect_ledger(config: &Config) -> Result<(AnyLedger, String), StartError> {
    let prefix = config.store_prefix.as_deref();
    let ca = match &config.store_ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|error| StartError::config(format!("--store-ca {}: {error}", path.display())))?,
        ),
        None => None,
    };
    match &config.store {
        StoreUrl::Memory => Ok((AnyLedger::Memory(MemoryLedger::new()), "memory".to_owned())),
        StoreUrl::Redis(url) => connect_redis(url, prefix, ca).await,
        StoreUrl::Postgres(url) => connect_postgres(url, prefix, ca).await,
    }
}

#[cfg(feature = "redis")]
async fn connect_redis(
    url: &SecretUrl,
    name: Option<&str>,
    ca: Option<Vec<u8>>,
) -> Result<(AnyLedger, String), StartError> {
    // `--store-prefix NAME` keys everything under `NAME:`, as the default
    // `token_refresh:` is the default name plus `:`.
    let prefix =
        name.map_or_else(|| token_refresh::ledger::redis::DEFAULT_PREFIX.to_owned(), |name| format!("{name}:"));
    let mut builder = RedisLedger::builder(url.expose()).prefix(prefix.as_str());
    if let Some(ca) = ca {
        builder = builder.trust_pem(ca);
    }
    let ledger = builder.connect().await.map_err(|e| unreachable_store(url, "Redis", &e))?;
    let kind = if ledger.is_cluster() { "redis cluster" } else { "redis" };
    Ok((AnyLedger::Redis(ledger), format!("{kind}, key prefix {prefix}")))
}

#[cfg(not(feature = "redis"))]
async fn connect_redis(
    _url: &SecretUrl,
    _name: Option<&str>,
    _ca: Option<Vec<u8>>,
) -> Result<(AnyLedger, String), StartError> {
    Err(missing_feature("redis"))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &SecretUrl,
    name: Option<&str>,
    ca: Option<Vec<u8>>,
) -> Result<(AnyLedger, String), StartError> {
    let mut options = match name {
        Some(name) => PostgresOptions::new().schema(name),
        None => PostgresOptions::new(),
    };
    if let Some(ca) = ca {
        options = options.trust_pem(ca);
    }
    let ledger =
        PostgresLedger::connect(url.expose(), options).await.map_err(|e| unreachable_store(url, "PostgreSQL", &e))?;
    // Idempotent, and safe when several instances start at once.
    ledger.migrate().await.map_err(|e| {
        StartError::config(format!(
            "--store {}://…: cannot create the ledger tables in schema {}: {}",
            url.scheme(),
            ledger.schema(),
            url.redact(&cause(&e))
        ))
    })?;
    let label = format!("postgres, schema {}", ledger.schema());
    Ok((AnyLedger::Postgres(ledger), label))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(
    _url: &SecretUrl,
    _name: Option<&str>,
    _ca: Option<Vec<u8>>,
) -> Result<(AnyLedger, String), StartError> {
    Err(missing_feature("postgres"))
}

/// A shared ledger this build was compiled without.
#[cfg(any(not(feature = "redis"), not(feature = "postgres")))]
fn missing_feature(feature: &str) -> StartError {
    StartError::config(format!(
        "--store {feature}://…: this build has no {feature} ledger; build the example with the `{feature}` \
         feature (cargo run --features {feature} --example …), or use --store memory (one process)"
    ))
}

/// A shared ledger that did not answer at start: the driver's reason, with
/// the URL and its credentials cut out.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn unreachable_store(url: &SecretUrl, backend: &str, error: &StoreError) -> StartError {
    StartError::config(format!(
        "--store {}://…: cannot connect to the {backend} ledger: {}",
        url.scheme(),
        url.redact(&cause(error))
    ))
}

/// A store error and its causes, one line.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn cause(error: &StoreError) -> String {
    let mut text = error.0.to_string();
    let mut source = error.0.source();
    while let Some(next) = source {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text = format!("{text}: {next_text}");
        }
        source = next.source();
    }
    text
}

/// The signer the server signs with: AWS-LC when built with the `aws-lc`
/// feature (about twice as fast), ed25519-dalek otherwise; the same bytes.
#[cfg(feature = "aws-lc")]
pub(crate) type ServerSigner = token_refresh::AwsLcSigner;
/// The signer the server signs with: AWS-LC when built with the `aws-lc`
/// feature (about twice as fast), ed25519-dalek otherwise; the same bytes.
#[cfg(not(feature = "aws-lc"))]
pub(crate) type ServerSigner = Ed25519Signer;

/// The name of [`ServerSigner`], for the start-up log.
pub(crate) const SIGNER_NAME: &str = if cfg!(feature = "aws-lc") { "aws-lc" } else { "ed25519-dalek" };

fn load_signer(config: &Config) -> Result<(ServerSigner, bool), StartError> {
    let (signer, ephemeral) = match &config.signing_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| StartError::config(format!("--signing-key {}: {e}", path.display())))?;
            // The decoder's message names the encoding problem, never key bytes.
            let signer = ServerSigner::from_pkcs8_pem(&pem)
                .map_err(|e| StartError::config(format!("--signing-key {}: {e}", path.display())))?;
            (signer, false)
        }
        None => {
            let seed = random_seed()?;
            let signer = ServerSigner::from_seed(&seed).map_err(|e| StartError::config(e.to_string()))?;
            (signer, true)
        }
    };
    let signer = match &config.kid {
        Some(kid) => {
            let kid = KeyId::new(kid).map_err(|e| StartError::config(format!("--kid: {e}")))?;
            signer.with_key_id(kid).map_err(|e| StartError::config(format!("--kid: {e}")))?
        }
        None => signer,
    };
    let mut signer = signer;
    for arg in &config.verify_keys {
        let shown = match &arg.kid {
            Some(kid) => format!("--verify-key {}#{kid}", arg.path.display()),
            None => format!("--verify-key {}", arg.path.display()),
        };
        let key = load_verify_key(&arg.path).map_err(|e| StartError::config(format!("{shown}: {e}")))?;
        let key = match &arg.kid {
            Some(kid) => key.with_key_id(KeyId::new(kid).map_err(|e| StartError::config(format!("{shown}: {e}")))?),
            None => key,
        };
        signer = signer.with_verify_only_key(key).map_err(|e| StartError::config(format!("{shown}: {e}")))?;
    }
    Ok((signer, ephemeral))
}

/// A verify-only key from `path`: a public key (SPKI PEM
/// `-----BEGIN PUBLIC KEY-----`, or DER), or a PKCS#8 private key (PEM
/// `-----BEGIN PRIVATE KEY-----`, or DER) of which only the public half is
/// kept. The file's bytes are wiped after reading; messages never quote them.
fn load_verify_key(path: &std::path::Path) -> Result<VerificationKey, String> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| e.to_string())?);
    let public_of = |signer: Ed25519Signer| signer.verification_key().clone();
    let text = std::str::from_utf8(&bytes).map(str::trim_start);
    let key = match text {
        Ok(pem) if pem.starts_with("-----BEGIN PUBLIC KEY-----") => VerificationKey::from_public_key_pem(pem),
        Ok(pem) if pem.starts_with("-----BEGIN PRIVATE KEY-----") => Ed25519Signer::from_pkcs8_pem(pem).map(public_of),
        Ok(pem) if pem.starts_with("-----BEGIN") => {
            return Err("expected a PEM PUBLIC KEY or PRIVATE KEY (PKCS#8) document".to_owned());
        }
        _ => VerificationKey::from_public_key_der(&bytes)
            .or_else(|_| Ed25519Signer::from_pkcs8_der(&bytes).map(public_of)),
    };
    key.map_err(|e| e.to_string())
}

fn random_seed() -> Result<[u8; 32], StartError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StartError { message: format!("no randomness for a key: {e}"), code: 1 })?;
    Ok(seed)
}

fn build_policy(config: &Config) -> Result<Policy, StartError> {
    let mut builder = Policy::builder();
    if let Some(seconds) = config.access_ttl {
        builder = builder.access_lifetime(time::Duration::seconds(i64::from(seconds)));
    }
    if let Some(seconds) = config.refresh_ttl {
        builder = builder.refresh_lifetime(time::Duration::seconds(i64::from(seconds)));
    }
    if let Some(sessions) = config.max_sessions_per_user {
        builder = builder.max_sessions_per_user(sessions);
    }
    if let Some(seconds) = config.grace {
        builder = builder.grace_window(time::Duration::seconds(i64::from(seconds)));
    }
    // With the core's `tracing` feature on, it reports events itself.
    #[cfg(not(feature = "tracing"))]
    {
        builder = builder.on_event(log_event);
    }
    builder.build().map_err(|e| StartError::config(e.to_string()))
}

/// Logs a ledger decision. Events carry session ids and generations, never
/// tokens.
fn log_event(event: &Event) {
    // The levels of the core's `tracing` feature: a routine rotation is
    // debug (every refresh has one, and its request's `answered` line
    // already records it), detected reuse a warning.
    match event {
        Event::ReuseDetected { .. } => tracing::warn!(target: "token_refresh", "{event}"),
        Event::Rotated { .. } => tracing::debug!(target: "token_refresh", "{event}"),
        _ => tracing::info!(target: "token_refresh", "{event}"),
    }
}

/// One entry of a `--users` file.
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

/// Reads a `--users` file: a JSON array of
/// `{"email","account","role","publicKey"}`.
pub(crate) fn load_users(path: &std::path::Path) -> Result<Vec<User>, StartError> {
    let where_ = path.display();
    let text = std::fs::read(path).map_err(|e| StartError::config(format!("--users {where_}: {e}")))?;
    let entries: Vec<UserEntry> =
        serde_json::from_slice(&text).map_err(|e| StartError::config(format!("--users {where_}: {e}")))?;
    let mut users = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let key = decode_hex_32(&entry.public_key)
            .and_then(|bytes| VerificationKey::from_bytes(&bytes).ok())
            .ok_or_else(|| {
                StartError::config(format!(
                    "--users {where_}: entry {index} ({}): publicKey is not the hex of a usable Ed25519 key",
                    entry.email
                ))
            })?;
        let user = User::new(entry.email, entry.account, entry.role).with_login_key(*key.verifying_key());
        users.push(if entry.disabled { user.disabled() } else { user });
    }
    Ok(users)
}

/// The demo user (`bob@mail.com`, account `bob@admin`, `ROLE_ADMIN`) with a
/// fresh login key, and the login body signed for it.
pub(crate) fn demo_user() -> Result<(User, String), StartError> {
    let key = SigningKey::from_bytes(&random_seed()?);
    let user = User::new(DEMO_EMAIL, "bob@admin", "ROLE_ADMIN").with_login_key(key.verifying_key());
    Ok((user, login_body(&key, DEMO_EMAIL)))
}

/// The FIB login body for `email`, signed with `key`: `signature` is the hex
/// Ed25519 signature of the e-mail's UTF-8 bytes, `publicKey` the hex key.
pub(crate) fn login_body(key: &SigningKey, email: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        email: &'a str,
        signature: String,
        public_key: String,
    }
    let body = Body {
        email,
        signature: hex(&key.sign(email.as_bytes()).to_bytes()),
        public_key: hex(key.verifying_key().as_bytes()),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex_32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Tells the operator the server is up: the machine-readable
/// `listening on http://ADDR` line on stdout (tests and scripts wait for
/// it), the key thumbprint in the log, and for the demo user a walkthrough
/// to paste.
pub(crate) fn announce(bound: SocketAddr, setup: &Setup, stack: &str) {
    let app = &setup.app;
    let key = app.verification_key.as_ref();
    tracing::info!(
        %bound,
        stack,
        signer = SIGNER_NAME,
        key_thumbprint = %key.map_or_else(String::new, VerificationKey::thumbprint),
        kid = key.and_then(VerificationKey::key_id).map_or("-", |kid| kid.as_str()),
        alg = app.policy.algorithm().as_str(),
        access_ttl = app.policy.access_lifetime().whole_seconds(),
        refresh_ttl = app.policy.refresh_lifetime().whole_seconds(),
        grace = app.policy.grace_window().whole_seconds(),
        store = %setup.store,
        "token-refresh listening"
    );
    for key in app.signer.keyring().keys().iter().skip(1) {
        tracing::info!(
            key_thumbprint = %key.thumbprint(),
            kid = key.key_id().map_or("-", |kid| kid.as_str()),
            "also accepting tokens signed by a verify-only key"
        );
    }
    if setup.ephemeral_key {
        tracing::warn!(
            "no --signing-key: using a fresh random key; every token dies with this process \
             (make a key with: openssl genpkey -algorithm ed25519 -out key.pem)"
        );
    }
    println!("listening on http://{bound}");
    if let Some(body) = &setup.demo_login {
        println!();
        println!("Demo user {DEMO_EMAIL} (account bob@admin, role ROLE_ADMIN) has a fresh login key.");
        println!("login body: {body}");
        println!();
        println!("Paste into a shell (needs curl and sed):");
        println!();
        println!("{}", walkthrough(client_address(bound), body));
    }
}

/// The address a local client should use: an unspecified listen address
/// (`0.0.0.0`, `[::]`) is reached through loopback.
pub(crate) fn client_address(bound: SocketAddr) -> SocketAddr {
    let mut address = bound;
    if bound.ip().is_unspecified() {
        address.set_ip(if bound.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    address
}

/// The curl walkthrough (login → refresh → me → logout → refresh after
/// logout), the same lines the README shows.
pub(crate) fn walkthrough(address: SocketAddr, login_body: &str) -> String {
    let base = format!("http://{address}");
    format!(
        r#"BASE={base}
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

/// Raises the soft open-file limit so `connections` fit beside the files the
/// process needs otherwise, up to the hard limit, and returns the
/// connections that fit (the whole request, or what the hard limit leaves).
/// Raising the soft limit needs no privilege; many systems start services at
/// 1 024 files, where a thousand idle connections would starve real logins.
pub(crate) fn fit_open_file_limit(connections: u32) -> usize {
    let wanted = u64::from(connections) + OTHER_OPEN_FILES;
    let fitting = open_file_limit_for(wanted).saturating_sub(OTHER_OPEN_FILES).max(1);
    let fitted = u64::from(connections).min(fitting);
    if fitted < u64::from(connections) {
        tracing::warn!(requested = connections, fitted, "the open-file limit lowers --max-connections");
    }
    usize::try_from(fitted).unwrap_or(DEFAULT_MAX_CONNECTIONS)
}

/// The soft open-file limit after trying to raise it to `wanted`.
#[cfg(unix)]
fn open_file_limit_for(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else { return u64::MAX };
    if soft >= wanted {
        return soft;
    }
    let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => {
            tracing::info!(from = soft, to = raised, "raised the open-file limit");
            raised
        }
        Err(error) => {
            tracing::warn!(%error, soft, "could not raise the open-file limit");
            soft
        }
    }
}

#[cfg(not(unix))]
fn open_file_limit_for(wanted: u64) -> u64 {
    wanted
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests start several servers) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The HTTP/1 accept loop of the axum and hyper stacks: one task per
/// connection, at most `max_connections` at once, [`HEADER_READ_TIMEOUT`] for
/// request headers, and on `shutdown`
/// the listener closes while open connections finish their current request
/// (at most [`DRAIN_TIMEOUT`]). `axum::serve` does the same minus the header
/// timeout, which is why the axum server uses this loop too.
pub(crate) async fn serve_http1<S, B>(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // One permit per open connection: at the cap the loop stops accepting
    // and new connections wait in the kernel's listen queue, instead of the
    // process running out of files and failing everyone's requests.
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead
                    // of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout");
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send), so the
/// server stops accepting and lets in-flight requests finish.
/// Runs a tokio-based stack the way each of them starts: flags and stores
/// ([`start`]), bind, announce, `serve` until SIGINT/SIGTERM, then drain.
pub(crate) async fn run_tokio<F, Fut>(stack: &str, serve: F) -> ExitCode
where
    F: FnOnce(tokio::net::TcpListener, Arc<App>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (config, setup) = match start().await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let bound = listener.local_addr().unwrap_or(config.listen);
    announce(bound, &setup, stack);
    serve(listener, setup.app).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: never resolve from this arm.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

// ---------------------------------------------------------------------------
// The state and the handlers
// ---------------------------------------------------------------------------

/// The stores the examples serve from: users in memory, sessions in the
/// ledger `--store` chose.
pub(crate) type ServerStore = Store<MemoryUserStore, AnyLedger>;

/// In-memory users and sessions: `--store memory`, and most tests.
pub(crate) fn memory_store(users: impl IntoIterator<Item = User>) -> ServerStore {
    Store::new(MemoryUserStore::new(users), AnyLedger::Memory(MemoryLedger::new()))
}

/// One of the session ledgers, picked at start.
///
/// `SessionLedger` returns `impl Future`, so it is not object safe (no
/// `Box<dyn SessionLedger>`); an enum that delegates keeps [`App`] and every
/// adapter non-generic. The shared ledgers exist only when the crate's
/// `postgres` / `redis` features are on, so `cargo run --example server`
/// builds without them; `--store postgres://…` in such a build is a
/// configuration error naming the feature.
pub(crate) enum AnyLedger {
    /// `--store memory`.
    Memory(MemoryLedger),
    /// `--store postgres://…`.
    #[cfg(feature = "postgres")]
    Postgres(PostgresLedger),
    /// `--store redis://…`.
    #[cfg(feature = "redis")]
    Redis(RedisLedger),
}

impl fmt::Debug for AnyLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The memory ledger's maps are no use in a log.
            Self::Memory(_) => f.write_str("AnyLedger::Memory"),
            #[cfg(feature = "postgres")]
            Self::Postgres(ledger) => f.debug_tuple("AnyLedger::Postgres").field(ledger).finish(),
            #[cfg(feature = "redis")]
            Self::Redis(ledger) => f.debug_tuple("AnyLedger::Redis").field(ledger).finish(),
        }
    }
}

/// Runs `$call` on whichever ledger `$any` holds, bound to `$ledger`.
macro_rules! on_ledger {
    ($any:expr, $ledger:ident => $call:expr) => {
        match $any {
            AnyLedger::Memory($ledger) => $call,
            #[cfg(feature = "postgres")]
            AnyLedger::Postgres($ledger) => $call,
            #[cfg(feature = "redis")]
            AnyLedger::Redis($ledger) => $call,
        }
    };
}

impl SessionLedger for AnyLedger {
    async fn create(&self, session: &NewSession) -> Result<Created, StoreError> {
        on_ledger!(self, ledger => ledger.create(session).await)
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        on_ledger!(self, ledger => ledger.rotate(request).await)
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        on_ledger!(self, ledger => ledger.revoke_session(subject, session, now).await)
    }

    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        on_ledger!(self, ledger => ledger.revoke_user(subject, now).await)
    }

    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        on_ledger!(self, ledger => ledger.sessions(subject, now).await)
    }

    async fn access_state(&self, subject: &str, access_id: TokenId, now: i64) -> Result<AccessState, StoreError> {
        on_ledger!(self, ledger => ledger.access_state(subject, access_id, now).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_ledger!(self, ledger => ledger.ping().await)
    }
}

/// What every request shares.
pub(crate) struct App {
    /// Users and sessions.
    pub(crate) store: ServerStore,
    /// The signing key ([`ServerSigner`] when started from the command
    /// line).
    pub(crate) signer: BoxSigner,
    /// The active key's public half, for the start-up log.
    pub(crate) verification_key: Option<VerificationKey>,
    /// Lifetimes and grace window.
    pub(crate) policy: Policy,
    /// Where "now" comes from (a `ManualClock` in tests).
    pub(crate) clock: Arc<dyn Clock>,
    /// How long one request may take, body included; [`REQUEST_TIMEOUT`]
    /// unless a test shortens it.
    pub(crate) request_timeout: Duration,
    /// Open connections served at once (`--max-connections`, fitted to the
    /// open-file limit).
    pub(crate) max_connections: usize,
    jwks: Vec<u8>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("signer", &self.signer).field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// The `data` of `GET /api/v1/me`.
#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    acc: &'a str,
    role: &'a str,
}

impl App {
    /// The state for `store`, `signer`, `policy` and `clock`.
    pub(crate) fn new(
        store: ServerStore,
        signer: impl Signer + 'static,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // The key set only changes with the signer: encode it once.
        let jwks = serde_json::to_vec(&signer.keyring().to_jwks(policy.algorithm())).unwrap_or_default();
        let verification_key = signer.keyring().keys().first().cloned();
        Self {
            store,
            signer: BoxSigner::new(signer),
            verification_key,
            policy,
            clock,
            request_timeout: REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            jwks,
        }
    }

    /// `POST` session: the FIB login. `body` is at most [`MAX_LOGIN_BODY`]
    /// bytes; adapters answer [`body_too_large`] beyond that.
    pub(crate) async fn login(&self, body: &[u8]) -> Answer {
        let result = self.policy.login(body, &self.store, &self.signer, &self.clock).await;
        answer(&result)
    }

    /// `PATCH` session: the refresh.
    pub(crate) async fn refresh(&self, authorization: Option<&[u8]>) -> Answer {
        let result = self.policy.refresh(authorization, &self.store, &self.signer, &self.clock).await;
        answer(&result)
    }

    /// `DELETE` session: logout; `data: null` on success.
    pub(crate) async fn logout(&self, authorization: Option<&[u8]>) -> Answer {
        let result = self.policy.revoke(authorization, self.store.ledger(), &self.signer, &self.clock).await;
        match result {
            Ok(()) => Answer::from(Reply::empty()),
            Err(error) => answer::<()>(&Err(error)),
        }
    }

    /// `GET /api/v1/me`: checks the access token, including the revocation
    /// list (a rotated or logged-out pair's access token is refused).
    pub(crate) async fn me(&self, authorization: Option<&[u8]>) -> Answer {
        let result = self
            .policy
            .verify_access_unrevoked(authorization, self.signer.keyring(), self.store.ledger(), &self.clock)
            .await;
        match result {
            Ok(claims) => {
                Answer::from(Reply::ok(Me { sub: &claims.subject, acc: &claims.account, role: &claims.role }))
            }
            Err(error) => answer::<()>(&Err(error)),
        }
    }

    /// `GET /.well-known/jwks.json`: public, cacheable for five minutes.
    pub(crate) fn jwks(&self) -> Answer {
        Answer {
            status: 200,
            headers: vec![
                ("content-type", Cow::Borrowed("application/json")),
                ("cache-control", Cow::Borrowed(JWKS_CACHE_CONTROL)),
            ],
            body: self.jwks.clone(),
        }
    }

    /// Answers a routed request. `body` is only read for [`Route::Login`];
    /// `None` there means it was over [`MAX_LOGIN_BODY`].
    pub(crate) async fn answer(&self, route: Route, authorization: Authorization<'_>, body: Option<&[u8]>) -> Answer {
        let authorization = match authorization {
            Authorization::Repeated => return repeated_authorization(),
            Authorization::Absent => None,
            Authorization::Value(value) => Some(value),
        };
        match route {
            Route::Login => match body {
                Some(body) => self.login(body).await,
                None => body_too_large(),
            },
            Route::Refresh => self.refresh(authorization).await,
            Route::Logout => self.logout(authorization).await,
            Route::Me => self.me(authorization).await,
            Route::Jwks => self.jwks(),
            Route::Metrics => metrics(),
            Route::Health => healthy(),
            Route::Ready => self.ready().await,
            Route::MethodNotAllowed(allow) => method_not_allowed(allow),
            Route::NotFound => not_found(),
        }
    }
}

/// The answer for a flow's result; a 500 is logged with its cause (which
/// never reaches the client).
fn answer<T: Serialize + 'static>(result: &Result<T, Error>) -> Answer {
    match result {
        Err(error @ Error::Internal(_)) => {
            tracing::error!(%error, cause = ?std::error::Error::source(error), "request failed inside");
        }
        // The detail (which check refused) helps an operator; it names the
        // check only, never the token.
        Err(error) => tracing::debug!(%error, "refused"),
        Ok(_) => {}
    }
    Answer::from(Reply::from_result(result))
}

// ---------------------------------------------------------------------------
// Routing and answers
// ---------------------------------------------------------------------------

/// Which handler a method and path reach. The axum server routes with axum;
/// the actix and hyper adapters use [`route`], and the tests check that all
/// three agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST` session.
    Login,
    /// `PATCH` session.
    Refresh,
    /// `DELETE` session.
    Logout,
    /// `GET` me.
    Me,
    /// `GET` JWKS.
    Jwks,
    /// `GET` the metrics.
    Metrics,
    /// `GET` liveness.
    Health,
    /// `GET` readiness.
    Ready,
    /// A known path, another method: 405 with this `Allow`.
    MethodNotAllowed(&'static str),
    /// No such path: 404.
    NotFound,
}

/// Routes `method` and `path` (without query).
pub(crate) fn route(method: &str, path: &str) -> Route {
    match (path, method) {
        (SESSION_PATH, "POST") => Route::Login,
        (SESSION_PATH, "PATCH") => Route::Refresh,
        (SESSION_PATH, "DELETE") => Route::Logout,
        (SESSION_PATH, _) => Route::MethodNotAllowed(SESSION_METHODS),
        // HEAD is GET without a body, as axum's `get` does it.
        (ME_PATH, "GET" | "HEAD") => Route::Me,
        (JWKS_PATH, "GET" | "HEAD") => Route::Jwks,
        (METRICS_PATH, "GET" | "HEAD") => Route::Metrics,
        (HEALTH_PATH, "GET" | "HEAD") => Route::Health,
        (READY_PATH, "GET" | "HEAD") => Route::Ready,
        (ME_PATH | JWKS_PATH | METRICS_PATH | HEALTH_PATH | READY_PATH, _) => Route::MethodNotAllowed(GET_METHODS),
        _ => Route::NotFound,
    }
}

/// The `Authorization` header as the request carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorization<'a> {
    /// No header.
    Absent,
    /// Exactly one header, raw bytes.
    Value(&'a [u8]),
    /// More than one: ambiguous, refused with 400 rather than guessing
    /// which one a proxy or the client meant.
    Repeated,
}

impl<'a> Authorization<'a> {
    /// From every `Authorization` value of a request, in order.
    pub(crate) fn from_values<I: IntoIterator<Item = &'a [u8]>>(values: I) -> Self {
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => Self::Absent,
            (Some(value), None) => Self::Value(value),
            (Some(_), Some(_)) => Self::Repeated,
        }
    }
}

/// An HTTP answer, framework-neutral: status, headers (lower-case names),
/// body. Each adapter writes it as is.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status code.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl fmt::Debug for Answer {
    // The body may hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer").field("status", &self.status).field("body_len", &self.body.len()).finish()
    }
}

impl Answer {
    /// As an `http` 1.x response (axum and hyper; actix-web 4 is still on
    /// `http` 0.2 and converts on its own).
    pub(crate) fn into_http(self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes());
            if let (Ok(name), Ok(value)) = (name, http::HeaderValue::from_str(&value)) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        let headers = reply.headers().map(|(name, value)| (name, Cow::Borrowed(value))).collect();
        Self { status: reply.status(), headers, body: reply.into_body() }
    }
}

/// A failure envelope for an outcome the core has no [`Error`] for (405,
/// 404, 500 on timeout): same shape, same no-cache headers.
fn envelope_answer(code: u16, name: &'static str, message: &'static str) -> Answer {
    let envelope = Envelope::<()> {
        status: Status { code, name: Cow::Borrowed(name), message: Some(Cow::Borrowed(message)) },
        data: None,
    };
    Answer {
        status: code,
        headers: vec![
            ("content-type", Cow::Borrowed("application/json")),
            ("cache-control", Cow::Borrowed("no-store")),
            ("pragma", Cow::Borrowed("no-cache")),
        ],
        body: serde_json::to_vec(&envelope).unwrap_or_default(),
    }
}

/// The process's metrics recorder: Prometheus, installed once (the
/// `metrics` facade has one recorder per process). Histograms get buckets
/// from 100 µs to 2.5 s, so latency percentiles aggregate across instances.
fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const BUCKETS: [f64; 10] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 2.5];
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .map_err(|error| tracing::warn!(%error, "metrics buckets refused"))
                .ok()?;
            builder.install_recorder().map_err(|error| tracing::warn!(%error, "no metrics recorder")).ok()
        })
        .as_ref()
}

/// Installs the metrics recorder at start, so counters count from the first
/// request.
pub(crate) fn init_metrics() {
    let _ = prometheus();
}

/// `GET /metrics`: the Prometheus text format. Labels are fixed words (the
/// endpoint, the envelope's status name, the ledger operation): never a
/// token, subject or key.
pub(crate) fn metrics() -> Answer {
    let body = prometheus().map(|handle| handle.render()).unwrap_or_default();
    Answer {
        status: 200,
        headers: vec![
            ("content-type", Cow::Borrowed("text/plain; version=0.0.4")),
            ("cache-control", Cow::Borrowed("no-store")),
        ],
        body: body.into_bytes(),
    }
}

/// The liveness answer: the process is serving.
pub(crate) fn healthy() -> Answer {
    envelope_answer(200, "OK", "serving")
}

impl App {
    /// The readiness answer: 200 when the ledger answers a ping within
    /// [`READY_TIMEOUT`], 503 otherwise (the cause is logged, never sent).
    pub(crate) async fn ready(&self) -> Answer {
        match tokio::time::timeout(READY_TIMEOUT, self.store.ledger().ping()).await {
            Ok(Ok(())) => envelope_answer(200, "OK", "ready"),
            Ok(Err(error)) => {
                tracing::warn!(%error, cause = ?std::error::Error::source(&error), "not ready: the session ledger failed its ping");
                not_ready()
            }
            Err(_) => {
                tracing::warn!(timeout_ms = READY_TIMEOUT.as_millis(), "not ready: the session ledger did not answer");
                not_ready()
            }
        }
    }
}

fn not_ready() -> Answer {
    envelope_answer(503, "SERVICE_UNAVAILABLE", "the session ledger is not answering")
}

/// 405 with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Answer {
    let mut answer = envelope_answer(405, "METHOD_NOT_ALLOWED", "method not allowed");
    answer.headers.push(("allow", Cow::Borrowed(allow)));
    answer
}

/// 404 for a path the service does not have.
pub(crate) fn not_found() -> Answer {
    envelope_answer(404, "NOT_FOUND", "no such endpoint")
}

/// A login body over [`MAX_LOGIN_BODY`]: 400, the status the core gives an
/// oversized body itself (`BadRequest::MalformedBody`), so the limit looks the
/// same whether the adapter or the core enforces it. 413 would add a status
/// outside the SPEC's set for no gain to the client.
///
/// The rest of the body is never read, so the connection cannot carry
/// another request: `connection: close` says so (actix adds it on its own;
/// saying it everywhere keeps the stacks byte-identical).
pub(crate) fn body_too_large() -> Answer {
    let mut answer = Answer::from(Reply::from_error(&Error::from(BadRequest::MalformedBody)));
    answer.headers.push(("connection", Cow::Borrowed("close")));
    answer
}

/// Two `Authorization` headers: 400 `invalid_request`.
pub(crate) fn repeated_authorization() -> Answer {
    let mut answer = envelope_answer(400, "BAD_REQUEST", "authorization header is repeated");
    answer.headers.push(("www-authenticate", Cow::Borrowed(r#"Bearer error="invalid_request""#)));
    answer
}

/// The request took longer than [`REQUEST_TIMEOUT`]: a 500 like any other
/// failure to answer in time (SPEC §4 step 11).
pub(crate) fn timed_out() -> Answer {
    envelope_answer(500, "INTERNAL_SERVER_ERROR", "internal server error")
}

/// Whether a declared `Content-Length` already rules the login body out, so
/// it is refused without reading.
pub(crate) fn declared_too_large(content_length: Option<&[u8]>) -> bool {
    content_length
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|length| length > MAX_LOGIN_BODY as u64)
}

// ---------------------------------------------------------------------------
// Request scope: id, log line, deadline
// ---------------------------------------------------------------------------

/// The request id: the caller's `x-request-id` when it is short and plain
/// (so a proxy's id carries through), otherwise a fresh UUID. Plain means
/// 1–64 characters of `A-Z a-z 0-9 - _ .`, so it is safe in logs and headers.
pub(crate) fn request_id(incoming: Option<&[u8]>) -> String {
    let plain = |value: &&[u8]| {
        (1..=64).contains(&value.len())
            && value.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match incoming.filter(plain).and_then(|value| std::str::from_utf8(value).ok()) {
        Some(id) => id.to_owned(),
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// One request's log context: its id, a span carrying it, and when it
/// started. Only the method and path are recorded (never headers, query or
/// body, which may hold credentials).
pub(crate) struct RequestScope {
    id: String,
    span: tracing::Span,
    started: Instant,
}

impl RequestScope {
    /// Opens the scope of a request.
    pub(crate) fn begin(method: &str, path: &str, incoming_id: Option<&[u8]>) -> Self {
        let id = request_id(incoming_id);
        let span = tracing::info_span!("request", id = %id, method, path);
        Self { id, span, started: Instant::now() }
    }

    /// The span handlers run in.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Logs and answers a request that ran past its deadline.
    pub(crate) fn timed_out(&self, deadline: Duration) -> Answer {
        let timeout_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        self.span.in_scope(|| tracing::warn!(timeout_ms, "request timed out"));
        timed_out()
    }

    /// Logs the outcome; returns the id for the `x-request-id` header.
    pub(crate) fn end(self, status: u16) -> String {
        let elapsed_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.span.in_scope(|| tracing::info!(status, elapsed_us, "answered"));
        self.id
    }
}

impl App {
    /// Runs `handle` for one request in a [`RequestScope`], under the
    /// request deadline, and adds `x-request-id` to the answer.
    pub(crate) async fn observe<F>(&self, method: &str, path: &str, incoming_id: Option<&[u8]>, handle: F) -> Answer
    where
        F: Future<Output = Answer>,
    {
        let scope = RequestScope::begin(method, path, incoming_id);
        let mut answer = match tokio::time::timeout(self.request_timeout, handle.instrument(scope.span())).await {
            Ok(answer) => answer,
            Err(_) => scope.timed_out(self.request_timeout),
        };
        let id = scope.end(answer.status);
        answer.headers.push(("x-request-id", Cow::Owned(id)));
        answer
    }
}
