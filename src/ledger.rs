//! The session ledger: the record of which refresh token is current.
//!
//! One session (token family) starts at login. Each refresh presents the
//! current refresh token and replaces it with a successor: that replacement
//! is [`SessionLedger::rotate`], and it is the security core of the crate.
//!
//! # The contract every backend keeps
//!
//! - **Consume once.** `rotate` is an atomic compare-and-consume: of any
//!   number of concurrent calls presenting the same current token, exactly
//!   one returns [`Rotation::Rotated`]. No backend may answer `Rotated`
//!   twice for one token, even across processes, restarts or lost
//!   connections; a call that fails with an error has either rotated fully
//!   or not at all.
//! - **Reuse revokes the family.** Presenting a token older than the
//!   current one (outside the grace rule below) revokes the whole session
//!   and its current access token in the same atomic step, and answers
//!   [`Rotation::Reused`].
//! - **Grace.** With a grace window, presenting the immediate predecessor
//!   of the current token within `window` seconds of the rotation, at most
//!   `max_replays` times, answers [`Rotation::Replayed`] with the stored
//!   current pair, unchanged.
//! - **Lifetimes.** A successor's refresh expiry is capped at the session's
//!   absolute expiry; a session at or past it answers
//!   [`Rotation::Expired`].
//! - **Retention.** A token's record is kept at least until its own `exp`
//!   plus leeway, so reuse is detected for as long as the token could be
//!   presented. Records may be dropped after that.
//! - **No bearer material.** Only ids, expiries and claims are stored,
//!   never a token string: reading the store lets nobody mint or replay a
//!   token.

use std::future::Future;

use crate::ids::{SessionId, TokenId};
use crate::users::StoreError;

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
    /// The new session's id.
    pub session: SessionId,
    /// The first pair (generation 0).
    pub pair: PairClaims,
    /// When the session started (unix seconds).
    pub created_at: i64,
    /// No refresh token of this session may expire later than this.
    pub absolute_expires_at: i64,
    /// Extra seconds to keep records past their expiry.
    pub leeway: i64,
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
    /// The successor pair. Its refresh expiry is capped by the ledger at the
    /// session's absolute expiry.
    pub successor: PairClaims,
    /// Now, unix seconds.
    pub now: i64,
    /// The grace rule.
    pub grace: Grace,
    /// Extra seconds to keep records past their expiry.
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
    /// The presented token was already rotated: the session is now revoked.
    Reused {
        /// The session.
        session: SessionId,
        /// Generation of the presented token.
        presented_generation: u64,
        /// Generation of the session's current pair.
        current_generation: u64,
    },
    /// The ledger does not know the token.
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

/// What a logout did.
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
    /// The ledger does not know the token.
    Unknown,
}

/// Storage of sessions, rotations and revoked access tokens. Read the
/// module documentation for the contract.
pub trait SessionLedger: Send + Sync {
    /// Records a new session (login).
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically consumes the presented token and records its successor.
    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send;

    /// Revokes the session the refresh token `presented` belongs to, and the
    /// session's current access token (logout). Any token of the session,
    /// current or consumed, names it.
    fn revoke(&self, presented: TokenId, now: i64) -> impl Future<Output = Result<Revocation, StoreError>> + Send;

    /// Revokes every session of `subject` and their access tokens; returns
    /// how many sessions were live.
    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether access token `access_id` was revoked by a rotation, logout or
    /// reuse.
    fn is_access_revoked(&self, access_id: TokenId, now: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<L: SessionLedger + ?Sized> SessionLedger for std::sync::Arc<L> {
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create(session)
    }
    fn rotate(&self, request: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
        (**self).rotate(request)
    }
    fn revoke(&self, presented: TokenId, now: i64) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
        (**self).revoke(presented, now)
    }
    fn revoke_user(&self, subject: &str, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).revoke_user(subject, now)
    }
    fn is_access_revoked(&self, access_id: TokenId, now: i64) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).is_access_revoked(access_id, now)
    }
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
    /// Generation of the presented refresh token.
    pub(crate) presented_generation: u64,
    /// `exp` of the current refresh token.
    pub(crate) refresh_expires_at: i64,
    /// The current access token, listed when the pair is rotated or reused.
    pub(crate) access_id: TokenId,
    pub(crate) access_expires_at: i64,
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
    /// capped at `refresh_expires_at`, its token kept until
    /// `token_retain_until`; list `revoke_access` (id, until) if given.
    Rotate {
        generation: u64,
        refresh_expires_at: i64,
        token_retain_until: i64,
        revoke_access: Option<(TokenId, i64)>,
    },
    /// Count one more grace replay (`replay` is the new count).
    Replay {
        replay: u32,
    },
    /// Revoke the session; list `revoke_access` if given.
    Reuse {
        revoke_access: Option<(TokenId, i64)>,
    },
}

/// The rotation rules of the module docs, in one place for every backend
/// written in Rust (the Redis Lua script mirrors them).
pub(crate) fn decide(view: &SessionView, request: &RotationRequest) -> Decision {
    let now = request.now;
    // The current access token stays listed until its own exp plus leeway,
    // if that is still ahead.
    let revoke_current = || {
        let until = view.access_expires_at.saturating_add(request.leeway);
        (until > now).then_some((view.access_id, until))
    };
    if !view.subject_matches {
        return Decision::Unknown;
    }
    if view.revoked {
        return Decision::Revoked;
    }
    if now >= view.absolute_expires_at {
        return Decision::Expired;
    }
    if view.presented_generation == view.generation {
        if now >= view.refresh_expires_at.saturating_add(request.leeway) {
            return Decision::Expired;
        }
        let refresh_expires_at = request.successor.refresh_expires_at.min(view.absolute_expires_at);
        return Decision::Rotate {
            generation: view.generation.saturating_add(1),
            refresh_expires_at,
            token_retain_until: refresh_expires_at.saturating_add(request.leeway),
            revoke_access: revoke_current(),
        };
    }
    let grace = request.grace;
    let within_grace = view.presented_generation.saturating_add(1) == view.generation
        && grace.window > 0
        && now.saturating_sub(view.rotated_at) <= grace.window
        && view.replays < grace.max_replays;
    if within_grace {
        return Decision::Replay { replay: view.replays.saturating_add(1) };
    }
    if view.presented_generation < view.generation {
        return Decision::Reuse { revoke_access: revoke_current() };
    }
    Decision::Unknown
}
