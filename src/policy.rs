//! The configuration of the token flows, with the reference API's
//! defaults, and the crate's two input limits.
//!
//! A [`Policy`] is a value, as rustls's `ClientConfig` and governor's
//! `Quota` are: built once, validated when built (fields are private, so an
//! out-of-range lifetime or grace window cannot exist at run time), and
//! holding no run-time state and no wiring. The flows themselves run on
//! [`TokenService`](crate::TokenService); the event sink is wired there too
//! ([`TokenService::with_event_sink`](crate::TokenService::with_event_sink)).

use std::fmt;

use time::Duration;

use crate::keys::Algorithm;
use crate::keys::ResigningKey;
use crate::ledger::{DEFAULT_MAX_SESSIONS_PER_USER, Grace};

/// The longest `Authorization` value looked at (8 KiB). Longer values are
/// refused with 400 before any other work.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// The largest login body looked at (4 KiB); a longer one is refused with
/// 400.
pub const MAX_LOGIN_BODY: usize = 4 * 1024;

/// Default of [`PolicyBuilder::login_rate_limit`].
pub(crate) const DEFAULT_LOGIN_RATE_LIMIT: u32 = 30;

/// Longest grace window ([spec §5](crate::spec#5-rotation-reuse-and-sessions)).
pub const MAX_GRACE: Duration = Duration::seconds(60);
/// The default grace window: long enough for racing presentations (one
/// round trip apart) and a client's retries of a lost answer (its backoff
/// starts at 100 ms), short enough that a stolen predecessor is only worth
/// the pair its owner already holds, and only for seconds
/// ([spec §5](crate::spec#5-rotation-reuse-and-sessions)).
pub const DEFAULT_GRACE: Duration = Duration::seconds(10);
/// The default number of replays one rotation tolerates: peers report 6 to
/// 18 parallel presentations of one refresh token (tabs, workers, agents
/// refreshing at once), so 17 replays beside the rotation, plus the three
/// retries a client sends when answers are lost.
pub const DEFAULT_GRACE_REPLAYS: u32 = 20;
/// Most grace replays one rotation may be configured to tolerate.
pub const MAX_GRACE_REPLAYS: u32 = 100;
/// Highest per-user session cap a policy may set. A login costs O(log n)
/// in the user's sessions on every ledger, but listing a user's sessions
/// and `revoke_user` walk them all (Redis: in bounded batches): the bound
/// keeps those answers small.
pub const MAX_SESSIONS_PER_USER: u32 = 10_000;
/// Longest clock leeway.
pub const MAX_LEEWAY: Duration = Duration::seconds(300);

/// Lifetimes, leeway, grace window and algorithm name for the flows.
///
/// ```
/// use token_refresh::Policy;
/// use time::Duration;
///
/// let policy = Policy::builder().grace_window(Duration::seconds(10)).build()?;
/// assert_eq!(policy.access_lifetime(), Duration::seconds(300));
/// assert!(Policy::builder().grace_window(Duration::seconds(61)).build().is_err());
/// # Ok::<(), token_refresh::policy::PolicyError>(())
/// ```
#[derive(Clone)]
pub struct Policy {
    pub(crate) access_ttl: i64,
    pub(crate) refresh_ttl: i64,
    pub(crate) session_ttl: i64,
    pub(crate) leeway: i64,
    pub(crate) grace: Grace,
    pub(crate) algorithm: Algorithm,
    pub(crate) max_sessions_per_user: u32,
    pub(crate) revoke_superseded_access: bool,
    pub(crate) verify_by_resigning: bool,
    pub(crate) login_rate_limit: u32,
}

impl Default for Policy {
    /// The reference API's defaults: access 300 s, refresh 86 400 s, session 30 days,
    /// no leeway, a 10 s grace window with 20 replays ([`DEFAULT_GRACE`],
    /// [`DEFAULT_GRACE_REPLAYS`]), `EdDSA`, at
    /// most 100 live sessions per user, superseded access tokens valid
    /// until their own `exp`, at most 30 logins per user per minute, our
    /// own tokens verified by re-signing where the signer allows it.
    fn default() -> Self {
        Self {
            access_ttl: 300,
            refresh_ttl: 86_400,
            session_ttl: 30 * 86_400,
            leeway: 0,
            grace: Grace { window: DEFAULT_GRACE.whole_seconds(), max_replays: DEFAULT_GRACE_REPLAYS },
            algorithm: Algorithm::EdDsa,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            revoke_superseded_access: false,
            verify_by_resigning: true,
            login_rate_limit: DEFAULT_LOGIN_RATE_LIMIT,
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("leeway", &self.leeway)
            .field("grace", &self.grace)
            .field("algorithm", &self.algorithm)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("revoke_superseded_access", &self.revoke_superseded_access)
            .field("verify_by_resigning", &self.verify_by_resigning)
            .field("login_rate_limit", &self.login_rate_limit)
            .finish()
    }
}

impl Policy {
    /// A builder starting from the defaults.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder { policy: Self::default(), error: None }
    }

