//! The token wire format: compact JWS with Ed25519, the claims of the two
//! kinds of token, and the session-scoped token ids. Nothing here knows
//! about users, ledgers or HTTP.

pub mod claims;
pub(crate) mod ids;
pub(crate) mod json;
pub mod jws;
