//! The exact outcome of a refusal, comparable with `==`: a test names the
//! precise variant it expects instead of a status code several variants
//! share.

use token_refresh::{Error, error::BadRequest, error::InternalKind, error::Unauthorized, error::Unprocessable};

/// Which check refused, with its detail: [`Error`] without the internal
/// cause, so two outcomes compare with `==` and print with `{:?}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400, and why.
    BadRequest(BadRequest),
    /// 401, and why.
    Unauthorized(Unauthorized),
    /// 404.
    UserNotFound,
    /// 422, and why.
    Unprocessable(Unprocessable),
    /// 500, and which dependency failed.
    Internal(InternalKind),
}

impl Refusal {
    /// The outcome `error` stands for.
    pub fn of(error: &Error) -> Self {
        match error {
            Error::BadRequest(detail) => Self::BadRequest(*detail),
            Error::Unauthorized(detail) => Self::Unauthorized(*detail),
            Error::UserNotFound => Self::UserNotFound,
            Error::Unprocessable(detail) => Self::Unprocessable(*detail),
            Error::Internal(internal) => Self::Internal(internal.kind()),
            other => panic!("an Error variant Refusal does not know yet: {other:?}"),
        }
    }

    /// The HTTP status of the outcome.
    pub fn status_code(self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::UserNotFound => 404,
            Self::Unprocessable(_) => 422,
            Self::Internal(_) => 500,
        }
    }

    /// The envelope's `status.name` of the outcome.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::UserNotFound => "NOT_FOUND",
            Self::Unprocessable(_) => "UNPROCESSABLE_ENTITY",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl From<BadRequest> for Refusal {
    fn from(detail: BadRequest) -> Self {
        Self::BadRequest(detail)
    }
}

impl From<Unauthorized> for Refusal {
    fn from(detail: Unauthorized) -> Self {
        Self::Unauthorized(detail)
    }
}

/// A token-layer refusal, as the flows report it (401, or 422 for claims).
impl From<token_refresh::token::DecodeError> for Refusal {
    fn from(detail: token_refresh::token::DecodeError) -> Self {
        Self::of(&Error::from(detail))
    }
}

impl From<Unprocessable> for Refusal {
    fn from(detail: Unprocessable) -> Self {
        Self::Unprocessable(detail)
    }
}

impl From<&Error> for Refusal {
    fn from(error: &Error) -> Self {
        Self::of(error)
    }
}

/// Asserts that `result` is refused with exactly `want`, and returns the
/// error.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, want: impl Into<Refusal>) -> Error {
    let want = want.into();
    match result {
        Ok(value) => panic!("expected {want:?}, got Ok({value:?})"),
        Err(error) => {
            assert_eq!(Refusal::of(&error), want, "{error:?}");
            error
        }
    }
}
