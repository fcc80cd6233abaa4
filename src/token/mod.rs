//! The token wire format: compact JWS with Ed25519, the claims of the two
//! kinds of token, and the session-scoped token ids. Nothing here knows
//! about users, ledgers or HTTP.

use thiserror::Error;

pub mod claims;
pub(crate) mod ids;
pub(crate) mod json;
pub mod jws;
pub(crate) mod pair;

pub use claims::{AccessClaims, RefreshClaims};
pub use ids::{SessionId, TokenId};
pub use pair::TokenPair;

/// Why a token did not decode: the token layer's own refusal. The crate's
/// [`Error`](crate::Error) maps it to HTTP in one place: a token that is not
/// ours (any variant but [`Claims`](Self::Claims)) is 401, an authentic
/// token whose claims are not the expected kind is 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not three base64url segments, or a segment of the wrong size.
    #[error("token is not a compact JWS")]
    Malformed,
    /// The JOSE header or the payload is not JSON.
    #[error("token segment is not JSON")]
    NotJson,
    /// `alg` is not the configured algorithm name.
    #[error("token algorithm is not accepted")]
    Algorithm,
    /// `typ` is present and not `JWT`.
    #[error("token type is not accepted")]
    TokenType,
    /// The header has a member this crate refuses (`crit`, `jku`, `jwk`,
    /// `x5u`, `x5c`, or any member other than `typ`, `alg`, `kid`), a member
    /// given twice, or a member of the wrong JSON type.
    #[error("token header is not accepted")]
    Header,
    /// `kid` names no configured key.
    #[error("token key id is unknown")]
    UnknownKey,
    /// The signature does not verify under the configured key(s).
    #[error("token signature is invalid")]
    Signature,
    /// The signature verified, but the payload is JSON that is not exactly
    /// the claims of the expected kind of token.
    #[error("token claims are malformed")]
    Claims,
}
