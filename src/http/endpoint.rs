//! [`Endpoint`]: the session and JWKS endpoints as one tower service.

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, Ready, poll_fn, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Method, Request, Response};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use tower_service::Service;

use super::answers;
use super::scope::{DEFAULT_DEADLINE, scoped};
use super::session::{self, refused};
use crate::error::{Error, InternalKind};
use crate::service::TokenService;

/// The session path of the FIB API, [`Endpoint`]'s default.
pub const DEFAULT_SESSION_PATH: &str = "/auth/api/v1/authentication-management/session";

/// Where the JWKS document is served by default.
pub const DEFAULT_JWKS_PATH: &str = "/.well-known/jwks.json";

/// An error a body or a fallback service may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The session endpoint and the JWKS document of a [`TokenService`] as one
/// framework-neutral [`Service`] over [`http::Request`](::http::Request)s:
/// see the [module documentation](super) for what it answers and how to
/// serve it.
///
/// Requests for other paths go to the fallback service `F`:
/// [`NotFound`] (the envelope's 404) unless [`Endpoint::fallback`] names
/// another. The fallback runs under the endpoint's deadline and its answers
/// carry `X-Request-Id` too.
///
/// Cloning is cheap (an [`Arc`] and a clone of the fallback), as a server
/// needs one service per connection.
///
/// # Panics
///
/// The request deadline runs on tokio's timer: a request polled outside a
/// tokio runtime with the time driver enabled panics (tokio's own rule).
/// `#[tokio::main]`, hyper-util's and axum's servers all have it.
pub struct Endpoint<F = NotFound> {
    shared: Arc<Shared>,
    fallback: F,
}

/// What every clone of an [`Endpoint`] shares.
struct Shared {
    service: TokenService,
    session_path: Box<str>,
    jwks_path: Box<str>,
    deadline: Duration,
    /// The JWKS document, encoded once: the keys only change with the
    /// service. `None` if it could not be encoded (a 500 then).
    jwks: Option<Bytes>,
}

impl Endpoint {
    /// The endpoint with the defaults: the session at
    /// [`DEFAULT_SESSION_PATH`], the JWKS document at [`DEFAULT_JWKS_PATH`],
    /// a [`DEFAULT_DEADLINE`] of 10 s, and [`NotFound`] for other paths.
    /// [`EndpointConfig`] changes them.
    pub fn new(service: TokenService) -> Self {
        Self::from_parts(service, &EndpointConfig::default())
    }

    /// The endpoint `config` describes (already checked).
    fn from_parts(service: TokenService, config: &EndpointConfig) -> Self {
        let jwks = answers::jwks_document(service.jwks()).ok().map(Bytes::from);
        let shared = Shared {
            service,
            session_path: config.session_path.as_str().into(),
            jwks_path: config.jwks_path.as_str().into(),
            deadline: config.deadline,
            jwks,
        };
        Self { shared: Arc::new(shared), fallback: NotFound }
    }
}

impl<F> Endpoint<F> {
    /// The same endpoint, sending requests for any other path to
    /// `fallback` instead of answering 404: the rest of an application, a
    /// router, or another endpoint. `fallback` sees the request as it came
    /// (body unread), within the endpoint's deadline; its answer gets
    /// `X-Request-Id` added and is otherwise passed on as is.
    pub fn fallback<G>(self, fallback: G) -> Endpoint<G> {
        Endpoint { shared: self.shared, fallback }
    }

    /// The token service the endpoint serves.
    pub fn service(&self) -> &TokenService {
        &self.shared.service
    }

    /// The session path.
    pub fn session_path(&self) -> &str {
        &self.shared.session_path
    }

    /// The JWKS path.
    pub fn jwks_path(&self) -> &str {
        &self.shared.jwks_path
    }

    /// How long one request may take, body included.
    pub fn deadline(&self) -> Duration {
        self.shared.deadline
    }
}

