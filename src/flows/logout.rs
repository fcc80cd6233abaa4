//! Ending a session: the logout (`DELETE`).

use crate::error::{Error, InternalKind, Unauthorized};
use crate::events::{Event, emit};
use crate::flows::parts::Parts;
use crate::flows::verify::verified_claims;
use crate::ledger::Revocation;
use crate::token::claims::RefreshClaims;

/// The flow of [`TokenService::logout`](crate::TokenService::logout):
/// revokes the whole session of the presented refresh token, without
/// consulting the user directory (a deleted user can still log out).
pub(crate) async fn logout(parts: Parts<'_>, authorization: Option<&[u8]>) -> Result<(), Error> {
    let Parts { policy, ledger, signer, clock, events, .. } = parts;
    let own = policy.resigning_key(signer.resigning_key());
    let (claims, now): (RefreshClaims, i64) = verified_claims(policy, authorization, signer.keyring(), own, clock)?;
    let revocation =
        crate::recording::ledger("revoke_session", ledger.revoke_session(&claims.subject, claims.id.session(), now))
            .await
            .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    match revocation {
        Revocation::Revoked { session } => {
            emit(events, &Event::SessionRevoked { session });
            Ok(())
        }
        Revocation::AlreadyRevoked { .. } => Ok(()),
        Revocation::Unknown => Err(Unauthorized::UnknownToken.into()),
    }
}
