//! The session ledger on PostgreSQL, shared by every instance of a service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ledger::rules::{self, Decision, SessionView};
use crate::ledger::{
    AccessState, Created, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
    SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use crate::token::ids::{SessionId, TokenId};

mod tls;

/// The SQL migration creating the ledger's version-1 tables; `{schema}`
/// stands for the configured schema name.
pub const MIGRATION_0001: &str = include_str!("../../migrations/0001_sessions.sql");

/// The SQL migration to the one-row-per-session schema (version 2); run
/// after [`MIGRATION_0001`]. `{schema}` stands for the configured schema
/// name. Upgrading a version-1 ledger deletes its sessions: their tokens
/// carry no session tag, so no lookup could reach them (their users log in
/// again).
pub const MIGRATION_0002: &str = include_str!("../../migrations/0002_one_row_per_session.sql");

/// The SQL migration ordering each user's sessions by end of life, with a
/// count per user (version 3), so that a login never reads the user's rows;
/// run after [`MIGRATION_0002`]. Keeps every session.
pub const MIGRATION_0003: &str = include_str!("../../migrations/0003_end_of_life_index.sql");

/// The SQL migration to version 4: the per-user cap's ties and the
/// listing go by the login sequence alone (both indexes rebuilt without
/// `created_at`); run after [`MIGRATION_0003`]. Keeps every session.
pub const MIGRATION_0004: &str = include_str!("../../migrations/0004_login_order.sql");

/// The SQL migration to version 5: the function a rotation calls to
/// refuse committing past its caller's deadline; run after
/// [`MIGRATION_0004`]. Keeps every session.
pub const MIGRATION_0005: &str = include_str!("../../migrations/0005_rotation_deadline.sql");

/// Every migration, by the version it records, in the order they apply.
const MIGRATIONS: [(i32, &str); 5] =
    [(1, MIGRATION_0001), (2, MIGRATION_0002), (3, MIGRATION_0003), (4, MIGRATION_0004), (5, MIGRATION_0005)];

/// The default schema name.
pub const DEFAULT_SCHEMA: &str = "token_refresh";

/// The clock skew tolerated between instances, in seconds:
/// [`PostgresLedger::purge`] keeps a row this long past its retention, and
/// a login keeps a session in its user's index this long past its end (the
/// Redis ledger keeps its keys as long).
const LIST_SLACK: i64 = 60;

/// How to build a [`PostgresLedger`].
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use std::time::Duration;
/// use token_refresh::PostgresOptions;
///
/// let options = PostgresOptions::new().schema("auth").pool_size(8).timeout(Duration::from_secs(2));
/// assert_eq!(options.schema_name(), "auth");
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    schema: String,
    /// Set by the caller (`None`: the default), so that
    /// [`PostgresLedger::from_pool`] can refuse what it cannot apply.
    pool_size: Option<usize>,
    timeout: Option<Duration>,
    /// PEM CA certificates trusted instead of the platform's roots.
    trusted_roots: Option<Vec<u8>>,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("private_ca", &self.trusted_roots.is_some())
            .finish()
    }
}

/// Connections [`PostgresLedger::connect`] opens at most, by default.
const DEFAULT_POOL_SIZE: usize = 16;
/// [`PostgresOptions::timeout`] by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a call's timeout kept back from the server (see
/// [`server_budget`]): more than any clock skew between the service's hosts
/// and the database's that NTP leaves, plus a commit.
const MAX_MARGIN: Duration = Duration::from_secs(1);

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { schema: DEFAULT_SCHEMA.to_owned(), pool_size: None, timeout: None, trusted_roots: None }
    }
}

impl PostgresOptions {
    /// Schema `token_refresh`, 16 connections, 5 s timeouts (the last two
    /// for [`PostgresLedger::connect`] only).
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema holding the tables: 1 to 63 characters of `a-z`, `0-9`
    /// and `_`, not starting with a digit (checked when the ledger is
    /// built). Tests use a schema of their own per run.
    #[must_use]
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// Most connections the pool opens (at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = Some(size.max(1));
        self
    }

    /// How long to wait to connect, or for a free pooled connection; also
    /// the server's `idle_in_transaction_session_timeout` for the ledger's
    /// connections (a stalled transaction releases its locks after this
    /// long), and the deadline of every ledger call: a call not answered
    /// within it fails (a 500), and the server is made to give it up
    /// before then (see [`PostgresLedger`]'s "Timeouts"). Keep it below
    /// the request deadline of the service (the HTTP endpoint's is 10 s),
    /// so that the ledger, not the request, gives up first.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Trusts the CA certificates of this PEM bundle, **instead of** the
    /// platform's roots, for `sslmode=verify-ca` and `verify-full` (and a
    /// URL without `sslmode` to a non-loopback host, which means
    /// `verify-full`): for a private CA. Checked at
    /// [`PostgresLedger::connect`].
    #[must_use]
    pub fn trust_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trusted_roots = Some(pem.into());
        self
    }

    /// The configured schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    fn timeout_or_default(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// Rows removed by [`PostgresLedger::purge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Purged {
    /// Session rows.
    pub sessions: u64,
}

