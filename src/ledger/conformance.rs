//! The conformance suite: the checks every [`SessionLedger`] must pass.
//!
//! Each check drives a ledger through one rule of the [ledger
//! contract](crate::ledger) ([spec §5](crate::spec#5-rotation-reuse-and-sessions)) and expects the answers
//! [`MemoryLedger`](crate::MemoryLedger), the reference, gives. The crate
//! runs it against its own ledgers (memory, PostgreSQL, Redis and Redis
//! Cluster); a third-party ledger runs it the same way:
//!
//! ```no_run
//! use token_refresh::ledger::conformance::{self, Harness};
//! use token_refresh::{MemoryLedger, StoreError};
//! use std::sync::Arc;
//!
//! struct Memory(Arc<MemoryLedger>);
//!
//! impl Harness for Memory {
//!     type Ledger = Arc<MemoryLedger>;
//!     // Every handle must be a view of one and the same ledger.
//!     async fn handle(&self) -> Result<Self::Ledger, StoreError> {
//!         Ok(self.0.clone())
//!     }
//! }
//!
//! # async fn demo() {
//! let report = conformance::run(&Memory(Arc::new(MemoryLedger::new()))).await;
//! assert!(report.is_success(), "{report}");
//! # }
//! ```
//!
//! Rules for the harness:
//!
//! - Checks run one after another on one backend and isolate themselves
//!   (fresh session ids, token ids and subjects each), so one backend, for
//!   example one schema or key prefix per test run, serves the whole suite.
//! - Two checks ask for a second handle and spawn tasks with
//!   `tokio::spawn`: call [`run`] inside a tokio runtime, multi-threaded to
//!   test real parallelism.
//! - Every `now` is near the real clock and moves only forward, so a
//!   backend that expires keys on the server's clock keeps every record the
//!   checks need; expiry decisions are driven by the `now` values alone
//!   (no sleeping). The one exception: [`purge_removes_what_has_ended`]
//!   purges an hour ahead, which removes only what ended before then.
//! - [`Harness::disrupt`] cuts the connections of the handles the harness
//!   gave, and nothing else (other tests may share the server); without
//!   it, [`lost_connections_never_leave_half_a_rotation`] is skipped.
//!   [`Report::skipped`] lists what did not run and why, and
//!   [`Report::is_complete`] holds only when everything ran.
//!
//! `tests/scratch-ledger/` in the repository is a ledger written outside
//! the crate, on the public API and [`rules`](crate::ledger::rules) only,
//! that passes every check.
//!
//! Beside the checks, the [`model`] test runs long random operation
//! sequences through the ledger and a plain-`HashMap` model of the
//! contract, and compares every answer; a third-party ledger runs it with
//! proptest the same way.

pub mod model;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::StoreError;
use crate::ledger::{
    AccessState, Created, Grace, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo,
    SessionLedger, SessionTimes, TOMBSTONE_SECONDS, UnixTime,
};
use crate::token::ids::{SessionId, TokenId};

/// How many concurrent rotations of one token the concurrency checks run.
pub const CONCURRENT_ROTATIONS: usize = 64;

/// Gives the suite handles on the ledger under test.
pub trait Harness: Send + Sync {
    /// The ledger type.
    type Ledger: SessionLedger + 'static;

    /// A handle on the backend under test. Each call may return a new,
    /// independent handle (a new pool, a new connection), but all of them
    /// must see one and the same ledger: the suite checks that two
    /// instances of a service agree.
    fn handle(&self) -> impl Future<Output = Result<Self::Ledger, StoreError>> + Send;

    /// Cuts the connections of every handle this harness gave (as a
    /// network partition, a server restart or a proxy would), and answers
    /// how many it cut; calls in flight or the next ones may then fail.
    /// [`lost_connections_never_leave_half_a_rotation`] calls it while
    /// rotations run. The default, `None`, says the harness cannot (an
    /// in-process ledger has no connection): that check is then skipped,
    /// and [`Report::skipped`] says so.
    ///
    /// PostgreSQL: `pg_terminate_backend` of the pool's backends (found by
    /// `application_name`); Redis: `CLIENT KILL` of the ledger's
    /// connections.
    fn disrupt(&self) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        std::future::ready(Ok(None))
    }

    /// Whether the store expires records by itself, on its own clock
    /// (Redis TTLs), so that [`SessionLedger::purge`] answers 0: then
    /// [`purge_removes_what_has_ended`] is skipped. The default is `false`:
    /// `purge` removes what has ended.
    fn expires_by_itself(&self) -> bool {
        false
    }
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

impl std::error::Error for Failure {}

/// The outcome of [`run`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Checks that passed.
    pub passed: Vec<&'static str>,
    /// Checks that did not run, and why ([`Checked::Skipped`]).
    pub skipped: Vec<(&'static str, &'static str)>,
    /// Checks that failed, and why.
    pub failed: Vec<Failure>,
}

impl Report {
    /// Whether no check failed and every check ran or was skipped for a
    /// reason its harness gave. A backend that claims the whole contract
    /// also wants [`is_complete`](Self::is_complete).
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.passed.len() + self.skipped.len() == CHECKS.len()
    }

    /// Whether every check ran and passed: none skipped.
    pub fn is_complete(&self) -> bool {
        self.is_success() && self.skipped.is_empty()
    }

    fn record(&mut self, check: &'static str, result: CheckResult) {
        match result {
            Ok(Checked::Passed) => self.passed.push(check),
            Ok(Checked::Skipped(reason)) => self.skipped.push((check, reason)),
            Err(failure) => self.failed.push(Failure { check, message: failure.message }),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} passed, {} skipped, {} failed", self.passed.len(), self.skipped.len(), self.failed.len())?;
        for check in &self.passed {
            writeln!(f, "  ok   {check}")?;
        }
        for (check, reason) in &self.skipped {
            writeln!(f, "  skip {check}: {reason}")?;
        }
        for failure in &self.failed {
            writeln!(f, "  FAIL {failure}")?;
        }
        Ok(())
    }
}

/// What a check answers: passed or skipped, or a [`Failure`].
pub type CheckResult = Result<Checked, Failure>;

/// A check that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The ledger keeps the rule.
    Passed,
    /// The check did not run: the harness cannot do what it needs (no
    /// [`Harness::disrupt`]), or the rule is the store's own (records it
    /// expires by itself, [`Harness::expires_by_itself`]). The reason.
    Skipped(&'static str),
}

fn failure(message: impl Into<String>) -> Failure {
    Failure { check: "", message: message.into() }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        failure(format!("store error: {error}"))
    }
}

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(failure(format!($($message)+)));
        }
    };
}

/// Fails the check unless `left == right`.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $what:literal) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(failure(format!(concat!($what, ": got {:?}, expected {:?}"), left, right)));
        }
    }};
}

macro_rules! suite {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// The name of every check, in the order [`run`] runs them.
        pub const CHECKS: &[&str] = &[$(stringify!($name)),*];

        /// Runs every check against `harness`, each on its own sessions,
        /// and reports each one. Call it inside a tokio runtime.
        pub async fn run<H: Harness>(harness: &H) -> Report {
            let mut report = Report::default();
            $(
                report.record(stringify!($name), $name(harness).await);
            )*
            report
        }
    };
}

