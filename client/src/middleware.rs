//! A [`reqwest-middleware`](reqwest_middleware) middleware (feature
//! `reqwest`): sets `Authorization: Bearer <access token>` from a
//! [`Session`] and, when the resource answers 401, tells the session
//! ([`Session::on_unauthorized`]) and sends the request once more if
//! reqwest can clone it.
//!
//! The same contract as the tower `BearerLayer`: the
//! session refreshes only when the refused token is still its current one,
//! so many requests refused at once cause one refresh.

use reqwest_middleware::reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest_middleware::reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::session::{AccessToken, Session};

/// Authorizes every request of a `reqwest_middleware::ClientWithMiddleware`
/// with a session's access token and retries a 401 once.
///
/// A session error ([`crate::Error`]: retry later, or log in again) comes
/// back as `reqwest_middleware::Error::Middleware`; downcast it to tell
/// which. A request whose body cannot be cloned (a stream) gets its 401
/// back, after the session refreshed, so the next request carries the new
/// token.
///
/// ```no_run
/// # async fn run(session: token_refresh_client::Session) -> Result<(), Box<dyn std::error::Error>> {
/// use token_refresh_client::BearerMiddleware;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerMiddleware::new(session))
///     .build();
/// let answer = client.get("http://127.0.0.1:8080/api/v1/me").send().await?;
/// println!("{}", answer.status());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BearerMiddleware {
    session: Session,
}

impl BearerMiddleware {
    /// A middleware that authorizes requests with `session`'s access token.
    pub fn new(session: Session) -> Self {
        Self { session }
    }
}

#[async_trait::async_trait]
impl Middleware for BearerMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = self.session.access_token().await.map_err(reqwest_middleware::Error::middleware)?;
        authorize(&mut request, &token)?;
        // Cloned before sending: reqwest consumes the request.
        let replay = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        // Refreshes only if `token` is still the session's current one.
        let fresh = self.session.on_unauthorized(&token).await.map_err(reqwest_middleware::Error::middleware)?;
        let Some(mut replay) = replay else { return Ok(response) };
        authorize(&mut replay, &fresh)?;
        next.run(replay, extensions).await
    }
}

fn authorize(request: &mut Request, token: &AccessToken) -> reqwest_middleware::Result<()> {
    let mut value = HeaderValue::from_str(&token.bearer()).map_err(reqwest_middleware::Error::middleware)?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}