    /// Access token lifetime (the envelope's `expirationTime`).
    pub fn access_lifetime(&self) -> Duration {
        Duration::seconds(self.access_ttl)
    }

    /// Refresh token lifetime, which is also the idle lifetime of a session.
    pub fn refresh_lifetime(&self) -> Duration {
        Duration::seconds(self.refresh_ttl)
    }

    /// Absolute session lifetime: no refresh token outlives it.
    pub fn session_lifetime(&self) -> Duration {
        Duration::seconds(self.session_ttl)
    }

    /// Clock leeway applied to `exp`.
    pub fn leeway(&self) -> Duration {
        Duration::seconds(self.leeway)
    }

    /// Grace window (zero when off).
    pub fn grace_window(&self) -> Duration {
        Duration::seconds(self.grace.window)
    }

    /// Replays one rotation tolerates inside the grace window.
    pub fn grace_max_replays(&self) -> u32 {
        self.grace.max_replays
    }

    /// The `alg` name issued and accepted.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Most live sessions one user may hold; a login beyond it evicts the
    /// user's session nearest its end of life (the least recently
    /// refreshed; among never-refreshed ones, the oldest).
    pub fn max_sessions_per_user(&self) -> u32 {
        self.max_sessions_per_user
    }

    /// Most authentic logins per user per minute (0: no limit); see
    /// [`PolicyBuilder::login_rate_limit`].
    pub fn login_rate_limit(&self) -> u32 {
        self.login_rate_limit
    }

    /// Whether an access token superseded by a rotation is refused by
    /// [`TokenService::verify_access_unrevoked`](crate::TokenService::verify_access_unrevoked) (strict), or stays valid until
    /// its own `exp` (the default).
    pub fn revokes_superseded_access(&self) -> bool {
        self.revoke_superseded_access
    }

    /// Whether tokens under the signer's own key are verified by
    /// re-signing them (the default); see
    /// [`PolicyBuilder::verify_by_resigning`].
    pub fn verifies_by_resigning(&self) -> bool {
        self.verify_by_resigning
    }

    /// The key tokens are verified by re-signing under: the one the
    /// signer `offered`, if the policy allows it.
    pub(crate) fn resigning_key<'s>(&self, offered: Option<ResigningKey<'s>>) -> Option<ResigningKey<'s>> {
        offered.filter(|_| self.verify_by_resigning)
    }
}

/// A policy value out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A lifetime that is not a positive whole number of seconds within its
    /// bound (access ≤ 1 day, refresh and session ≤ 400 days).
    #[error("{0} lifetime out of range")]
    Lifetime(&'static str),
    /// Leeway negative or above [`MAX_LEEWAY`].
    #[error("leeway out of range")]
    Leeway,
    /// Grace window negative or above [`MAX_GRACE`].
    #[error("grace window out of range")]
    GraceWindow,
    /// Grace replays must be 1 to [`MAX_GRACE_REPLAYS`].
    #[error("grace replay count out of range")]
    GraceReplays,
    /// The per-user session cap must be 1 to [`MAX_SESSIONS_PER_USER`].
    #[error("sessions per user out of range")]
    SessionsPerUser,
}

/// Builds a [`Policy`]; errors are reported by [`PolicyBuilder::build`].
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
    error: Option<PolicyError>,
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder").field("policy", &self.policy).field("error", &self.error).finish()
    }
}

const DAY: i64 = 86_400;

impl PolicyBuilder {
    fn seconds(&mut self, value: Duration, min: i64, max: i64, error: PolicyError) -> Option<i64> {
        let whole = value.whole_seconds();
        let ok = value.subsec_nanoseconds() == 0 && (min..=max).contains(&whole);
        if !ok {
            self.error.get_or_insert(error);
        }
        ok.then_some(whole)
    }

    /// Access token lifetime; default 300 s.
    pub fn access_lifetime(mut self, lifetime: Duration) -> Self {
        if let Some(s) = self.seconds(lifetime, 1, DAY, PolicyError::Lifetime("access")) {
            self.policy.access_ttl = s;
        }
        self
    }

