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

mod boxed;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod url;

pub use boxed::BoxLedger;
pub use memory::{LedgerStats, MemoryLedger};
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

/// The claims of one access/refresh pair: all a ledger stores about it, and
/// all that is needed to sign it again byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairClaims {
    /// `sub` of both tokens.
    pub subject: String,
    /// `acc` of the access token.
    pub account: String,
    /// `role` of the access token.
    pub role: String,
    /// `jti` of the access token (`acjti` of the refresh token).
    pub access_id: TokenId,
    /// `exp` of the access token.
    pub access_expires_at: i64,
    /// `jti` of the refresh token.
    pub refresh_id: TokenId,
    /// `exp` of the refresh token.
    pub refresh_expires_at: i64,
}

/// A session to record at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The new session's id. Both ids of `pair` must carry its tag
    /// ([`SessionId::new_token_id`]).
    pub session: SessionId,
    /// The first pair (generation 0).
    pub pair: PairClaims,
    /// When the session started (unix seconds).
    pub created_at: i64,
    /// No refresh token of this session may expire later than this.
    pub absolute_expires_at: i64,
    /// Extra seconds to keep the record past its tokens' expiry.
    pub leeway: i64,
    /// Most live sessions the subject may hold, this one included (at
    /// least 1): the ones nearest their end of life are evicted.
    pub max_sessions_per_user: u32,
}

/// What [`SessionLedger::create`] did besides recording the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The user's live sessions revoked to keep within the per-user cap,
    /// nearest their end of life first (see the [contract](crate::ledger)).
    pub evicted: Vec<SessionId>,
}

impl Created {
    /// A session recorded without evicting another.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session recorded after evicting `evicted`.
    pub fn evicting(evicted: Vec<SessionId>) -> Self {
        Self { evicted }
    }
}

/// The grace-window rule for one rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grace {
    /// Seconds after a rotation during which the predecessor may be
    /// replayed; 0 disables the rule.
    pub window: i64,
    /// How many replays one rotation tolerates.
    pub max_replays: u32,
}

/// One refresh: the presented token and the proposed successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRequest {
    /// `jti` of the presented refresh token (its signature already checked).
    pub presented: TokenId,
    /// `sub` of the presented token; must match the session's subject.
    pub subject: String,
    /// The successor pair, its ids of the presented token's session. Its
    /// refresh expiry is capped by the ledger at the session's absolute
    /// expiry.
    pub successor: PairClaims,
    /// Now, unix seconds.
    pub now: i64,
    /// The grace rule.
    pub grace: Grace,
    /// The clock tolerance of the grace rule's lower bound. (The idle
    /// expiry uses the leeway the session was created with.)
    pub leeway: i64,
}

/// What a rotation did. Every variant but `Rotated` and `Replayed` is a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The presented token was current; it is consumed and `pair` is the
    /// new current pair (refresh expiry possibly capped).
    Rotated {
        /// The session.
        session: SessionId,
        /// Generation of the new pair (the login pair is 0).
        generation: u64,
        /// The recorded successor.
        pair: PairClaims,
    },
    /// Grace replay of the immediate predecessor: `pair` is the current
    /// pair, as recorded at the rotation.
    Replayed {
        /// The session.
        session: SessionId,
        /// Generation of the current pair.
        generation: u64,
        /// The current pair.
        pair: PairClaims,
        /// How many replays of this rotation there have been, this one
        /// included.
        replay: u32,
    },
    /// A token of the session other than the current one was presented
    /// outside the grace rule: the session is now revoked.
    Reused {
        /// The session.
        session: SessionId,
        /// Generation of the presented token when it is the immediate
        /// predecessor (often a client that lost a response); `None` for
        /// anything older (more likely a stolen token). The ledger keeps
        /// nothing per rotation, so older generations are not told apart.
        presented_generation: Option<u64>,
        /// Generation of the session's current pair.
        current_generation: u64,
    },
    /// The ledger does not know the token's session.
    Unknown,
    /// The session was revoked before.
    Revoked {
        /// The session.
        session: SessionId,
    },
    /// The session is past its absolute or idle lifetime.
    Expired {
        /// The session.
        session: SessionId,
    },
}

/// What a logout or a revocation by session id did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The session is now revoked.
    Revoked {
        /// The session.
        session: SessionId,
    },
    /// The session was already revoked (logout is idempotent).
    AlreadyRevoked {
        /// The session.
        session: SessionId,
    },
    /// The ledger does not know the session (or it is another subject's).
    Unknown,
}

/// Where an access token stands with its session; see
/// [`SessionLedger::access_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessState {
    /// The access token of the session's current pair.
    Current,
    /// An access token of a live session, superseded by a rotation. Valid
    /// until its own `exp` unless the policy revokes superseded access
    /// tokens.
    Superseded,
    /// The session was revoked, or is unknown (forgotten, another subject's,
    /// never issued): refuse the token.
    Revoked,
}

/// A live session of a user, as [`SessionLedger::sessions`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's id.
    pub session: SessionId,
    /// When it started (unix seconds).
    pub created_at: i64,
    /// When it was last rotated (its start, before the first rotation).
    pub rotated_at: i64,
    /// Generation of its current pair (the login pair is 0).
    pub generation: u64,
    /// When its current refresh token expires (idle expiry).
    pub refresh_expires_at: i64,
    /// When it ends whatever happens (absolute expiry).
    pub absolute_expires_at: i64,
}