suite!(
    rotation_consumes_once,
    generations_count_up,
    rotation_supersedes_access,
    reuse_revokes_family_and_access,
    reuse_of_any_older_generation,
    successor_dead_after_reuse,
    grace_replays_identical_pair,
    grace_replay_limit,
    grace_only_immediate_predecessor,
    grace_timed_from_rotation,
    idle_expiry,
    absolute_expiry_caps_refresh,
    reuse_detected_while_session_lives,
    revoke_session_by_id,
    revoke_user_revokes_every_session,
    sessions_lists_live_oldest_first,
    per_user_cap_evicts_oldest,
    cap_evicts_least_recently_refreshed,
    cap_drops_dead_sessions_first,
    cap_ties_go_to_the_earliest_login,
    purge_keeps_what_the_contract_needs,
    purge_removes_what_has_ended,
    taken_session_id_refused,
    subject_mismatch_is_unknown,
    unknown_session,
    dropped_rotation_is_all_or_nothing,
    dropped_login_is_all_or_nothing,
    dropped_revocation_is_all_or_nothing,
    concurrent_rotations_consume_once,
    concurrent_rotations_with_grace,
    concurrent_logins_respect_cap,
    two_handles_one_ledger,
    lost_connections_never_leave_half_a_rotation,
);

/// Access-token lifetime the checks use.
const ACCESS_TTL: i64 = 300;
/// Refresh-token lifetime the checks use unless they say otherwise.
const REFRESH_TTL: i64 = 86_400;
/// Absolute session lifetime the checks use unless they say otherwise.
const SESSION_TTL: i64 = 30 * 86_400;
/// Per-user cap the checks use unless they say otherwise.
const CAP: u32 = 100;
const NO_GRACE: Grace = Grace { window: 0, max_replays: 0 };

/// Now, on the real clock: the checks start near it so that server-side
/// key expiry (on the real clock) never removes what they look at.
fn real_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn new_subject() -> String {
    format!("conformance-{}@example.test", TokenId::random())
}

fn pair_with(session: SessionId, subject: &str, now: i64, refresh_ttl: i64) -> PairClaims {
    PairClaims {
        subject: subject.to_owned(),
        account: format!("acc-{subject}"),
        role: "ROLE_USER".to_owned(),
        access_id: session.new_token_id(),
        access_expires_at: now + ACCESS_TTL,
        refresh_id: session.new_token_id(),
        refresh_expires_at: now + refresh_ttl,
    }
}

/// One session under test.
struct Session {
    id: SessionId,
    subject: String,
    first: PairClaims,
}

struct Start {
    now: i64,
    refresh_ttl: i64,
    session_ttl: i64,
    leeway: i64,
    cap: u32,
}

impl Start {
    fn at(now: i64) -> Self {
        Self { now, refresh_ttl: REFRESH_TTL, session_ttl: SESSION_TTL, leeway: 0, cap: CAP }
    }

    fn new_session(&self, subject: &str) -> NewSession {
        let id = SessionId::random();
        NewSession {
            session: id,
            pair: pair_with(id, subject, self.now, self.refresh_ttl),
            created_at: self.now,
            absolute_expires_at: self.now + self.session_ttl,
            leeway: self.leeway,
            max_sessions_per_user: self.cap,
        }
    }

    async fn create_reporting<L: SessionLedger>(
        self,
        ledger: &L,
        subject: &str,
    ) -> Result<(Session, Created), Failure> {
        let new = self.new_session(subject);
        let created = ledger.create(&new).await?;
        Ok((Session { id: new.session, subject: subject.to_owned(), first: new.pair }, created))
    }

    async fn create<L: SessionLedger>(self, ledger: &L, subject: &str) -> Result<Session, Failure> {
        let (session, created) = self.create_reporting(ledger, subject).await?;
        ensure_eq!(created, Created::new(), "a login under the cap evicts nothing");
        Ok(session)
    }
}

async fn start<L: SessionLedger>(ledger: &L, now: i64) -> Result<Session, Failure> {
    Start::at(now).create(ledger, &new_subject()).await
}

fn request(session: &Session, presented: TokenId, now: i64, grace: Grace, leeway: i64) -> RotationRequest {
    RotationRequest {
        presented,
        subject: session.subject.clone(),
        successor: pair_with(session.id, &session.subject, now, REFRESH_TTL),
        now,
        grace,
        leeway,
    }
}

fn request_for(session: &Session, presented: TokenId, now: i64) -> RotationRequest {
    request(session, presented, now, NO_GRACE, 0)
}

async fn rotate<L: SessionLedger>(
    ledger: &L,
    session: &Session,
    presented: TokenId,
    now: i64,
    grace: Grace,
) -> Result<Rotation, Failure> {
    Ok(ledger.rotate(&request(session, presented, now, grace, 0)).await?)
}

/// Rotates and expects `Rotated` at `generation` with the successor as
/// proposed; returns the new pair.
async fn rotated<L: SessionLedger>(
    ledger: &L,
    session: &Session,
    presented: TokenId,
    now: i64,
    generation: u64,
) -> Result<PairClaims, Failure> {
    let request = request_for(session, presented, now);
    match ledger.rotate(&request).await? {
        Rotation::Rotated { session: id, generation: got, pair } => {
            ensure_eq!(id, session.id, "Rotated names the session");
            ensure_eq!(got, generation, "generation of the new pair");
            ensure_eq!(pair, request.successor, "the recorded successor");
            Ok(pair)
        }
        other => Err(failure(format!("rotating the current token: expected Rotated, got {other:?}"))),
    }
}

fn reused(session: &Session, presented: Option<u64>, current: u64) -> Rotation {
    Rotation::Reused { session: session.id, presented_generation: presented, current_generation: current }
}

async fn access<L: SessionLedger>(ledger: &L, session: &Session, access_id: TokenId) -> Result<AccessState, Failure> {
    Ok(ledger.access_state(&session.subject, access_id).await?)
}

/// A listing entry: created, rotated, refresh expiry, absolute expiry.
fn listing(session: SessionId, generation: u64, [created, rotated, refresh, absolute]: [i64; 4]) -> SessionInfo {
    let at = UnixTime::from_seconds;
    let times = SessionTimes {
        created_at: at(created),
        rotated_at: at(rotated),
        refresh_expires_at: at(refresh),
        absolute_expires_at: at(absolute),
    };
    SessionInfo::new(session, generation, times)
}

/// The generation the ledger lists for `session`, `None` if not listed.
async fn listed_generation<L: SessionLedger>(ledger: &L, session: &Session, now: i64) -> Result<Option<u64>, Failure> {
    let listed = ledger.sessions(&session.subject, now).await?;
    Ok(listed.iter().find(|info| info.session == session.id).map(|info| info.generation))
}

async fn handle<H: Harness>(harness: &H) -> Result<H::Ledger, Failure> {
    harness.handle().await.map_err(|e| failure(format!("the harness gave no handle: {e}")))
}

/// A token rotates once: the first rotation answers `Rotated` with the
/// proposed successor at generation 1; presenting it again (no grace
/// window) is reuse of the immediate predecessor.
pub async fn rotation_consumes_once<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    let again = rotate(&ledger, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
    ensure_eq!(again, reused(&s, Some(0), 1), "second presentation of a rotated token");
    Ok(Checked::Passed)
}

/// Each rotation adds one generation, and each successor is current in
/// turn; the listing follows.
pub async fn generations_count_up<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    ensure_eq!(listed_generation(&ledger, &s, t).await?, Some(0), "listed generation after login");
    let mut current = s.first.refresh_id;
    for generation in 1..=5u64 {
        let now = t + i64::try_from(generation).unwrap_or(0);
        current = rotated(&ledger, &s, current, now, generation).await?.refresh_id;
        ensure_eq!(listed_generation(&ledger, &s, now).await?, Some(generation), "listed generation");
    }
    Ok(Checked::Passed)
}

