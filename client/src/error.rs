//! Errors that say what to do: retry later (the session is kept), log in
//! again (the session has ended), or fix the credentials.
//!
//! The mapping from the server's answer to an error is one function,
//! [`classify`], right beside the enums.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::wire;

/// Everything a [`Session`](crate::Session) call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session has ended and no token will work again: log in again.
    #[error("the session has ended ({0}); log in again")]
    Ended(EndReason),
    /// The server or the way to it is unavailable for now. The session is
    /// kept; retry after [`Error::retry_after`] (or with your own backoff).
    #[error("{0}; the session is kept, retry later")]
    Transient(Transient),
    /// The server refused the login itself (bad signature, unknown user, a
    /// key that is not the user's, a malformed body): fix the credentials.
    #[error("the server refused the login: {0}")]
    LoginRefused(Refusal),
    /// The server answered something this client does not expect (a 404
    /// from another path, a 405, a redirect): the endpoint is probably
    /// misconfigured. The session is kept.
    #[error("unexpected answer from the session endpoint: {0}")]
    Unexpected(Refusal),
    /// The token store could not be read or written. The session in memory
    /// is kept.
    #[error("the token store failed: {0}")]
    Store(#[from] StoreError),
}

impl Error {
    /// `true` when retrying later can succeed and the session is kept.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// `true` when the session has ended: only a new login helps.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::Ended(_))
    }

    /// How long to wait before retrying, when the server said so
    /// (`Retry-After`) or the session is cooling down after a failed refresh.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient(transient) => transient.retry_after,
            _ => None,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Logged out (by this session, or by another process sharing its
    /// store).
    LoggedOut,
    /// The server revoked the session (logout elsewhere, an administrator,
    /// the per-user session cap).
    Revoked,
    /// The server saw a refresh token used twice and revoked the session
    /// (RFC 9700 §4.14): a token leaked, or a client refreshed without
    /// coordination.
    Reused,
    /// The refresh token or the session outlived its lifetime.
    Expired,
    /// The server does not know the refresh token (its session was evicted
    /// or purged).
    UnknownToken,
    /// The user is disabled.
    UserDisabled,
    /// The user no longer exists (404).
    UserGone,
    /// Another refusal of the refresh token (another 401, a 400 or 422);
    /// the server's status and message.
    Refused(Refusal),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoggedOut => f.write_str("logged out"),
            Self::Revoked => f.write_str("session revoked by the server"),
            Self::Reused => f.write_str("refresh token reuse detected; the server revoked the session"),
            Self::Expired => f.write_str("session expired"),
            Self::UnknownToken => f.write_str("refresh token unknown to the server"),
            Self::UserDisabled => f.write_str("user disabled"),
            Self::UserGone => f.write_str("user no longer exists"),
            Self::Refused(refusal) => write!(f, "refresh refused: {refusal}"),
        }
    }
}

/// A status the server answered with, and its public message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status code.
    pub status: u16,
    /// The envelope's `message`, when the body was an envelope.
    pub message: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{} {message}", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

/// A failure that keeps the session.
#[derive(Debug, Clone)]
pub struct Transient {
    kind: TransientKind,
    retry_after: Option<Duration>,
}

impl Transient {
    pub(crate) fn new(kind: TransientKind, retry_after: Option<Duration>) -> Self {
        Self { kind, retry_after }
    }

    /// What went wrong.
    pub fn kind(&self) -> &TransientKind {
        &self.kind
    }

    /// When to retry, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)?;
        if let Some(after) = self.retry_after {
            write!(f, " (retry after {} ms)", after.as_millis())?;
        }
        Ok(())
    }
}

/// The kinds of [`Transient`] failure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransientKind {
    /// No answer within the request timeout (the request may have arrived).
    Timeout,
    /// The transport failed (refused connection, reset); `sent` says whether
    /// the request may have reached the server.
    Transport(TransportError),
    /// 5xx, 408 or 429: the server is overloaded, restarting or limiting.
    Status(Refusal),
    /// A 200 whose body is not a token pair (a proxy mangled it): treated as
    /// a lost answer.
    GarbledAnswer,
    /// Another process held the store's lock past the lock timeout.
    LockTimeout,
    /// A refresh just failed; the session waits before trying again rather
    /// than letting every caller retry in turn.
    CoolingDown,
}

impl fmt::Display for TransientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the session endpoint did not answer in time"),
            Self::Transport(error) => write!(f, "transport failure: {error}"),
            Self::Status(refusal) => write!(f, "the session endpoint is unavailable: {refusal}"),
            Self::GarbledAnswer => f.write_str("the session endpoint's answer could not be read"),
            Self::LockTimeout => f.write_str("another process held the token store's lock too long"),
            Self::CoolingDown => f.write_str("a refresh just failed"),
        }
    }
}

/// A [`Transport`](crate::Transport) failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}", if *.sent { "" } else { "(not sent) " }, .source)]
pub struct TransportError {
    sent: bool,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl TransportError {
    /// The request never left (connection refused, DNS failure): retrying
    /// cannot replay anything.
    pub fn not_sent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { sent: false, source: Arc::from(source.into()) }
    }

