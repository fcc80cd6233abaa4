//! The pair of tokens a login or a refresh returns.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `data` of a successful login or refresh.
///
/// `Debug` redacts both tokens: they are bearer credentials and must not end
/// up in logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenPair {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token; the presented one is now consumed.
    pub refresh_token: String,
    /// The access token's lifetime in seconds.
    pub expiration_time: i64,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}