/// A rotation supersedes the consumed pair's access token: the ledger tells
/// it from the current one (the policy decides whether to refuse it).
pub async fn rotation_supersedes_access<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    ensure_eq!(access(&ledger, &s, s.first.access_id).await?, AccessState::Current, "a fresh access token");
    let second = rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    ensure_eq!(access(&ledger, &s, s.first.access_id).await?, AccessState::Superseded, "the consumed pair's");
    ensure_eq!(access(&ledger, &s, second.access_id).await?, AccessState::Current, "the new access token");
    Ok(Checked::Passed)
}

/// Reuse of a consumed token answers `Reused`, revokes the session and
/// every access token of it.
pub async fn reuse_revokes_family_and_access<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    let reuse = rotate(&ledger, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
    ensure_eq!(reuse, reused(&s, Some(0), 1), "presenting the consumed token");
    for (name, id) in [("current", second.access_id), ("superseded", s.first.access_id)] {
        let state = access(&ledger, &s, id).await?;
        ensure!(state == AccessState::Revoked, "{name} access token after reuse: got {state:?}");
    }
    let victim = rotate(&ledger, &s, second.refresh_id, t + 3, NO_GRACE).await?;
    ensure_eq!(victim, Rotation::Revoked { session: s.id }, "the current token after reuse");
    ensure_eq!(listed_generation(&ledger, &s, t + 3).await?, None, "a revoked session is not listed");
    Ok(Checked::Passed)
}

/// Reuse of a token 50 generations old is still detected: nothing is kept
/// per rotation, yet every token of a live session is known by its session.
pub async fn reuse_of_any_older_generation<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let mut current = s.first.clone();
    for generation in 1..=50u64 {
        current = rotated(&ledger, &s, current.refresh_id, t + 1, generation).await?;
    }
    let reuse = rotate(&ledger, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
    ensure_eq!(reuse, reused(&s, None, 50), "presenting generation 0 after 50 rotations");
    let victim = rotate(&ledger, &s, current.refresh_id, t + 3, NO_GRACE).await?;
    ensure_eq!(victim, Rotation::Revoked { session: s.id }, "the current token after reuse");
    Ok(Checked::Passed)
}

/// After reuse of an older generation, every token of the family is dead,
/// and logout of it is idempotent.
pub async fn successor_dead_after_reuse<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    let third = rotated(&ledger, &s, second.refresh_id, t + 2, 2).await?;
    let reuse = rotate(&ledger, &s, s.first.refresh_id, t + 3, NO_GRACE).await?;
    ensure_eq!(reuse, reused(&s, None, 2), "presenting a token two generations old");
    for (name, token) in [("current", third.refresh_id), ("middle", second.refresh_id)] {
        let outcome = rotate(&ledger, &s, token, t + 4, NO_GRACE).await?;
        ensure!(outcome == Rotation::Revoked { session: s.id }, "{name} token after reuse: got {outcome:?}");
    }
    let logout = ledger.revoke_session(&s.subject, s.id, t + 5).await?;
    ensure_eq!(logout, Revocation::AlreadyRevoked { session: s.id }, "logout after reuse");
    Ok(Checked::Passed)
}

/// Inside the grace window the immediate predecessor gets the stored
/// current pair, unchanged, and nothing new is recorded.
pub async fn grace_replays_identical_pair<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let grace = Grace { window: 10, max_replays: 2 };
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t, 1).await?;
    for replay in 1..=2u32 {
        let retry = request(&s, s.first.refresh_id, t + 4 + i64::from(replay), grace, 0);
        let outcome = ledger.rotate(&retry).await?;
        let expected = Rotation::Replayed { session: s.id, generation: 1, pair: second.clone(), replay };
        ensure_eq!(outcome, expected, "grace replay");
        ensure_eq!(listed_generation(&ledger, &s, t + 7).await?, Some(1), "a replay records no generation");
    }
    rotated(&ledger, &s, second.refresh_id, t + 8, 2).await?;
    Ok(Checked::Passed)
}

/// A rotation tolerates at most `max_replays` replays; the next is reuse.
pub async fn grace_replay_limit<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let grace = Grace { window: 10, max_replays: 1 };
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t, 1).await?;
    let first = rotate(&ledger, &s, s.first.refresh_id, t + 1, grace).await?;
    ensure!(matches!(first, Rotation::Replayed { replay: 1, .. }), "first replay: got {first:?}");
    let over = rotate(&ledger, &s, s.first.refresh_id, t + 2, grace).await?;
    ensure_eq!(over, reused(&s, Some(0), 1), "a replay over the limit");
    let victim = rotate(&ledger, &s, second.refresh_id, t + 3, grace).await?;
    ensure_eq!(victim, Rotation::Revoked { session: s.id }, "the current token after reuse");
    Ok(Checked::Passed)
}

/// Only the immediate predecessor qualifies for grace: an older token is
/// reuse even inside the window.
pub async fn grace_only_immediate_predecessor<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let grace = Grace { window: 10, max_replays: 3 };
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t, 1).await?;
    rotated(&ledger, &s, second.refresh_id, t + 1, 2).await?;
    let outcome = rotate(&ledger, &s, s.first.refresh_id, t + 2, grace).await?;
    ensure_eq!(outcome, reused(&s, None, 2), "the grandparent inside the window");
    Ok(Checked::Passed)
}

/// The window is timed from the rotation (not the login), bound included,
/// and bounded below: a clock behind the rotating instance's gets no
/// wider window (only the leeway's tolerance).
pub async fn grace_timed_from_rotation<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let grace = Grace { window: 10, max_replays: 3 };
    let t = real_now();
    // Rotated 100 s after login: the window runs from the rotation.
    let late = start(&ledger, t).await?;
    rotated(&ledger, &late, late.first.refresh_id, t + 100, 1).await?;
    let at_bound = rotate(&ledger, &late, late.first.refresh_id, t + 110, grace).await?;
    ensure!(matches!(at_bound, Rotation::Replayed { replay: 1, .. }), "replay at window's end: got {at_bound:?}");
    let past = start(&ledger, t).await?;
    rotated(&ledger, &past, past.first.refresh_id, t + 100, 1).await?;
    let outcome = rotate(&ledger, &past, past.first.refresh_id, t + 111, grace).await?;
    ensure_eq!(outcome, reused(&past, Some(0), 1), "a replay one second after the window");

    let behind = start(&ledger, t).await?;
    rotated(&ledger, &behind, behind.first.refresh_id, t + 100, 1).await?;
    let outcome = rotate(&ledger, &behind, behind.first.refresh_id, t + 99, grace).await?;
    ensure_eq!(outcome, reused(&behind, Some(0), 1), "a replay from a clock one second behind, no leeway");
    let tolerant = start(&ledger, t).await?;
    rotated(&ledger, &tolerant, tolerant.first.refresh_id, t + 100, 1).await?;
    let outcome = ledger.rotate(&request(&tolerant, tolerant.first.refresh_id, t + 95, grace, 5)).await?;
    ensure!(matches!(outcome, Rotation::Replayed { .. }), "a clock 5 s behind with 5 s leeway: got {outcome:?}");
    Ok(Checked::Passed)
}