    /// The request may have reached the server and its answer was lost
    /// (reset, closed mid-answer). A refresh is then retried with the same
    /// refresh token, inside the server's grace window.
    pub fn maybe_sent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { sent: true, source: Arc::from(source.into()) }
    }

    /// Whether the request may have reached the server.
    pub fn may_have_been_sent(&self) -> bool {
        self.sent
    }
}

/// A [`TokenStore`](crate::TokenStore) failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StoreError {
    context: &'static str,
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// A failure of `context` (for example "read the token file").
    pub fn new(context: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { context, source: Arc::from(source.into()) }
    }
}

/// What a login or a refresh answer means.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A new pair, and the grace window the server stated for its rotation.
    Pair(crate::TokenPair, Option<wire::ServerGrace>),
    /// Keep the session, maybe retry.
    Transient(Transient),
    /// The server refused the token or the credentials for good.
    Refused(Refusal),
    /// An answer that fits nothing above.
    Unexpected(Refusal),
}

/// Reads `Retry-After` as delta-seconds (capped at an hour). An HTTP-date
/// would need the wall clock, which this crate never reads: it is ignored.
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    let seconds: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// The one mapping from an answer of the session endpoint to an outcome.
pub(crate) fn classify(status: u16, retry_after_header: Option<&str>, body: &[u8]) -> Outcome {
    let refusal = || Refusal { status, message: wire::failure_status(body).and_then(|s| s.message) };
    match status {
        200 => match wire::token_pair(body) {
            Ok(pair) => Outcome::Pair(pair, None),
            Err(_) => Outcome::Transient(Transient::new(TransientKind::GarbledAnswer, None)),
        },
        408 | 429 | 500..=599 => {
            Outcome::Transient(Transient::new(TransientKind::Status(refusal()), retry_after(retry_after_header)))
        }
        400 | 401 | 422 => Outcome::Refused(refusal()),
        // The session endpoint's 404 is "user not found"; a 404 that is not
        // its envelope (another path, a proxy) says nothing about the user.
        404 => match wire::failure_status(body) {
            Some(status_body)
                if status_body.name == "NOT_FOUND" && status_body.message.as_deref() == Some("user not found") =>
            {
                Outcome::Refused(Refusal { status, message: status_body.message })
            }
            _ => Outcome::Unexpected(refusal()),
        },
        _ => Outcome::Unexpected(refusal()),
    }
}

/// Why a refused refresh ended the session, from the server's public
/// messages (the reference server's `Error::public_message`).
pub(crate) fn end_reason(refusal: Refusal) -> EndReason {
    match (refusal.status, refusal.message.as_deref()) {
        (401, Some("session has been revoked")) => EndReason::Revoked,
        (401, Some("refresh token was already used; the session is revoked")) => EndReason::Reused,
        (401, Some("token has expired" | "session has expired")) => EndReason::Expired,
        (401, Some("refresh token is not valid")) => EndReason::UnknownToken,
        (401, Some("user is disabled")) => EndReason::UserDisabled,
        (404, _) => EndReason::UserGone,
        _ => EndReason::Refused(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(code: u16, name: &str, message: &str) -> Vec<u8> {
        format!(r#"{{"status":{{"code":{code},"name":"{name}","message":"{message}"}},"data":null}}"#).into_bytes()
    }

    #[test]
    fn transient_statuses_keep_the_session() {
        for (status, name) in [(429, "TOO_MANY_REQUESTS"), (503, "SERVICE_UNAVAILABLE"), (500, "INTERNAL_SERVER_ERROR")]
        {
            match classify(status, Some("60"), &envelope(status, name, "retry later")) {
                Outcome::Transient(t) => assert_eq!(t.retry_after(), Some(Duration::from_secs(60))),
                other => panic!("{status}: {other:?}"),
            }
        }
        // A proxy's 502 without an envelope, and a Retry-After date.
        assert!(
            matches!(classify(502, Some("Wed, 21 Oct 2026 07:28:00 GMT"), b"<html>"), Outcome::Transient(t) if t.retry_after().is_none())
        );
        assert!(matches!(classify(200, None, b"{}"), Outcome::Transient(_)));
    }

    #[test]
    fn the_401_reasons_end_the_session() {
        let reason = |message| match classify(401, None, &envelope(401, "UNAUTHORIZED", message)) {
            Outcome::Refused(refusal) => end_reason(refusal),
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("session has been revoked"), EndReason::Revoked);
        assert_eq!(reason("refresh token was already used; the session is revoked"), EndReason::Reused);
        assert_eq!(reason("token has expired"), EndReason::Expired);
        assert_eq!(reason("refresh token is not valid"), EndReason::UnknownToken);
        assert!(matches!(reason("something new"), EndReason::Refused(_)));
    }

    #[test]
    fn only_the_endpoints_own_404_means_the_user_is_gone() {
        match classify(404, None, &envelope(404, "NOT_FOUND", "user not found")) {
            Outcome::Refused(refusal) => assert_eq!(end_reason(refusal), EndReason::UserGone),
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(404, None, &envelope(404, "NOT_FOUND", "no such endpoint")), Outcome::Unexpected(_)));
        assert!(matches!(classify(404, None, b"not found"), Outcome::Unexpected(_)));
        assert!(matches!(classify(405, None, b""), Outcome::Unexpected(_)));
    }
}
