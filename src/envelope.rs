//! The JSON envelope of [spec §3](crate::spec#3-the-response-envelope), byte-compatible with the reference API's.
//!
//! Success: `{"status":{"code":200,"name":"OK"},"data":{…}}` with no
//! `message` member. Failure: the same shape with `data: null` and a public
//! message. [`Reply`] bundles the status, body and headers an HTTP adapter
//! needs, so every framework writes the same bytes.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, StatusName};
use crate::keys::jwk::Jwks;
use crate::ledger::Grace;
use crate::token::json;
use crate::token::pair::TokenPair;

/// `{"status":…,"data":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Status code, name and (on failure) message.
    pub status: Status,
    /// The payload on success; `null` on failure.
    pub data: Option<T>,
}

/// `{"code":…,"name":…,"message":…}`; `message` only on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The HTTP status code.
    pub code: u16,
    /// The stable machine name, e.g. `OK` or `UNAUTHORIZED`.
    pub name: Cow<'static, str>,
    /// A short public message; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'static, str>>,
}

impl<T> Envelope<T> {
    /// A 200 `OK` envelope around `data`.
    pub fn ok(data: T) -> Self {
        Self { status: Status::ok(), data: Some(data) }
    }

    /// The failure envelope for `error`: `data: null`, public message only.
    pub fn error(error: &Error) -> Self {
        Self {
            status: Status {
                code: error.status_code(),
                name: Cow::Borrowed(error.name()),
                message: Some(Cow::Borrowed(error.public_message())),
            },
            data: None,
        }
    }
}

impl Envelope<()> {
    /// `{"status":{"code":200,"name":"OK"},"data":null}`: success with
    /// nothing to return (logout).
    pub fn empty() -> Self {
        Self { status: Status::ok(), data: None }
    }
}

impl Status {
    fn ok() -> Self {
        Self { code: StatusName::Ok.code(), name: Cow::Borrowed(StatusName::Ok.as_str()), message: None }
    }
}

/// The envelope of every 500, written out (a test checks it against the
/// serializer's).
const INTERNAL_ERROR_BODY: &[u8] =
    br#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#;

/// `Cache-Control` of every answer that may hold a token.
const NO_STORE: &str = "no-store";

/// `Cache-Control` of the public key set.
pub(crate) const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// Room for the success envelope of a token pair with a `kid` (about
/// 750 bytes) without reallocating.
const BODY_CAPACITY: usize = 1024;

/// An HTTP answer ready to write: status, JSON body, and the headers every
/// token response carries.
///
/// ```
/// use token_refresh::{Reply, Error, error::Unauthorized};
///
/// let reply = Reply::from_error(&Error::from(Unauthorized::Expired));
/// assert_eq!(reply.status(), 401);
/// assert_eq!(
///     reply.body(),
///     br#"{"status":{"code":401,"name":"UNAUTHORIZED","message":"token has expired"},"data":null}"#
/// );
/// assert!(reply.headers().any(|(name, value)| name == "www-authenticate"
///     && value == r#"Bearer error="invalid_token""#));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    body: Vec<u8>,
    www_authenticate: Option<&'static str>,
    /// `no-store` for everything but the public key set.
    cache_control: &'static str,
    /// The one header a particular answer adds (`Allow` on a 405,
    /// `Connection: close` after an unread body).
    extra_header: Option<(&'static str, &'static str)>,
    /// `Token-Refresh-Grace` on the 200 of a login or refresh.
    grace: Option<String>,
}

/// The header a login's or refresh's 200 carries: the grace window the
/// issuing policy keeps for the pair's rotation, so a client can size its
/// refresh margin and know how long a lost answer may be retried
/// ([spec §5](crate::spec#5-rotation-reuse-and-sessions)). Its value is an
/// RFC 9651 integer with a parameter: `10;replays=20` (seconds, replays);
/// `0` when the window is off (strict rotation).
pub const GRACE_HEADER: &str = "token-refresh-grace";

/// The value of [`GRACE_HEADER`] for `grace`.
pub(crate) fn grace_header_value(grace: Grace) -> String {
    if grace.window <= 0 {
        return "0".to_owned();
    }
    // Built on every refresh answer: digits by hand, not `format!`, whose
    // machinery cost more than the rest of the headers together.
    let mut value = String::with_capacity(32);
    push_decimal(&mut value, grace.window.unsigned_abs());
    value.push_str(";replays=");
    push_decimal(&mut value, u64::from(grace.max_replays));
    value
}

/// Appends `number` in decimal.
fn push_decimal(out: &mut String, number: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = number;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
        start -= 1;
        if rest == 0 {
            break;
        }
    }
    for &digit in digits.iter().skip(start) {
        out.push(char::from(digit));
    }
}

