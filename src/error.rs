//! The one error type of the token flows, and its mapping onto the wire.
//!
//! Every refusal is a precise variant. The mapping to an HTTP status, a
//! stable machine name and a public message is one exhaustive `match` per
//! method, right here, so adding a variant cannot silently change the wire.
//!
//! Internal causes (a store outage, a signer failure) are kept in
//! [`Internal`] for logs through [`std::error::Error::source`]; they never
//! reach [`Error::public_message`] and so never reach an HTTP body.

use std::fmt;

use crate::token::DecodeError;

/// Why a request was refused (or failed), one variant per [spec §4](crate::spec#4-which-outcome-in-which-order) outcome
/// class. The detail enums say exactly which check decided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400: the request itself is malformed (header missing, empty, too long,
    /// not visible ASCII; a login body that is not the expected JSON).
    #[error("bad request: {0}")]
    BadRequest(#[from] BadRequest),
    /// 401: the token or credential is not acceptable.
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] Unauthorized),
    /// 403: an authentic, unrevoked access token whose holder may not do
    /// what the request asks (an application's role check, e.g. the axum
    /// extractor's `AccessToken::require_role`).
    /// Never produced by the token flows themselves.
    #[error("forbidden: {0}")]
    Forbidden(#[from] Forbidden),
    /// 404: the token is authentic but names a user the directory does not
    /// know (or a login names an unknown user).
    #[error("user not found")]
    UserNotFound,
    /// 422: the token is authentic but its claims are not a well-formed
    /// token of the expected kind, or a login's key material is unusable.
    #[error("unprocessable: {0}")]
    Unprocessable(#[from] Unprocessable),
    /// 429: an authentic login of a user who already logged in more often
    /// than the policy's [login rate limit](crate::policy::PolicyBuilder::login_rate_limit)
    /// allows within the last minute. Answered with `Retry-After: 60`.
    #[error("too many logins for this user")]
    TooManyLogins,
    /// 503: the session ledger refuses to grow (a Redis at its
    /// `maxmemory`): a login cannot start a session, while refreshes and
    /// logouts, which do not grow it, keep working. Answered with
    /// `Retry-After: 60`.
    #[error("session ledger is full")]
    LedgerFull,
    /// 500: a store, signer or clock failed. The cause is kept for logs.
    #[error("internal error: {0}")]
    Internal(#[from] Internal),
}

/// Detail of a 400 refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadRequest {
    /// No `Authorization` header.
    #[error("authorization header is missing")]
    MissingHeader,
    /// The header is empty or only spaces.
    #[error("authorization header is empty")]
    EmptyHeader,
    /// The header is longer than [`crate::policy::MAX_HEADER_LEN`].
    #[error("authorization header is too long")]
    HeaderTooLong,
    /// The header holds a byte outside visible ASCII and space.
    #[error("authorization header is not visible ASCII")]
    HeaderNotAscii,
    /// A login body that is not the expected JSON object.
    #[error("request body is malformed")]
    MalformedBody,
    /// More than one `Authorization` header: ambiguous, refused rather than
    /// guessing which one a proxy or the client meant. The flows take one
    /// header value; the HTTP adapters detect this.
    #[error("authorization header is repeated")]
    RepeatedHeader,
}

/// Detail of a 401 refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unauthorized {
    /// A scheme other than `Bearer` (or none where one is required).
    #[error("authorization scheme is not Bearer")]
    WrongScheme,
    /// The token itself was refused: not a compact JWS, not JSON, another
    /// algorithm or type, a refused header, an unknown key, or a signature
    /// that does not verify. The token layer's own reason, embedded rather
    /// than mirrored; never [`DecodeError::Claims`], which is a 422
    /// ([`Unprocessable::Claims`]).
    #[error("{0}")]
    Token(DecodeError),
    /// `exp` has been reached.
    #[error("token has expired")]
    Expired,
    /// The user exists but is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The session ledger does not know the token.
    #[error("token is not known")]
    UnknownToken,
    /// The token's session was revoked (logout, reuse, admin action).
    #[error("session has been revoked")]
    SessionRevoked,
    /// The token's session is past its absolute or idle lifetime.
    #[error("session has expired")]
    SessionExpired,
    /// The refresh token was already rotated: the whole session is now
    /// revoked.
    #[error("token was already used")]
    Reused,
    /// The access token was revoked (rotation, logout, reuse).
    #[error("access token has been revoked")]
    AccessRevoked,
    /// A login signature over the e-mail does not verify.
    #[error("login signature is invalid")]
    LoginSignature,
}

