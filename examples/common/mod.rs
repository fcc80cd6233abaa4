//! What the three HTTP examples (`server` on axum, `actix`, `hyper`) share,
//! and nothing of HTTP itself: the command line, the keys, the users file
//! and the demo user, the session ledger `--store` names, the start-up
//! announcement, metrics and signals. The endpoints, their answers, request
//! ids, deadlines and access logs are the library's (`token_refresh::axum`,
//! `token_refresh::http`).
//!
//! Nothing here logs a token, a key or a signature.

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::http::ServeOptions;
use token_refresh::ledger::BoxLedger;
use token_refresh::{
    AccessClaims, Ed25519Signer, KeyId, MemoryLedger, MemoryUserStore, Policy, Reply, Signer, SystemClock,
    TokenService, User, VerificationKey,
};
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
/// Readiness: 200 when the session ledger answers within a second, else 503.
pub(crate) const READY_PATH: &str = "/readyz";
/// Files the process needs besides its connections: the listener, the
/// ledger's pool, logs, the runtime's own.
const OTHER_OPEN_FILES: u64 = 256;
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

/// A ready-to-serve [`TokenService`] and what start-up should tell the
/// operator.
pub(crate) struct Setup {
    /// The service every request shares.
    pub(crate) service: TokenService,
    /// `--max-connections`, fitted to the open-file limit.
    pub(crate) serve: ServeOptions,
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
    let service = TokenService::new(policy, MemoryUserStore::new(users), ledger, signer, SystemClock);
    let serve = ServeOptions::new().max_connections(fit_open_file_limit(config.max_connections));
    Ok(Setup { service, serve, demo_login, ephemeral_key, store })
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
async fn connect_ledger(config: &Config) -> Result<(BoxLedger, String), StartError> {
    let prefix = config.store_prefix.as_deref();
    let ca = match &config.store_ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|error| StartError::config(format!("--store-ca {}: {error}", path.display())))?,
        ),
        None => None,
    };
    match &config.store {
        StoreUrl::Memory => Ok((BoxLedger::new(MemoryLedger::new()), "memory".to_owned())),
        StoreUrl::Redis(url) => connect_redis(url, prefix, ca).await,
        StoreUrl::Postgres(url) => connect_postgres(url, prefix, ca).await,
    }
}

#[cfg(feature = "redis")]
async fn connect_redis(
    url: &SecretUrl,
    name: Option<&str>,
    ca: Option<Vec<u8>>,
) -> Result<(BoxLedger, String), StartError> {
    // `--store-prefix NAME` keys everything under `NAME:`, as the default
    // `token_refresh:` is the default name plus `:`.
    let prefix =
        name.map_or_else(|| token_refresh::ledger::redis::DEFAULT_PREFIX.to_owned(), |name| format!("{name}:"));
    let mut builder = token_refresh::RedisLedger::builder(url.expose()).prefix(prefix.as_str());
    if let Some(ca) = ca {
        builder = builder.trust_pem(ca);
    }
    let ledger = builder.connect().await.map_err(|e| unreachable_store(url, "Redis", &e))?;
    let kind = if ledger.is_cluster() { "redis cluster" } else { "redis" };
    Ok((BoxLedger::new(ledger), format!("{kind}, key prefix {prefix}")))
}

#[cfg(not(feature = "redis"))]
async fn connect_redis(
    _url: &SecretUrl,
    _name: Option<&str>,
    _ca: Option<Vec<u8>>,
) -> Result<(BoxLedger, String), StartError> {
    Err(missing_feature("redis"))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &SecretUrl,
    name: Option<&str>,
    ca: Option<Vec<u8>>,
) -> Result<(BoxLedger, String), StartError> {
    let mut options = match name {
        Some(name) => token_refresh::PostgresOptions::new().schema(name),
        None => token_refresh::PostgresOptions::new(),
    };
    if let Some(ca) = ca {
        options = options.trust_pem(ca);
    }
    let ledger = token_refresh::PostgresLedger::connect(url.expose(), options)
        .await
        .map_err(|e| unreachable_store(url, "PostgreSQL", &e))?;
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
    Ok((BoxLedger::new(ledger), label))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(
    _url: &SecretUrl,
    _name: Option<&str>,
    _ca: Option<Vec<u8>>,
) -> Result<(BoxLedger, String), StartError> {
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
fn unreachable_store(url: &SecretUrl, backend: &str, error: &token_refresh::StoreError) -> StartError {
    StartError::config(format!(
        "--store {}://…: cannot connect to the {backend} ledger: {}",
        url.scheme(),
        url.redact(&cause(error))
    ))
}

/// A store error and its causes, one line.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn cause(error: &token_refresh::StoreError) -> String {
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
    builder.build().map_err(|e| StartError::config(e.to_string()))
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
    let (policy, keys) = (setup.service.policy(), setup.service.signer().keyring().keys());
    let key = keys.first();
    tracing::info!(
        %bound,
        stack,
        signer = SIGNER_NAME,
        key_thumbprint = %key.map_or_else(String::new, VerificationKey::thumbprint),
        kid = key.and_then(VerificationKey::key_id).map_or("-", |kid| kid.as_str()),
        alg = policy.algorithm().as_str(),
        access_ttl = policy.access_lifetime().whole_seconds(),
        refresh_ttl = policy.refresh_lifetime().whole_seconds(),
        grace = policy.grace_window().whole_seconds(),
        store = %setup.store,
        "token-refresh listening"
    );
    for key in keys.iter().skip(1) {
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
    usize::try_from(fitted).unwrap_or(usize::MAX)
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

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send), so the
/// server stops accepting and lets in-flight requests finish.
/// Runs a tokio-based stack the way each of them starts: flags and stores
/// ([`start`]), bind, announce, `serve` until SIGINT/SIGTERM, then drain.
pub(crate) async fn run_tokio<F, Fut>(stack: &str, serve: F) -> ExitCode
where
    F: FnOnce(tokio::net::TcpListener, Setup) -> Fut,
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
    serve(listener, setup).await;
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
// Metrics and the protected resource
// ---------------------------------------------------------------------------

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
pub(crate) fn metrics() -> String {
    prometheus().map(|handle| handle.render()).unwrap_or_default()
}

/// The headers of the [`metrics`] answer.
pub(crate) const METRICS_HEADERS: [(&str, &str); 2] =
    [("content-type", "text/plain; version=0.0.4"), ("cache-control", "no-store")];

/// The `/api/v1/me` answer: who a checked access token belongs to.
pub(crate) fn me(claims: &AccessClaims) -> Reply {
    #[derive(Serialize)]
    struct Me<'a> {
        sub: &'a str,
        acc: &'a str,
        role: &'a str,
    }
    Reply::ok(Me { sub: &claims.subject, acc: &claims.account, role: &claims.role })
}
