//! [`Transport`] over hyper-util's legacy client (feature `hyper`).

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

use crate::error::TransportError;
use crate::transport::{Call, Request, Response, Transport};

/// The session endpoint's path on the reference server.
pub const SESSION_PATH: &str = "/auth/api/v1/authentication-management/session";

/// The largest answer read (a token pair's envelope is under 1 KiB).
const MAX_BODY: usize = 64 * 1024;

/// The session endpoint over hyper 1 (HTTP/1, connection pool). Cheap to
/// clone.
///
/// [`HyperTransport::new`] speaks plain HTTP (loopback, a sidecar, a
/// private network). For TLS build a client with a TLS connector (for
/// example `hyper-rustls`) and pass it to [`HyperTransport::with_client`].
#[derive(Debug, Clone)]
pub struct HyperTransport<C = HttpConnector> {
    client: Client<C, Full<Bytes>>,
    endpoint: Uri,
}

impl HyperTransport {
    /// The session endpoint at `base` (`http://host:port`) plus the
    /// reference server's path.
    pub fn new(base: &str) -> Result<Self, http::uri::InvalidUri> {
        Self::at(&format!("{}{SESSION_PATH}", base.trim_end_matches('/')))
    }

    /// The session endpoint at exactly `url`.
    pub fn at(url: &str) -> Result<Self, http::uri::InvalidUri> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client, endpoint: url.parse()? })
    }
}

impl<C> HyperTransport<C> {
    /// The session endpoint at exactly `url`, through `client`.
    pub fn with_client(client: Client<C, Full<Bytes>>, url: &str) -> Result<Self, http::uri::InvalidUri> {
        Ok(Self { client, endpoint: url.parse()? })
    }
}

impl<C: Connect + Clone + Send + Sync + 'static> Transport for HyperTransport<C> {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let mut builder = http::Request::builder().method(request.method()).uri(self.endpoint.clone());
        if let Some(authorization) = request.authorization() {
            let mut value = HeaderValue::from_str(authorization).map_err(TransportError::not_sent)?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        if request.call() == Call::Login {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let http_request =
            builder.body(Full::new(Bytes::copy_from_slice(request.body()))).map_err(TransportError::not_sent)?;
        let answer = self.client.request(http_request).await.map_err(|error| {
            if error.is_connect() { TransportError::not_sent(error) } else { TransportError::maybe_sent(error) }
        })?;
        let (parts, body) = answer.into_parts();
        let body = Limited::new(body, MAX_BODY).collect().await.map_err(TransportError::maybe_sent)?.to_bytes();
        let mut response = Response::new(parts.status.as_u16(), body.to_vec());
        // The two headers the session reads.
        for name in [http::header::RETRY_AFTER.as_str(), crate::wire::GRACE_HEADER] {
            if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
                response = response.with_header(name, value);
            }
        }
        Ok(response)
    }
}
