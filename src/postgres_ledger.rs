//! The session ledger on PostgreSQL, shared by every instance of a service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::ids::{SessionId, TokenId};
use crate::ledger::{
    self, Decision, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionLedger, SessionView,
};
use crate::users::StoreError;

/// The SQL migration creating the ledger's tables; `{schema}` stands for the
/// configured schema name.
pub const MIGRATION_0001: &str = include_str!("../migrations/0001_sessions.sql");

/// The default schema name.
pub const DEFAULT_SCHEMA: &str = "token_refresh";

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
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    schema: String,
    pool_size: usize,
    timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { schema: DEFAULT_SCHEMA.to_owned(), pool_size: 16, timeout: Duration::from_secs(5) }
    }
}

impl PostgresOptions {
    /// Schema `token_refresh`, 16 connections, 5 s timeouts.
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
        self.pool_size = size.max(1);
        self
    }

    /// How long to wait to connect, or for a free pooled connection; also
    /// the server's `idle_in_transaction_session_timeout` for the ledger's
    /// connections (a stalled rotation releases its lock after this long).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The configured schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }
}

/// Rows removed by [`PostgresLedger::purge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Purged {
    /// Session rows.
    pub sessions: u64,
    /// Refresh-token rows.
    pub tokens: u64,
    /// Revoked access-token rows.
    pub revoked_access: u64,
}

/// The [`SessionLedger`] on PostgreSQL: one ledger shared by every
/// instance that connects to the same database and schema.
///
/// # How it keeps the contract
///
/// - **Consume once.** A rotation is one transaction at `READ COMMITTED`:
///   it reads the session row through the presented token's row with
///   `SELECT … FOR UPDATE OF s`, decides exactly as [`MemoryLedger`]
///   does, writes the outcome and commits. The row lock serialises every
///   rotation, replay, reuse and logout of one session across all
///   connections and processes; a waiter re-reads the row once the lock is
///   released (PostgreSQL re-evaluates locked rows), so a second rotation
///   of the same token sees the new generation and is reuse. Sessions do
///   not wait on each other.
/// - **No half rotation.** The consumed mark, the successor's token row and
///   the revoked access token are written in that one transaction: if the
///   connection drops before `COMMIT` the server rolls it back and the
///   presented token is still current; if only the reply to `COMMIT` is
///   lost, the token is consumed and its successor recorded. Either way
///   the caller gets a [`StoreError`] (a 500).
/// - **Logout and [`revoke_user`](SessionLedger::revoke_user)** are single
///   statements (`UPDATE … RETURNING` feeding the access-token revocation
///   list in the same statement), atomic on their own.
/// - **Retention.** Rows carry `retain_until` (their token's `exp` plus
///   leeway); nothing reads past it for a decision that matters, and
///   [`PostgresLedger::purge`] deletes rows past it. Purging is
///   housekeeping for a scheduler, never needed for correctness.
/// - **No bearer material.** Ids are stored as `uuid`, expiries as unix
///   seconds, plus the claims needed to re-sign a pair; never a token.
///
/// # Schema
///
/// `migrations/0001_sessions.sql`, shipped in the crate, creates the tables
/// in a configurable schema (default `token_refresh`).
/// [`PostgresLedger::migrate`] applies it idempotently (under an advisory
/// lock, so several instances may call it at start).
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
}

impl fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLedger").field("schema", &self.sql.schema).finish_non_exhaustive()
    }
}