/// A session idle past its refresh token's `exp` (plus leeway) is expired;
/// each rotation renews the idle lifetime.
pub async fn idle_expiry<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let short = |now| Start { refresh_ttl: 100, ..Start::at(now) };
    let subject = new_subject();

    let idle = short(t).create(&ledger, &subject).await?;
    let outcome = rotate(&ledger, &idle, idle.first.refresh_id, t + 100, NO_GRACE).await?;
    ensure_eq!(outcome, Rotation::Expired { session: idle.id }, "rotation at the refresh token's exp");

    let active = short(t).create(&ledger, &subject).await?;
    let before_exp = RotationRequest {
        successor: pair_with(active.id, &subject, t + 99, 100),
        ..request_for(&active, active.first.refresh_id, t + 99)
    };
    let Rotation::Rotated { pair: second, .. } = ledger.rotate(&before_exp).await? else {
        return Err(failure("rotation a second before exp must succeed"));
    };
    let renewed = RotationRequest {
        successor: pair_with(active.id, &subject, t + 150, 100),
        ..request_for(&active, second.refresh_id, t + 150)
    };
    let outcome = ledger.rotate(&renewed).await?;
    ensure!(matches!(outcome, Rotation::Rotated { generation: 2, .. }), "the renewed token rotates: got {outcome:?}");

    let lenient = Start { leeway: 5, ..short(t) }.create(&ledger, &subject).await?;
    let within = ledger.rotate(&request(&lenient, lenient.first.refresh_id, t + 104, NO_GRACE, 5)).await?;
    ensure!(matches!(within, Rotation::Rotated { .. }), "rotation within the leeway: got {within:?}");
    let late = Start { leeway: 5, ..short(t) }.create(&ledger, &subject).await?;
    let outcome = ledger.rotate(&request(&late, late.first.refresh_id, t + 105, NO_GRACE, 5)).await?;
    ensure_eq!(outcome, Rotation::Expired { session: late.id }, "rotation at exp plus leeway");

    // The idle expiry is the session's own (the leeway it was created
    // with), so it ends exactly when the session stops being live: a
    // request allowing more cannot revive it.
    let strict = short(t).create(&ledger, &subject).await?;
    let outcome = ledger.rotate(&request(&strict, strict.first.refresh_id, t + 102, NO_GRACE, 5)).await?;
    ensure_eq!(outcome, Rotation::Expired { session: strict.id }, "a larger leeway in the request");
    Ok(Checked::Passed)
}

/// No refresh token outlives the absolute session lifetime: a successor's
/// `exp` is capped at it, and at it the session is expired.
pub async fn absolute_expiry_caps_refresh<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = Start { refresh_ttl: 500, session_ttl: 1000, ..Start::at(t) }.create(&ledger, &new_subject()).await?;
    let uncapped = RotationRequest {
        successor: pair_with(s.id, &s.subject, t + 100, 500),
        ..request_for(&s, s.first.refresh_id, t + 100)
    };
    let Rotation::Rotated { pair: second, .. } = ledger.rotate(&uncapped).await? else {
        return Err(failure("rotation before the absolute expiry must succeed"));
    };
    ensure_eq!(second, uncapped.successor, "a successor expiring before the absolute expiry is kept as proposed");
    let capped = request_for(&s, second.refresh_id, t + 550);
    let Rotation::Rotated { pair: third, .. } = ledger.rotate(&capped).await? else {
        return Err(failure("rotation before the absolute expiry must succeed"));
    };
    ensure_eq!(third.refresh_expires_at, t + 1000, "successor refresh exp capped at the absolute expiry");
    let mut expected = capped.successor.clone();
    expected.refresh_expires_at = t + 1000;
    ensure_eq!(third, expected, "the capped successor otherwise as proposed");
    let at_end = rotate(&ledger, &s, third.refresh_id, t + 1000, NO_GRACE).await?;
    ensure_eq!(at_end, Rotation::Expired { session: s.id }, "current token at the absolute expiry");
    Ok(Checked::Passed)
}

/// The session's record lives until its current tokens expire (plus
/// leeway), so a consumed token's reuse is detected for as long as that
/// token itself could be presented.
pub async fn reuse_detected_while_session_lives<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = Start { refresh_ttl: 100, leeway: 30, ..Start::at(t) }.create(&ledger, &new_subject()).await?;
    let successor = RotationRequest {
        successor: pair_with(s.id, &s.subject, t + 10, 100),
        ..request(&s, s.first.refresh_id, t + 10, NO_GRACE, 30)
    };
    ledger.rotate(&successor).await?;
    let late = ledger.rotate(&request(&s, s.first.refresh_id, t + 129, NO_GRACE, 30)).await?;
    ensure_eq!(late, reused(&s, Some(0), 1), "reuse a second before the consumed token's exp plus leeway");
    Ok(Checked::Passed)
}

/// Revoking one session by its id (logout, or from the user's listing)
/// revokes it and every access token of it, is idempotent, and reaches no
/// session under another subject.
pub async fn revoke_session_by_id<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let second = rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    let intruder = ledger.revoke_session(&new_subject(), s.id, t + 2).await?;
    ensure_eq!(intruder, Revocation::Unknown, "revocation under another subject");
    ensure_eq!(access(&ledger, &s, second.access_id).await?, AccessState::Current, "untouched by it");
    let first = ledger.revoke_session(&s.subject, s.id, t + 2).await?;
    ensure_eq!(first, Revocation::Revoked { session: s.id }, "revocation by id");
    ensure_eq!(access(&ledger, &s, second.access_id).await?, AccessState::Revoked, "its access token");
    let after = rotate(&ledger, &s, second.refresh_id, t + 3, NO_GRACE).await?;
    ensure_eq!(after, Rotation::Revoked { session: s.id }, "rotation after logout");
    let again = ledger.revoke_session(&s.subject, s.id, t + 4).await?;
    ensure_eq!(again, Revocation::AlreadyRevoked { session: s.id }, "second logout");
    let unknown = ledger.revoke_session(&s.subject, SessionId::random(), t).await?;
    ensure_eq!(unknown, Revocation::Unknown, "an unknown session");
    Ok(Checked::Passed)
}

/// `revoke_user` revokes every live session of the subject and their
/// access tokens, counts only those it revoked, and touches no one else.
pub async fn revoke_user_revokes_every_session<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let (alice, bob) = (new_subject(), new_subject());
    let one = Start::at(t).create(&ledger, &alice).await?;
    let two = Start::at(t).create(&ledger, &alice).await?;
    let two_current = rotated(&ledger, &two, two.first.refresh_id, t + 1, 1).await?;
    let logged_out = Start::at(t).create(&ledger, &alice).await?;
    ledger.revoke_session(&alice, logged_out.id, t + 1).await?;
    let bystander = Start::at(t).create(&ledger, &bob).await?;

    ensure_eq!(ledger.revoke_user(&alice, t + 2).await?, 2, "live sessions revoked");
    for (session, current) in [(&one, &one.first), (&two, &two_current)] {
        let outcome = rotate(&ledger, session, current.refresh_id, t + 3, NO_GRACE).await?;
        ensure_eq!(outcome, Rotation::Revoked { session: session.id }, "rotation after revoke_user");
        let state = access(&ledger, session, current.access_id).await?;
        ensure_eq!(state, AccessState::Revoked, "revoke_user revokes access tokens");
    }
    ensure!(ledger.sessions(&alice, t + 3).await?.is_empty(), "no session of alice is listed");
    let state = access(&ledger, &bystander, bystander.first.access_id).await?;
    ensure_eq!(state, AccessState::Current, "another user's access token");
    rotated(&ledger, &bystander, bystander.first.refresh_id, t + 3, 1).await?;
    ensure_eq!(ledger.revoke_user(&alice, t + 4).await?, 0, "revoke_user again");
    ensure_eq!(ledger.revoke_user(&new_subject(), t + 4).await?, 0, "revoke_user of an unknown subject");
    Ok(Checked::Passed)
}