impl SessionInfo {
    /// A listing entry; for ledger implementations.
    pub fn new(
        session: SessionId,
        created_at: i64,
        rotated_at: i64,
        generation: u64,
        refresh_expires_at: i64,
        absolute_expires_at: i64,
    ) -> Self {
        Self { session, created_at, rotated_at, generation, refresh_expires_at, absolute_expires_at }
    }
}

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
    /// revocation from [`sessions`](SessionLedger::sessions)).
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
        now: i64,
    ) -> impl Future<Output = Result<AccessState, StoreError>> + Send;

    /// Whether the ledger answers: one cheap round trip to a shared
    /// backend, for readiness probes. The default (an in-process ledger)
    /// is always ready. Callers bound it with their own timeout: a backend
    /// that hangs makes this hang too.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Removes the records of sessions that ended before `now` (expired
    /// past their retention, tombstones past [`TOMBSTONE_SECONDS`]), and
    /// returns how many it removed. The ledger is correct without it; it
    /// bounds the store's size. Run it periodically
    /// ([`TokenService::purge_every`](crate::TokenService::purge_every) does);
    /// a ledger whose store expires records by itself returns 0.
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
        now: i64,
    ) -> impl Future<Output = Result<AccessState, StoreError>> + Send {
        (**self).access_state(subject, access_id, now)
    }
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).ping()
    }
    fn purge(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge(now)
    }
}

/// Checks that both ids of `pair` carry `session`'s tag: a successor or
/// first pair of another session would file the session's tokens where the
/// ledger cannot find them.
pub(crate) fn check_pair_ids(session: SessionId, pair: &PairClaims) -> Result<(), StoreError> {
    if pair.refresh_id.session() == session && pair.access_id.session() == session {
        Ok(())
    } else {
        Err(StoreError::new("the pair's token ids do not carry the session's tag"))
    }
}

/// Checks a rotation request before a backend acts on it: the successor's
/// ids carry the presented token's session, and it keeps the subject.
pub(crate) fn check_successor(request: &RotationRequest) -> Result<(), StoreError> {
    check_pair_ids(request.presented.session(), &request.successor)?;
    if request.successor.subject == request.subject {
        Ok(())
    } else {
        Err(StoreError::new("a successor pair must keep the session's subject"))
    }
}

/// Whether a session is live at `now` (see the module docs).
pub(crate) fn is_live(revoked: bool, absolute_expires_at: i64, refresh_expires_at: i64, leeway: i64, now: i64) -> bool {
    !revoked && now < absolute_expires_at && now < refresh_expires_at.saturating_add(leeway)
}

/// Until when a session's record must be kept: its current tokens' expiry
/// plus leeway (the shared ledgers store it; the memory ledger computes it).
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), expect(dead_code, reason = "used by the shared ledgers"))]
pub(crate) fn retain_until(pair: &PairClaims, leeway: i64) -> i64 {
    pair.refresh_expires_at.max(pair.access_expires_at).saturating_add(leeway)
}

/// What a ledger knows about a session when one of its tokens is presented:
/// the inputs of the rotation decision, without the strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionView {
    /// Whether the presented token's `sub` is the session's subject.
    pub(crate) subject_matches: bool,
    pub(crate) revoked: bool,
    pub(crate) absolute_expires_at: i64,
    /// Generation of the session's current pair.
    pub(crate) generation: u64,
    /// The current refresh token.
    pub(crate) refresh_id: TokenId,
    /// Its immediate predecessor, if the session was ever rotated.
    pub(crate) previous_refresh_id: Option<TokenId>,
    /// `exp` of the current refresh token.
    pub(crate) refresh_expires_at: i64,
    /// The leeway the session was created with: its idle expiry is
    /// `refresh_expires_at + leeway`, the same instant its liveness ends.
    pub(crate) leeway: i64,
    pub(crate) rotated_at: i64,
    pub(crate) replays: u32,
}

/// The contract's decision for one rotation; each backend applies it to
/// its own storage in one atomic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Unknown,
    Revoked,
    Expired,
    /// Record the successor as generation `generation`, its refresh expiry
    /// capped at `refresh_expires_at`, the presented token as its
    /// predecessor.
    Rotate {
        generation: u64,
        refresh_expires_at: i64,
    },
    /// Count one more grace replay (`replay` is the new count).
    Replay {
        replay: u32,
    },
    /// Revoke the session.
    Reuse {
        presented_generation: Option<u64>,
    },
}

/// The rotation rules of the module docs, in one place for every backend
/// written in Rust (the Redis Lua script mirrors them, and the conformance
/// suite holds them to the same answers).
pub(crate) fn decide(view: &SessionView, request: &RotationRequest) -> Decision {
    let now = request.now;
    if !view.subject_matches {
        return Decision::Unknown;
    }
    if view.revoked {
        return Decision::Revoked;
    }
    if now >= view.absolute_expires_at {
        return Decision::Expired;
    }
    if request.presented == view.refresh_id {
        // The session's own leeway, fixed at login, so that a session can
        // be rotated exactly while it is live (listed, counted, revocable).
        if now >= view.refresh_expires_at.saturating_add(view.leeway) {
            return Decision::Expired;
        }
        return Decision::Rotate {
            generation: view.generation.saturating_add(1),
            refresh_expires_at: request.successor.refresh_expires_at.min(view.absolute_expires_at),
        };
    }
    let is_predecessor = view.previous_refresh_id == Some(request.presented);
    let grace = request.grace;
    let since_rotation = now.saturating_sub(view.rotated_at);
    let within_grace = is_predecessor
        && grace.window > 0
        && since_rotation >= request.leeway.saturating_neg()
        && since_rotation <= grace.window
        && view.replays < grace.max_replays;
    if within_grace {
        return Decision::Replay { replay: view.replays.saturating_add(1) };
    }
    Decision::Reuse { presented_generation: is_predecessor.then(|| view.generation.saturating_sub(1)) }
}