/// The [`SessionLedger`] on PostgreSQL: one ledger shared by every
/// instance that connects to the same database and schema.
///
/// # Layout
///
/// One row per session in `sessions`, keyed by the [`SessionId`] (a
/// `uuid`) that every token id of the session carries
/// ([`TokenId::session`]). A rotation updates the row in place: the
/// current refresh id moves to `previous_refresh_id`, the successor's ids
/// and expiries replace the current ones. Nothing is stored per rotation,
/// so a session is one row after any number of refreshes.
///
/// # How it keeps the contract
///
/// - **Consume once, in one round trip.** A refresh is a single
///   conditional `UPDATE … WHERE session_id = $1 AND refresh_id =
///   $presented AND subject = $2 AND NOT revoked AND <not expired>
///   RETURNING …`: the compare-and-swap of the current refresh id. The
///   `UPDATE` takes the row's lock; a concurrent one of the same session
///   waits for it and, at `READ COMMITTED`, re-evaluates its `WHERE` on the
///   row the winner committed, whose `refresh_id` is no longer the
///   presented one. Of any number of concurrent rotations of one token,
///   across all connections and processes, exactly one updates the row.
///   Sessions never wait for each other.
/// - **Everything else decides as [`MemoryLedger`] does.** Only when the
///   `UPDATE` matches no row (the token is not current, or the session is
///   revoked, expired, another subject's or unknown) does the ledger open a
///   transaction, read the row `FOR UPDATE`, apply the contract's decision
///   (the one [`MemoryLedger`] applies) and write its outcome: one more
///   grace replay, or the session revoked on reuse. The row lock orders it
///   with every rotation, replay, reuse and logout of that session.
/// - **`READ COMMITTED`, pinned.** The re-evaluation above is what `READ
///   COMMITTED` does; a stricter level would fail the waiting rotation with
///   a serialization error instead (a 500). [`connect`](Self::connect)
///   sets the connections' `default_transaction_isolation` to `read
///   committed` whatever the server, role or URL says, and every
///   transaction the ledger opens names the level. On a pool from
///   [`from_pool`](Self::from_pool) whose default is stricter, a
///   single-statement write that fails to serialize (which changed
///   nothing) runs again in a `READ COMMITTED` transaction; for a rotation,
///   that is the transaction it falls back to anyway.
/// - **No half rotation.** A rotation's write is one statement: the
///   server applies it whole or not at all. If the connection drops before
///   it commits, nothing changed and the presented token is still current;
///   if only the reply is lost, the token is consumed and its successor
///   recorded. Either way the caller gets a [`StoreError`] (a 500), and
///   nothing is ever sent again after a lost connection (a retried
///   rotation would look like reuse).
/// - **Logins** run in one transaction that first takes a transaction-level
///   advisory lock on the subject (`pg_advisory_xact_lock`), so that two
///   logins of one user cannot both take the last place under the cap.
///   The user's sessions are indexed by end of life, then login order
///   (`(ends_at, login_seq)`, a partial index over the `listed` rows) and
///   counted (`session_counts`): a login unlists the sessions that ended
///   more than 60 s ago (an index range), reads the count, at the cap
///   takes the first entries, **deletes** the live ones among them and
///   unlists the others, and inserts the new row; a taken session id (`ON
///   CONFLICT DO NOTHING` inserting nothing) rolls it all back. No
///   statement reads the user's other rows: at a cap of 10 000 a login
///   fetches 4 index entries (it scanned all 10 000 rows before). Logout,
///   a detected reuse and `revoke_user` take the same lock first (a reuse
///   is found on the slow path, which takes the user's lock before the
///   row's) and keep the count; every count change is relative, so
///   [`PostgresLedger::purge`] composes with them.
/// - **Ties go to the earliest login.** `login_seq` is an identity column:
///   one sequence for every instance, drawn by the login's `INSERT` while
///   it holds its user's lock, so a user's sessions are numbered in the
///   order their logins happened. Logins within one second end their
///   lives at the same second; among them the cap evicts the lowest
///   `login_seq`, and [`sessions`](SessionLedger::sessions) lists by it.
///   Neither the login time (the caller's clock, one-second resolution)
///   nor the random session id decides.
/// - **Bounded rows.** The table follows the live sessions, not the
///   logins. A session the cap evicts is deleted by the login that evicts
///   it (its tokens become unknown: 401, as before), so replaying one
///   login body leaves the cap's rows (10 000 logins at a cap of 100: 100
///   rows; each used to stay for a day). A session ended by logout,
///   reuse or `revoke_user` stays as a revoked tombstone (its tokens
///   answer "revoked") with its retention cut to at most
///   [`TOMBSTONE_SECONDS`] after the revocation.
/// - **Retention.** A row carries `retain_until`: its current tokens'
///   expiry plus leeway, raised by rotations, lowered only by a
///   revocation (see above). Decisions compare stored times with the `now`
///   each call carries, never the server's clock, so a row kept longer
///   changes nothing; [`PostgresLedger::purge`] (also
///   [`SessionLedger::purge`], so what
///   [`TokenService::purge_every`](crate::TokenService::purge_every) runs)
///   deletes rows 60 s past their retention (slack for clock skew between
///   instances). Purging bounds the table's size; correctness never needs
///   it.
/// - **No bearer material.** Ids are stored as `uuid`, times as unix
///   seconds, plus the claims needed to re-sign the current pair; never a
///   token.
///
/// # Timeouts
///
/// Every call ([`create`](SessionLedger::create),
/// [`rotate`](SessionLedger::rotate), the revocations, the reads) has a
/// deadline, [`PostgresOptions::timeout`] (5 s by default; keep it below the
/// service's request deadline, 10 s for the HTTP endpoint): past it the
/// call fails with a [`StoreError`] (a 500), logged as a WARN (feature
/// `tracing`) and counted in `token_refresh_ledger_timeouts_total`
/// (feature `metrics`). So is a call the server gave up for time.
///
/// A timeout must not turn into a revocation. A rotation sent while its
/// row is locked by another transaction, or while the server is stalled,
/// would otherwise wait there after its caller gave up: it commits when the
/// lock is released, consuming the token while the client, told 500,
/// retries it, and the retry is then reuse and revokes the session (the
/// security review's M1, measured on Redis; the same happened here: a row
/// held locked past the request deadline, two attempts given up, then a
/// retry answered `Reused`). Two things prevent it:
///
/// - **The rotation carries a deadline.** Its `UPDATE` returns
///   `before_deadline(not_after)` (migration 5), evaluated once the row is
///   locked and written, right before the commit: past `not_after` it
///   raises `query_canceled` and the rotation rolls back. `not_after` is
///   the wall clock when the call starts plus the timeout less a margin (a
///   fifth of it, at most 1 s) for clock skew between the service's hosts
///   and the database's and for the commit itself: the server stops
///   accepting the rotation before the ledger stops waiting for its
///   answer, so a rotation that commits is one whose caller hears of it.
///   This needs nothing of the connections, so a pool from
///   [`from_pool`](Self::from_pool) has it too.
/// - **The server stops waiting first.** [`connect`](Self::connect)'s
///   connections set `lock_timeout` to that same budget: a statement
///   waiting for a row or a user's lock fails at the server before the
///   call's deadline, so the ledger returns the server's error and the
///   connection goes back to the pool idle.
///
/// What is left is the lost answer (the rotation committed, the reply never
/// arrived), which no timeout can tell apart; a grace window turns its
/// retry into a replay. A logout or `revoke_user` that commits after its
/// caller gave up still revokes, as it was asked to; a login that does
/// leaves one more session, within the cap.
///
/// # Schema
///
/// `migrations/0001_sessions.sql` to `migrations/0005_rotation_deadline.sql`
/// ([`MIGRATION_0001`] to [`MIGRATION_0005`]), shipped in the crate,
/// create the tables in a configurable schema (default `token_refresh`):
/// one row per session, one count per user, and the rotation's deadline
/// check. The index of listed sessions by end of life covers `ends_at`,
/// which a rotation moves, so a rotation is not a HOT update (each writes
/// an entry in each index; docs/ledgers.md gives the cost). The other
/// indexes (the key, and `(subject, login_seq)` for listing and
/// `revoke_user`) cover no column a rotation changes.
///
/// [`PostgresLedger::migrate`] applies those not yet recorded, in one
/// transaction under an advisory lock, so several instances may call it at
/// start. Upgrading from version 1 logs every user out; see
/// [`MIGRATION_0002`].
///
/// # Use
///
/// Cloning is cheap and shares the pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), token_refresh::StoreError> {
/// use token_refresh::{MemoryUserStore, PostgresLedger, PostgresOptions, Store};
///
/// let ledger = PostgresLedger::connect("postgres://app@db/auth", PostgresOptions::new()).await?;
/// ledger.migrate().await?;
/// let store = Store::new(MemoryUserStore::default(), ledger);
/// # Ok(()) }
/// ```
///
/// [`MemoryLedger`]: crate::MemoryLedger
#[derive(Clone)]
pub struct PostgresLedger {
    pool: Pool,
    sql: Arc<Statements>,
    /// The deadline of each call ([`PostgresOptions::timeout`]).
    timeout: Duration,
}

