//! The wire format of the session endpoint, defined here so the client
//! depends on no server code.
//!
//! Success: `{"status":{"code":200,"name":"OK"},"data":{"accessToken":"…","refreshToken":"…","expirationTime":300}}`.
//! Failure: `{"status":{"code":401,"name":"UNAUTHORIZED","message":"…"},"data":null}`.
//!
//! Unlike the server, the client accepts unknown members: a server that
//! adds one (say, a grace-window hint) must not log every client out.

use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;
use zeroize::Zeroize;

/// The `data` of a successful login or refresh.
///
/// `Debug` redacts both tokens: they are bearer credentials. The strings are
/// wiped from memory when the pair is dropped.
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    expiration_time: u64,
}

impl TokenPair {
    /// A pair from its parts (tests, custom stores).
    pub fn new(access_token: impl Into<String>, refresh_token: impl Into<String>, expiration_time: u64) -> Self {
        Self { access_token: access_token.into(), refresh_token: refresh_token.into(), expiration_time }
    }

    /// The access token, to send as `Authorization: Bearer …`.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The refresh token (single use: each refresh consumes it).
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The access token's lifetime in seconds, counted from the moment the
    /// answer arrived (`expirationTime`).
    pub fn expiration_time(&self) -> u64 {
        self.expiration_time
    }
}

impl Drop for TokenPair {
    fn drop(&mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
    }
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

/// `{"status":…,"data":…}`.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) status: WireStatus,
    pub(crate) data: Option<T>,
}

/// `{"code":…,"name":…,"message":…}`.
#[derive(Deserialize)]
pub(crate) struct WireStatus {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// The name and message of a failure envelope, or `None` when the body is
/// not one (an HTML 502 from a proxy, an empty body).
pub(crate) fn failure_status(body: &[u8]) -> Option<WireStatus> {
    serde_json::from_slice::<Envelope<IgnoredAny>>(body).ok().map(|envelope| envelope.status)
}

/// The token pair of a 200 envelope.
pub(crate) fn token_pair(body: &[u8]) -> Result<TokenPair, serde_json::Error> {
    let envelope: Envelope<TokenPair> = serde_json::from_slice(body)?;
    envelope.data.ok_or_else(|| serde::de::Error::custom("a 200 envelope without data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_success_envelope_and_ignores_new_members() {
        let body = br#"{"status":{"code":200,"name":"OK"},"data":{"accessToken":"a","refreshToken":"r","expirationTime":300,"grace":10}}"#;
        let pair = token_pair(body).unwrap();
        assert_eq!((pair.access_token(), pair.refresh_token(), pair.expiration_time()), ("a", "r", 300));
        assert!(!format!("{pair:?}").contains("\"a\""));
    }

    #[test]
    fn reads_the_failure_envelope() {
        let body = br#"{"status":{"code":401,"name":"UNAUTHORIZED","message":"session has been revoked"},"data":null}"#;
        let status = failure_status(body).unwrap();
        assert_eq!(status.name, "UNAUTHORIZED");
        assert_eq!(status.message.as_deref(), Some("session has been revoked"));
        assert!(failure_status(b"<html>bad gateway</html>").is_none());
        assert!(token_pair(body).is_err());
    }
}
