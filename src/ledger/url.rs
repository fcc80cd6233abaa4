//! [`LedgerUrl`]: the session ledger chosen at run time, from configuration.

use std::fmt;
use std::str::FromStr;

use super::boxed::BoxLedger;
use super::memory::MemoryLedger;

/// Which session ledger a URL names, and the URL itself, kept secret: it
/// may carry a password, so `Debug` and `Display` show the scheme only and
/// every error message this module writes has the URL, its `user:password`
/// and its password cut out.
///
/// | URL | ledger | feature |
/// | --- | --- | --- |
/// | `memory` | [`MemoryLedger`]: one process | |
/// | `redis://…`, `rediss://…` (TLS), `redis-cluster://HOST:PORT[,HOST:PORT…]`, `rediss-cluster://…` | [`RedisLedger`](crate::ledger::redis::RedisLedger) | `redis` |
/// | `postgres://…`, `postgresql://…` (libpq's `sslmode`) | [`PostgresLedger`](crate::ledger::postgres::PostgresLedger) | `postgres` |
///
/// A URL naming a ledger this build was compiled without parses, and
/// [`connect`](Self::connect) refuses it naming the feature, so a
/// configuration error reads the same whatever the build.
///
/// ```
/// use token_refresh::ledger::{LedgerOptions, LedgerUrl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let url: LedgerUrl = "redis://:s3cret@cache.internal:6379/0".parse()?;
/// assert_eq!(format!("{url:?}"), "LedgerUrl(redis://…)");
///
/// let memory: LedgerUrl = "memory".parse()?;
/// let connected = memory.connect(&LedgerOptions::new()).await?;
/// assert_eq!(connected.description, "memory");
///
/// // The value is never repeated: it may hold a password.
/// let refused = "mysql://root:pw@db/auth".parse::<LedgerUrl>().err().map(|e| e.to_string());
/// assert!(refused.is_some_and(|message| !message.contains("pw")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerUrl {
    kind: LedgerKind,
    url: String,
}

/// The kind of ledger a [`LedgerUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerKind {
    /// `memory`.
    Memory,
    /// `redis://`, `rediss://`, `redis-cluster://`, `rediss-cluster://`.
    Redis,
    /// `postgres://`, `postgresql://`.
    Postgres,
}

/// A URL that names no ledger. The message does not repeat it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected memory, redis://…, rediss://…, redis-cluster://…, rediss-cluster://… or postgres://… (the value is not repeated here)"
)]
pub struct LedgerUrlError;

/// How [`LedgerUrl::connect`] sets a shared ledger up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    name: Option<String>,
    trust_pem: Option<Vec<u8>>,
}

impl LedgerOptions {
    /// No name (the default `token_refresh` schema / key prefix), the
    /// platform's certificate roots.
    pub fn new() -> Self {
        Self::default()
    }

    /// The deployment's name: the PostgreSQL schema, or the Redis key
    /// prefix `NAME:`. Several deployments share one server under
    /// different names. See [`is_valid_name`](Self::is_valid_name); a name
    /// the PostgreSQL ledger cannot take fails [`LedgerUrl::connect`].
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        Self { name: Some(name.into()), ..self }
    }

    /// Whether `name` is one both ledgers take as a [`name`](Self::name):
    /// 1 to 63 of `a-z 0-9 _`, not starting with a digit (a PostgreSQL
    /// identifier that needs no quoting, and a plain Redis key prefix).
    ///
    /// ```
    /// use token_refresh::ledger::LedgerOptions;
    ///
    /// assert!(LedgerOptions::is_valid_name("tenant_7"));
    /// assert!(!LedgerOptions::is_valid_name("7tenant") && !LedgerOptions::is_valid_name("Tenant"));
    /// ```
    pub fn is_valid_name(name: &str) -> bool {
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        first_ok && name.len() <= 63 && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// A PEM bundle of the CA certificates to trust for a TLS ledger
    /// instead of the platform's roots.
    #[must_use]
    pub fn trust_pem(self, pem: impl Into<Vec<u8>>) -> Self {
        Self { trust_pem: Some(pem.into()), ..self }
    }
}

