//! The session ledger: one record per session, holding which refresh
//! token is current.
//!
//! One session (token family) starts at login. Each refresh presents the
//! current refresh token and replaces it with a successor: that replacement
//! is [`SessionLedger::rotate`], and it is the security core of the crate.
//!
//! # One record per session
//!
//! Every token id the crate issues carries its session's tag
//! ([`TokenId::session`](crate::token::TokenId::session)), so a ledger finds the
//! session from a verified token's `jti` alone and keeps exactly one record
//! per session: the current refresh id, the immediate predecessor's id with
//! its rotation time and replay count (for the grace window), the current
//! access id, the generation, the lifetimes, the revoked flag and the claims
//! needed to sign the current pair again. Nothing is kept per rotation, so a
//! session costs the same after its thousandth refresh as after its first.
//!
//! # The contract every backend keeps
//!
//! - **Consume once.** `rotate` is an atomic compare-and-swap of the
//!   current refresh id: of any number of concurrent calls presenting the
//!   same current token, exactly one returns [`Rotation::Rotated`]. No
//!   backend may answer `Rotated` twice for one token, even across
//!   processes, restarts or lost connections; a call that fails with an
//!   error has either rotated fully or not at all.
//! - **Reuse revokes the family.** Presenting any token of the session other
//!   than the current one (outside the grace rule below) revokes the whole
//!   session in the same atomic step and answers [`Rotation::Reused`]. This
//!   holds for a token of *any* older generation, for as long as the
//!   session's record lives.
//! - **Grace.** With a grace window, presenting the immediate predecessor
//!   of the current token when `-leeway ≤ now − rotated_at ≤ window`, at
//!   most `max_replays` times, answers [`Rotation::Replayed`] with the stored
//!   current pair, unchanged. The lower bound keeps an instance whose clock
//!   is behind the rotating one from widening the window.
//! - **Lifetimes.** A successor's refresh expiry is capped at the session's
//!   absolute expiry; a session at or past it, or whose current refresh
//!   token expired (idle: `now ≥ refresh exp + the session's leeway`,
//!   the leeway it was created with), answers [`Rotation::Expired`].
//! - **Fail closed.** A live session's record is kept at least until its
//!   current refresh and access tokens expire (plus the session's leeway).
//!   A record lost earlier (purged, evicted) can only make the session's
//!   tokens unknown (401): never turn reuse into success.
//! - **Bounded state.** An ended session leaves at most a short-lived
//!   trace, so that the number of records follows the live sessions and
//!   not the number of logins: a session the cap evicts is deleted in the
//!   login's atomic step (its tokens become unknown, 401); a session
//!   revoked by logout, reuse or [`revoke_user`](SessionLedger::revoke_user)
//!   is kept as a revoked tombstone for at most [`TOMBSTONE_SECONDS`] (plus
//!   the ledger's clock slack), so that its tokens answer "revoked" for a
//!   while, then unknown. [`purge`](SessionLedger::purge) removes what has
//!   ended; a ledger whose store expires records by itself (Redis TTLs)
//!   does it without being asked.
//! - **Access tokens** are checked against their session
//!   ([`SessionLedger::access_state`]): a revoked session (logout, reuse,
//!   eviction, [`revoke_user`](SessionLedger::revoke_user)) refuses all of
//!   its access tokens at once.
//! - **Live sessions.** A session is *live* while it is not revoked,
//!   `now < absolute_expires_at`, and `now < refresh_expires_at + leeway`
//!   (the leeway the session was created with, [`NewSession::leeway`]).
//!   Only live sessions are listed, counted against the cap, and revoked
//!   by `revoke_user`.
//! - **Per-user cap.** [`create`](SessionLedger::create) keeps at most
//!   [`NewSession::max_sessions_per_user`] live sessions per subject: the
//!   login that would exceed it revokes, in the same atomic step, the
//!   user's live sessions nearest their end of life (the smallest
//!   `min(absolute_expires_at, refresh_expires_at + leeway)`, then the
//!   earliest login by a monotonic login sequence the ledger keeps, not by
//!   the one-second login time) and names them in [`Created::evicted`]. With equal
//!   lifetimes that is the least recently refreshed session: a burst of
//!   logins evicts idle sessions before the one the user is refreshing.
//!   Every ledger keeps each user's sessions ordered by that instant, so a
//!   login, an expiry and an eviction cost O(log n) in the user's number of
//!   sessions: nothing walks a user's list but
//!   [`sessions`](SessionLedger::sessions) and `revoke_user`.
//! - **No bearer material.** Only ids, expiries and claims are stored,
//!   never a token string: reading the store lets nobody mint or replay a
//!   token.
//!
//! # What a backend must do that the types cannot show
//!
//! - **Atomic, and cancel-safe.** Each call is one atomic step, and a
//!   future dropped at any `.await` (a request deadline drops it) leaves
//!   the whole operation or none of it: never a consumed token without its
//!   successor, a login without its evictions, half a revocation. Work
//!   already sent to a server may still complete after the drop; it then
//!   completes whole. The conformance suite drops each call after every
//!   number of polls and checks this.
//! - **Lost connections.** The same holds for a call that fails because
//!   its connection died: a rotation that errs has either happened fully
//!   or not at all, and is never sent again on its own (a second send
//!   would look like reuse). The suite checks it through
//!   `conformance::Harness::disrupt` (feature `conformance`).
//! - **Retention.** [`purge`](SessionLedger::purge) deletes what has
//!   ended. The ledger never calls it itself: the service does, once per
//!   deployment, every few minutes
//!   ([`TokenService::purge_every`](crate::TokenService::purge_every) is
//!   that loop, whatever ledger the service holds, one chosen by
//!   [`LedgerUrl`] included). A store that expires records by itself
//!   (Redis TTLs) answers 0.
//! - **`now`.** The rules decide on the caller's `now`, never on the
//!   backend's clock: instances of a service may disagree by a few
//!   seconds, and the answers must not. (A store may still expire records
//!   on its own clock, later than their retention by a slack.)
//! - **Readiness.** [`ping`](SessionLedger::ping) has no default: a
//!   networked ledger does one cheap round trip, an in-process one answers
//!   `Ok` and says why.
//! - **The rules are shared.** A backend that reads, locks and writes
//!   applies [`rules::decide`] under its lock rather than writing the
//!   rules again; [`rules`] has the other checks it needs.

