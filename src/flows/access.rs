//! Checking access tokens on resource endpoints.

use crate::clock::Clock;
use crate::error::{Error, InternalKind, Unauthorized};
use crate::flows::policy::Policy;
use crate::flows::verify::verified_claims;
use crate::keys::Keyring;
use crate::keys::ResigningKey;
use crate::ledger::{AccessState, SessionLedger};
use crate::token::claims::AccessClaims;

/// The flow of [`Policy::verify_access`]; `own` is the issuer's key for
/// verification by re-signing ([`crate::TokenService`]), `None` on a
/// resource server holding public keys only.
pub(crate) fn verify_access<C: Clock>(
    policy: &Policy,
    authorization: Option<&[u8]>,
    keyring: &Keyring,
    own: Option<ResigningKey<'_>>,
    clock: &C,
) -> Result<AccessClaims, Error> {
    verified_claims(policy, authorization, keyring, own, clock).map(|(claims, _)| claims)
}

/// The flow of [`Policy::verify_access_unrevoked`].
pub(crate) async fn verify_access_unrevoked<L: SessionLedger, C: Clock>(
    policy: &Policy,
    authorization: Option<&[u8]>,
    keyring: &Keyring,
    own: Option<ResigningKey<'_>>,
    ledger: &L,
    clock: &C,
) -> Result<AccessClaims, Error> {
    let (claims, _): (AccessClaims, i64) = verified_claims(policy, authorization, keyring, own, clock)?;
    let state = crate::recording::ledger("access_state", ledger.access_state(&claims.subject, claims.id))
        .await
        .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
    match state {
        AccessState::Current => Ok(claims),
        AccessState::Superseded if !policy.revoke_superseded_access => Ok(claims),
        _ => Err(Unauthorized::AccessRevoked.into()),
    }
}
