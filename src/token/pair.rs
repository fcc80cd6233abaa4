//! The pair of tokens a login or a refresh returns.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ledger::Grace;

/// The `data` of a successful login or refresh.
///
/// `Debug` redacts both tokens: they are bearer credentials and must not end
/// up in logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenPair {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token; the presented one is now consumed.
    pub refresh_token: String,
    /// The access token's lifetime in seconds.
    pub expiration_time: i64,
    /// The grace window of the policy that issued the pair, which the HTTP
    /// answer advertises (`Token-Refresh-Grace`, [spec §5](crate::spec#5-rotation-reuse-and-sessions)).
    /// Not part of the JSON: a decoded pair has none (off).
    #[serde(skip)]
    pub(crate) grace: Grace,
}

impl TokenPair {
    /// A pair from its parts, advertising no grace window.
    pub fn new(access_token: String, refresh_token: String, expiration_time: i64) -> Self {
        Self { access_token, refresh_token, expiration_time, grace: Grace::default() }
    }

    /// The grace window the issuing policy promised for this pair's
    /// rotation (zero when off, or when the pair was decoded from JSON).
    pub fn grace(&self) -> Grace {
        self.grace
    }
}

/// Pairs are equal when their JSON is: the grace window they advertise is
/// the issuing policy's, not part of the pair (a decoded pair has none).
impl PartialEq for TokenPair {
    fn eq(&self, other: &Self) -> bool {
        self.access_token == other.access_token
            && self.refresh_token == other.refresh_token
            && self.expiration_time == other.expiration_time
    }
}

impl Eq for TokenPair {}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}