impl fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLedger").field("schema", &self.sql.schema).finish_non_exhaustive()
    }
}

impl PostgresLedger {
    /// Connects to `url` (a libpq-style URL or key=value string, as
    /// `tokio_postgres::Config` parses it) and checks the server answers.
    ///
    /// TLS follows the URL's `sslmode` (`disable`, `prefer`, `require`,
    /// `verify-ca`, `verify-full`, as libpq; rustls, no OpenSSL). **Without
    /// one**, a loopback host gets `prefer` and any other host
    /// `verify-full`: a ledger across a network never falls back to
    /// plaintext or accepts any certificate unless its URL says so. The
    /// platform's roots are trusted unless [`PostgresOptions::trust_pem`]
    /// names a private CA. A certificate that does not verify fails here,
    /// and no error repeats the URL or its password. Fails when the server is unreachable, so a service learns at
    /// start, not at its first refresh. Does not create tables: call
    /// [`migrate`](Self::migrate).
    ///
    /// The connections run at `READ COMMITTED` (`-c
    /// default_transaction_isolation`, after any `options` in `url`, so it
    /// wins over them), with `idle_in_transaction_session_timeout` set to
    /// [`PostgresOptions::timeout`] and `lock_timeout` a little below it
    /// (see "Timeouts" above).
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let (url, mode) = tls::take_sslmode(url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(StoreError::new)?;
        let mode = mode.unwrap_or_else(|| tls::default_mode(config.get_hosts()));
        let (connector, wire_mode) = tls::connector(mode, options.trusted_roots.as_deref())?;
        config.ssl_mode(wire_mode);
        let timeout = options.timeout_or_default();
        config.connect_timeout(timeout);
        config.options(server_options(config.get_options(), timeout));
        let manager =
            Manager::from_config(config, connector, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.unwrap_or(DEFAULT_POOL_SIZE))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(StoreError::new)?;
        let mut ledger =
            Self::from_pool(pool, PostgresOptions { pool_size: None, timeout: None, trusted_roots: None, ..options })?;
        ledger.timeout = timeout;
        ledger.ping().await?;
        Ok(ledger)
    }

    /// A ledger on an existing pool (for TLS, or a pool the service shares).
    /// Does not connect. Its connections should run at `READ COMMITTED`,
    /// PostgreSQL's default (see the type's docs for what happens when they
    /// do not).
    ///
    /// Only the options' schema applies: the pool's size and timeouts, and
    /// its connections' server settings (`idle_in_transaction_session_timeout`
    /// among them), are the pool's own. Options that set a pool size or a
    /// timeout are refused rather than silently ignored: set those on the
    /// pool (and `-c idle_in_transaction_session_timeout=…` in its
    /// connections' options). Each call's deadline is the default 5 s; a
    /// rotation carries it to the server, which refuses to commit it later
    /// (see "Timeouts" above), so no setting of the pool's connections is
    /// needed for that.
    pub fn from_pool(pool: Pool, options: PostgresOptions) -> Result<Self, StoreError> {
        if options.pool_size.is_some() || options.timeout.is_some() || options.trusted_roots.is_some() {
            return Err(StoreError::new(
                "PostgresLedger::from_pool uses the pool's own size, timeouts and TLS: set them on the pool, \
                 not in PostgresOptions",
            ));
        }
        let sql = Statements::new(&options.schema)?;
        Ok(Self { pool, sql: Arc::new(sql), timeout: DEFAULT_TIMEOUT })
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.sql.schema
    }