impl<F: Clone> Clone for Endpoint<F> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared), fallback: self.fallback.clone() }
    }
}

impl<F> fmt::Debug for Endpoint<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("service", &self.shared.service)
            .field("session_path", &self.shared.session_path)
            .field("jwks_path", &self.shared.jwks_path)
            .field("deadline", &self.shared.deadline)
            .field("fallback", &std::any::type_name::<F>())
            .finish()
    }
}

/// The paths and the request deadline of an [`Endpoint`], builder style.
///
/// ```
/// use std::time::Duration;
/// use token_refresh::http::EndpointConfig;
/// # use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
/// # let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// # let service = TokenService::new(Policy::default(), MemoryUserStore::new([]), MemoryLedger::new(), signer, SystemClock);
///
/// let endpoint = EndpointConfig::new()
///     .session_path("/auth/session")
///     .jwks_path("/auth/jwks.json")
///     .deadline(Duration::from_secs(5))
///     .build(service)?;
/// assert_eq!(endpoint.session_path(), "/auth/session");
///
/// // A path must be an absolute URI path.
/// assert!(EndpointConfig::new().session_path("session").build(endpoint.service().clone()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    session_path: String,
    jwks_path: String,
    deadline: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            session_path: DEFAULT_SESSION_PATH.to_owned(),
            jwks_path: DEFAULT_JWKS_PATH.to_owned(),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

impl EndpointConfig {
    /// The defaults: [`DEFAULT_SESSION_PATH`], [`DEFAULT_JWKS_PATH`],
    /// [`DEFAULT_DEADLINE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the session is served (`POST` login, `PATCH` refresh, `DELETE`
    /// logout), matched exactly against the request's path (no query).
    #[must_use]
    pub fn session_path(mut self, path: impl Into<String>) -> Self {
        self.session_path = path.into();
        self
    }

    /// Where the JWKS document is served (`GET`, `HEAD`), matched exactly.
    #[must_use]
    pub fn jwks_path(mut self, path: impl Into<String>) -> Self {
        self.jwks_path = path.into();
        self
    }

    /// How long one request may take, reading the body included; past it
    /// the answer is the 500 envelope. Not zero.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The endpoint serving `service` as configured; an error if a path is
    /// not an absolute URI path, the two paths are equal, or the deadline
    /// is zero.
    pub fn build(self, service: TokenService) -> Result<Endpoint, EndpointConfigError> {
        for path in [&self.session_path, &self.jwks_path] {
            if !is_absolute_path(path) {
                return Err(EndpointConfigError::InvalidPath(path.clone()));
            }
        }
        if self.session_path == self.jwks_path {
            return Err(EndpointConfigError::SamePath);
        }
        if self.deadline.is_zero() {
            return Err(EndpointConfigError::ZeroDeadline);
        }
        Ok(Endpoint::from_parts(service, &self))
    }
}

/// Whether `path` can equal a request's path: `/` then visible ASCII,
/// without the `?` and `#` that end a path.
fn is_absolute_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
}

/// Why an [`EndpointConfig`] cannot build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointConfigError {
    /// A path that no request path can equal: it must start with `/` and
    /// hold only visible ASCII, without `?` or `#`.
    #[error("endpoint path {0:?} is not an absolute URI path (a '/' then visible ASCII, no '?' or '#')")]
    InvalidPath(String),
    /// The session and JWKS paths are the same.
    #[error("the session and JWKS paths are the same")]
    SamePath,
    /// A zero deadline would refuse every request.
    #[error("the request deadline is zero")]
    ZeroDeadline,
}

/// The default fallback of an [`Endpoint`]: the envelope's 404 (`no such
/// endpoint`) for every request, with `Cache-Control: no-store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        ready(Ok(answers::not_found().map(ResponseBody::full)))
    }
}

/// Which part of the endpoint a request's path reaches.
enum Target {
    Session,
    Jwks,
    Fallback,
}

