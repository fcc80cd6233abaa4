//! The core's entry: every operation, from every door, passes here once.
//!
//! Each method runs one flow on its [`Parts`] and then [`settle`]s the
//! outcome: the request metric (`recording`) and the log line of a 500's
//! cause happen here and nowhere else, so whether a call is counted no
//! longer depends on the route it took.

use crate::clock::Clock;
use crate::error::Error;
use crate::flows::login_limit::LoginLimiter;
use crate::flows::parts::Parts;
use crate::flows::{access, login, logout, refresh, sessions};
use crate::keys::{Keyring, ResigningKey};
use crate::ledger::SessionInfo;
use crate::policy::Policy;
use crate::token::claims::AccessClaims;
use crate::token::ids::SessionId;
use crate::token::pair::TokenPair;

impl Parts<'_> {
    pub(crate) async fn refresh(self, authorization: Option<&[u8]>) -> Result<TokenPair, Error> {
        settle("refresh", refresh::refresh(self, authorization).await)
    }

    pub(crate) async fn issue(self, subject: &str) -> Result<TokenPair, Error> {
        settle("issue", login::issue(self, subject).await)
    }

    pub(crate) async fn login(self, limiter: &LoginLimiter, body: &[u8]) -> Result<TokenPair, Error> {
        settle("login", login::login(self, limiter, body).await)
    }

    pub(crate) async fn logout(self, authorization: Option<&[u8]>) -> Result<(), Error> {
        settle("logout", logout::logout(self, authorization).await)
    }

    pub(crate) async fn verify_access_unrevoked(self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        settle("verify_access", access::verify_access_unrevoked(self, authorization).await)
    }

    pub(crate) async fn sessions(self, subject: &str) -> Result<Vec<SessionInfo>, Error> {
        settle("sessions", sessions::sessions(self, subject).await)
    }

    pub(crate) async fn revoke_session(self, subject: &str, session: SessionId) -> Result<bool, Error> {
        settle("revoke_session", sessions::revoke_session(self, subject, session).await)
    }

    pub(crate) async fn purge(self) -> Result<u64, Error> {
        settle("purge", sessions::purge(self).await)
    }
}

/// The stateless access-token check of an
/// [`AccessVerifier`](crate::AccessVerifier), which holds no [`Parts`]: the
/// keys and, for the issuer's own verifier, the key it re-signs under.
pub(crate) fn verify_access(
    policy: &Policy,
    authorization: Option<&[u8]>,
    keyring: &Keyring,
    own: Option<ResigningKey<'_>>,
    clock: &dyn Clock,
) -> Result<AccessClaims, Error> {
    settle("verify_access", access::verify_access(policy, authorization, keyring, own, clock))
}

/// Records the outcome of operation `op` (the metric label) and, for a
/// 500, logs its cause (feature `tracing`, `error` level, target
/// `token_refresh`). The cause never reaches the HTTP body; it comes from
/// the stores, the signer and the clock, which never see a token or a key.
fn settle<T>(op: &'static str, result: Result<T, Error>) -> Result<T, Error> {
    crate::recording::request(op, &result);
    #[cfg(feature = "tracing")]
    if let Err(Error::Internal(internal)) = &result {
        let cause = std::error::Error::source(internal).map(ToString::to_string).unwrap_or_default();
        tracing::error!(target: "token_refresh", component = ?internal.kind(), cause = %cause, "request failed with 500");
    }
    result
}
