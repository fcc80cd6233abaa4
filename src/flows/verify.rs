//! The steps every flow that takes a token shares (refresh, logout and the
//! access-token checks), in the contract's order
//! ([spec §4](crate::spec#4-which-outcome-in-which-order), steps 1 to 6): the `Authorization` header, the token's shape and
//! JOSE header, the signature, the claims of the expected kind, and `exp`.

use serde::de::DeserializeOwned;

use crate::clock::{Clock, unix_now};
use crate::error::{Error, Unauthorized};
use crate::flows::authorization::token_from_header;
use crate::keys::Keyring;
use crate::keys::ResigningKey;
use crate::policy::Policy;
use crate::token::claims::Validate;
use crate::token::jws::UntrustedToken;

/// The verified, unexpired claims of kind `T` in `authorization`, and the
/// time they were checked at. The first failing step decides the error.
/// Under the key `own` signs for (if any) the signature is checked by
/// re-signing; the steps and their order are the same either way.
pub(crate) fn verified_claims<T>(
    policy: &Policy,
    authorization: Option<&[u8]>,
    keyring: &Keyring,
    own: Option<ResigningKey<'_>>,
    clock: &dyn Clock,
) -> Result<(T, i64), Error>
where
    T: DeserializeOwned + Validate,
{
    let token = token_from_header(authorization)?;
    let claims: T = UntrustedToken::parse(token, policy.algorithm)?.verify_with(keyring, own)?.claims()?;
    let now = unix_now(clock)?;
    if now >= claims.expires_at().saturating_add(policy.leeway) {
        return Err(Unauthorized::Expired.into());
    }
    Ok((claims, now))
}