    /// Checks the server answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(StoreError::new)?;
        Ok(())
    }

    /// Creates or upgrades the schema: applies the migrations
    /// ([`MIGRATION_0001`] to [`MIGRATION_0005`]) not yet recorded in its
    /// `migrations` table, in order. Idempotent, and safe to run from
    /// several instances at once: it runs in one transaction under an
    /// advisory lock. Once the schema is current it changes nothing (and
    /// takes no table lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let schema = &self.sql.schema;
        let mut client = self.client().await?;
        let transaction = read_committed(&mut client).await?;
        // Another instance may be migrating (building an index takes as
        // long as the table is large): wait for it, whatever the
        // connections' `lock_timeout`, which is meant for the calls.
        let lock = format!(
            "SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(hashtext('token_refresh.migrate.{schema}'))"
        );
        transaction.batch_execute(&lock).await.map_err(StoreError::new)?;
        // Read after the lock, so it sees what an instance that held it
        // before committed.
        let recorded = transaction
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{schema}.migrations")])
            .await
            .map_err(StoreError::new)?;
        let applied: i32 = if get(&recorded, 0)? {
            let sql = format!("SELECT COALESCE(max(version), 0) FROM {schema}.migrations");
            let row = transaction.query_one(&sql, &[]).await.map_err(StoreError::new)?;
            get(&row, 0)?
        } else {
            0
        };
        for (version, body) in MIGRATIONS {
            if version > applied {
                transaction.batch_execute(&body.replace("{schema}", schema)).await.map_err(StoreError::new)?;
            }
        }
        transaction.commit().await.map_err(StoreError::new)
    }

    /// Deletes the sessions whose retention ended 60 s before `now` (unix
    /// seconds), the slack for clock skew between instances: expired ones
    /// (their current tokens expired, plus the session's leeway) and
    /// revoked tombstones ([`TOMBSTONE_SECONDS`] after their revocation).
    /// [`SessionLedger::purge`] is this, so a ledger chosen by
    /// [`LedgerUrl`](crate::ledger::LedgerUrl) is purged by
    /// [`TokenService::purge_every`](crate::TokenService::purge_every) like
    /// any other; run one such loop per deployment (every minute is
    /// fine). The ledger is correct without it; it bounds the table to
    /// the live sessions and those that ended within the last few
    /// minutes. It scans the table: `retain_until` has no index (every
    /// rotation would have to update it). Rows of a user that are still
    /// listed leave the user's count with them.
    pub async fn purge(&self, now: i64) -> Result<Purged, StoreError> {
        let mut client = self.client().await?;
        let rows = query_pinned(&mut client, &self.sql.purge, &[&now.saturating_sub(LIST_SLACK)]).await?;
        let sessions = rows.first().map(|row| get::<i64>(row, 0)).transpose()?.unwrap_or(0);
        query_pinned(&mut client, &self.sql.purge_counts, &[]).await?;
        Ok(Purged { sessions: u64::try_from(sessions).map_err(StoreError::new)? })
    }

    /// Purges every `every`, forever, on the wall clock: spawn it once per
    /// deployment (one instance is enough; several are harmless). A failed
    /// purge is retried at the next tick; with the `tracing` feature it is
    /// logged. Rows past their retention are harmless, purging only bounds
    /// the table: every few minutes keeps tombstones (a minute each) from
    /// piling up, and each pass scans the table once.
    /// [`TokenService::purge_every`](crate::TokenService::purge_every) does
    /// the same for any ledger.
    ///
    /// ```no_run
    /// # async fn demo(ledger: token_refresh::PostgresLedger) {
    /// tokio::spawn({
    ///     let ledger = ledger.clone();
    ///     async move { ledger.purge_every(std::time::Duration::from_secs(3600)).await }
    /// });
    /// # }
    /// ```
    pub async fn purge_every(&self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let outcome = self.purge(now).await;
            #[cfg(feature = "tracing")]
            match &outcome {
                Ok(purged) => tracing::debug!(target: "token_refresh", sessions = purged.sessions, "ledger purged"),
                Err(error) => tracing::warn!(target: "token_refresh", %error, "ledger purge failed"),
            }
            drop(outcome);
        }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(StoreError::new)
    }

    /// Runs one call under the ledger's deadline: past it, the call is
    /// dropped (a transaction it left open rolls back, and a rotation still
    /// queued at the server is refused by the deadline it carries) and
    /// fails. A timeout, the ledger's own or one the server reports, is
    /// logged and counted: the client got a 500 while the server may have
    /// been slow or stalled.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if server_timed_out(&error) {
                    timed_out(op, self.timeout, "server");
                }
                Err(error)
            }
            Err(_) => {
                timed_out(op, self.timeout, "client");
                Err(StoreError::timeout(TimedOut { op, timeout: self.timeout }))
            }
        }
    }

    /// The rotation's slow path: reads the session row under its lock,
    /// applies the contract's decision and writes it, in one transaction.
    async fn rotate_locked(
        &self,
        client: &mut Object,
        session: SessionId,
        request: &RotationRequest,
        params: &RotateParams<'_>,
    ) -> Result<Rotation, StoreError> {
        let lock = client.prepare_cached(&self.sql.lock_user).await.map_err(StoreError::new)?;
        let select = client.prepare_cached(&self.sql.select_for_update).await.map_err(StoreError::new)?;
        let transaction = read_committed(client).await?;
        // The user's lock before the row's, the order logins take them in
        // (a reuse takes the session out of the user's count).
        transaction.execute(&lock, &[&request.subject]).await.map_err(StoreError::new)?;
        let row = transaction.query_opt(&select, &[session.as_uuid()]).await.map_err(StoreError::new)?;
        let Some(row) = row else {
            transaction.rollback().await.map_err(StoreError::new)?;
            return Ok(Rotation::Unknown);
        };
        let record = Record::from_row(&row)?;
        let outcome = match rules::decide(&record.view(request), request) {
            Decision::Unknown => Rotation::Unknown,
            Decision::Revoked => Rotation::Revoked { session },
            Decision::Expired => Rotation::Expired { session },
            // Current after all (the first statement failed to serialize
            // under a stricter isolation, or the session was created since
            // it ran): the same conditional write, the row now locked.
            Decision::Rotate { .. } => {
                let rotate = transaction.prepare_cached(&self.sql.rotate).await.map_err(StoreError::new)?;
                let row = transaction.query_opt(&rotate, &params.as_params()).await.map_err(StoreError::new)?;
                let row = row.ok_or_else(|| StoreError::new("the session row changed under its lock"))?;
                rotated(session, request, &row)?
            }
            Decision::Replay { replay } => {
                let write = transaction.prepare_cached(&self.sql.write_replays).await.map_err(StoreError::new)?;
                let replays = i32::try_from(replay).map_err(StoreError::new)?;
                transaction.execute(&write, &[session.as_uuid(), &replays]).await.map_err(StoreError::new)?;
                Rotation::Replayed { session, generation: record.generation, pair: record.pair, replay }
            }
            Decision::Reuse { presented_generation } => {
                let write = transaction.prepare_cached(&self.sql.write_revoked).await.map_err(StoreError::new)?;
                let tombstone_until = request.now.saturating_add(TOMBSTONE_SECONDS);
                transaction
                    .execute(&write, &[session.as_uuid(), &record.pair.subject, &tombstone_until])
                    .await
                    .map_err(StoreError::new)?;
                Rotation::Reused { session, presented_generation, current_generation: record.generation }
            }
        };
        // Also ends the read-only outcomes, releasing the row lock.
        transaction.commit().await.map_err(StoreError::new)?;
        Ok(outcome)
    }
}