/// A user's listing holds their live sessions, oldest first, with their
/// start, last rotation and generation; not revoked or expired ones, not
/// another user's.
pub async fn sessions_lists_live_oldest_first<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let subject = new_subject();
    let first = Start::at(t).create(&ledger, &subject).await?;
    let second = Start::at(t + 1).create(&ledger, &subject).await?;
    let third = Start::at(t + 2).create(&ledger, &subject).await?;
    let short = Start { refresh_ttl: 10, ..Start::at(t + 3) }.create(&ledger, &subject).await?;
    Start::at(t).create(&ledger, &new_subject()).await?;
    rotated(&ledger, &second, second.first.refresh_id, t + 5, 1).await?;
    ledger.revoke_session(&subject, third.id, t + 6).await?;

    let listed = ledger.sessions(&subject, t + 7).await?;
    let expected = vec![
        listing(first.id, 0, [t, t, t + REFRESH_TTL, t + SESSION_TTL]),
        listing(second.id, 1, [t + 1, t + 5, t + 5 + REFRESH_TTL, t + 1 + SESSION_TTL]),
        listing(short.id, 0, [t + 3, t + 3, t + 13, t + 3 + SESSION_TTL]),
    ];
    ensure_eq!(listed, expected, "the live sessions, oldest first");
    let later = ledger.sessions(&subject, t + 13).await?;
    ensure_eq!(later.len(), 2, "a session idle past its refresh token's exp is not listed");
    ensure!(ledger.sessions(&new_subject(), t).await?.is_empty(), "an unknown subject has none");
    Ok(Checked::Passed)
}

/// The login that would exceed the per-user cap evicts the user's oldest
/// live session (and only that), whose record goes with it (its tokens are
/// then unknown); a revoked or expired session does not count.
pub async fn per_user_cap_evicts_oldest<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let subject = new_subject();
    let capped = |now| Start { cap: 3, ..Start::at(now) };
    let oldest = capped(t).create(&ledger, &subject).await?;
    let middle = capped(t + 1).create(&ledger, &subject).await?;
    capped(t + 2).create(&ledger, &subject).await?;
    let (_, created) = capped(t + 3).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created.evicted, vec![oldest.id], "the fourth login evicts the oldest");
    let outcome = rotate(&ledger, &oldest, oldest.first.refresh_id, t + 4, NO_GRACE).await?;
    ensure_eq!(outcome, Rotation::Unknown, "the evicted session's refresh token: its record is gone");
    ensure_eq!(access(&ledger, &oldest, oldest.first.access_id).await?, AccessState::Revoked, "its access");
    ensure_eq!(ledger.sessions(&subject, t + 4).await?.len(), 3, "three live sessions");

    ledger.revoke_session(&subject, middle.id, t + 5).await?;
    let (_, created) = capped(t + 6).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created, Created::new(), "a logged-out session frees its place");

    let other = new_subject();
    let short = |now| Start { cap: 2, refresh_ttl: 10, ..Start::at(now) };
    short(t).create(&ledger, &other).await?;
    short(t).create(&ledger, &other).await?;
    let (_, created) = short(t + 20).create_reporting(&ledger, &other).await?;
    ensure_eq!(created, Created::new(), "expired sessions free their places");

    // A cap lowered at the next login evicts as many as it must at once,
    // nearest their end first.
    let third = new_subject();
    let mut earlier = Vec::new();
    for i in 0..3 {
        earlier.push(capped(t + i).create(&ledger, &third).await?.id);
    }
    let (_, created) = Start { cap: 1, ..Start::at(t + 3) }.create_reporting(&ledger, &third).await?;
    ensure_eq!(created.evicted, earlier, "a cap lowered to one evicts the three others, oldest first");
    Ok(Checked::Passed)
}

/// The victim of the cap is the live session nearest its deadline: a
/// session refreshed since its login moves behind the ones that were not,
/// so a burst of logins evicts idle sessions before an active one.
pub async fn cap_evicts_least_recently_refreshed<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let subject = new_subject();
    let capped = |now| Start { cap: 3, ..Start::at(now) };
    let active = capped(t).create(&ledger, &subject).await?;
    let idle = capped(t + 1).create(&ledger, &subject).await?;
    let newer = capped(t + 2).create(&ledger, &subject).await?;
    let current = rotated(&ledger, &active, active.first.refresh_id, t + 3, 1).await?;
    let (_, created) = capped(t + 4).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created.evicted, vec![idle.id], "the fourth login evicts the idle session, not the refreshed one");
    let outcome = rotate(&ledger, &idle, idle.first.refresh_id, t + 5, NO_GRACE).await?;
    ensure_eq!(outcome, Rotation::Unknown, "the evicted session's refresh token: its record is gone");
    rotated(&ledger, &active, current.refresh_id, t + 5, 2).await?;
    let (_, created) = capped(t + 6).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created.evicted, vec![newer.id], "then the next idle one");
    Ok(Checked::Passed)
}

/// Sessions that are no longer live are dropped before any live one is
/// evicted, whether they died a moment ago or long ago, by idle or absolute
/// expiry or by revocation (reuse, logout): the cap counts live sessions
/// exactly.
pub async fn cap_drops_dead_sessions_first<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let subject = new_subject();
    let capped = |now| Start { cap: 3, ..Start::at(now) };
    // Idle-expires at t + 10, and would sort first by login time.
    Start { cap: 3, refresh_ttl: 10, ..Start::at(t) }.create(&ledger, &subject).await?;
    let live = capped(t + 1).create(&ledger, &subject).await?;
    // Absolute expiry at t + 2 + 15.
    Start { cap: 3, session_ttl: 15, ..Start::at(t + 2) }.create(&ledger, &subject).await?;
    let (_, created) = capped(t + 20).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created, Created::new(), "two sessions dead for seconds leave room for two logins");
    let (fourth, created) = capped(t + 21).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created, Created::new(), "the second of them");

    let reused = fourth;
    rotated(&ledger, &reused, reused.first.refresh_id, t + 22, 1).await?;
    let outcome = rotate(&ledger, &reused, reused.first.refresh_id, t + 23, NO_GRACE).await?;
    ensure!(matches!(outcome, Rotation::Reused { .. }), "presenting a consumed token is reuse: {outcome:?}");
    let (_, created) = capped(t + 24).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created, Created::new(), "a session revoked for reuse frees its place");
    let listed = ledger.sessions(&subject, t + 24).await?;
    ensure_eq!(listed.len(), 3, "three live sessions listed");
    ensure!(listed.iter().any(|info| info.session == live.id), "the surviving first live session is listed");

    // Dead for minutes (past every clock slack): still no live session
    // evicted while there is room.
    let later = t + 300;
    let other = new_subject();
    let short = |now| Start { cap: 2, refresh_ttl: 10, ..Start::at(now) };
    short(t).create(&ledger, &other).await?;
    short(t + 1).create(&ledger, &other).await?;
    let (_, created) = short(later).create_reporting(&ledger, &other).await?;
    ensure_eq!(created, Created::new(), "sessions dead for minutes free their places");
    let (_, created) = short(later + 1).create_reporting(&ledger, &other).await?;
    ensure_eq!(created, Created::new(), "both of them");
    Ok(Checked::Passed)
}