/// What a successful flow returns, written into its 200 [`Reply`]: how
/// [`Reply::from_result`] answers an `Ok`. Implemented for what the
/// crate's flows return; an application's own data goes through
/// [`Reply::ok`].
pub trait ReplyData {
    /// The 200 reply carrying `self`.
    fn reply(&self) -> Reply;
}

/// A token pair (what login and refresh return) is written without a
/// serializer: scanning its ~700 token bytes for escapes, byte by byte,
/// was a visible share of a refresh's non-cryptographic work. The bytes
/// are the same as [`Reply::ok`]'s (a test compares them). Its headers add
/// [`GRACE_HEADER`] with the pair's grace window.
impl ReplyData for TokenPair {
    fn reply(&self) -> Reply {
        Reply {
            grace: Some(grace_header_value(self.grace)),
            ..Reply::new(StatusName::Ok.code(), token_pair_body(self), None)
        }
    }
}

/// Logout: `data: null`.
impl ReplyData for () {
    fn reply(&self) -> Reply {
        Reply::empty()
    }
}

impl ReplyData for crate::token::claims::AccessClaims {
    fn reply(&self) -> Reply {
        Reply::ok(self)
    }
}

impl Reply {
    /// A 200 reply around `data`.
    pub fn ok<T: Serialize>(data: T) -> Self {
        Self::encode(StatusName::Ok.code(), &Envelope::ok(data), None)
    }

    /// A 200 reply with `data: null`.
    pub fn empty() -> Self {
        Self::encode(StatusName::Ok.code(), &Envelope::empty(), None)
    }

    /// The failure reply for `error`.
    pub fn from_error(error: &Error) -> Self {
        let mut reply = Self::encode(error.status_code(), &Envelope::<()>::error(error), error.www_authenticate());
        reply.extra_header = error.retry_after().map(|seconds| ("retry-after", seconds));
        reply
    }

