//! A `tower` layer for HTTP clients (feature `tower`): sets
//! `Authorization: Bearer <access token>` from a [`Session`] and, when the
//! resource answers 401, refreshes through the session and sends the
//! request once more if its body can be replayed.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, StatusCode};
use http_body_util::{Empty, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::session::{AccessToken, Session};

/// The error of a [`Bearer`] service: the inner service's, or the session's
/// ([`crate::Error`], which says whether to retry or log in again).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that may be sent twice. A 401 is only retried when
/// [`try_clone`](ReplayableBody::try_clone) returns a copy; a streaming
/// body returns `None` and its 401 is handed back (after the session
/// refreshed, so the next request carries the new token).
pub trait ReplayableBody: Sized {
    /// A copy to send again, if the body can be replayed.
    fn try_clone(&self) -> Option<Self>;
}

macro_rules! replayable_by_clone {
    ($($body:ty),*) => {$(
        impl ReplayableBody for $body {
            fn try_clone(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replayable_by_clone!((), String, Vec<u8>, Bytes, Full<Bytes>, Empty<Bytes>);

/// Wraps a service in [`Bearer`].
///
/// ```no_run
/// # fn wrap<S>(session: token_refresh_client::Session, client: S) {
/// use tower_layer::Layer;
/// let client = token_refresh_client::BearerLayer::new(session).layer(client);
/// # let _ = client; }
/// ```
#[derive(Debug, Clone)]
pub struct BearerLayer {
    session: Session,
}

impl BearerLayer {
    /// A layer that authorizes requests with `session`'s access token.
    pub fn new(session: Session) -> Self {
        Self { session }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer { inner, session: self.session.clone() }
    }
}

/// An HTTP client service that authorizes every request with the session's
/// access token and retries a 401 once (see [`BearerLayer`]).
#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    session: Session,
}

impl<S, B, R> Service<http::Request<B>> for Bearer<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayableBody + Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The instance that was polled ready serves this call; a clone
        // stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let session = self.session.clone();
        Box::pin(async move {
            let token = session.access_token().await?;
            let replay = replay_of(&request);
            authorize(&mut request, &token)?;
            let response = inner.call(request).await.map_err(Into::into)?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            // Refreshes only if `token` is still the session's current one.
            let fresh = session.on_unauthorized(&token).await?;
            let Some(mut replay) = replay else { return Ok(response) };
            authorize(&mut replay, &fresh)?;
            poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
            inner.call(replay).await.map_err(Into::into)
        })
    }
}

fn replay_of<B: ReplayableBody>(request: &http::Request<B>) -> Option<http::Request<B>> {
    let body = request.body().try_clone()?;
    let mut replay = http::Request::new(body);
    *replay.method_mut() = request.method().clone();
    *replay.uri_mut() = request.uri().clone();
    *replay.version_mut() = request.version();
    *replay.headers_mut() = request.headers().clone();
    *replay.extensions_mut() = request.extensions().clone();
    Some(replay)
}

fn authorize<B>(request: &mut http::Request<B>, token: &AccessToken) -> Result<(), BoxError> {
    let mut value = HeaderValue::from_str(&token.bearer())?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}