/// Logins inside one second have equal ends of life: the cap then evicts
/// the earliest login by the ledger's login sequence, not the session with
/// the smallest (random) id. 101 logins at cap 100 end the first one only.
pub async fn cap_ties_go_to_the_earliest_login<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let subject = new_subject();
    let first = Start::at(t).create(&ledger, &subject).await?;
    let second = Start::at(t).create(&ledger, &subject).await?;
    for _ in 2..CAP {
        Start::at(t).create(&ledger, &subject).await?;
    }
    let (_, created) = Start::at(t).create_reporting(&ledger, &subject).await?;
    ensure_eq!(created.evicted, vec![first.id], "the 101st login in one second evicts the first");
    let outcome = rotate(&ledger, &first, first.first.refresh_id, t, NO_GRACE).await?;
    ensure_eq!(outcome, Rotation::Unknown, "the first login's refresh token");
    rotated(&ledger, &second, second.first.refresh_id, t, 1).await?;
    ensure_eq!(ledger.sessions(&subject, t).await?.len(), CAP as usize, "the cap's sessions are listed");
    Ok(Checked::Passed)
}

/// `purge` removes only what has ended: a live session still rotates, and
/// a session revoked a moment ago still answers `Revoked` (its tombstone
/// lasts [`TOMBSTONE_SECONDS`]).
pub async fn purge_keeps_what_the_contract_needs<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let live = start(&ledger, t).await?;
    let revoked = start(&ledger, t).await?;
    ledger.revoke_session(&revoked.subject, revoked.id, t + 1).await?;
    ledger.purge(t + 2).await?;
    let outcome = rotate(&ledger, &revoked, revoked.first.refresh_id, t + 2, NO_GRACE).await?;
    ensure_eq!(outcome, Rotation::Revoked { session: revoked.id }, "a tombstone younger than a minute");
    rotated(&ledger, &live, live.first.refresh_id, t + 2, 1).await?;
    Ok(Checked::Passed)
}

/// `purge` removes what has ended, a while later: a session idle past its
/// tokens' expiry and a revoked tombstone are gone (their tokens unknown,
/// their access tokens refused) after a purge an hour past their
/// retention, and a live session is kept. Skipped for a store that
/// expires records by itself ([`Harness::expires_by_itself`]). The purge
/// runs an hour ahead of the real clock: it removes only what ended
/// before then, which no later check still needs.
pub async fn purge_removes_what_has_ended<H: Harness>(harness: &H) -> CheckResult {
    if harness.expires_by_itself() {
        return Ok(Checked::Skipped("the store expires records by itself"));
    }
    let ledger = handle(harness).await?;
    let t = real_now();
    let idle = Start { refresh_ttl: 10, ..Start::at(t) }.create(&ledger, &new_subject()).await?;
    let revoked = start(&ledger, t).await?;
    ledger.revoke_session(&revoked.subject, revoked.id, t + 1).await?;
    let live = start(&ledger, t).await?;
    let later = t + ACCESS_TTL + TOMBSTONE_SECONDS + 3_600;
    let purged = ledger.purge(later).await?;
    ensure!(purged >= 2, "a purge past two ended sessions' retention removed {purged} records");
    for (name, session) in [("idle-expired", &idle), ("revoked", &revoked)] {
        let outcome = rotate(&ledger, session, session.first.refresh_id, later, NO_GRACE).await?;
        ensure!(outcome == Rotation::Unknown, "the {name} session's token after the purge: got {outcome:?}");
        let state = access(&ledger, session, session.first.access_id).await?;
        ensure!(state == AccessState::Revoked, "the {name} session's access token after the purge: got {state:?}");
    }
    rotated(&ledger, &live, live.first.refresh_id, later, 1).await?;
    Ok(Checked::Passed)
}

/// A session id already recorded is refused, and the recorded session is
/// untouched: two logins are never merged into one family. The refused
/// login comes at a cap of one, so a ledger that evicted before it found
/// the id taken would end the recorded session.
pub async fn taken_session_id_refused<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let mut again = Start { cap: 1, ..Start::at(t) }.new_session(&s.subject);
    again.session = s.id;
    again.pair = pair_with(s.id, &again.pair.subject, t, REFRESH_TTL);
    ensure!(ledger.create(&again).await.is_err(), "creating a session whose id is taken must fail");
    ensure_eq!(access(&ledger, &s, s.first.access_id).await?, AccessState::Current, "the first session");
    rotated(&ledger, &s, s.first.refresh_id, t + 1, 1).await?;
    Ok(Checked::Passed)
}

/// A token presented with another subject is `Unknown` and changes
/// nothing, whether it is current or consumed.
pub async fn subject_mismatch_is_unknown<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let other = new_subject();
    let mut wrong = request_for(&s, s.first.refresh_id, t + 1);
    wrong.subject.clone_from(&other);
    wrong.successor.subject.clone_from(&other);
    ensure_eq!(ledger.rotate(&wrong).await?, Rotation::Unknown, "current token, other subject");
    let second = rotated(&ledger, &s, s.first.refresh_id, t + 2, 1).await?;
    ensure_eq!(ledger.rotate(&wrong).await?, Rotation::Unknown, "consumed token, other subject");
    let state = ledger.access_state(&other, second.access_id).await?;
    ensure_eq!(state, AccessState::Revoked, "access token, other subject");
    rotated(&ledger, &s, second.refresh_id, t + 3, 2).await?;
    Ok(Checked::Passed)
}

/// Tokens of a session the ledger never saw (or forgot) are unknown
/// everywhere, and their access tokens refused: a lost record fails closed.
pub async fn unknown_session<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let id = SessionId::random();
    let subject = new_subject();
    let s = Session { id, subject: subject.clone(), first: pair_with(id, &subject, t, REFRESH_TTL) };
    ensure_eq!(rotate(&ledger, &s, s.first.refresh_id, t, NO_GRACE).await?, Rotation::Unknown, "rotation");
    ensure_eq!(ledger.revoke_session(&subject, id, t).await?, Revocation::Unknown, "logout");
    ensure_eq!(access(&ledger, &s, s.first.access_id).await?, AccessState::Revoked, "its access token");
    Ok(Checked::Passed)
}