impl PostgresLedger {
    /// Connects to `url` (a libpq-style URL or key=value string, as
    /// `tokio_postgres::Config` parses it; no TLS, use
    /// [`from_pool`](Self::from_pool) for that) and checks the server
    /// answers. Fails when the server is unreachable, so a service learns at
    /// start, not at its first refresh. Does not create tables: call
    /// [`migrate`](Self::migrate).
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(StoreError::new)?;
        config.connect_timeout(options.timeout);
        // A rotation holds its session's row lock for a few round trips. If
        // the service hangs or the network partitions mid-transaction, the
        // server ends the transaction (rolling it back) after this long, so
        // the session's other refreshes do not wait for TCP keepalive.
        let idle = format!("-c idle_in_transaction_session_timeout={}", options.timeout.as_millis());
        let server_options = match config.get_options() {
            Some(given) => format!("{given} {idle}"),
            None => idle,
        };
        config.options(&server_options);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(StoreError::new)?;
        let ledger = Self::from_pool(pool, options)?;
        ledger.ping().await?;
        Ok(ledger)
    }

    /// A ledger on an existing pool (for TLS, or a pool the service shares).
    /// Does not connect.
    pub fn from_pool(pool: Pool, options: PostgresOptions) -> Result<Self, StoreError> {
        let sql = Statements::new(&options.schema)?;
        Ok(Self { pool, sql: Arc::new(sql) })
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
        let client = self.pool.get().await.map_err(StoreError::new)?;
        client.simple_query("SELECT 1").await.map_err(StoreError::new)?;
        Ok(())
    }

    /// Creates the schema and tables if they are missing
    /// ([`MIGRATION_0001`]). Idempotent, and safe to run from several
    /// instances at once: it runs in one transaction under an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let script = format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('token_refresh.migrate.{schema}')); {body} COMMIT;",
            schema = self.sql.schema,
            body = MIGRATION_0001.replace("{schema}", &self.sql.schema),
        );
        client.batch_execute(&script).await.map_err(StoreError::new)
    }

    /// Deletes every row whose retention ended at `now` (unix seconds):
    /// consumed tokens past their `exp` plus leeway, sessions past their
    /// last refresh expiry, access revocations past the access token's
    /// expiry. Run it from a scheduler (say hourly); the ledger is correct
    /// without it, it only bounds the tables' size.
    pub async fn purge(&self, now: i64) -> Result<Purged, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let tokens = client.execute(&self.sql.purge_tokens, &[&now]).await.map_err(StoreError::new)?;
        let sessions = client.execute(&self.sql.purge_sessions, &[&now]).await.map_err(StoreError::new)?;
        let revoked_access = client.execute(&self.sql.purge_access, &[&now]).await.map_err(StoreError::new)?;
        Ok(Purged { sessions, tokens, revoked_access })
    }

    async fn create_now(&self, new: &NewSession) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let statement = client.prepare_cached(&self.sql.create).await.map_err(StoreError::new)?;
        let pair = &new.pair;
        let retain_until = pair.refresh_expires_at.saturating_add(new.leeway);
        client
            .execute(
                &statement,
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
                    &retain_until,
                ],
            )
            .await
            .map_err(StoreError::new)?;
        Ok(())
    }

    async fn rotate_now(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::new)?;
        let select = client.prepare_cached(&self.sql.select_for_update).await.map_err(StoreError::new)?;
        let transaction = client.transaction().await.map_err(StoreError::new)?;
        let row = transaction.query_opt(&select, &[request.presented.as_uuid()]).await.map_err(StoreError::new)?;
        let Some(row) = row else {
            transaction.rollback().await.map_err(StoreError::new)?;
            return Ok(Rotation::Unknown);
        };
        let state = SessionState::from_row(&row)?;
        let (outcome, write) = decide(&state, request);
        match write {
            // Ends the transaction at once, releasing the row lock.
            Write::Nothing => {}
            Write::Rotate { pair, generation, token_retain_until, session_retain_until, revoke_access } => {
                let write = transaction.prepare_cached(&self.sql.write_rotated).await.map_err(StoreError::new)?;
                let generation = to_db_generation(generation)?;
                let (revoke, access, until) = listing(revoke_access, pair.access_id);
                transaction
                    .execute(
                        &write,
                        &[
                            state.session.as_uuid(),
                            &pair.subject,
                            &pair.account,
                            &pair.role,
                            pair.access_id.as_uuid(),
                            &pair.access_expires_at,
                            pair.refresh_id.as_uuid(),
                            &pair.refresh_expires_at,
                            &generation,
                            &request.now,
                            &session_retain_until,
                            &token_retain_until,
                            access.as_uuid(),
                            &until,
                            &revoke,
                        ],
                    )
                    .await
                    .map_err(StoreError::new)?;
            }
            Write::Replayed { replays } => {
                let update = transaction.prepare_cached(&self.sql.write_replays).await.map_err(StoreError::new)?;
                let replays = i32::try_from(replays).map_err(StoreError::new)?;
                transaction.execute(&update, &[state.session.as_uuid(), &replays]).await.map_err(StoreError::new)?;
            }
            Write::Revoke { revoke_access } => {
                let write = transaction.prepare_cached(&self.sql.write_revoked).await.map_err(StoreError::new)?;
                let (revoke, access, until) = listing(revoke_access, state.pair.access_id);
                transaction
                    .execute(&write, &[state.session.as_uuid(), access.as_uuid(), &until, &revoke])
                    .await
                    .map_err(StoreError::new)?;
            }
        }
        transaction.commit().await.map_err(StoreError::new)?;
        Ok(outcome)
    }

    async fn revoke_now(&self, presented: TokenId, now: i64) -> Result<Revocation, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let statement = client.prepare_cached(&self.sql.revoke).await.map_err(StoreError::new)?;
        let row = client.query_opt(&statement, &[presented.as_uuid(), &now]).await.map_err(StoreError::new)?;
        let Some(row) = row else { return Ok(Revocation::Unknown) };
        let session = SessionId::from_bytes(*get::<Uuid>(&row, 0)?.as_bytes());
        let revoked_now: bool = get(&row, 1)?;
        Ok(if revoked_now { Revocation::Revoked { session } } else { Revocation::AlreadyRevoked { session } })
    }

    async fn revoke_user_now(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let statement = client.prepare_cached(&self.sql.revoke_user).await.map_err(StoreError::new)?;
        let row = client.query_one(&statement, &[&subject, &now]).await.map_err(StoreError::new)?;
        let count: i64 = get(&row, 0)?;
        u64::try_from(count).map_err(StoreError::new)
    }

    async fn is_access_revoked_now(&self, access_id: TokenId, now: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::new)?;
        let statement = client.prepare_cached(&self.sql.is_access_revoked).await.map_err(StoreError::new)?;
        let row = client.query_one(&statement, &[access_id.as_uuid(), &now]).await.map_err(StoreError::new)?;
        get(&row, 0)
    }
}

