//! Checking access tokens on resource endpoints.

use crate::clock::Clock;
use crate::error::{Error, InternalKind, Unauthorized};
use crate::flows::policy::Policy;
use crate::flows::verify::verified_claims;
use crate::keys::Keyring;
use crate::ledger::{AccessState, SessionLedger};
use crate::token::claims::AccessClaims;

impl Policy {
    /// Verifies an access token from an `Authorization` header: signature
    /// under `keyring`, access-token claims (a refresh token is 422), `exp`.
    ///
    /// Stateless: a token of a session revoked by logout, reuse or eviction
    /// still passes until its `exp`. Use [`Policy::verify_access_unrevoked`]
    /// where that matters.
    pub fn verify_access<C: Clock>(
        &self,
        authorization: Option<&[u8]>,
        keyring: &Keyring,
        clock: &C,
    ) -> Result<AccessClaims, Error> {
        verified_claims(self, authorization, keyring, clock).map(|(claims, _)| claims)
    }

    /// [`Policy::verify_access`], then the token's session in the ledger: an
    /// access token of a session that was logged out, caught in a reuse,
    /// evicted or forgotten is refused with 401. An access token superseded
    /// by a rotation is refused too when the policy says so
    /// ([`PolicyBuilder::revoke_superseded_access`](crate::PolicyBuilder::revoke_superseded_access)).
    pub async fn verify_access_unrevoked<L: SessionLedger, C: Clock>(
        &self,
        authorization: Option<&[u8]>,
        keyring: &Keyring,
        ledger: &L,
        clock: &C,
    ) -> Result<AccessClaims, Error> {
        let (claims, now): (AccessClaims, i64) = verified_claims(self, authorization, keyring, clock)?;
        let state = ledger
            .access_state(&claims.subject, claims.id, now)
            .await
            .map_err(|e| Error::internal(InternalKind::Ledger, e))?;
        match state {
            AccessState::Current => Ok(claims),
            AccessState::Superseded if !self.revoke_superseded_access => Ok(claims),
            _ => Err(Unauthorized::AccessRevoked.into()),
        }
    }
}