impl<B, F, FB> Service<Request<B>> for Endpoint<F>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Service<Request<B>, Response = Response<FB>> + Clone + Send + 'static,
    F::Future: Send + 'static,
    F::Error: Send + 'static,
    FB: Body<Data = Bytes> + Send + 'static,
    FB::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = F::Error;
    type Future = ResponseFuture<F::Error>;

    /// Always ready: the fallback's readiness is awaited for the requests
    /// that reach it.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let fallback = self.fallback.clone();
        ResponseFuture(Box::pin(async move {
            scoped(shared.deadline, request, |request| shared.route(request, fallback)).await
        }))
    }
}

impl Shared {
    async fn route<B, F, FB>(&self, request: Request<B>, mut fallback: F) -> Result<Response<ResponseBody>, F::Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
        F: Service<Request<B>, Response = Response<FB>>,
        FB: Body<Data = Bytes> + Send + 'static,
        FB::Error: Into<BoxError>,
    {
        let path = request.uri().path();
        let target = if path == &*self.session_path {
            Target::Session
        } else if path == &*self.jwks_path {
            Target::Jwks
        } else {
            Target::Fallback
        };
        match target {
            Target::Session => Ok(self.session(request).await.map(ResponseBody::full)),
            Target::Jwks => Ok(self.jwks(request.method())),
            Target::Fallback => {
                poll_fn(|cx| fallback.poll_ready(cx)).await?;
                let response = fallback.call(request).await?;
                Ok(response.map(ResponseBody::boxed))
            }
        }
    }

    /// `POST` login, `PATCH` refresh, `DELETE` logout; 405 otherwise.
    async fn session<B>(&self, request: Request<B>) -> Response<Vec<u8>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        session::answer(&self.service, &parts.method, &parts.headers, body).await
    }

    /// `GET`/`HEAD` the JWKS document; 405 otherwise. A `HEAD` answer keeps
    /// its body for the `Content-Length`: HTTP servers (hyper) do not send
    /// it.
    fn jwks(&self, method: &Method) -> Response<ResponseBody> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return answers::method_not_allowed(answers::JWKS_METHODS).map(ResponseBody::full);
        }
        match &self.jwks {
            Some(document) => answers::jwks(ResponseBody::full(document.clone())),
            None => {
                let error = Error::internal(InternalKind::Encoding, "the JWKS document could not be encoded");
                refused(error).map(ResponseBody::full)
            }
        }
    }
}

/// The future of an [`Endpoint`]'s answer.
pub struct ResponseFuture<E>(Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, E>> + Send>>);

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response<ResponseBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The body of an [`Endpoint`]'s answer: the envelope or the JWKS document
/// in one frame, or a fallback's body as it streams.
pub struct ResponseBody(Kind);

enum Kind {
    Full(Full<Bytes>),
    Fallback(UnsyncBoxBody<Bytes, BoxError>),
}

impl ResponseBody {
    fn full(bytes: impl Into<Bytes>) -> Self {
        Self(Kind::Full(Full::new(bytes.into())))
    }

    fn boxed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(Kind::Fallback(body.map_err(Into::into).boxed_unsync()))
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        Self::full(bytes)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Kind::Full(body) => Pin::new(body).poll_frame(cx).map_err(|never| match never {}),
            Kind::Fallback(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(body) => body.is_end_stream(),
            Kind::Fallback(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(body) => body.size_hint(),
            Kind::Fallback(body) => body.size_hint(),
        }
    }
}

impl fmt::Debug for ResponseBody {
    // The body may hold tokens: show only its kind and size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Kind::Full(_) => "full",
            Kind::Fallback(_) => "fallback",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).field("size_hint", &self.size_hint()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute() {
        assert!(is_absolute_path("/a/b"));
        for bad in ["", "a", "/a?b", "/a#b", "/a b", "/é"] {
            assert!(!is_absolute_path(bad), "{bad:?}");
        }
    }
}