/// Detail of a 403 refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Forbidden {
    /// The token's `role` is not one the resource allows.
    #[error("role is not allowed")]
    Role,
}

/// Detail of a 422 refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unprocessable {
    /// Authentic token, but its claims are not a well-formed token of the
    /// expected kind (missing, repeated, ill-typed, unknown or out-of-range
    /// members; ids that are not canonical UUID v4; the other kind's claims).
    #[error("token claims are malformed")]
    Claims,
    /// A login field is not valid hex or has the wrong length.
    #[error("login key material is malformed")]
    LoginEncoding,
    /// A login public key that is not the user's registered key.
    #[error("login key is not the user's key")]
    LoginKey,
}

/// What failed inside, for a 500. Kept for logs; never shown to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InternalKind {
    /// The user directory.
    Users,
    /// The session ledger.
    Ledger,
    /// The token signer.
    Signer,
    /// The clock.
    Clock,
    /// Encoding a token or a response (cannot happen with the built-in types).
    Encoding,
    /// The application's own code (its database, a downstream call): an
    /// application answers its own failures in the crate's envelope with
    /// `Error::Internal(Internal::new(InternalKind::Application, cause))`.
    Application,
}

/// A 500: which component failed, and its cause for the logs.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} failed")]
pub struct Internal {
    kind: InternalKind,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Internal {
    /// An internal failure of `kind`, caused by `source`. The cause is for
    /// logs ([`std::error::Error::source`]); the client sees only
    /// "internal server error".
    ///
    /// ```
    /// use token_refresh::Reply;
    /// use token_refresh::error::{Error, Internal, InternalKind};
    ///
    /// // An application's own failure, answered in the crate's envelope.
    /// let failure = Error::Internal(Internal::new(InternalKind::Application, "orders database unreachable"));
    /// let reply = Reply::from_error(&failure);
    /// assert_eq!(reply.status(), 500);
    /// assert!(!String::from_utf8_lossy(reply.body()).contains("orders"));
    /// ```
    pub fn new(kind: InternalKind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind, source: source.into() }
    }

    /// Which component failed.
    pub fn kind(&self) -> InternalKind {
        self.kind
    }
}

/// The stable machine names of [spec §3](crate::spec#3-the-response-envelope), one per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusName {
    /// 200
    Ok,
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 422
    UnprocessableEntity,
    /// 429
    TooManyRequests,
    /// 500
    InternalServerError,
    /// 503
    ServiceUnavailable,
}

impl StatusName {
    /// The numeric HTTP status.
    pub const fn code(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UnprocessableEntity => 422,
            Self::TooManyRequests => 429,
            Self::InternalServerError => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The wire name: `OK`, `BAD_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`,
    /// `NOT_FOUND`, `METHOD_NOT_ALLOWED`, `UNPROCESSABLE_ENTITY`, `TOO_MANY_REQUESTS`, `INTERNAL_SERVER_ERROR`,
    /// `SERVICE_UNAVAILABLE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::UnprocessableEntity => "UNPROCESSABLE_ENTITY",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The status class of this error.
    pub const fn status(&self) -> StatusName {
        match self {
            Self::BadRequest(_) => StatusName::BadRequest,
            Self::Unauthorized(_) => StatusName::Unauthorized,
            Self::Forbidden(_) => StatusName::Forbidden,
            Self::UserNotFound => StatusName::NotFound,
            Self::Unprocessable(_) => StatusName::UnprocessableEntity,
            Self::TooManyLogins => StatusName::TooManyRequests,
            Self::Internal(_) => StatusName::InternalServerError,
            Self::LedgerFull => StatusName::ServiceUnavailable,
        }
    }

    /// The numeric HTTP status: 400, 401, 403, 404, 422, 429, 500 or 503.
    pub const fn status_code(&self) -> u16 {
        self.status().code()
    }

    /// The stable machine name, e.g. `UNAUTHORIZED`.
    pub const fn name(&self) -> &'static str {
        self.status().as_str()
    }

