//! Checking access tokens on resource endpoints.

use crate::clock::Clock;
use crate::error::{Error, InternalKind, Unauthorized};
use crate::flows::parts::Parts;
use crate::flows::verify::verified_claims;
use crate::keys::Keyring;
use crate::keys::ResigningKey;
use crate::ledger::AccessState;
use crate::policy::Policy;
use crate::token::claims::AccessClaims;

/// The flow of [`AccessVerifier::verify`](crate::AccessVerifier::verify):
/// signature under `keyring`, access-token claims, `exp`. `own` is the
/// issuer's key for verification by re-signing (a verifier handed out by
/// [`TokenService`](crate::TokenService)), `None` on a resource server
/// holding public keys only.
pub(crate) fn verify_access(
    policy: &Policy,
    authorization: Option<&[u8]>,
    keyring: &Keyring,
    own: Option<ResigningKey<'_>>,
    clock: &dyn Clock,
) -> Result<AccessClaims, Error> {
    verified_claims(policy, authorization, keyring, own, clock).map(|(claims, _)| claims)
}

/// The flow of [`TokenService::verify_access_unrevoked`](crate::TokenService::verify_access_unrevoked).
pub(crate) async fn verify_access_unrevoked(
    parts: Parts<'_>,
    authorization: Option<&[u8]>,
) -> Result<AccessClaims, Error> {
    let Parts { policy, ledger, signer, clock, .. } = parts;
    let own = policy.resigning_key(signer.resigning_key());
    let (claims, _): (AccessClaims, i64) = verified_claims(policy, authorization, signer.keyring(), own, clock)?;
    let state = crate::recording::ledger("access_state", ledger.access_state(&claims.subject, claims.id))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    match state {
        AccessState::Current => Ok(claims),
        AccessState::Superseded if !policy.revoke_superseded_access => Ok(claims),
        _ => Err(Unauthorized::AccessRevoked.into()),
    }
}