impl SessionLedger for PostgresLedger {
    async fn ping(&self) -> Result<(), StoreError> {
        PostgresLedger::ping(self).await
    }

    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        PostgresLedger::purge(self, now).await.map(|purged| purged.sessions)
    }

    async fn create(&self, new: &NewSession) -> Result<Created, StoreError> {
        self.bounded("create", async {
            rules::check_pair_ids(new.session, &new.pair)?;
            let pair = &new.pair;
            let cap = i64::from(new.max_sessions_per_user.max(1));
            let retain_until = rules::retain_until(pair, new.leeway);
            let ends_at = new.absolute_expires_at.min(pair.refresh_expires_at.saturating_add(new.leeway));
            let ended = new.created_at.saturating_sub(LIST_SLACK);
            let mut client = self.client().await?;
            let lock = client.prepare_cached(&self.sql.lock_user).await.map_err(StoreError::new)?;
            let prune = client.prepare_cached(&self.sql.prune).await.map_err(StoreError::new)?;
            let evict = client.prepare_cached(&self.sql.evict).await.map_err(StoreError::new)?;
            let create = client.prepare_cached(&self.sql.create).await.map_err(StoreError::new)?;
            let transaction = read_committed(&mut client).await?;
            transaction.execute(&lock, &[&pair.subject]).await.map_err(StoreError::new)?;
            // The user's sessions that ended more than the slack ago leave the
            // index (an index range, not a walk); the answer is the count left.
            let listed: i32 =
                get(&transaction.query_one(&prune, &[&pair.subject, &ended]).await.map_err(StoreError::new)?, 0)?;
            let mut evicted = Vec::new();
            let excess = i64::from(listed).saturating_sub(cap).saturating_add(1);
            if excess > 0 {
                let row = transaction
                    .query_one(&evict, &[&pair.subject, &new.created_at, &excess, new.session.as_uuid()])
                    .await
                    .map_err(StoreError::new)?;
                evicted = get::<Vec<Uuid>>(&row, 0)?;
            }
            let row = transaction
                .query_one(
                    &create,
                    &[
                        new.session.as_uuid(),
                        &pair.subject,
                        &pair.account,
                        &pair.role,
                        pair.access_id.as_uuid(),
                        &pair.access_expires_at,
                        pair.refresh_id.as_uuid(),
                        &pair.refresh_expires_at,
                        &new.absolute_expires_at,
                        &new.created_at,
                        &new.leeway,
                        &retain_until,
                        &ends_at,
                    ],
                )
                .await
                .map_err(StoreError::new)?;
            if !get::<bool>(&row, 0)? {
                // The evictions go too.
                transaction.rollback().await.map_err(StoreError::new)?;
                return Err(StoreError::new("session id already taken"));
            }
            transaction.commit().await.map_err(StoreError::new)?;
            Ok(Created::evicting(evicted.iter().map(|id| SessionId::from_bytes(*id.as_bytes())).collect()))
        })
        .await
    }

    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        self.bounded("rotate", async {
            rules::check_successor(request)?;
            let session = request.presented.session();
            let params = RotateParams::new(session, request, not_after_ms(self.timeout));
            let mut client = self.client().await?;
            let rotate = client.prepare_cached(&self.sql.rotate).await.map_err(StoreError::new)?;
            // The common case: the presented token is current. One statement,
            // its own transaction.
            match client.query_opt(&rotate, &params.as_params()).await {
                Ok(Some(row)) => return rotated(session, request, &row),
                // Not current, or no such live session: decide below.
                Ok(None) => {}
                // A stricter default isolation than ours on a pool from
                // `from_pool`: the statement changed nothing; decide below, at
                // READ COMMITTED.
                Err(error) if must_retry(&error) => {}
                Err(error) => return Err(StoreError::new(error)),
            }
            self.rotate_locked(&mut client, session, request, &params).await
        })
        .await
    }

    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.bounded("revoke_session", async {
            let tombstone_until = now.saturating_add(TOMBSTONE_SECONDS);
            let mut client = self.client().await?;
            let lock = client.prepare_cached(&self.sql.lock_user).await.map_err(StoreError::new)?;
            let revoke = client.prepare_cached(&self.sql.revoke_session).await.map_err(StoreError::new)?;
            let transaction = read_committed(&mut client).await?;
            transaction.execute(&lock, &[&subject]).await.map_err(StoreError::new)?;
            let row = transaction
                .query_one(&revoke, &[session.as_uuid(), &subject, &tombstone_until])
                .await
                .map_err(StoreError::new)?;
            transaction.commit().await.map_err(StoreError::new)?;
            let (revoked_now, known): (bool, bool) = (get(&row, 0)?, get(&row, 1)?);
            Ok(match (revoked_now, known) {
                (true, _) => Revocation::Revoked { session },
                (false, true) => Revocation::AlreadyRevoked { session },
                (false, false) => Revocation::Unknown,
            })
        })
        .await
    }

    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.bounded("revoke_user", async {
            let mut client = self.client().await?;
            let lock = client.prepare_cached(&self.sql.lock_user).await.map_err(StoreError::new)?;
            let revoke = client.prepare_cached(&self.sql.revoke_user).await.map_err(StoreError::new)?;
            let transaction = read_committed(&mut client).await?;
            // Ordered with the user's logins (each may evict some of the same
            // rows), so the two never deadlock.
            transaction.execute(&lock, &[&subject]).await.map_err(StoreError::new)?;
            let tombstone_until = now.saturating_add(TOMBSTONE_SECONDS);
            let row =
                transaction.query_one(&revoke, &[&subject, &now, &tombstone_until]).await.map_err(StoreError::new)?;
            transaction.commit().await.map_err(StoreError::new)?;
            u64::try_from(get::<i64>(&row, 0)?).map_err(StoreError::new)
        })
        .await
    }

    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.bounded("sessions", async {
            let client = self.client().await?;
            let list = client.prepare_cached(&self.sql.sessions).await.map_err(StoreError::new)?;
            let rows = client.query(&list, &[&subject, &now]).await.map_err(StoreError::new)?;
            rows.iter()
                .map(|row| {
                    let at = |column| get(row, column).map(UnixTime::from_seconds);
                    let times = SessionTimes {
                        created_at: at(1)?,
                        rotated_at: at(2)?,
                        refresh_expires_at: at(4)?,
                        absolute_expires_at: at(5)?,
                    };
                    let session = SessionId::from_bytes(*get::<Uuid>(row, 0)?.as_bytes());
                    Ok(SessionInfo::new(session, from_db_generation(get(row, 3)?)?, times))
                })
                .collect()
        })
        .await
    }

    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        self.bounded("access_state", async {
            let client = self.client().await?;
            let select = client.prepare_cached(&self.sql.access_state).await.map_err(StoreError::new)?;
            let session = access_id.session();
            let row = client.query_opt(&select, &[session.as_uuid(), &subject]).await.map_err(StoreError::new)?;
            Ok(match row {
                None => AccessState::Revoked,
                Some(row) if get::<Uuid>(&row, 0)? == *access_id.as_uuid() => AccessState::Current,
                Some(_) => AccessState::Superseded,
            })
        })
        .await
    }
}

