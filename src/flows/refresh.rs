//! The refresh flow ([spec §4](crate::spec#4-which-outcome-in-which-order)), top to bottom.

use crate::clock::Clock;
use crate::error::{Error, InternalKind, Unauthorized};
use crate::events::{Event, emit};
use crate::flows::policy::Policy;
use crate::flows::store::Store;
use crate::flows::verify::verified_claims;
use crate::keys::signer::Signer;
use crate::ledger::{Rotation, RotationRequest, SessionLedger};
use crate::token::claims::RefreshClaims;
use crate::token::pair::TokenPair;
use crate::users::UserStore;

impl Policy {
    /// Refreshes: verifies the presented refresh token, rotates it in the
    /// ledger, and signs the new pair.
    ///
    /// `authorization` is the raw `Authorization` header value (`None` when
    /// absent), bare or `Bearer`. The checks run in [spec §4](crate::spec#4-which-outcome-in-which-order) order; the first
    /// that fails decides the [`Error`].
    pub async fn refresh<U, L, S, C>(
        &self,
        authorization: Option<&[u8]>,
        store: &Store<U, L>,
        signer: &S,
        clock: &C,
    ) -> Result<TokenPair, Error>
    where
        U: UserStore,
        L: SessionLedger,
        S: Signer,
        C: Clock,
    {
        // Steps 1–6: header, shape, JOSE header, signature, claims, expiry.
        let (claims, now): (RefreshClaims, i64) = verified_claims(self, authorization, signer.keyring(), clock)?;

        // Steps 7–8: the user.
        let user = store
            .users()
            .find(&claims.subject)
            .await
            .map_err(|e| Error::internal(InternalKind::Users, e))?
            .ok_or(Error::UserNotFound)?;
        if !user.is_enabled() {
            return Err(Unauthorized::UserDisabled.into());
        }

        // Steps 9–10: the one atomic rotation.
        let request = RotationRequest {
            presented: claims.id,
            successor: self.new_pair(&user, claims.id.session(), now),
            subject: claims.subject,
            now,
            grace: self.grace,
            leeway: self.leeway,
        };
        let rotation = store.ledger().rotate(&request).await.map_err(|e| Error::internal(InternalKind::Ledger, e))?;
        let pair = match rotation {
            Rotation::Rotated { session, generation, pair } => {
                emit(self.events(), &Event::Rotated { session, generation });
                pair
            }
            Rotation::Replayed { session, generation, pair, replay } => {
                emit(self.events(), &Event::GraceReplay { session, generation, replay });
                pair
            }
            Rotation::Reused { session, presented_generation, current_generation } => {
                emit(self.events(), &Event::ReuseDetected { session, presented_generation, current_generation });
                return Err(Unauthorized::Reused.into());
            }
            Rotation::Unknown => return Err(Unauthorized::UnknownToken.into()),
            Rotation::Revoked { .. } => return Err(Unauthorized::SessionRevoked.into()),
            Rotation::Expired { .. } => return Err(Unauthorized::SessionExpired.into()),
        };

        // Step 12: sign. A signer failure here (step 11) leaves the token
        // consumed; with a grace window the client's retry gets this pair.
        self.sign_pair(&pair, signer).await
    }
}