    /// A short message safe to show to the client: it names the failed check
    /// in general terms and never contains internals, keys or tokens.
    pub const fn public_message(&self) -> &'static str {
        match self {
            Self::BadRequest(detail) => match detail {
                BadRequest::MissingHeader => "authorization header is missing",
                BadRequest::EmptyHeader => "authorization header is empty",
                BadRequest::HeaderTooLong => "authorization header is too long",
                BadRequest::HeaderNotAscii => "authorization header is not visible ASCII",
                BadRequest::MalformedBody => "request body is malformed",
                BadRequest::RepeatedHeader => "authorization header is repeated",
            },
            Self::Unauthorized(detail) => match detail {
                Unauthorized::WrongScheme => "authorization scheme is not Bearer",
                Unauthorized::Token(DecodeError::Signature) => "token signature is invalid",
                Unauthorized::Token(_) => "token could not be parsed",
                Unauthorized::Expired => "token has expired",
                Unauthorized::UserDisabled => "user is disabled",
                Unauthorized::UnknownToken => "refresh token is not valid",
                Unauthorized::SessionRevoked => "session has been revoked",
                Unauthorized::SessionExpired => "session has expired",
                Unauthorized::Reused => "refresh token was already used; the session is revoked",
                Unauthorized::AccessRevoked => "access token has been revoked",
                Unauthorized::LoginSignature => "signature is invalid",
            },
            Self::Forbidden(detail) => match detail {
                Forbidden::Role => "the token's role is not allowed here",
            },
            Self::UserNotFound => "user not found",
            Self::Unprocessable(detail) => match detail {
                Unprocessable::Claims => "token claims are malformed",
                Unprocessable::LoginEncoding => "key or signature is malformed",
                Unprocessable::LoginKey => "public key does not match the user",
            },
            Self::TooManyLogins => "too many logins for this user; retry later",
            Self::Internal(_) => "internal server error",
            Self::LedgerFull => "the session ledger is full; retry later",
        }
    }

    /// The `WWW-Authenticate` value an HTTP adapter should send (RFC 6750
    /// §3): `invalid_token` for 401, `invalid_request` for 400,
    /// `insufficient_scope` for 403.
    pub const fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized(_) => Some(r#"Bearer error="invalid_token""#),
            Self::BadRequest(_) => Some(r#"Bearer error="invalid_request""#),
            Self::Forbidden(_) => Some(r#"Bearer error="insufficient_scope""#),
            Self::UserNotFound
            | Self::Unprocessable(_)
            | Self::TooManyLogins
            | Self::Internal(_)
            | Self::LedgerFull => None,
        }
    }

    /// The `Retry-After` value (seconds) an HTTP adapter should send: a
    /// minute for the answers that a later retry can change (429, 503).
    pub const fn retry_after(&self) -> Option<&'static str> {
        match self {
            Self::TooManyLogins | Self::LedgerFull => Some("60"),
            _ => None,
        }
    }

    /// A 500 of `kind`, caused by `source`. A value only: nothing is
    /// logged here. The flows' entry logs the cause once per request
    /// (feature `tracing`), so an error built and then discarded or
    /// retried leaves no line; the cause never reaches the HTTP body.
    pub(crate) fn internal(kind: InternalKind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Internal::new(kind, source))
    }
}

#[cfg(feature = "http")]
impl Error {
    /// The status as an [`http::StatusCode`].
    pub fn http_status(&self) -> http::StatusCode {
        self.status().http_status()
    }
}

