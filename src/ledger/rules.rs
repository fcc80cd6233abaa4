//! The rotation rules: what every backend that reads, locks and writes
//! applies under its lock.
//!
//! A ledger that stores sessions in a database or a map (rather than
//! running the rules where the data lives, as the Redis ledger's Lua script
//! does) does the same five steps for a rotation:
//!
//! 1. [`check_successor`] (for a login, [`check_pair_ids`]) before touching
//!    anything: a request that would file a session's tokens under another
//!    session, or change its subject, is refused.
//! 2. Lock the session (a row lock, a mutex, an advisory lock).
//! 3. Read its record into a [`SessionView`].
//! 4. [`decide`].
//! 5. Write what the [`Decision`] says, in the same atomic step, and unlock.
//!
//! [`is_live`] says which sessions are listed, counted against the cap and
//! revoked by `revoke_user`; [`retain_until`] says how long a record must be
//! kept (the [contract](crate::ledger)'s "fail closed").
//!
//! ```
//! use token_refresh::SessionId;
//! use token_refresh::ledger::rules::{Decision, SessionView, decide};
//! use token_refresh::ledger::{Grace, PairClaims, RotationRequest};
//!
//! let session = SessionId::random();
//! let current = session.new_token_id();
//! // What the ledger holds: generation 3, never replayed, live.
//! let view = SessionView {
//!     subject_matches: true,
//!     revoked: false,
//!     absolute_expires_at: 2_000,
//!     generation: 3,
//!     refresh_id: current,
//!     previous_refresh_id: Some(session.new_token_id()),
//!     refresh_expires_at: 1_500,
//!     leeway: 0,
//!     rotated_at: 900,
//!     replays: 0,
//! };
//! let successor = PairClaims {
//!     subject: "bob".into(),
//!     account: "bob@acc".into(),
//!     role: "ROLE_USER".into(),
//!     access_id: session.new_token_id(),
//!     access_expires_at: 1_300,
//!     refresh_id: session.new_token_id(),
//!     refresh_expires_at: 2_600,
//! };
//! let request = RotationRequest {
//!     presented: current,
//!     subject: "bob".into(),
//!     successor,
//!     now: 1_000,
//!     grace: Grace::default(),
//!     leeway: 0,
//! };
//! // The current token rotates; the successor's refresh expiry is capped
//! // at the session's absolute expiry.
//! assert_eq!(decide(&view, &request), Decision::Rotate { generation: 4, refresh_expires_at: 2_000 });
//! // After that rotation (generation 4), presenting it again is reuse of
//! // the immediate predecessor: generation 3.
//! let after =
//!     SessionView { generation: 4, previous_refresh_id: Some(current), refresh_id: session.new_token_id(), ..view };
//! assert_eq!(decide(&after, &request), Decision::Reuse { presented_generation: Some(3) });
//! ```

use crate::error::StoreError;
use crate::ledger::{PairClaims, RotationRequest};
use crate::token::ids::{SessionId, TokenId};

/// Checks that both ids of `pair` carry `session`'s tag: a successor or
/// first pair of another session would file the session's tokens where the
/// ledger cannot find them. Call it before recording a login.
pub fn check_pair_ids(session: SessionId, pair: &PairClaims) -> Result<(), StoreError> {
    if pair.refresh_id.session() == session && pair.access_id.session() == session {
        Ok(())
    } else {
        Err(StoreError::misuse("the pair's token ids do not carry the session's tag"))
    }
}

/// Checks a rotation request before a backend acts on it: the successor's
/// ids carry the presented token's session, and it keeps the subject.
pub fn check_successor(request: &RotationRequest) -> Result<(), StoreError> {
    check_pair_ids(request.presented.session(), &request.successor)?;
    if request.successor.subject == request.subject {
        Ok(())
    } else {
        Err(StoreError::misuse("a successor pair must keep the session's subject"))
    }
}

/// Whether a session is live at `now`: not revoked, before its absolute
/// expiry, and before its current refresh token's expiry plus the leeway
/// it was created with. Only live sessions are listed, counted against the
/// per-user cap and revoked by `revoke_user`.
pub fn is_live(revoked: bool, absolute_expires_at: i64, refresh_expires_at: i64, leeway: i64, now: i64) -> bool {
    !revoked && now < absolute_expires_at && now < refresh_expires_at.saturating_add(leeway)
}

