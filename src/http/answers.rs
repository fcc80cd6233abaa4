//! The HTTP answers of the crate's adapters, built in one place: the
//! [`axum`](crate::axum) integration and [`Endpoint`](super::Endpoint) both
//! call these, so their statuses, envelope bytes and headers cannot drift
//! apart. The headers of an envelope come from one function,
//! `From<Reply> for http::Response<Vec<u8>>` (`envelope.rs`); this module
//! adds only what a particular answer carries on top (`Allow`,
//! `Connection: close`, the JWKS cache policy).

use ::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use ::http::{HeaderMap, HeaderValue, Response};
use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};

use crate::envelope::{JWKS_CACHE_CONTROL, Reply};
use crate::error::{BadRequest, Error, InternalKind};
use crate::keys::jwk::Jwks;
use crate::policy::MAX_LOGIN_BODY;

/// The methods the session endpoint answers, for `Allow` on its 405.
pub(crate) const SESSION_METHODS: &str = "POST, PATCH, DELETE";

/// The methods the JWKS document answers, for `Allow` on its 405.
pub(crate) const JWKS_METHODS: &str = "GET, HEAD";

/// `reply` as a response: status, envelope, `Content-Type`,
/// `Cache-Control: no-store`, `Pragma: no-cache`, `WWW-Authenticate` on
/// 400/401.
pub(crate) fn reply(reply: Reply) -> Response<Vec<u8>> {
    Response::from(reply)
}

/// The answer for a flow's result.
#[cfg(feature = "axum")]
pub(crate) fn result<T: crate::envelope::ReplyData>(result: &Result<T, Error>) -> Response<Vec<u8>> {
    reply(Reply::from_result(result))
}

/// The failure answer for `error`.
pub(crate) fn error(error: &Error) -> Response<Vec<u8>> {
    reply(Reply::from_error(error))
}

/// 405 for a known path and another method, with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Vec<u8>> {
    reply(Reply::method_not_allowed(allow))
}

/// 404 for a path the endpoint does not serve.
pub(crate) fn not_found() -> Response<Vec<u8>> {
    reply(Reply::not_found())
}

/// The request ran past its deadline ([`Reply::deadline_exceeded`]).
pub(crate) fn timed_out() -> Response<Vec<u8>> {
    reply(Reply::deadline_exceeded())
}

/// A login body over [`MAX_LOGIN_BODY`] ([`Reply::login_body_too_large`]).
pub(crate) fn login_body_too_large() -> Response<Vec<u8>> {
    reply(Reply::login_body_too_large())
}

/// The JWKS document's bytes; a 500 if it cannot be encoded (it always
/// can: the crate's own types).
pub(crate) fn jwks_document(jwks: &Jwks) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(jwks).map_err(|cause| Error::internal(InternalKind::Encoding, cause))
}

/// The JWKS answer around an encoded `document`: 200, JSON, cacheable for
/// five minutes.
/// The headers are [`Reply::jwks`]'s; the endpoint keeps the document
/// encoded once and sends it as shared bytes.
pub(crate) fn jwks<B>(document: B) -> Response<B> {
    let mut response = Response::new(document);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE_CONTROL));
    response
}

/// The one `Authorization` value of a request, `None` when absent.
pub(crate) fn authorization(headers: &HeaderMap) -> Result<Option<&[u8]>, Error> {
    sole_authorization(headers.get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes))
}

/// The one `Authorization` value among a request's `values` (the header's
/// values in order), `None` when there is none. Two or more are ambiguous
/// and refused with 400 ([`BadRequest::RepeatedHeader`]) rather than
/// guessing which one a proxy or the client meant. Framework-neutral: any
/// `http` version's header values are bytes.
///
/// ```
/// use token_refresh::http::sole_authorization;
///
/// assert_eq!(sole_authorization([&b"Bearer x"[..]]).ok(), Some(Some(&b"Bearer x"[..])));
/// assert_eq!(sole_authorization(std::iter::empty()).ok(), Some(None));
/// let refused = sole_authorization([&b"Bearer x"[..], b"Bearer y"]).err();
/// assert_eq!(refused.map(|error| error.status_code()), Some(400));
/// ```
pub fn sole_authorization<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<&'a [u8]>, Error> {
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(BadRequest::RepeatedHeader.into()),
    }
}

/// The login body, at most [`MAX_LOGIN_BODY`] bytes; `None` when the
/// declared `Content-Length` is already over (refused without reading),
/// when the body turns out longer (chunked, or a lying length), or when it
/// could not be read. Answer `None` with [`login_body_too_large`].
pub(crate) async fn read_login_body<B>(headers: &HeaderMap, body: B) -> Option<Bytes>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if declared_too_large(headers.get(CONTENT_LENGTH)) {
        return None;
    }
    Limited::new(body, MAX_LOGIN_BODY).collect().await.ok().map(|collected| collected.to_bytes())
}

/// Whether a declared `Content-Length` already rules the login body out.
/// An unparsable length is left to the bounded read.
fn declared_too_large(content_length: Option<&HeaderValue>) -> bool {
    content_length
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .is_some_and(|length| length > MAX_LOGIN_BODY as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_envelopes_are_the_expected_bytes() {
        let cases = [
            (
                method_not_allowed(SESSION_METHODS),
                405,
                &br#"{"status":{"code":405,"name":"METHOD_NOT_ALLOWED","message":"method not allowed"},"data":null}"#[..],
            ),
            (not_found(), 404, br#"{"status":{"code":404,"name":"NOT_FOUND","message":"no such endpoint"},"data":null}"#),
            (
                timed_out(),
                500,
                br#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#,
            ),
        ];
        for (response, status, body) in cases {
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.body().as_slice(), body);
            assert_eq!(response.headers().get(CACHE_CONTROL).map(HeaderValue::as_bytes), Some(&b"no-store"[..]));
            assert!(response.headers().get("www-authenticate").is_none());
        }
    }

    #[test]
    fn declared_lengths() {
        let over = HeaderValue::from(MAX_LOGIN_BODY + 1);
        let at = HeaderValue::from(MAX_LOGIN_BODY);
        assert!(declared_too_large(Some(&over)));
        assert!(!declared_too_large(Some(&at)));
        assert!(!declared_too_large(Some(&HeaderValue::from_static("nonsense"))));
        assert!(!declared_too_large(None));
    }
}
