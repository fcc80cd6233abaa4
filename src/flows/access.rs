//! Checking access tokens on resource endpoints.

use crate::clock::Clock;
use crate::error::{Error, InternalKind, Unauthorized};
use crate::flows::authorization::token_from_header;
use crate::flows::mint::unix_now;
use crate::flows::policy::Policy;
use crate::keys::Keyring;
use crate::ledger::{AccessState, SessionLedger};
use crate::token::claims::AccessClaims;
use crate::token::jws::UntrustedToken;

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
        let token = token_from_header(authorization)?;
        let claims: AccessClaims = UntrustedToken::parse(token, self.algorithm)?.verify(keyring)?.claims()?;
        let now = unix_now(clock)?;
        if now >= claims.expires_at.saturating_add(self.leeway) {
            return Err(Unauthorized::Expired.into());
        }
        Ok(claims)
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
        let claims = self.verify_access(authorization, keyring, clock)?;
        let now = unix_now(clock)?;
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
