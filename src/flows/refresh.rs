//! The refresh flow ([spec §4](crate::spec#4-which-outcome-in-which-order)), top to bottom.

use crate::error::{Error, InternalKind, Unauthorized};
use crate::events::{Event, emit};
use crate::flows::mint::{new_pair, sign_pair};
use crate::flows::parts::Parts;
use crate::flows::verify::verified_claims;
use crate::ledger::{Rotation, RotationRequest};
use crate::token::claims::RefreshClaims;
use crate::token::pair::TokenPair;

/// The flow of [`TokenService::refresh`](crate::TokenService::refresh) and
/// the card's [`refresh`](crate::refresh).
pub(crate) async fn refresh(parts: Parts<'_>, authorization: Option<&[u8]>) -> Result<TokenPair, Error> {
    let Parts { policy, users, ledger, signer, clock, events } = parts;

    // Steps 1–6: header, shape, JOSE header, signature, claims, expiry.
    let own = policy.resigning_key(signer.resigning_key());
    let (claims, now): (RefreshClaims, i64) = verified_claims(policy, authorization, signer.keyring(), own, clock)?;

    // Steps 7–8: the user.
    let user = users
        .find_boxed(&claims.subject)
        .await
        .map_err(|e| Error::internal(InternalKind::Users, e))?
        .ok_or(Error::UserNotFound)?;
    if !user.is_enabled() {
        return Err(Unauthorized::UserDisabled.into());
    }

    // Steps 9–10: the one atomic rotation.
    let request = RotationRequest {
        presented: claims.id,
        successor: new_pair(policy, &user, claims.id.session(), now),
        subject: claims.subject,
        now,
        grace: policy.grace,
        leeway: policy.leeway,
    };
    let rotation = crate::recording::ledger("rotate", ledger.rotate(&request))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    let pair = match rotation {
        Rotation::Rotated { session, generation, pair } => {
            emit(events, &Event::Rotated { session, generation });
            pair
        }
        Rotation::Replayed { session, generation, pair, replay } => {
            emit(events, &Event::GraceReplay { session, generation, replay });
            pair
        }
        Rotation::Reused { session, presented_generation, current_generation } => {
            emit(events, &Event::ReuseDetected { session, presented_generation, current_generation });
            return Err(Unauthorized::Reused.into());
        }
        Rotation::Unknown => return Err(Unauthorized::UnknownToken.into()),
        Rotation::Revoked { .. } => return Err(Unauthorized::SessionRevoked.into()),
        Rotation::Expired { .. } => return Err(Unauthorized::SessionExpired.into()),
    };

    // Step 12: sign. A signer failure here (step 11) leaves the token
    // consumed; with a grace window the client's retry gets this pair.
    sign_pair(policy, &pair, signer).await
}