/// The server options of [`PostgresLedger::connect`]'s connections: the
/// URL's own, then ours (later `-c` settings win).
fn server_options(given: Option<&str>, timeout: Duration) -> String {
    // A rotation or login that stalls mid-transaction (service hung,
    // network partitioned) is ended by the server after this long, rolling
    // it back and releasing its locks, rather than after TCP keepalive.
    // The isolation level is the one the ledger's design rests on (see
    // `PostgresLedger`); the space is escaped as libpq's `options` wants.
    // A statement waiting for a lock (a login for its user's, a rotation
    // for its row) is given up by the server before the ledger gives up
    // the call, so the server's error, not a dropped future, ends it and
    // the connection is idle again (see "Timeouts" in `PostgresLedger`).
    let ours = format!(
        "-c idle_in_transaction_session_timeout={} -c lock_timeout={} \
         -c default_transaction_isolation=read\\ committed",
        timeout.as_millis(),
        server_budget(timeout).as_millis()
    );
    match given {
        Some(given) if !given.trim().is_empty() => format!("{given} {ours}"),
        _ => ours,
    }
}

/// How much of a call's `timeout` the server may use: the timeout less a
/// margin (a fifth of it, at most [`MAX_MARGIN`]). The server's clock may
/// be behind the service's, and a commit takes a moment: a rotation the
/// server lets commit within this budget is answered before the ledger
/// gives up on it, so the caller learns of it.
fn server_budget(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 5).min(MAX_MARGIN))
}

/// The deadline a rotation carries to the server, in Unix milliseconds:
/// now on the wall clock (not the request's `now`, which is the caller's
/// to choose) plus [`server_budget`]. A clock before 1970 gives 0, which
/// refuses the rotation: failing (a 500) is safe, committing late is not.
fn not_after_ms(timeout: Duration) -> i64 {
    SystemTime::now()
        .checked_add(server_budget(timeout))
        .and_then(|deadline| deadline.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// Whether the server gave a statement up for time: `lock_timeout`
/// (`55P03`), or `statement_timeout`, a cancel or a rotation's deadline
/// (`57014`). Either way the statement, and its transaction, rolled back.
fn server_timed_out(error: &StoreError) -> bool {
    error
        .cause()
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|code| *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED)
}

/// Logs (feature `tracing`) and counts (feature `metrics`) a call that
/// timed out; `by` says who gave up: the `server` or the `client`.
#[cfg_attr(not(feature = "tracing"), expect(unused_variables, reason = "logging is compiled out"))]
fn timed_out(op: &'static str, timeout: Duration, by: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "token_refresh",
        op,
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        by,
        "ledger call timed out: PostgreSQL is slow, stalled or a lock is held; the call failed (500) and a \
         rotation it carried cannot commit later"
    );
    crate::recording::ledger_timeout(op);
}

/// A call the ledger gave up on at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the PostgreSQL ledger did not answer {op} within {timeout:?}")]
struct TimedOut {
    op: &'static str,
    timeout: Duration,
}

/// Starts a transaction at `READ COMMITTED`, whatever the connection's
/// default.
async fn read_committed(client: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await.map_err(StoreError::new)
}

/// Whether a statement failed only because the connection's isolation is
/// stricter than `READ COMMITTED` (or a deadlock was broken): it changed
/// nothing, and runs again safely at `READ COMMITTED`.
fn must_retry(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Runs one idempotent statement on its own (one round trip); if it failed
/// only to serialize, runs it again in a `READ COMMITTED` transaction.
async fn query_pinned(client: &mut Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(StoreError::new)?;
    match client.query(&statement, params).await {
        Err(error) if must_retry(&error) => {
            let transaction = read_committed(client).await?;
            let rows = transaction.query(&statement, params).await.map_err(StoreError::new)?;
            transaction.commit().await.map_err(StoreError::new)?;
            Ok(rows)
        }
        other => other.map_err(StoreError::new),
    }
}

/// The parameters of [`Statements::rotate`].
struct RotateParams<'a> {
    session: Uuid,
    presented: &'a Uuid,
    subject: &'a str,
    now: i64,
    refresh_id: &'a Uuid,
    access_id: &'a Uuid,
    account: &'a str,
    role: &'a str,
    access_expires_at: i64,
    refresh_expires_at: i64,
    leeway: i64,
    /// Unix milliseconds past which the rotation must not commit.
    not_after_ms: i64,
}

impl<'a> RotateParams<'a> {
    fn new(session: SessionId, request: &'a RotationRequest, not_after_ms: i64) -> Self {
        let successor = &request.successor;
        Self {
            session: *session.as_uuid(),
            presented: request.presented.as_uuid(),
            subject: &request.subject,
            now: request.now,
            refresh_id: successor.refresh_id.as_uuid(),
            access_id: successor.access_id.as_uuid(),
            account: &successor.account,
            role: &successor.role,
            access_expires_at: successor.access_expires_at,
            refresh_expires_at: successor.refresh_expires_at,
            leeway: request.leeway,
            not_after_ms,
        }
    }

    fn as_params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.session,
            self.presented,
            &self.subject,
            &self.now,
            self.refresh_id,
            self.access_id,
            &self.account,
            &self.role,
            &self.access_expires_at,
            &self.refresh_expires_at,
            &self.leeway,
            &self.not_after_ms,
        ]
    }
}

/// A `Rotated` answer from the row the rotation statement returned.
fn rotated(session: SessionId, request: &RotationRequest, row: &Row) -> Result<Rotation, StoreError> {
    let generation = from_db_generation(get(row, 0)?)?;
    let refresh_expires_at = get(row, 1)?;
    let pair = PairClaims { refresh_expires_at, ..request.successor.clone() };
    Ok(Rotation::Rotated { session, generation, pair })
}

/// The SQL of every statement, with the schema filled in.
struct Statements {
    schema: String,
    lock_user: String,
    create: String,
    rotate: String,
    select_for_update: String,
    write_replays: String,
    write_revoked: String,
    prune: String,
    evict: String,
    revoke_session: String,
    revoke_user: String,
    sessions: String,
    access_state: String,
    purge: String,
    purge_counts: String,
}

/// The `WHERE` condition of a live session at `$now` (see the
/// [contract](crate::ledger)).
fn live(now: &str) -> String {
    format!("NOT revoked AND {now} < ends_at")
}