/// Runs [`CONCURRENT_ROTATIONS`] rotations of `presented` at once, spread
/// over `ledgers`, and returns their outcomes.
async fn race<L: SessionLedger + 'static>(
    ledgers: &[Arc<L>],
    session: &Session,
    presented: TokenId,
    now: i64,
    grace: Grace,
) -> Result<Vec<Rotation>, Failure> {
    let mut tasks = Vec::with_capacity(CONCURRENT_ROTATIONS);
    for ledger in ledgers.iter().cycle().take(CONCURRENT_ROTATIONS) {
        let ledger = Arc::clone(ledger);
        let request = request(session, presented, now, grace, 0);
        tasks.push(tokio::spawn(async move { ledger.rotate(&request).await }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        let outcome = task.await.map_err(|e| failure(format!("a rotation task failed: {e}")))??;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Counts outcomes by kind: rotated, replayed, reused, revoked, other.
fn tally(outcomes: &[Rotation]) -> [usize; 5] {
    let mut counts = [0; 5];
    for outcome in outcomes {
        let slot = match outcome {
            Rotation::Rotated { .. } => 0,
            Rotation::Replayed { .. } => 1,
            Rotation::Reused { .. } => 2,
            Rotation::Revoked { .. } => 3,
            _ => 4,
        };
        if let Some(count) = counts.get_mut(slot) {
            *count += 1;
        }
    }
    counts
}

/// Of [`CONCURRENT_ROTATIONS`] concurrent rotations of one token exactly
/// one rotates; the others see reuse (then the revoked session).
pub async fn concurrent_rotations_consume_once<H: Harness>(harness: &H) -> CheckResult {
    let ledger = Arc::new(handle(harness).await?);
    let t = real_now();
    let s = start(&*ledger, t).await?;
    let outcomes = race(&[Arc::clone(&ledger)], &s, s.first.refresh_id, t + 1, NO_GRACE).await?;
    let [rotated_count, replayed, reused_count, revoked, other] = tally(&outcomes);
    ensure_eq!(rotated_count, 1, "concurrent rotations that rotated");
    ensure_eq!(reused_count, 1, "concurrent rotations that detected reuse (the rest see it revoked)");
    ensure_eq!((replayed, revoked, other), (0, CONCURRENT_ROTATIONS - 2, 0), "replayed, revoked, other");
    Ok(Checked::Passed)
}

/// With a grace window, concurrent rotations of one token: one rotates,
/// `max_replays` replay the identical pair, then reuse revokes the
/// session.
pub async fn concurrent_rotations_with_grace<H: Harness>(harness: &H) -> CheckResult {
    let ledger = Arc::new(handle(harness).await?);
    let grace = Grace { window: 10, max_replays: 3 };
    let t = real_now();
    let s = start(&*ledger, t).await?;
    let outcomes = race(&[Arc::clone(&ledger)], &s, s.first.refresh_id, t + 1, grace).await?;
    let [rotated_count, replayed, reused_count, revoked, other] = tally(&outcomes);
    ensure_eq!(
        (rotated_count, replayed, reused_count, revoked, other),
        (1, 3, 1, CONCURRENT_ROTATIONS - 5, 0),
        "rotated, replayed, reused, revoked, other"
    );
    let winner = outcomes.iter().find_map(|o| match o {
        Rotation::Rotated { pair, .. } => Some(pair),
        _ => None,
    });
    for outcome in &outcomes {
        if let Rotation::Replayed { pair, .. } = outcome {
            ensure!(Some(pair) == winner, "a replay returned {pair:?}, not the rotated pair {winner:?}");
        }
    }
    Ok(Checked::Passed)
}

/// Concurrent logins of one user never leave more live sessions than the
/// cap: every login beyond it evicts exactly one, and no session is
/// evicted twice.
pub async fn concurrent_logins_respect_cap<H: Harness>(harness: &H) -> CheckResult {
    const CAP_HERE: u32 = 5;
    const LOGINS: usize = 20;
    let ledger = Arc::new(handle(harness).await?);
    let t = real_now();
    let subject = new_subject();
    let mut tasks = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        let ledger = Arc::clone(&ledger);
        let new = Start { cap: CAP_HERE, ..Start::at(t) }.new_session(&subject);
        tasks.push(tokio::spawn(async move { ledger.create(&new).await }));
    }
    let mut evicted = Vec::new();
    for task in tasks {
        let created = task.await.map_err(|e| failure(format!("a login task failed: {e}")))??;
        evicted.extend(created.evicted);
    }
    let live = ledger.sessions(&subject, t).await?;
    ensure_eq!(live.len(), 5, "live sessions after 20 concurrent logins with a cap of 5");
    let distinct: std::collections::HashSet<_> = evicted.iter().collect();
    ensure_eq!((evicted.len(), distinct.len()), (LOGINS - 5, LOGINS - 5), "evictions, distinct evictions");
    ensure!(live.iter().all(|info| !distinct.contains(&info.session)), "an evicted session is still listed");
    Ok(Checked::Passed)
}

/// Two independent handles (two instances of a service) are one ledger:
/// what one records, the other sees, and concurrent rotations over both
/// still consume once.
pub async fn two_handles_one_ledger<H: Harness>(harness: &H) -> CheckResult {
    let a = Arc::new(handle(harness).await?);
    let b = Arc::new(handle(harness).await?);
    let t = real_now();
    let s = start(&*a, t).await?;
    let second = rotated(&*b, &s, s.first.refresh_id, t + 1, 1).await?;
    ensure_eq!(access(&*a, &s, second.access_id).await?, AccessState::Current, "the other handle's view");
    let reuse = rotate(&*a, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
    ensure_eq!(reuse, reused(&s, Some(0), 1), "reuse through the other handle");
    ensure_eq!(access(&*b, &s, second.access_id).await?, AccessState::Revoked, "reuse seen across handles");
    let logout = b.revoke_session(&s.subject, s.id, t + 3).await?;
    ensure_eq!(logout, Revocation::AlreadyRevoked { session: s.id }, "logout");

    let raced = start(&*b, t).await?;
    let outcomes = race(&[Arc::clone(&a), Arc::clone(&b)], &raced, raced.first.refresh_id, t + 1, NO_GRACE).await?;
    let [rotated_count, _, reused_count, _, other] = tally(&outcomes);
    ensure_eq!((rotated_count, reused_count, other), (1, 1, 0), "rotated, reused, other over two handles");
    Ok(Checked::Passed)
}

/// Polls a future at most `left` times, then drops it: what a deadline
/// (`tokio::time::timeout`) does to a ledger call, at every `.await` in
/// turn. Its output is the call's, if it finished within the polls.
struct PollAtMost<F> {
    future: Pin<Box<F>>,
    left: usize,
}

impl<F: Future> Future for PollAtMost<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        this.left -= 1;
        this.future.as_mut().poll(cx).map(Some)
    }
}

/// Most polls a call may take before the cancellation checks give up on
/// it finishing.
const MAX_POLLS: usize = 500;

/// How long the cancellation checks wait after dropping a call before they
/// look: work already sent to a server completes on its own (whole), and
/// the check must see it done rather than race it.
const SETTLE: Duration = Duration::from_millis(20);

/// Runs `call` for at most `polls` polls; `None` if it was dropped before
/// it finished.
async fn poll_at_most<F: Future>(call: F, polls: usize) -> Option<F::Output> {
    PollAtMost { future: Box::pin(call), left: polls }.await
}

/// A rotation future dropped after any number of polls leaves the whole
/// rotation or none of it: afterwards either the dropped successor is
/// current (and the presented token is consumed: reuse) or the presented
/// token is still current (and rotates). Nothing in between.
pub async fn dropped_rotation_is_all_or_nothing<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    for polls in 0..MAX_POLLS {
        let s = start(&ledger, t).await?;
        let dropped = request_for(&s, s.first.refresh_id, t + 1);
        match poll_at_most(ledger.rotate(&dropped), polls).await {
            Some(outcome) => {
                let Rotation::Rotated { generation: 1, .. } = outcome? else {
                    return Err(failure("a rotation left to finish did not rotate"));
                };
                return Ok(Checked::Passed);
            }
            None => tokio::time::sleep(SETTLE).await,
        }
        let successor = access(&ledger, &s, dropped.successor.access_id).await?;
        let look = rotate(&ledger, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
        match (successor, look) {
            (AccessState::Current, outcome) if outcome == reused(&s, Some(0), 1) => {}
            (AccessState::Superseded, Rotation::Rotated { generation: 1, .. }) => {}
            (state, outcome) => {
                return Err(failure(format!(
                    "a rotation dropped after {polls} polls left half of it: its successor's access token is \
                     {state:?}, and the presented token then answers {outcome:?}"
                )));
            }
        }
    }
    Err(failure(format!("a rotation did not finish within {MAX_POLLS} polls")))
}

/// A login future dropped after any number of polls leaves the whole login
/// (the session recorded and, at the cap, the evicted session gone) or none
/// of it (the older session intact, the new one unknown).
pub async fn dropped_login_is_all_or_nothing<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let capped = |now| Start { cap: 1, ..Start::at(now) };
    for polls in 0..MAX_POLLS {
        let subject = new_subject();
        let older = capped(t).create(&ledger, &subject).await?;
        let new = capped(t + 1).new_session(&subject);
        let session = Session { id: new.session, subject: subject.clone(), first: new.pair.clone() };
        match poll_at_most(ledger.create(&new), polls).await {
            Some(created) => {
                ensure_eq!(created?.evicted, vec![older.id], "a login left to finish at the cap evicts the older");
                return Ok(Checked::Passed);
            }
            None => tokio::time::sleep(SETTLE).await,
        }
        let evicted = access(&ledger, &older, older.first.access_id).await?;
        let look = rotate(&ledger, &session, new.pair.refresh_id, t + 2, NO_GRACE).await?;
        match (evicted, look) {
            (AccessState::Revoked, Rotation::Rotated { generation: 1, .. }) => {}
            (AccessState::Current, Rotation::Unknown) => {}
            (state, outcome) => {
                return Err(failure(format!(
                    "a login dropped after {polls} polls left half of it: the older session's access token is \
                     {state:?}, and the new session's refresh token answers {outcome:?}"
                )));
            }
        }
    }
    Err(failure(format!("a login did not finish within {MAX_POLLS} polls")))
}

/// A logout future dropped after any number of polls leaves the session
/// revoked or untouched.
pub async fn dropped_revocation_is_all_or_nothing<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    for polls in 0..MAX_POLLS {
        let s = start(&ledger, t).await?;
        match poll_at_most(ledger.revoke_session(&s.subject, s.id, t + 1), polls).await {
            Some(revocation) => {
                ensure_eq!(revocation?, Revocation::Revoked { session: s.id }, "a logout left to finish");
                return Ok(Checked::Passed);
            }
            None => tokio::time::sleep(SETTLE).await,
        }
        let look = rotate(&ledger, &s, s.first.refresh_id, t + 2, NO_GRACE).await?;
        match look {
            Rotation::Revoked { .. } | Rotation::Rotated { generation: 1, .. } => {}
            outcome => {
                return Err(failure(format!(
                    "a logout dropped after {polls} polls left the session answering {outcome:?}"
                )));
            }
        }
    }
    Err(failure(format!("a logout did not finish within {MAX_POLLS} polls")))
}