/// Until when a session's record must be kept, at least: its current
/// tokens' expiry plus leeway. A revoked session's record may go earlier,
/// [`TOMBSTONE_SECONDS`](crate::ledger::TOMBSTONE_SECONDS) after the
/// revocation.
pub fn retain_until(pair: &PairClaims, leeway: i64) -> i64 {
    pair.refresh_expires_at.max(pair.access_expires_at).saturating_add(leeway)
}

/// What a ledger knows about a session when one of its tokens is presented:
/// the inputs of [`decide`], without the strings. A backend reads it from
/// its record under the session's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    /// Whether the presented token's `sub` is the session's subject.
    pub subject_matches: bool,
    /// Whether the session was revoked (logout, reuse, `revoke_user`).
    pub revoked: bool,
    /// When the session ends whatever happens.
    pub absolute_expires_at: i64,
    /// Generation of the session's current pair.
    pub generation: u64,
    /// The current refresh token.
    pub refresh_id: TokenId,
    /// Its immediate predecessor, if the session was ever rotated.
    pub previous_refresh_id: Option<TokenId>,
    /// `exp` of the current refresh token.
    pub refresh_expires_at: i64,
    /// The leeway the session was created with: its idle expiry is
    /// `refresh_expires_at + leeway`, the same instant its liveness ends.
    pub leeway: i64,
    /// When the current pair was recorded (the login, before any rotation).
    pub rotated_at: i64,
    /// Grace replays of the current rotation so far.
    pub replays: u32,
}

/// The contract's decision for one rotation; each backend applies it to
/// its own storage in one atomic step, and answers the matching
/// [`Rotation`](crate::ledger::Rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Change nothing; answer `Unknown` (the subject does not match).
    Unknown,
    /// Change nothing; answer `Revoked`.
    Revoked,
    /// Change nothing; answer `Expired`.
    Expired,
    /// Record the request's successor as generation `generation`, its
    /// refresh expiry capped at `refresh_expires_at`, the presented token
    /// as its predecessor, `rotated_at = now` and no replays; answer
    /// `Rotated`.
    Rotate {
        /// The new pair's generation.
        generation: u64,
        /// The new pair's refresh expiry, capped at the session's absolute
        /// expiry.
        refresh_expires_at: i64,
    },
    /// Count one more grace replay; answer `Replayed` with the stored
    /// current pair, unchanged.
    Replay {
        /// The new replay count.
        replay: u32,
    },
    /// Revoke the session (a tombstone for at most
    /// [`TOMBSTONE_SECONDS`](crate::ledger::TOMBSTONE_SECONDS)); answer
    /// `Reused`.
    Reuse {
        /// The presented token's generation when it is the immediate
        /// predecessor, else `None`.
        presented_generation: Option<u64>,
    },
}

/// The rotation rules of the [contract](crate::ledger), in one place for
/// every backend written in Rust (the Redis Lua script mirrors them, and
/// the conformance suite holds every backend to the same answers). Pure:
/// it reads `view` and `request` and nothing else.
pub fn decide(view: &SessionView, request: &RotationRequest) -> Decision {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreErrorKind;
    use crate::ledger::PairClaims;
    use crate::token::ids::SessionId;

    #[test]
    fn a_pair_of_another_session_is_the_callers_mistake_not_an_outage() {
        let (ours, theirs) = (SessionId::random(), SessionId::random());
        let pair = PairClaims {
            subject: "bob@mail.com".to_owned(),
            account: String::new(),
            role: String::new(),
            refresh_id: theirs.new_token_id(),
            access_id: theirs.new_token_id(),
            refresh_expires_at: 1,
            access_expires_at: 1,
        };
        let refused = check_pair_ids(ours, &pair).err().map(|error| error.kind());
        assert_eq!(refused, Some(StoreErrorKind::Misuse));
        assert!(check_pair_ids(theirs, &pair).is_ok());
    }
}