impl Statements {
    fn new(schema: &str) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::new(format!(
                "invalid PostgreSQL schema name {schema:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
            )));
        }
        let s = schema;
        Ok(Self {
            schema: s.to_owned(),
            // Serialises the logins (and `revoke_user`) of one subject, in
            // this schema, until the transaction ends.
            lock_user: format!("SELECT pg_advisory_xact_lock(hashtextextended('token_refresh.user.{s}.' || $1, 0))"),
            // Under the user's lock: the sessions that ended before `$2`
            // leave the user's index; answers how many are left listed.
            prune: format!(
                "WITH pruned AS (
                    UPDATE {s}.sessions SET listed = false
                    WHERE subject = $1 AND listed AND ends_at <= $2
                    RETURNING 1)
                 INSERT INTO {s}.session_counts AS c (subject, listed) VALUES ($1, 0)
                 ON CONFLICT (subject) DO UPDATE SET listed = c.listed - (SELECT count(*) FROM pruned)::int
                 RETURNING listed"
            ),
            // Under the user's lock, at the cap: the first `$3` listed
            // sessions by end of life, then login order, leave the index.
            // Never the new session's own id `$4`: a login whose id is
            // taken must fail changing nothing, not evict the holder of
            // the id and take its place.
            // The live ones among them (ending after `$2`) are deleted, so
            // that a flood of logins leaves the cap's rows and no more
            // (their tokens become unknown: a 401, as revoked ones get),
            // and answered, nearest their end first. A dead one only
            // leaves the index: until its retention its tokens answer
            // `Expired` (or `Reused`) as before. Each of the two writes
            // counts the rows it changed, so a row `purge` deleted
            // meanwhile (with its count) is not counted twice.
            evict: format!(
                "WITH victims AS (
                    SELECT session_id, ends_at > $2 AS live FROM {s}.sessions
                    WHERE subject = $1 AND listed AND session_id <> $4
                    ORDER BY ends_at, login_seq
                    LIMIT $3),
                 deleted AS (
                    DELETE FROM {s}.sessions AS t USING victims
                    WHERE t.session_id = victims.session_id AND victims.live AND t.listed
                    RETURNING t.session_id, t.ends_at, t.login_seq),
                 unlisted AS (
                    UPDATE {s}.sessions AS t SET listed = false
                    FROM victims WHERE t.session_id = victims.session_id AND NOT victims.live AND t.listed
                    RETURNING 1),
                 counted AS (
                    UPDATE {s}.session_counts
                    SET listed = listed - ((SELECT count(*) FROM deleted) + (SELECT count(*) FROM unlisted))::int
                    WHERE subject = $1)
                 SELECT COALESCE(array_agg(session_id ORDER BY ends_at, login_seq), ARRAY[]::uuid[])
                 FROM deleted"
            ),
            // Under the user's lock: the new row, listed, and the user's
            // count. Answers whether it was inserted (not if the id is
            // taken).
            create: format!(
                "WITH inserted AS (
                    INSERT INTO {s}.sessions (session_id, subject, account, role, access_id, access_expires_at,
                        refresh_id, refresh_expires_at, previous_refresh_id, generation, absolute_expires_at,
                        created_at, rotated_at, replays, revoked, leeway, retain_until, ends_at, listed)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, $9, $10, $10, 0, false, $11, $12, $13, true)
                    ON CONFLICT (session_id) DO NOTHING
                    RETURNING 1),
                 counted AS (
                    UPDATE {s}.session_counts SET listed = listed + (SELECT count(*) FROM inserted)::int
                    WHERE subject = $2)
                 SELECT EXISTS (SELECT 1 FROM inserted)"
            ),
            // The compare-and-swap of the current refresh id, with the
            // successor recorded, in one statement (see `PostgresLedger`).
            // The conditions are `rules::decide`'s for `Rotate`; the
            // successor's refresh expiry is capped at the absolute expiry,
            // and the retention is `rules::retain_until` of the capped
            // pair with the larger of the request's and the session's
            // leeway, never lowered. `SET` expressions read the row as it
            // was. `RETURNING` runs once the row is locked and written,
            // right before the commit: there `before_deadline($12)` rolls
            // the rotation back if its caller has stopped waiting (see
            // "Timeouts" in `PostgresLedger`'s docs).
            rotate: format!(
                "UPDATE {s}.sessions SET
                    previous_refresh_id = refresh_id,
                    refresh_id = $5,
                    access_id = $6,
                    account = $7,
                    role = $8,
                    access_expires_at = $9,
                    refresh_expires_at = LEAST($10, absolute_expires_at),
                    generation = generation + 1,
                    rotated_at = $4,
                    replays = 0,
                    retain_until = GREATEST(retain_until,
                        GREATEST(LEAST($10, absolute_expires_at), $9) + GREATEST(leeway, $11)),
                    ends_at = LEAST(absolute_expires_at, LEAST($10, absolute_expires_at) + leeway)
                 WHERE session_id = $1 AND refresh_id = $2 AND subject = $3 AND NOT revoked
                    AND $4 < absolute_expires_at AND $4 < refresh_expires_at + leeway
                 RETURNING generation, refresh_expires_at, {s}.before_deadline($12)"
            ),
            select_for_update: format!(
                "SELECT subject, account, role, access_id, access_expires_at, refresh_id, refresh_expires_at,
                    previous_refresh_id, generation, absolute_expires_at, rotated_at, replays, revoked, leeway
                 FROM {s}.sessions WHERE session_id = $1
                 FOR UPDATE"
            ),
            write_replays: format!("UPDATE {s}.sessions SET replays = $2 WHERE session_id = $1"),
            // A detected reuse, under the user's lock: revoked, out of the
            // user's index and count, and a tombstone until `$3` at most.
            write_revoked: format!(
                "WITH old AS (SELECT listed FROM {s}.sessions WHERE session_id = $1),
                 revoked AS (
                    UPDATE {s}.sessions SET revoked = true, listed = false, retain_until = LEAST(retain_until, $3)
                    WHERE session_id = $1)
                 UPDATE {s}.session_counts SET listed = listed - 1
                 WHERE subject = $2 AND (SELECT listed FROM old)"
            ),
            // Under the user's lock: whether this call revoked the session
            // (then a tombstone until `$3` at most), and whether the
            // subject has it at all; a listed session leaves the user's
            // index and count.
            revoke_session: format!(
                "WITH old AS (SELECT listed FROM {s}.sessions WHERE session_id = $1 AND subject = $2),
                 revoked AS (
                    UPDATE {s}.sessions SET revoked = true, listed = false, retain_until = LEAST(retain_until, $3)
                    WHERE session_id = $1 AND subject = $2 AND NOT revoked
                    RETURNING 1),
                 counted AS (
                    UPDATE {s}.session_counts SET listed = listed - 1
                    WHERE subject = $2 AND EXISTS (SELECT 1 FROM revoked) AND (SELECT listed FROM old))
                 SELECT EXISTS (SELECT 1 FROM revoked), EXISTS (SELECT 1 FROM old)"
            ),
            // Under the user's lock: every live session revoked (a
            // tombstone until `$3` at most), and the user's index emptied.
            // Answers how many were live.
            revoke_user: format!(
                "WITH old AS (
                    SELECT session_id, {live} AS was_live FROM {s}.sessions
                    WHERE subject = $1 AND (listed OR {live})),
                 cleared AS (
                    UPDATE {s}.sessions AS t SET listed = false, revoked = t.revoked OR old.was_live,
                        retain_until = CASE WHEN old.was_live THEN LEAST(t.retain_until, $3) ELSE t.retain_until END
                    FROM old WHERE t.session_id = old.session_id
                    RETURNING old.was_live),
                 counted AS (UPDATE {s}.session_counts SET listed = 0 WHERE subject = $1)
                 SELECT count(*) FILTER (WHERE was_live) FROM cleared",
                live = live("$2"),
            ),
            sessions: format!(
                "SELECT session_id, created_at, rotated_at, generation, refresh_expires_at, absolute_expires_at
                 FROM {s}.sessions WHERE subject = $1 AND {}
                 ORDER BY login_seq",
                live("$2")
            ),
            access_state: format!(
                "SELECT access_id FROM {s}.sessions WHERE session_id = $1 AND subject = $2 AND NOT revoked"
            ),
            // Rows still listed leave their user's count with them (a
            // relative update: logins of the same users compose with it).
            purge: format!(
                "WITH purged AS (DELETE FROM {s}.sessions WHERE retain_until <= $1 RETURNING subject, listed),
                 counted AS (
                    UPDATE {s}.session_counts AS c SET listed = c.listed - g.n
                    FROM (SELECT subject, count(*)::int AS n FROM purged WHERE listed GROUP BY subject) AS g
                    WHERE c.subject = g.subject)
                 SELECT count(*) FROM purged"
            ),
            // Users left with no listed session. A login holding the row
            // makes this wait and re-check, so a count in use stays.
            purge_counts: format!("DELETE FROM {s}.session_counts WHERE listed <= 0"),
        })
    }
}

