//! Helpers shared by the backend tests: a chain of rotations that must
//! survive lost connections without a half rotation.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

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
                // Resolve what happened, retrying while the faults go on.
                current = loop {
                    match ledger.rotate(&rotation(request.successor.refresh_id, now())).await {
                        Ok(Rotation::Rotated { pair, .. }) => {
                            committed_despite_error += 1;
                            break pair.refresh_id;
                        }
                        Ok(Rotation::Unknown) => match ledger.rotate(&rotation(current, now())).await {
                            Ok(Rotation::Rotated { pair, .. }) => break pair.refresh_id,
                            Ok(other) => panic!("half rotation: successor unknown, presented token {other:?}"),
                            Err(_) => continue,
                        },
                        Ok(other) => panic!("successor of a failed rotation: {other:?}"),
                        Err(_) => continue,
                    }
                };
            }
        }
    }
    (errors, committed_despite_error, current)
}

/// After the faults stop: connections that died in the pool fail once
/// each (at most `dead` of them), then the chain's current token rotates.
pub async fn recovers<L: SessionLedger>(ledger: &L, current: TokenId, dead: usize) {
    let (_, _, current) = rotate_through_faults(ledger, current, dead + 1).await;
    let last = ledger.rotate(&rotation(current, now())).await.expect("the ledger recovered");
    assert!(matches!(last, Rotation::Rotated { .. }), "the chain is intact after the faults: {last:?}");
}