/// Runs two futures concurrently on this task and answers both outputs
/// (`tokio::join!` without tokio's `macros` feature).
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut left, mut right) = (None, None);
    std::future::poll_fn(|cx| {
        if left.is_none()
            && let Poll::Ready(output) = a.as_mut().poll(cx)
        {
            left = Some(output);
        }
        if right.is_none()
            && let Poll::Ready(output) = b.as_mut().poll(cx)
        {
            right = Some(output);
        }
        match (left.take(), right.take()) {
            (Some(l), Some(r)) => Poll::Ready((l, r)),
            (l, r) => {
                (left, right) = (l, r);
                Poll::Pending
            }
        }
    })
    .await
}

/// Rounds of rotation the fault check runs, one disruption each.
const FAULT_ROUNDS: i64 = 40;

/// Asks for the listed generation of `session` until the ledger answers
/// (its connections may be coming back), for at most 30 s.
async fn generation_after_faults<L: SessionLedger>(ledger: &L, session: &Session, now: i64) -> Result<u64, Failure> {
    let mut pause = Duration::from_millis(5);
    let mut last = String::new();
    for _ in 0..200 {
        match listed_generation(ledger, session, now).await {
            Ok(Some(generation)) => return Ok(generation),
            Ok(None) => return Err(failure("a session rotated through faults is no longer listed")),
            Err(error) => last = error.message,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    Err(failure(format!("the ledger never answered a listing after the faults: {last}")))
}

/// Lost connections never leave half a rotation: a chain of rotations runs
/// while the harness cuts the ledger's connections
/// ([`Harness::disrupt`]) once per rotation. A rotation that fails must
/// have happened fully (the listed generation moved by one: only the reply
/// was lost) or not at all, and was never sent twice (a repeat would look
/// like reuse and revoke the session). Afterwards the chain's current
/// token still rotates and the first token is reuse. Skipped when the
/// harness cannot disrupt.
pub async fn lost_connections_never_leave_half_a_rotation<H: Harness>(harness: &H) -> CheckResult {
    let ledger = handle(harness).await?;
    let t = real_now();
    let s = start(&ledger, t).await?;
    let Some(mut cut) = harness.disrupt().await.map_err(|e| failure(format!("the disruption failed: {e}")))? else {
        return Ok(Checked::Skipped("the harness cannot disrupt the ledger's connections"));
    };
    let (mut current, mut generation, mut errors) = (s.first.refresh_id, 0_u64, 0_u64);
    for round in 0..FAULT_ROUNDS {
        let now = t + 1 + round;
        let request = request_for(&s, current, now);
        // The cut lands before, during or after the call, in turn.
        let delay = Duration::from_micros(u64::try_from(round % 8).unwrap_or(0) * 300);
        let (outcome, disrupted) = join(ledger.rotate(&request), async {
            tokio::time::sleep(delay).await;
            harness.disrupt().await
        })
        .await;
        cut += disrupted.map_err(|e| failure(format!("the disruption failed: {e}")))?.unwrap_or(0);
        match outcome {
            Ok(Rotation::Rotated { generation: got, pair, .. }) => {
                ensure_eq!(got, generation + 1, "a rotation through faults adds one generation");
                current = pair.refresh_id;
                generation = got;
            }
            Ok(other) => return Err(failure(format!("round {round}: the current token must rotate, got {other:?}"))),
            Err(_) => {
                errors += 1;
                let after = generation_after_faults(&ledger, &s, now).await?;
                if after == generation + 1 {
                    // Committed; only the reply was lost.
                    current = request.successor.refresh_id;
                    generation = after;
                } else {
                    ensure_eq!(after, generation, "the generation after a failed rotation (half a rotation?)");
                }
            }
        }
    }
    ensure!(cut > 0 && errors > 0, "the disruptions failed no call ({cut} connections cut, {errors} errors)");
    // Connections that died idle fail once each at most; then it rotates.
    let now = t + 1 + FAULT_ROUNDS;
    let mut recovered = None;
    for _ in 0..50 {
        match ledger.rotate(&request_for(&s, current, now)).await {
            Ok(outcome) => {
                recovered = Some(outcome);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    match recovered {
        Some(Rotation::Rotated { generation: got, .. }) if got == generation + 1 => {}
        other => return Err(failure(format!("the chain's current token after the faults: got {other:?}"))),
    }
    let reuse = rotate(&ledger, &s, s.first.refresh_id, now, NO_GRACE).await?;
    ensure!(matches!(reuse, Rotation::Reused { .. }), "the chain's first token after the faults: got {reuse:?}");
    Ok(Checked::Passed)
}