/// A connected ledger and a line for the start-up log saying which one
/// (never the URL): `memory`, `redis, key prefix token_refresh:`,
/// `redis cluster, …`, `postgres, schema token_refresh`.
#[derive(Debug)]
pub struct Connected {
    /// The ledger.
    pub ledger: BoxLedger,
    /// Which ledger it is.
    pub description: String,
}

/// Why [`LedgerUrl::connect`] failed. No message holds the URL or its
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL names a ledger this build has no driver for.
    #[error("this build has no {feature} ledger; enable the crate's `{feature}` feature, or use memory (one process)")]
    MissingFeature {
        /// `redis` or `postgres`.
        feature: &'static str,
    },
    /// The server did not answer, refused the credentials, failed the TLS
    /// checks, or is set up in a way the ledger refuses (a Redis that
    /// evicts keys).
    #[error("cannot connect to the {backend} ledger: {cause}")]
    Unreachable {
        /// `Redis` or `PostgreSQL`.
        backend: &'static str,
        /// The driver's reason and its causes, one line, redacted.
        cause: String,
    },
    /// PostgreSQL answered but the ledger's tables could not be created.
    #[error("cannot create the ledger tables in schema {schema}: {cause}")]
    Migration {
        /// The schema.
        schema: String,
        /// The driver's reason, one line, redacted.
        cause: String,
    },
}

impl FromStr for LedgerUrl {
    type Err = LedgerUrlError;

    fn from_str(url: &str) -> Result<Self, LedgerUrlError> {
        let kind = match url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase()) {
            None if url == "memory" => LedgerKind::Memory,
            Some(scheme) => match scheme.as_str() {
                "redis" | "rediss" | "redis-cluster" | "rediss-cluster" => LedgerKind::Redis,
                "postgres" | "postgresql" => LedgerKind::Postgres,
                _ => return Err(LedgerUrlError),
            },
            None => return Err(LedgerUrlError),
        };
        Ok(Self { kind, url: url.to_owned() })
    }
}

impl LedgerUrl {
    /// Which ledger the URL names.
    pub fn kind(&self) -> LedgerKind {
        self.kind
    }