#[cfg(feature = "http")]
impl StatusName {
    /// The status as an [`http::StatusCode`].
    pub fn http_status(self) -> http::StatusCode {
        match self {
            Self::Ok => http::StatusCode::OK,
            Self::BadRequest => http::StatusCode::BAD_REQUEST,
            Self::Unauthorized => http::StatusCode::UNAUTHORIZED,
            Self::Forbidden => http::StatusCode::FORBIDDEN,
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => http::StatusCode::METHOD_NOT_ALLOWED,
            Self::UnprocessableEntity => http::StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => http::StatusCode::TOO_MANY_REQUESTS,
            Self::InternalServerError => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_cause_never_reaches_the_public_message() {
        let error = Error::internal(InternalKind::Ledger, "connection to 10.0.0.7 refused: password=hunter2");
        assert_eq!(error.status_code(), 500);
        assert_eq!(error.name(), "INTERNAL_SERVER_ERROR");
        assert_eq!(error.public_message(), "internal server error");
        let source = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("Ledger"), "cause kept for logs: {source}");
    }

    #[test]
    fn statuses_and_names_match_the_spec_table() {
        let cases = [
            (Error::from(BadRequest::MissingHeader), 400, "BAD_REQUEST"),
            (Error::from(Unauthorized::Token(DecodeError::Signature)), 401, "UNAUTHORIZED"),
            (Error::UserNotFound, 404, "NOT_FOUND"),
            (Error::from(Unprocessable::Claims), 422, "UNPROCESSABLE_ENTITY"),
            (Error::TooManyLogins, 429, "TOO_MANY_REQUESTS"),
            (Error::internal(InternalKind::Clock, "x"), 500, "INTERNAL_SERVER_ERROR"),
            (Error::LedgerFull, 503, "SERVICE_UNAVAILABLE"),
        ];
        for (error, code, name) in cases {
            assert_eq!((error.status_code(), error.name()), (code, name));
        }
    }
}

impl From<DecodeError> for Error {
    /// The one place a token refusal becomes a status: an authentic token
    /// with the wrong claims is 422, anything else is 401.
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Claims => Unprocessable::Claims.into(),
            other => Unauthorized::Token(other).into(),
        }
    }
}

/// A store failed. Becomes a 500 (a full ledger at login: 503); the
/// cause is kept for logs only. Its [`kind`](StoreError::kind) tells an
/// outage from a caller's mistake, so a log or an alert can treat "the
/// backend is down" and "this code broke the ledger contract" apart.
#[derive(Debug, thiserror::Error)]
#[error("store failed ({kind:?}): {source}")]
pub struct StoreError {
    kind: StoreErrorKind,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend could not be reached or failed (connection refused or
    /// lost, a server error). Retrying later may succeed.
    Unavailable,
    /// The backend did not answer in time, or answered after the caller's
    /// deadline and so did nothing (the Redis ledger's stale-call guard).
    Timeout,
    /// The backend is at its storage limit and wrote nothing
    /// ([`StoreError::full`]); a login meeting it answers 503.
    Full,
    /// What the backend holds or answered cannot be read (a malformed row
    /// or reply): data, not connectivity, is wrong.
    Corrupt,
    /// The caller broke the contract (a successor pair of another session
    /// or subject, a malformed configuration): a bug to fix, not an outage
    /// to wait out.
    Misuse,
}

impl StoreError {
    /// Wraps any error as a store failure of kind
    /// [`Unavailable`](StoreErrorKind::Unavailable).
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::with_kind(StoreErrorKind::Unavailable, cause)
    }

    /// A store failure of `kind`, caused by `cause`.
    ///
    /// ```
    /// use token_refresh::StoreError;
    /// use token_refresh::error::StoreErrorKind;
    ///
    /// let error = StoreError::with_kind(StoreErrorKind::Misuse, "successor of another session");
    /// assert_eq!(error.kind(), StoreErrorKind::Misuse);
    /// assert!(!error.is_full());
    /// ```
    pub fn with_kind(kind: StoreErrorKind, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind, source: cause.into() }
    }

    /// The backend did not answer in time ([`StoreErrorKind::Timeout`]).
    pub fn timeout(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::with_kind(StoreErrorKind::Timeout, cause)
    }

    /// The caller broke the ledger contract ([`StoreErrorKind::Misuse`]).
    pub fn misuse(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::with_kind(StoreErrorKind::Misuse, cause)
    }

    /// What the backend holds or answered is unreadable
    /// ([`StoreErrorKind::Corrupt`]).
    pub fn corrupt(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::with_kind(StoreErrorKind::Corrupt, cause)
    }

    /// The ledger refused to grow (it is at its memory limit) and wrote
    /// nothing. A login that meets it answers 503
    /// ([`Error::LedgerFull`]) instead of 500.
    pub fn full(detail: impl Into<String>) -> Self {
        Self::with_kind(StoreErrorKind::Full, LedgerFullError(detail.into()))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether this is [`StoreError::full`].
    pub fn is_full(&self) -> bool {
        self.kind == StoreErrorKind::Full
    }

    /// The cause, for logs and for backends that look into their own
    /// driver's error.
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pub(crate) fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

/// The cause of [`StoreError::full`].
#[derive(Debug, thiserror::Error)]
#[error("the ledger is full: {0}")]
struct LedgerFullError(String);