mod boxed;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod records;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod rules;
mod url;

pub use boxed::BoxLedger;
pub(crate) use boxed::DynLedger;
pub use memory::{LedgerStats, MemoryLedger};
pub use records::{
    AccessState, Created, Grace, NewSession, PairClaims, Revocation, Rotation, RotationRequest, SessionInfo,
    SessionTimes, UnixTime,
};
pub use url::{ConnectError, Connected, LedgerKind, LedgerOptions, LedgerUrl, LedgerUrlError};

use std::future::Future;

use crate::error::StoreError;
use crate::token::ids::{SessionId, TokenId};

/// Seconds a session revoked by logout, reuse or `revoke_user` keeps its
/// record (a revoked tombstone) before [`SessionLedger::purge`] may remove
/// it; see the [contract](crate::ledger).
pub const TOMBSTONE_SECONDS: i64 = 60;

/// Default for [`NewSession::max_sessions_per_user`] and
/// [`Policy`](crate::Policy)'s cap.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 100;

/// Storage of sessions: one record each. Read the module documentation for
/// the contract; the `conformance` feature's suite checks an
/// implementation against it.
///
/// Methods that name a session take its `subject` too: a ledger may file
/// sessions by user (the Redis ledger does, so that a user's sessions share
/// one Redis Cluster slot), and a session is never reachable under another
/// subject.
pub trait SessionLedger: Send + Sync {
    /// Records a new session (login), evicting the subject's live sessions
    /// nearest their end of life beyond
    /// [`NewSession::max_sessions_per_user`], in one atomic step. Fails,
    /// changing nothing, if the session's tag is taken (a ledger that files
    /// sessions by user need only detect a tag taken by the same subject:
    /// tags are 64 random bits, so another subject's is never drawn).
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<Created, StoreError>> + Send;

    /// Atomically consumes the presented token and records its successor.
    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send;

    /// Revokes one session of `subject` (logout, or an administrator's
    /// revocation from [`sessions`](SessionLedger::sessions)). `now` is
    /// the revocation's instant: the tombstone it leaves may go
    /// [`TOMBSTONE_SECONDS`] after it (a store that expires records on its
    /// own clock, Redis, may time the tombstone there instead).
    fn revoke_session(
        &self,
        subject: &str,
        session: SessionId,
        now: i64,
    ) -> impl Future<Output = Result<Revocation, StoreError>> + Send;

    /// Revokes every session of `subject`; returns how many were live.
    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The live (neither revoked nor expired) sessions of `subject`,
    /// oldest first.
    fn sessions(&self, subject: &str, now: i64) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send;

    /// Where access token `access_id` of `subject` stands with its session.
    fn access_state(
        &self,
        subject: &str,
        access_id: TokenId,
    ) -> impl Future<Output = Result<AccessState, StoreError>> + Send;

    /// Whether the ledger answers: one cheap round trip to a shared
    /// backend, for readiness probes. Required: an in-process ledger
    /// answers `Ok` (it cannot be unreachable), a networked one must ask
    /// its server. Callers bound it with their own timeout: a backend that
    /// hangs makes this hang too.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the records of sessions that ended before `now` (expired
    /// past their retention, tombstones past [`TOMBSTONE_SECONDS`]), and
    /// returns how many it removed. The ledger is correct without it; it
    /// bounds the store's size. The service calls it, never the ledger
    /// itself: once per deployment, every few minutes
    /// ([`TokenService::purge_every`](crate::TokenService::purge_every) is
    /// that loop). A ledger whose store expires records by itself returns
    /// 0. A backend may keep records a little longer than asked (a clock
    /// slack between instances), never less: the conformance suite checks
    /// that a purge keeps what the contract needs and, a while later,
    /// removes what ended.
    fn purge(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

impl<L: SessionLedger + ?Sized> SessionLedger for std::sync::Arc<L> {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<Created, StoreError>> + Send {
        (**self).create(session)
    }
    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        (**self).rotate(request)
    }
    fn revoke_session(
        &self,
        subject: &str,
        session: SessionId,
        now: i64,
    ) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
        (**self).revoke_session(subject, session, now)
    }
    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).revoke_user(subject, now)
    }
    fn sessions(&self, subject: &str, now: i64) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        (**self).sessions(subject, now)
    }
    fn access_state(
        &self,
        subject: &str,
        access_id: TokenId,
    ) -> impl Future<Output = Result<AccessState, StoreError>> + Send {
        (**self).access_state(subject, access_id)
    }
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).ping()
    }
    fn purge(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge(now)
    }
}
