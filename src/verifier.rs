//! [`AccessVerifier`]: the door for resource servers, which check access
//! tokens and hold only public keys.

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::error::Error;
use crate::flows::entry;
use crate::keys::Keyring;
use crate::keys::signer::{BoxSigner, Signer};
use crate::policy::Policy;
use crate::token::claims::AccessClaims;

/// Checks access tokens from an `Authorization` header: signature under
/// the keyring, access-token claims (a refresh token is 422), `exp`, in
/// [spec §4](crate::spec#4-which-outcome-in-which-order) order.
///
/// Stateless: a token of a session revoked by logout, reuse or eviction
/// still passes until its `exp` (keep access lifetimes short);
/// [`TokenService::verify_access_unrevoked`](crate::TokenService::verify_access_unrevoked)
/// asks the ledger where that matters. Cheap to clone (an `Arc` inside).
///
/// A resource server builds one from the issuer's public keys (its JWKS);
/// the issuing service hands one out with [`TokenService::verifier`](crate::TokenService::verifier),
/// which checks its own tokens by re-signing where its signer allows.
///
/// ```
/// use token_refresh::{AccessVerifier, Ed25519Signer, Policy, Signer, SystemClock};
///
/// let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// // On the resource server: the issuer's public keys only.
/// let verifier = AccessVerifier::new(Policy::default(), signer.keyring().clone(), SystemClock);
/// assert_eq!(verifier.verify(None).unwrap_err().status_code(), 400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AccessVerifier(Arc<Inner>);

struct Inner {
    policy: Policy,
    keys: Keys,
    clock: Arc<dyn Clock>,
}

/// Where the keys come from.
enum Keys {
    /// A resource server's public keys.
    Public(Keyring),
    /// The issuing service's own signer: its keyring, and its key for
    /// verification by re-signing when the signer and the policy allow.
    Issuer(BoxSigner),
}

impl AccessVerifier {
    /// A verifier of tokens signed under `keyring`'s keys, with the
    /// policy's algorithm and leeway, reading the time from `clock`.
    pub fn new(policy: Policy, keyring: Keyring, clock: impl Clock + 'static) -> Self {
        Self(Arc::new(Inner { policy, keys: Keys::Public(keyring), clock: Arc::new(clock) }))
    }

    /// The verifier of the service that signs with `signer`.
    pub(crate) fn issuer(policy: Policy, signer: BoxSigner, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner { policy, keys: Keys::Issuer(signer), clock }))
    }

    /// The claims of the access token in `authorization` (the raw header
    /// value, `None` when absent, bare or `Bearer`), or the first failing
    /// check's [`Error`]. Counted under the metric label `verify_access`.
    pub fn verify(&self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        let Inner { policy, keys, clock } = &*self.0;
        match keys {
            Keys::Public(keyring) => entry::verify_access(policy, authorization, keyring, None, &**clock),
            Keys::Issuer(signer) => {
                let own = policy.resigning_key(signer.resigning_key());
                entry::verify_access(policy, authorization, signer.keyring(), own, &**clock)
            }
        }
    }

    /// The keys tokens are checked against.
    pub fn keyring(&self) -> &Keyring {
        match &self.0.keys {
            Keys::Public(keyring) => keyring,
            Keys::Issuer(signer) => signer.keyring(),
        }
    }

    /// The policy (algorithm and leeway are the ones that matter here).
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }
}

impl fmt::Debug for AccessVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessVerifier")
            .field("policy", &self.0.policy)
            .field("keyring", self.keyring())
            .field("issuer", &matches!(self.0.keys, Keys::Issuer(_)))
            .finish_non_exhaustive()
    }
}
