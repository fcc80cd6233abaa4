//! The wire format of the session endpoint, defined here so the client
//! depends on no server code.
//!
//! Success: `{"status":{"code":200,"name":"OK"},"data":{"accessToken":"…","refreshToken":"…","expirationTime":300}}`.
//! Failure: `{"status":{"code":401,"name":"UNAUTHORIZED","message":"…"},"data":null}`.
//!
//! Unlike the server, the client accepts unknown members: a server that
//! adds one (say, a grace-window hint) must not log every client out.

use std::fmt;
use std::time::Duration;

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

/// The header of a login's or refresh's 200 that states the server's grace
/// window for the new pair's rotation: `10;replays=20` (seconds and
/// replays, an RFC 9651 integer with a parameter), `0` when rotation is
/// strict. The reference server sends it since the grace window became its
/// default.
pub const GRACE_HEADER: &str = "token-refresh-grace";

/// The longest grace window taken from a server (its own maximum is 60 s):
/// a wrong or hostile value cannot stretch retries further.
const MAX_ADVERTISED_GRACE: Duration = Duration::from_secs(600);

/// What a server said about its grace window in [`GRACE_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerGrace {
    /// How long after a rotation the rotated token may be presented again.
    pub(crate) window: Duration,
    /// How many such presentations one rotation tolerates, when said.
    pub(crate) replays: Option<u32>,
}

/// Reads [`GRACE_HEADER`]; `None` when absent or not understood (then the
/// configured window stays in force).
pub(crate) fn server_grace(value: Option<&str>) -> Option<ServerGrace> {
    let mut parts = value?.split(';');
    let seconds: u64 = parts.next()?.trim().parse().ok()?;
    let mut replays = None;
    for parameter in parts {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if key.trim() == "replays" {
            replays = Some(value.trim().parse().ok()?);
        }
    }
    let window = Duration::from_secs(seconds).min(MAX_ADVERTISED_GRACE);
    Some(ServerGrace { window, replays: if window.is_zero() { Some(0) } else { replays } })
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
    fn reads_the_grace_header() {
        let grace = |value| server_grace(Some(value));
        assert_eq!(grace("10;replays=20"), Some(ServerGrace { window: Duration::from_secs(10), replays: Some(20) }));
        assert_eq!(
            grace(" 5 ; other=1;replays=3"),
            Some(ServerGrace { window: Duration::from_secs(5), replays: Some(3) })
        );
        assert_eq!(grace("7"), Some(ServerGrace { window: Duration::from_secs(7), replays: None }));
        assert_eq!(grace("0"), Some(ServerGrace { window: Duration::ZERO, replays: Some(0) }));
        assert_eq!(grace("99999999").map(|g| g.window), Some(MAX_ADVERTISED_GRACE));
        for bad in ["", "-1", "ten", "10;replays=many", "1.5"] {
            assert_eq!(grace(bad), None, "{bad:?}");
        }
        assert_eq!(server_grace(None), None);
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
