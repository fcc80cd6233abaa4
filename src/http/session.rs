//! The session endpoint's one routine, shared by every adapter (the tower
//! [`Endpoint`](super::Endpoint) and the axum routes): method, header and
//! body checks in the same order, the flow, and the answer. One routine,
//! so the adapters cannot drift apart in status, bytes or headers.

use std::sync::Arc;

use ::http::{HeaderMap, Method, Response};
use http_body::Body;

use super::answers;
use crate::envelope::ReplyData;
use crate::error::Error;
use crate::service::TokenService;

/// `POST` login, `PATCH` refresh, `DELETE` logout; 405 with `Allow`
/// otherwise. A repeated `Authorization` header is refused before any
/// flow; a login body over [`MAX_LOGIN_BODY`](crate::MAX_LOGIN_BODY) is 400
/// with `Connection: close`.
pub(crate) async fn answer<B>(
    service: &TokenService,
    method: &Method,
    headers: &HeaderMap,
    body: B,
) -> Response<Vec<u8>>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if !matches!(*method, Method::POST | Method::PATCH | Method::DELETE) {
        return answers::method_not_allowed(answers::SESSION_METHODS);
    }
    let authorization = match answers::authorization(headers) {
        Ok(authorization) => authorization,
        Err(error) => return refused(error),
    };
    match *method {
        Method::POST => match answers::read_login_body(headers, body).await {
            Some(body) => flow(service.login(&body).await),
            None => answers::login_body_too_large(),
        },
        Method::PATCH => flow(service.refresh(authorization).await),
        _ => flow(service.logout(authorization).await),
    }
}

/// In the extensions of a session or JWKS answer when a flow refused the
/// request or failed: the [`Error`], for the application's logs (which
/// check refused; a 500's cause through [`std::error::Error::source`]).
/// Never sent: the body carries the public message only.
#[derive(Debug, Clone)]
pub struct FlowError(Arc<Error>);

impl FlowError {
    /// The flow's error.
    pub fn error(&self) -> &Error {
        &self.0
    }
}

/// The answer for a flow's result; a refusal keeps its [`Error`] in the
/// extensions ([`FlowError`]).
fn flow<T: ReplyData>(result: Result<T, Error>) -> Response<Vec<u8>> {
    match result {
        Ok(data) => answers::reply(data.reply()),
        Err(error) => refused(error),
    }
}

/// The failure answer for `error`, which it keeps in the extensions.
pub(crate) fn refused(error: Error) -> Response<Vec<u8>> {
    let mut response = answers::error(&error);
    response.extensions_mut().insert(FlowError(Arc::new(error)));
    response
}