fn valid_schema(name: &str) -> bool {
    super::LedgerOptions::is_valid_name(name)
}

/// A session row as the slow path reads it under its lock.
struct Record {
    /// The current pair.
    pair: PairClaims,
    previous_refresh_id: Option<TokenId>,
    generation: u64,
    absolute_expires_at: i64,
    rotated_at: i64,
    replays: u32,
    revoked: bool,
    /// The leeway the session was created with.
    leeway: i64,
}

impl Record {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let token = |index| get::<Uuid>(row, index).map(|id| TokenId::from_bytes(*id.as_bytes()));
        Ok(Self {
            pair: PairClaims {
                subject: get(row, 0)?,
                account: get(row, 1)?,
                role: get(row, 2)?,
                access_id: token(3)?,
                access_expires_at: get(row, 4)?,
                refresh_id: token(5)?,
                refresh_expires_at: get(row, 6)?,
            },
            previous_refresh_id: get::<Option<Uuid>>(row, 7)?.map(|id| TokenId::from_bytes(*id.as_bytes())),
            generation: from_db_generation(get(row, 8)?)?,
            absolute_expires_at: get(row, 9)?,
            rotated_at: get(row, 10)?,
            replays: u32::try_from(get::<i32>(row, 11)?).map_err(StoreError::new)?,
            revoked: get(row, 12)?,
            leeway: get(row, 13)?,
        })
    }

    /// The inputs of [`rules::decide`].
    fn view(&self, request: &RotationRequest) -> SessionView {
        SessionView {
            subject_matches: self.pair.subject == request.subject,
            revoked: self.revoked,
            absolute_expires_at: self.absolute_expires_at,
            generation: self.generation,
            refresh_id: self.pair.refresh_id,
            previous_refresh_id: self.previous_refresh_id,
            refresh_expires_at: self.pair.refresh_expires_at,
            leeway: self.leeway,
            rotated_at: self.rotated_at,
            replays: self.replays,
        }
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(StoreError::new)
}

fn from_db_generation(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(StoreError::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("token_refresh"));
        assert!(valid_schema("_t1"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("1abc"));
        assert!(!valid_schema("a-b"));
        assert!(!valid_schema("a; DROP TABLE x"));
        assert!(!valid_schema("Upper"));
        assert!(!valid_schema(&"a".repeat(64)));
    }

    #[test]
    fn the_migrations_name_only_the_placeholder_schema() {
        for (_, body) in MIGRATIONS {
            assert!(body.contains("{schema}."));
            assert!(!body.contains("token_refresh."));
        }
    }

    #[test]
    fn the_migrations_record_their_versions_in_order() {
        for (at, (version, body)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(*version).ok(), Some(at + 1));
            let record = format!("INSERT INTO {{schema}}.migrations (version) VALUES ({version})");
            assert!(body.contains(&record), "migration {version} records itself");
        }
    }

    #[test]
    fn our_server_options_come_last() {
        let options = server_options(Some("-c default_transaction_isolation=serializable"), Duration::from_secs(5));
        assert_eq!(
            options,
            "-c default_transaction_isolation=serializable -c idle_in_transaction_session_timeout=5000 \
             -c lock_timeout=4000 -c default_transaction_isolation=read\\ committed"
        );
        assert!(server_options(None, Duration::from_secs(1)).starts_with("-c idle"));
    }

    #[test]
    fn the_server_gets_less_time_than_the_client() {
        assert_eq!(server_budget(Duration::from_secs(5)), Duration::from_secs(4));
        assert_eq!(server_budget(Duration::from_secs(30)), Duration::from_secs(29), "a margin of 1 s at most");
        assert_eq!(server_budget(Duration::from_secs(1)), Duration::from_millis(800));
        assert_eq!(server_budget(Duration::ZERO), Duration::ZERO);
        let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        let deadline = not_after_ms(Duration::from_secs(5));
        assert!((now_ms + 3_900..=now_ms + 4_100).contains(&deadline), "{deadline} vs {now_ms}");
    }
}
