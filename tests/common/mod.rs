//! Helpers shared by the backend tests: a chain of rotations that must
//! survive lost connections without a half rotation.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod model;

use token_refresh::{Grace, PairClaims, Rotation, RotationRequest, SessionLedger, TokenId};

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn pair(now: i64) -> PairClaims {
    PairClaims {
        subject: "bob@mail.com".into(),
        account: "bob@admin".into(),
        role: "ROLE_ADMIN".into(),
        access_id: TokenId::random(),
        access_expires_at: now + 300,
        refresh_id: TokenId::random(),
        refresh_expires_at: now + 86_400,
    }
}

pub fn rotation(presented: TokenId, now: i64) -> RotationRequest {
    RotationRequest {
        presented,
        subject: "bob@mail.com".into(),
        successor: pair(now),
        now,
        grace: Grace::default(),
        leeway: 0,
    }
}

/// Rotates a chain of tokens while another connection keeps terminating
/// the ledger's backends. Every failed rotation must have happened fully
/// or not at all: afterwards either its successor is current (it
/// committed) or the presented token still is.
pub async fn rotate_through_faults<L: SessionLedger>(
    ledger: &L,
    mut current: TokenId,
    rounds: usize,
) -> (usize, usize, TokenId) {
    let (mut errors, mut committed_despite_error) = (0, 0);
    for _ in 0..rounds {
        let request = rotation(current, now());
        match ledger.rotate(&request).await {
            Ok(Rotation::Rotated { pair, .. }) => current = pair.refresh_id,
            Ok(other) => panic!("a current token must rotate, got {other:?}"),
            Err(_) => {
                errors += 1;
                let (resolved, committed) = resolve(ledger, vec![current, request.successor.refresh_id]).await;
                current = resolved;
                committed_despite_error += usize::from(committed);
            }
        }
    }
    (errors, committed_despite_error, current)
}

/// Finds the current token after rotations whose outcome is unknown.
/// `pending` starts with the last token known current, followed by the
/// successors of attempts that failed with an error, in order; of those
/// attempts only a prefix can have taken effect. Probes from the newest:
/// rotating an unrecorded token answers `Unknown` and changes nothing, so
/// it is safe to walk back. Any other answer than `Rotated` or (for a
/// pending successor) `Unknown` means a half rotation. Returns the new
/// current token, and whether a failed attempt had in fact taken effect.
pub async fn resolve<L: SessionLedger>(ledger: &L, mut pending: Vec<TokenId>) -> (TokenId, bool) {
    loop {
        let Some(&last) = pending.last() else { panic!("nothing pending") };
        let request = rotation(last, now());
        match ledger.rotate(&request).await {
            Ok(Rotation::Rotated { pair, .. }) => return (pair.refresh_id, pending.len() > 1),
            Ok(Rotation::Unknown) if pending.len() > 1 => {
                pending.pop();
            }
            Ok(other) => panic!("half rotation: pending token #{} answered {other:?}", pending.len() - 1),
            // This attempt's outcome is unknown too.
            Err(_) => pending.push(request.successor.refresh_id),
        }
    }
}

/// After the faults stop: connections that died in the pool fail once
/// each (at most `dead` of them), then the chain's current token rotates.
pub async fn recovers<L: SessionLedger>(ledger: &L, current: TokenId, dead: usize) {
    let (_, _, current) = rotate_through_faults(ledger, current, dead + 1).await;
    let last = ledger.rotate(&rotation(current, now())).await.expect("the ledger recovered");
    assert!(matches!(last, Rotation::Rotated { .. }), "the chain is intact after the faults: {last:?}");
}