impl SessionLedger for PostgresLedger {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.create_now(session)
    }

    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        self.rotate_now(request)
    }

    fn revoke(&self, presented: TokenId, now: i64) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
        self.revoke_now(presented, now)
    }

    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.revoke_user_now(subject, now)
    }

    fn is_access_revoked(&self, access_id: TokenId, now: i64) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.is_access_revoked_now(access_id, now)
    }
}

/// The SQL of every statement, with the schema filled in.
struct Statements {
    schema: String,
    create: String,
    select_for_update: String,
    write_rotated: String,
    write_replays: String,
    write_revoked: String,
    revoke: String,
    revoke_user: String,
    is_access_revoked: String,
    purge_tokens: String,
    purge_sessions: String,
    purge_access: String,
}

/// Upserts an access revocation, never shortening one already listed.
const UPSERT_ACCESS: &str = "ON CONFLICT (access_id) DO UPDATE \
     SET revoked_until = GREATEST(revoked_access.revoked_until, EXCLUDED.revoked_until)";

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
            // One statement: the session and its first token, or neither.
            create: format!(
                "WITH session AS (
                    INSERT INTO {s}.sessions (session_id, subject, account, role, access_id, access_expires_at,
                        refresh_id, refresh_expires_at, generation, absolute_expires_at, rotated_at, replays,
                        revoked, retain_until)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, 0, false, $11))
                 INSERT INTO {s}.tokens (token_id, session_id, generation, retain_until) VALUES ($7, $1, 0, $11)"
            ),
            select_for_update: format!(
                "SELECT s.session_id, t.generation, s.subject, s.account, s.role, s.access_id, s.access_expires_at,
                        s.refresh_id, s.refresh_expires_at, s.generation, s.absolute_expires_at, s.rotated_at,
                        s.replays, s.revoked, s.retain_until
                 FROM {s}.tokens t JOIN {s}.sessions s ON s.session_id = t.session_id
                 WHERE t.token_id = $1
                 FOR UPDATE OF s"
            ),
            // The writes of a rotation, one statement (one round trip): the
            // new session state, the successor's token row, and (when $15)
            // the consumed pair's access token on the revocation list.
            write_rotated: format!(
                "WITH rotated AS (
                    UPDATE {s}.sessions SET subject = $2, account = $3, role = $4, access_id = $5,
                        access_expires_at = $6, refresh_id = $7, refresh_expires_at = $8, generation = $9,
                        rotated_at = $10, replays = 0, retain_until = $11
                    WHERE session_id = $1),
                 successor AS (
                    INSERT INTO {s}.tokens (token_id, session_id, generation, retain_until) VALUES ($7, $1, $9, $12))
                 INSERT INTO {s}.revoked_access AS revoked_access (access_id, revoked_until)
                 SELECT $13::uuid, $14::bigint WHERE $15::boolean
                 {UPSERT_ACCESS}"
            ),
            write_replays: format!("UPDATE {s}.sessions SET replays = $2 WHERE session_id = $1"),
            // Reuse: the session revoked and (when $4) its current access
            // token listed, one statement.
            write_revoked: format!(
                "WITH revoked AS (UPDATE {s}.sessions SET revoked = true WHERE session_id = $1)
                 INSERT INTO {s}.revoked_access AS revoked_access (access_id, revoked_until)
                 SELECT $2::uuid, $3::bigint WHERE $4::boolean
                 {UPSERT_ACCESS}"
            ),
            // One statement: lock the session through the token, mark it
            // revoked unless it was, and list its access token until its
            // exp plus the session's leeway. The second column says whether
            // this call did the revoking.
            revoke: format!(
                "WITH target AS (
                    SELECT s.session_id FROM {s}.tokens t JOIN {s}.sessions s ON s.session_id = t.session_id
                    WHERE t.token_id = $1 FOR UPDATE OF s),
                 revoked AS (
                    UPDATE {s}.sessions s SET revoked = true FROM target
                    WHERE s.session_id = target.session_id AND NOT s.revoked
                    RETURNING s.access_id,
                        s.access_expires_at + GREATEST(s.retain_until - s.refresh_expires_at, 0) AS until),
                 listed AS (
                    INSERT INTO {s}.revoked_access AS revoked_access (access_id, revoked_until)
                    SELECT access_id, until FROM revoked WHERE until > $2
                    {UPSERT_ACCESS})
                 SELECT target.session_id, EXISTS (SELECT 1 FROM revoked) FROM target"
            ),
            revoke_user: format!(
                "WITH revoked AS (
                    UPDATE {s}.sessions s SET revoked = true
                    WHERE s.subject = $1 AND NOT s.revoked
                    RETURNING s.access_id,
                        s.access_expires_at + GREATEST(s.retain_until - s.refresh_expires_at, 0) AS until),
                 listed AS (
                    INSERT INTO {s}.revoked_access AS revoked_access (access_id, revoked_until)
                    SELECT access_id, until FROM revoked WHERE until > $2
                    {UPSERT_ACCESS})
                 SELECT count(*) FROM revoked"
            ),
            is_access_revoked: format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.revoked_access WHERE access_id = $1 AND revoked_until > $2)"
            ),
            purge_tokens: format!("DELETE FROM {s}.tokens WHERE retain_until <= $1"),
            purge_sessions: format!("DELETE FROM {s}.sessions WHERE retain_until <= $1"),
            purge_access: format!("DELETE FROM {s}.revoked_access WHERE revoked_until <= $1"),
        })
    }
}

fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    first_ok && name.len() <= 63 && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A session row as read under its lock, with the presented token's
/// generation.
struct SessionState {
    session: SessionId,
    token_generation: u64,
    pair: PairClaims,
    generation: u64,
    absolute_expires_at: i64,
    rotated_at: i64,
    replays: u32,
    revoked: bool,
    retain_until: i64,
}

impl SessionState {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            session: SessionId::from_bytes(*get::<Uuid>(row, 0)?.as_bytes()),
            token_generation: from_db_generation(get(row, 1)?)?,
            pair: PairClaims {
                subject: get(row, 2)?,
                account: get(row, 3)?,
                role: get(row, 4)?,
                access_id: TokenId::from_bytes(*get::<Uuid>(row, 5)?.as_bytes()),
                access_expires_at: get(row, 6)?,
                refresh_id: TokenId::from_bytes(*get::<Uuid>(row, 7)?.as_bytes()),
                refresh_expires_at: get(row, 8)?,
            },
            generation: from_db_generation(get(row, 9)?)?,
            absolute_expires_at: get(row, 10)?,
            rotated_at: get(row, 11)?,
            replays: u32::try_from(get::<i32>(row, 12)?).map_err(StoreError::new)?,
            revoked: get(row, 13)?,
            retain_until: get(row, 14)?,
        })
    }
}

