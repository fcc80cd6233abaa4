//! The ledger backends' fixtures: Bob's sessions and rotations at a given
//! instant, and a chain of rotations that must survive lost connections
//! without a half rotation.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use token_refresh::{
    SessionId, ledger::Grace, ledger::NewSession, ledger::PairClaims, ledger::Rotation, ledger::RotationRequest,
    ledger::SessionLedger, token::TokenId,
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

/// Rotates a chain of tokens of one of Bob's sessions while another
/// connection keeps terminating the ledger's backends. Every failed
/// rotation must have happened fully or not at all: afterwards the
/// session's generation, as `generation` reads it, tells which, and the
/// current token is either the successor (it committed) or still the
/// presented one. Returns the errors, how many of them had committed, and
/// the current token.
pub async fn rotate_through_faults_probed<L, P, F>(
    ledger: &L,
    generation: P,
    mut current: TokenId,
    rounds: usize,
) -> (usize, usize, TokenId)
where
    L: SessionLedger,
    P: Fn(SessionId) -> F,
    F: Future<Output = u64>,
{
    let (mut errors, mut committed_despite_error) = (0, 0);
    let mut known = generation(current.session()).await;
    for _ in 0..rounds {
        let request = rotation(current, now());
        match ledger.rotate(&request).await {
            Ok(Rotation::Rotated { pair, generation: g, .. }) => {
                assert_eq!(g, known + 1, "a rotation adds one generation");
                current = pair.refresh_id;
                known = g;
            }
            Ok(other) => panic!("a current token must rotate, got {other:?}"),
            Err(_) => {
                errors += 1;
                let after = generation(current.session()).await;
                if after == known + 1 {
                    // Committed, only the reply was lost: the successor is
                    // current, whole.
                    committed_despite_error += 1;
                    current = request.successor.refresh_id;
                    known = after;
                } else {
                    assert_eq!(after, known, "half rotation: the generation moved by {}", after.abs_diff(known));
                }
            }
        }
    }
    (errors, committed_despite_error, current)
}

/// [`rotate_through_faults_probed`], reading the generation from the
/// ledger's own listing.
pub async fn rotate_through_faults<L: SessionLedger>(
    ledger: &L,
    current: TokenId,
    rounds: usize,
) -> (usize, usize, TokenId) {
    rotate_through_faults_probed(ledger, |session| generation_of(ledger, session), current, rounds).await
}

/// The listed generation of one of Bob's sessions, asking until the ledger
/// answers (it may be mid-fault: connections keep being cut, and a client
/// reconnects at its own pace, slower on a loaded machine). Gives up after
/// 60 s.
pub async fn generation_of<L: SessionLedger>(ledger: &L, session: SessionId) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(5);
    while Instant::now() < deadline {
        if let Ok(listed) = ledger.sessions(SUBJECT, now()).await {
            return listed.iter().find(|info| info.session == session).expect("the session is listed").generation;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    panic!("the ledger never answered a listing within 60 s");
}

/// After the faults stop: connections that died in the pool fail once
/// each (at most `dead` of them), then the chain's current token rotates.
pub async fn recovers<L: SessionLedger>(ledger: &L, current: TokenId, dead: usize) {
    let (_, _, current) = rotate_through_faults(ledger, current, dead + 1).await;
    let last = ledger.rotate(&rotation(current, now())).await.expect("the ledger recovered");
    assert!(matches!(last, Rotation::Rotated { .. }), "the chain is intact after the faults: {last:?}");
}
