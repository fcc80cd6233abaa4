//! The one thing a session needs from HTTP: send a request to the session
//! endpoint, get its status, headers and body.
//!
//! A small trait instead of a fixed client keeps the session logic testable
//! without a network and lets any HTTP stack (any `http` version, any TLS)
//! carry it. [`HyperTransport`](crate::HyperTransport) (feature `hyper`) is
//! the ready-made one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

use crate::error::TransportError;

/// Sends one request to the session endpoint.
///
/// Implementations should not retry and need not time out: the session
/// times every request out itself and decides what is safe to retry (a
/// login is never replayed; a refresh is retried with the same token).
/// Report a failure before the request could leave as
/// [`TransportError::not_sent`], anything later as
/// [`TransportError::maybe_sent`].
pub trait Transport: Send + Sync + 'static {
    /// Sends `request`; resolves to the server's answer, whatever its status.
    fn send(&self, request: Request) -> impl Future<Output = Result<Response, TransportError>> + Send;
}

/// The three calls of the session endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// `POST`, the signed login body.
    Login,
    /// `PATCH`, the refresh token in `Authorization`.
    Refresh,
    /// `DELETE`, the refresh token in `Authorization`.
    Logout,
}

impl Call {
    /// The HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Self::Login => "POST",
            Self::Refresh => "PATCH",
            Self::Logout => "DELETE",
        }
    }
}

/// One request to the session endpoint. `Debug` redacts the credentials.
#[derive(Clone)]
pub struct Request {
    call: Call,
    authorization: Option<Zeroizing<String>>,
    body: Zeroizing<Vec<u8>>,
}

impl Request {
    pub(crate) fn login(body: &[u8]) -> Self {
        Self { call: Call::Login, authorization: None, body: Zeroizing::new(body.to_vec()) }
    }

    pub(crate) fn with_token(call: Call, refresh_token: &str) -> Self {
        Self {
            call,
            authorization: Some(Zeroizing::new(format!("Bearer {refresh_token}"))),
            body: Zeroizing::new(Vec::new()),
        }
    }

    /// Which call this is.
    pub fn call(&self) -> Call {
        self.call
    }

    /// The HTTP method (`POST`, `PATCH` or `DELETE`).
    pub fn method(&self) -> &'static str {
        self.call.method()
    }

    /// The `Authorization` header value (`Bearer <refresh token>`), for a
    /// refresh or a logout. Mark it sensitive in your HTTP stack.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref().map(String::as_str)
    }

    /// The body: the login JSON (`Content-Type: application/json`), empty
    /// otherwise.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("call", &self.call)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The server's answer. `Debug` omits the body (it carries tokens).
#[derive(Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Zeroizing<Vec<u8>>,
}

impl Response {
    /// An answer with `status` and `body`, no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: Vec::new(), body: Zeroizing::new(body.into()) }
    }

    /// Adds a header (the session reads `Retry-After` and
    /// [`GRACE_HEADER`](crate::GRACE_HEADER); a transport may pass only
    /// those).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Transport`] made object-safe, so a `Session` is one type whatever
/// carries it.
pub(crate) trait DynTransport: Send + Sync + 'static {
    fn send_boxed(&self, request: Request) -> BoxFuture<'_, Result<Response, TransportError>>;
}

impl<T: Transport> DynTransport for T {
    fn send_boxed(&self, request: Request) -> BoxFuture<'_, Result<Response, TransportError>> {
        Box::pin(self.send(request))
    }
}