    /// The reply for a flow's result: [`ReplyData::reply`] for a success,
    /// [`Reply::from_error`] for a failure.
    pub fn from_result<T: ReplyData>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(data) => data.reply(),
            Err(error) => Self::from_error(error),
        }
    }

    /// An answer with any status of [`StatusName`], `message` in the
    /// envelope and `data: null`: for an application's own refusals in the
    /// crate's envelope (a 403 from its own permission check, a 404 of its
    /// own resource). For a failure with a cause to log, build an
    /// [`Error`] instead ([`crate::error::Internal::new`]).
    ///
    /// ```
    /// use token_refresh::Reply;
    /// use token_refresh::error::StatusName;
    ///
    /// let reply = Reply::failure(StatusName::Forbidden, "orders are read-only on Sundays");
    /// assert_eq!(reply.status(), 403);
    /// assert_eq!(
    ///     reply.body(),
    ///     br#"{"status":{"code":403,"name":"FORBIDDEN","message":"orders are read-only on Sundays"},"data":null}"#
    /// );
    /// ```
    pub fn failure(status: StatusName, message: impl Into<Cow<'static, str>>) -> Self {
        let envelope = Envelope::<()> {
            status: Status { code: status.code(), name: Cow::Borrowed(status.as_str()), message: Some(message.into()) },
            data: None,
        };
        Self::encode(status.code(), &envelope, None)
    }

    /// 404 `no such endpoint`: a path the service does not serve.
    pub fn not_found() -> Self {
        Self::failure(StatusName::NotFound, "no such endpoint")
    }

    /// 405 `method not allowed` with `Allow: {allow}`, for a known path and
    /// another method (`allow` lists the path's methods, e.g.
    /// `"POST, PATCH, DELETE"`).
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut reply = Self::failure(StatusName::MethodNotAllowed, "method not allowed");
        reply.extra_header = Some(("allow", allow));
        reply
    }

    /// A login body over [`MAX_LOGIN_BODY`](crate::MAX_LOGIN_BODY), declared
    /// or actual, or one that could not be read: 400, the status the core
    /// gives an oversized body itself ([`BadRequest::MalformedBody`]), so the
    /// limit looks the same whichever side enforces it (413 would add a
    /// status outside the spec's set). The rest of the body is never read,
    /// so the connection cannot carry another request: `Connection: close`
    /// says so.
    ///
    /// [`BadRequest::MalformedBody`]: crate::error::BadRequest::MalformedBody
    pub fn login_body_too_large() -> Self {
        let mut reply = Self::from_error(&Error::from(crate::error::BadRequest::MalformedBody));
        reply.extra_header = Some(("connection", "close"));
        reply
    }

    /// The request ran past its deadline: a 500 like any other failure to
    /// answer in time ([spec §4](crate::spec#4-which-outcome-in-which-order) step 11),
    /// the same bytes as a store failure's.
    pub fn deadline_exceeded() -> Self {
        Self::internal_error()
    }

    /// A 500 with the constant body every internal failure answers with
    /// (`"internal server error"`, no cause): for an answer that could not
    /// be built. Building it cannot fail in turn.
    pub fn internal_error() -> Self {
        Self::new(StatusName::InternalServerError.code(), INTERNAL_ERROR_BODY.to_vec(), None)
    }

    /// Liveness: 200 with `message: "serving"`. The process answers, which
    /// is all a liveness probe may ask (a ledger outage must not get the
    /// process restarted).
    pub fn live() -> Self {
        Self::failure(StatusName::Ok, "serving")
    }

    /// Readiness when the session ledger answers: 200, `message: "ready"`.
    pub fn ready() -> Self {
        Self::failure(StatusName::Ok, "ready")
    }

    /// Readiness when the session ledger does not answer: 503
    /// `SERVICE_UNAVAILABLE`, so a load balancer sends the traffic
    /// elsewhere. The cause is for the logs, never the body.
    pub fn not_ready() -> Self {
        Self::failure(StatusName::ServiceUnavailable, "the session ledger is not answering")
    }

    /// The JWKS document of `jwks`: 200, JSON, `Cache-Control: public,
    /// max-age=300`: short enough that a key rotation reaches resource
    /// servers within minutes. Not an envelope: JWKS clients expect the bare
    /// RFC 7517 key set.
    pub fn jwks(jwks: &Jwks) -> Self {
        match serde_json::to_vec(jwks) {
            Ok(body) => Self { cache_control: JWKS_CACHE_CONTROL, ..Self::new(StatusName::Ok.code(), body, None) },
            // Our own types always encode; should one not, answer 500.
            Err(_) => Self::internal_error(),
        }
    }

    fn new(status: u16, body: Vec<u8>, www_authenticate: Option<&'static str>) -> Self {
        Self { status, body, www_authenticate, cache_control: NO_STORE, extra_header: None, grace: None }
    }

    fn encode<T: Serialize>(status: u16, envelope: &Envelope<T>, www_authenticate: Option<&'static str>) -> Self {
        // Sized for a token pair in one allocation: growing from serde_json's
        // default 128 bytes copied the body three times.
        let mut body = Vec::with_capacity(BODY_CAPACITY);
        match serde_json::to_writer(&mut body, envelope) {
            Ok(()) => Self::new(status, body, www_authenticate),
            // Serializing our own types cannot fail; if a caller's `T` does,
            // answer 500 rather than a half-written body. The 500 body is a
            // constant, so this answer cannot fail in turn.
            Err(_) => Self::internal_error(),
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, by value.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The headers to send, lower-case names: `content-type`,
    /// `cache-control: no-store` and `pragma: no-cache` (tokens must not be
    /// cached, RFC 6749 §5.1; the [JWKS document](Reply::jwks) is public
    /// instead), `www-authenticate` on 400/401, the answer's own
    /// (`allow` on a 405, `connection: close` on a refused login body), and
    /// [`GRACE_HEADER`] on the 200 of a login or refresh.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        let fixed = self.fixed_headers().map(|(name, value): (&'static str, &'static str)| (name, value as &str));
        fixed.chain(self.grace.as_deref().map(|value| (GRACE_HEADER, value)))
    }

    /// The headers whose values are fixed strings: all but [`GRACE_HEADER`].
    fn fixed_headers(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        let pragma = (self.cache_control == NO_STORE).then_some(("pragma", "no-cache"));
        [("content-type", "application/json"), ("cache-control", self.cache_control)]
            .into_iter()
            .chain(pragma)
            .chain(self.www_authenticate.map(|value| ("www-authenticate", value)))
            .chain(self.extra_header)
    }
}

/// The success envelope of `pair`, written directly (see [`crate::token::json`]).
fn token_pair_body(pair: &TokenPair) -> Vec<u8> {
    let mut body = Vec::with_capacity(BODY_CAPACITY.max(pair.access_token.len() + pair.refresh_token.len() + 128));
    body.extend_from_slice(br#"{"status":{"code":200,"name":"OK"},"data":"#);
    json::Object::new(&mut body)
        .str("accessToken", &pair.access_token)
        .str("refreshToken", &pair.refresh_token)
        .int("expirationTime", pair.expiration_time)
        .end();
    body.push(b'}');
    body
}

impl fmt::Debug for Reply {
    // The body may hold tokens: show only its size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").field("status", &self.status).field("body_len", &self.body.len()).finish()
    }
}