/// What a rotation writes back.
enum Write {
    Nothing,
    Rotate {
        pair: PairClaims,
        generation: u64,
        token_retain_until: i64,
        session_retain_until: i64,
        revoke_access: Option<(TokenId, i64)>,
    },
    Replayed {
        replays: u32,
    },
    Revoke {
        revoke_access: Option<(TokenId, i64)>,
    },
}

/// The contract's decision ([`crate::ledger::decide`]) for the locked row,
/// and the write that applies it.
fn decide(state: &SessionState, request: &RotationRequest) -> (Rotation, Write) {
    let session = state.session;
    let view = SessionView {
        subject_matches: state.pair.subject == request.subject,
        revoked: state.revoked,
        absolute_expires_at: state.absolute_expires_at,
        generation: state.generation,
        presented_generation: state.token_generation,
        refresh_expires_at: state.pair.refresh_expires_at,
        access_id: state.pair.access_id,
        access_expires_at: state.pair.access_expires_at,
        rotated_at: state.rotated_at,
        replays: state.replays,
    };
    match ledger::decide(&view, request) {
        Decision::Unknown => (Rotation::Unknown, Write::Nothing),
        Decision::Revoked => (Rotation::Revoked { session }, Write::Nothing),
        Decision::Expired => (Rotation::Expired { session }, Write::Nothing),
        Decision::Rotate { generation, refresh_expires_at, token_retain_until, revoke_access } => {
            let pair = PairClaims { refresh_expires_at, ..request.successor.clone() };
            let write = Write::Rotate {
                pair: pair.clone(),
                generation,
                token_retain_until,
                session_retain_until: state.retain_until.max(token_retain_until),
                revoke_access,
            };
            (Rotation::Rotated { session, generation, pair }, write)
        }
        Decision::Replay { replay } => {
            let outcome =
                Rotation::Replayed { session, generation: state.generation, pair: state.pair.clone(), replay };
            (outcome, Write::Replayed { replays: replay })
        }
        Decision::Reuse { revoke_access } => {
            let outcome = Rotation::Reused {
                session,
                presented_generation: state.token_generation,
                current_generation: state.generation,
            };
            (outcome, Write::Revoke { revoke_access })
        }
    }
}

/// The parameters of an optional access-token listing: whether to list,
/// which id, until when (`fallback` and 0 when not listing).
fn listing(revoke: Option<(TokenId, i64)>, fallback: TokenId) -> (bool, TokenId, i64) {
    match revoke {
        Some((access, until)) => (true, access, until),
        None => (false, fallback, 0),
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(StoreError::new)
}

fn from_db_generation(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(StoreError::new)
}

fn to_db_generation(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(StoreError::new)
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
    fn the_migration_names_only_the_placeholder_schema() {
        assert!(MIGRATION_0001.contains("{schema}.sessions"));
        assert!(!MIGRATION_0001.contains("token_refresh."));
    }
}