    /// Refresh token (and idle session) lifetime; default 86 400 s.
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        if let Some(s) = self.seconds(lifetime, 1, 400 * DAY, PolicyError::Lifetime("refresh")) {
            self.policy.refresh_ttl = s;
        }
        self
    }

    /// Absolute session lifetime; default 30 days.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        if let Some(s) = self.seconds(lifetime, 1, 400 * DAY, PolicyError::Lifetime("session")) {
            self.policy.session_ttl = s;
        }
        self
    }

    /// Leeway for `exp` checks, 0 to 300 s; default 0.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        if let Some(s) = self.seconds(leeway, 0, MAX_LEEWAY.whole_seconds(), PolicyError::Leeway) {
            self.policy.leeway = s;
        }
        self
    }

    /// Grace window, 0 (off: strict rotation, any replay is reuse) to 60 s;
    /// default 10 s ([`DEFAULT_GRACE`]). Inside it a retry with the token
    /// rotated last gets the same pair back, byte for byte.
    pub fn grace_window(mut self, window: Duration) -> Self {
        if let Some(s) = self.seconds(window, 0, MAX_GRACE.whole_seconds(), PolicyError::GraceWindow) {
            self.policy.grace.window = s;
        }
        self
    }

    /// Replays one rotation tolerates in the grace window, 1 to
    /// [`MAX_GRACE_REPLAYS`]; default 20 ([`DEFAULT_GRACE_REPLAYS`]).
    pub fn grace_max_replays(mut self, replays: u32) -> Self {
        if (1..=MAX_GRACE_REPLAYS).contains(&replays) {
            self.policy.grace.max_replays = replays;
        } else {
            self.error.get_or_insert(PolicyError::GraceReplays);
        }
        self
    }

    /// Most live sessions per user, 1 to [`MAX_SESSIONS_PER_USER`]; default
    /// 100. The login that would exceed it evicts the user's session
    /// nearest its end of life, the least recently refreshed ([`crate::Event::SessionEvicted`]): one leaked login body
    /// cannot fill the ledger.
    pub fn max_sessions_per_user(mut self, sessions: u32) -> Self {
        if (1..=MAX_SESSIONS_PER_USER).contains(&sessions) {
            self.policy.max_sessions_per_user = sessions;
        } else {
            self.error.get_or_insert(PolicyError::SessionsPerUser);
        }
        self
    }

    /// Most authentic logins per user per minute, per
    /// [`TokenService`](crate::TokenService) (its clones share the count); 0 turns
    /// the limit off (load tests); default 30. A user may log in that many
    /// times at once, then once every `60 / n` seconds; beyond it a login
    /// answers 429 [`Error::TooManyLogins`](crate::Error::TooManyLogins)
    /// with `Retry-After: 60` and starts no session. Only logins whose
    /// signature verified count, so nobody can spend another user's
    /// allowance; with several instances, each counts its own. The cap on
    /// live sessions ([`max_sessions_per_user`](Self::max_sessions_per_user))
    /// bounds the ledger with the limit off too; the limit keeps a leaked
    /// login body from being replayed thousands of times a second.
    pub fn login_rate_limit(mut self, per_minute: u32) -> Self {
        self.policy.login_rate_limit = per_minute;
        self
    }

    /// Strict access revocation: [`TokenService::verify_access_unrevoked`](crate::TokenService::verify_access_unrevoked) refuses
    /// an access token as soon as a rotation supersedes it. Off by default:
    /// a refresh in one tab would otherwise fail the in-flight calls of
    /// every other tab holding the previous access token, which lives at
    /// most its own short lifetime anyway. Logout, reuse and eviction
    /// revoke every access token of the session either way.
    pub fn revoke_superseded_access(mut self, strict: bool) -> Self {
        self.policy.revoke_superseded_access = strict;
        self
    }

    /// Verification by re-signing, on by default: refresh, logout and
    /// [`TokenService`](crate::TokenService)'s access-token checks verify
    /// a token under the signer's own key (when the signer is in process
    /// and deterministic, see [`Signer::resigning_key`](crate::Signer::resigning_key)) by signing its
    /// signing input again and comparing in constant time, one signature
    /// instead of one verification. `false` keeps the normal verification
    /// for every token, for a security review that wants exactly
    /// `verify_strict`'s rules: the answers differ only on a second
    /// signature under our key with another nonce, which re-signing
    /// refuses and only a holder of the secret key can make
    /// (`docs/security.md`, § Verification by re-signing).
    pub fn verify_by_resigning(mut self, enabled: bool) -> Self {
        self.policy.verify_by_resigning = enabled;
        self
    }

    /// Issue and accept `alg` = `algorithm`; default `EdDSA`.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.policy.algorithm = algorithm;
        self
    }

    /// The policy, or the first out-of-range value.
    pub fn build(self) -> Result<Policy, PolicyError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.policy),
        }
    }
}