#[cfg(feature = "http")]
impl From<Reply> for http::Response<Vec<u8>> {
    fn from(reply: Reply) -> Self {
        let mut response = http::Response::new(Vec::new());
        *response.status_mut() =
            http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        // Fixed values cost nothing to convert; only the grace value is
        // built per answer, and it moves into the header without a copy.
        for (name, value) in reply.fixed_headers() {
            headers.insert(name, http::HeaderValue::from_static(value));
        }
        // Ours and visible ASCII; one that were not would be left out
        // rather than fail the answer.
        if let Some(Ok(value)) = reply.grace.map(http::HeaderValue::try_from) {
            headers.insert(GRACE_HEADER, value);
        }
        *response.body_mut() = reply.body;
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_grace_header_value_is_the_formatted_one() {
        for (window, max_replays) in [(1, 0), (10, 20), (9, 9), (86_400, u32::MAX), (i64::MAX, 1)] {
            let value = grace_header_value(Grace { window, max_replays });
            assert_eq!(value, format!("{window};replays={max_replays}"));
        }
        assert_eq!(grace_header_value(Grace { window: 0, max_replays: 5 }), "0");
    }

    #[test]
    fn the_written_500_body_is_the_serialized_one() {
        let error = Error::internal(crate::error::InternalKind::Encoding, "cause");
        assert_eq!(INTERNAL_ERROR_BODY, serde_json::to_vec(&Envelope::<()>::error(&error)).unwrap().as_slice());
        let failing = Reply::ok(&Failing);
        assert_eq!((failing.status(), failing.body()), (500, INTERNAL_ERROR_BODY));
    }

    /// A `T` whose serialization fails.
    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }

    use super::*;
    use crate::error::{BadRequest, Unauthorized};

    #[test]
    fn success_bytes_match_the_seed_shape() {
        let pair = TokenPair::new("a".into(), "r".into(), 300);
        let body = serde_json::to_string(&Envelope::ok(pair)).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"status":{"code":200,"name":"OK"},"data":{"accessToken":"a","refreshToken":"r","expirationTime":300}}"#
        );
    }

    #[test]
    fn failure_bytes_have_null_data_and_a_message() {
        let reply = Reply::from_error(&Error::from(BadRequest::MissingHeader));
        assert_eq!(reply.status(), 400);
        assert_eq!(
            reply.body(),
            br#"{"status":{"code":400,"name":"BAD_REQUEST","message":"authorization header is missing"},"data":null}"#
        );
        assert!(reply.headers().any(|h| h == ("www-authenticate", r#"Bearer error="invalid_request""#)));
    }

    #[test]
    fn token_pair_fast_path_writes_the_serializer_bytes() {
        let pairs = [
            ("eyJ0.eyJz.c2ln-_", "eyJ0.eyJy.AAAA", 300),
            ("", "", i64::MIN),
            ("a", "b", i64::MAX),
            // Bytes JSON escapes (only a caller-made pair holds them).
            ("quote\"", "back\\slash", 1),
            ("line\nbreak", "tab\t", -1),
            ("ünïcode", "\u{7f}", 0),
        ];
        for (access, refresh, expiration_time) in pairs {
            let pair = TokenPair::new(access.into(), refresh.into(), expiration_time);
            let fast = Reply::from_result(&Ok::<_, Error>(pair.clone()));
            let serde = Reply::ok(&pair);
            assert_eq!(fast.body(), serde.body(), "{access:?} {refresh:?}");
            assert_eq!(fast.status(), 200);
            assert!(fast.headers().filter(|(name, _)| *name != GRACE_HEADER).eq(serde.headers()));
            assert!(fast.headers().any(|header| header == (GRACE_HEADER, "0")));
            let parsed: Envelope<TokenPair> = serde_json::from_slice(fast.body()).unwrap_or_else(|_| unreachable!());
            assert_eq!(parsed.data, Some(pair));
        }
    }

    #[test]
    fn a_pair_advertises_its_policys_grace_window() {
        let mut pair = TokenPair::new("a".into(), "r".into(), 300);
        pair.grace = Grace { window: 10, max_replays: 20 };
        let reply = Reply::from_result(&Ok::<_, Error>(pair));
        assert!(reply.headers().any(|header| header == ("token-refresh-grace", "10;replays=20")));
        let failure = Reply::from_result(&Err::<TokenPair, _>(Error::from(Unauthorized::Expired)));
        assert!(failure.headers().all(|(name, _)| name != GRACE_HEADER));
    }

    #[test]
    fn debug_never_prints_tokens() {
        let pair = TokenPair::new("SECRET-A".into(), "SECRET-R".into(), 1);
        let shown = format!("{pair:?} {:?}", Reply::ok(&pair));
        assert!(!shown.contains("SECRET"), "{shown}");
        let _ = Unauthorized::Expired;
    }
}
