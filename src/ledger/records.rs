//! The records a ledger takes and gives: what a login and a rotation
//! record, and what each call answers.

use std::fmt;

use crate::token::ids::{SessionId, TokenId};

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

/// What [`SessionLedger::create`](crate::ledger::SessionLedger::create) did besides recording the session.
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
/// [`SessionLedger::access_state`](crate::ledger::SessionLedger::access_state).
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

/// An instant in whole seconds since the Unix epoch (UTC), as a listing
/// gives it: a type of its own, so that an instant is never taken for a
/// duration, a generation or another count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The instant `seconds` after the epoch.
    pub const fn from_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Seconds since the epoch.
    pub const fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The instants of a listed session, by name: [`SessionInfo::new`] takes
/// them in one value, so that none can be passed in another's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// When it started.
    pub created_at: UnixTime,
    /// When it was last rotated (its start, before the first rotation).
    pub rotated_at: UnixTime,
    /// When its current refresh token expires (idle expiry, before the
    /// session's leeway).
    pub refresh_expires_at: UnixTime,
    /// When it ends whatever happens (absolute expiry).
    pub absolute_expires_at: UnixTime,
}

/// A live session of a user, as [`SessionLedger::sessions`](crate::ledger::SessionLedger::sessions) lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's id.
    pub session: SessionId,
    /// When it started.
    pub created_at: UnixTime,
    /// When it was last rotated (its start, before the first rotation).
    pub rotated_at: UnixTime,
    /// Generation of its current pair (the login pair is 0).
    pub generation: u64,
    /// When its current refresh token expires (idle expiry).
    pub refresh_expires_at: UnixTime,
    /// When it ends whatever happens (absolute expiry).
    pub absolute_expires_at: UnixTime,
}

impl SessionInfo {
    /// A listing entry; for ledger implementations.
    pub fn new(session: SessionId, generation: u64, times: SessionTimes) -> Self {
        let SessionTimes { created_at, rotated_at, refresh_expires_at, absolute_expires_at } = times;
        Self { session, created_at, rotated_at, generation, refresh_expires_at, absolute_expires_at }
    }
}
