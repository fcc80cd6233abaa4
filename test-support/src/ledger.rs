//! The ledger backends' fixtures: Bob's sessions and rotations at a given
//! instant. (Lost connections are the conformance suite's check now,
//! through its `Harness::disrupt` hook.)

use std::time::{SystemTime, UNIX_EPOCH};

use token_refresh::{
    SessionId, ledger::Grace, ledger::NewSession, ledger::PairClaims, ledger::RotationRequest, token::TokenId,
};

use crate::users::{BOB, BOB_ACCOUNT, BOB_ROLE};

/// The subject of the ledger fixtures' sessions: Bob.
pub const SUBJECT: &str = BOB;

/// Now on the real clock, in Unix seconds: a backend that expires keys on
/// the server's clock keeps what a test made near it.
pub fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// A fresh pair of `session` for Bob.
pub fn pair(session: SessionId, now: i64) -> PairClaims {
    pair_of(SUBJECT, session, now)
}

/// A fresh pair of `session` for `subject`: access for 5 minutes, refresh
/// for a day.
pub fn pair_of(subject: &str, session: SessionId, now: i64) -> PairClaims {
    PairClaims {
        subject: subject.into(),
        account: BOB_ACCOUNT.into(),
        role: BOB_ROLE.into(),
        access_id: session.new_token_id(),
        access_expires_at: now + 300,
        refresh_id: session.new_token_id(),
        refresh_expires_at: now + 86_400,
    }
}

/// A new session of `subject` at `now`, with a cap of `cap` sessions.
pub fn new_session(subject: &str, now: i64, cap: u32) -> NewSession {
    let session = SessionId::random();
    NewSession {
        session,
        pair: pair_of(subject, session, now),
        created_at: now,
        absolute_expires_at: now + 30 * 86_400,
        leeway: 0,
        max_sessions_per_user: cap,
    }
}

/// A rotation of Bob's token `presented`, proposing a fresh successor of
/// its session.
pub fn rotation(presented: TokenId, now: i64) -> RotationRequest {
    RotationRequest {
        presented,
        subject: SUBJECT.into(),
        successor: pair(presented.session(), now),
        now,
        grace: Grace::default(),
        leeway: 0,
    }
}