    /// The scheme, lower case (`memory` for the in-process ledger).
    pub fn scheme(&self) -> String {
        self.url.split_once("://").map_or_else(|| self.url.clone(), |(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// `text` with the URL, and its `user:password` and password, replaced
    /// by `…`: for messages from drivers, which may quote them. The user
    /// name alone stays (it helps read "password authentication failed for
    /// user …").
    pub fn redact(&self, text: &str) -> String {
        let mut secrets = vec![self.url.as_str()];
        if let Some((_, rest)) = self.url.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
            {
                secrets.extend([userinfo, password]);
            }
        }
        let mut text = text.to_owned();
        for secret in secrets.into_iter().filter(|secret| !secret.is_empty()) {
            text = text.replace(secret, "…");
        }
        text
    }

    /// Connects to the ledger (for PostgreSQL, also creates its tables if
    /// they are missing: idempotent, and safe when several instances start
    /// at once) and type-erases it, so a service picks its ledger from
    /// configuration without naming a type.
    ///
    /// # Panics
    ///
    /// The shared ledgers connect on tokio: outside a tokio runtime
    /// (tokio's rule).
    pub async fn connect(&self, options: &LedgerOptions) -> Result<Connected, ConnectError> {
        match self.kind {
            LedgerKind::Memory => {
                Ok(Connected { ledger: BoxLedger::new(MemoryLedger::new()), description: "memory".to_owned() })
            }
            LedgerKind::Redis => self.connect_redis(options).await,
            LedgerKind::Postgres => self.connect_postgres(options).await,
        }
    }

    #[cfg(feature = "redis")]
    async fn connect_redis(&self, options: &LedgerOptions) -> Result<Connected, ConnectError> {
        let prefix =
            options.name.as_ref().map_or_else(|| super::redis::DEFAULT_PREFIX.to_owned(), |name| format!("{name}:"));
        let mut builder = crate::ledger::redis::RedisLedger::builder(&self.url).prefix(prefix.as_str());
        if let Some(pem) = &options.trust_pem {
            builder = builder.trust_pem(pem.clone());
        }
        let ledger = builder.connect().await.map_err(|error| self.unreachable("Redis", &error))?;
        let kind = if ledger.is_cluster() { "redis cluster" } else { "redis" };
        Ok(Connected { ledger: BoxLedger::new(ledger), description: format!("{kind}, key prefix {prefix}") })
    }

    #[cfg(not(feature = "redis"))]
    async fn connect_redis(&self, _: &LedgerOptions) -> Result<Connected, ConnectError> {
        Err(ConnectError::MissingFeature { feature: "redis" })
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(&self, options: &LedgerOptions) -> Result<Connected, ConnectError> {
        let mut postgres = crate::ledger::postgres::PostgresOptions::new();
        if let Some(name) = &options.name {
            postgres = postgres.schema(name.as_str());
        }
        if let Some(pem) = &options.trust_pem {
            postgres = postgres.trust_pem(pem.clone());
        }
        let ledger = crate::ledger::postgres::PostgresLedger::connect(&self.url, postgres)
            .await
            .map_err(|error| self.unreachable("PostgreSQL", &error))?;
        ledger.migrate().await.map_err(|error| ConnectError::Migration {
            schema: ledger.schema().to_owned(),
            cause: self.redact(&one_line(&error)),
        })?;
        let description = format!("postgres, schema {}", ledger.schema());
        Ok(Connected { ledger: BoxLedger::new(ledger), description })
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(&self, _: &LedgerOptions) -> Result<Connected, ConnectError> {
        Err(ConnectError::MissingFeature { feature: "postgres" })
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    fn unreachable(&self, backend: &'static str, error: &crate::error::StoreError) -> ConnectError {
        ConnectError::Unreachable { backend, cause: self.redact(&one_line(error)) }
    }
}

/// An error and its causes on one line, each cause once.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn one_line(error: &crate::error::StoreError) -> String {
    let mut text = error.cause().to_string();
    let mut source = error.cause().source();
    while let Some(next) = source {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text = format!("{text}: {next_text}");
        }
        source = next.source();
    }
    text
}

impl fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerUrl({})", self)
    }
}

impl fmt::Display for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LedgerKind::Memory => f.write_str("memory"),
            _ => write!(f, "{}://…", self.scheme()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_kinds() {
        let kind = |url: &str| url.parse::<LedgerUrl>().map(|url| url.kind()).ok();
        assert_eq!(kind("memory"), Some(LedgerKind::Memory));
        for url in ["redis://h", "rediss://h", "REDIS-CLUSTER://h:1,h:2", "rediss-cluster://h"] {
            assert_eq!(kind(url), Some(LedgerKind::Redis), "{url}");
        }
        for url in ["postgres://h/db", "postgresql://h/db"] {
            assert_eq!(kind(url), Some(LedgerKind::Postgres), "{url}");
        }
        for url in ["", "Memory ", "mysql://h", "redis:/h", "h:6379"] {
            assert_eq!(kind(url), None, "{url:?}");
        }
    }

    #[test]
    fn secrets_never_show() -> Result<(), LedgerUrlError> {
        let url: LedgerUrl = "postgres://app:s3cret@db.internal:5432/auth?sslmode=require".parse()?;
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("s3cret") && !shown.contains("db.internal"), "{shown}");
        let quoted = "error connecting to postgres://app:s3cret@db.internal:5432/auth?sslmode=require: \
                      password authentication failed for user app (s3cret)";
        let redacted = url.redact(quoted);
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert!(redacted.contains("for user app"), "{redacted}");
        Ok(())
    }
}
