//! [`TokenService`]: one value per deployment, and the product door to the
//! flows.

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::error::Error;
use crate::events::EventSink;
use crate::flows::login_limit::LoginLimiter;
use crate::flows::parts::Parts;
use crate::keys::jwk::Jwks;
use crate::keys::signer::{BoxSigner, Signer};
use crate::ledger::{BoxLedger, SessionInfo, SessionLedger};
use crate::policy::Policy;
use crate::token::claims::AccessClaims;
use crate::token::ids::SessionId;
use crate::token::pair::TokenPair;
use crate::users::{BoxUserStore, UserStore};
use crate::verifier::AccessVerifier;

/// Everything a deployment's token endpoints need, in one cheap-to-clone
/// value: the [`Policy`], the user directory, the session ledger, the
/// signer and the clock. Build it once at start-up and hand a clone to each
/// handler (it is an `Arc` inside).
///
/// This is the product door: the HTTP endpoint, the axum routes and
/// applications call the flows here. (The design card's framework-agnostic
/// [`refresh`](crate::refresh) runs the same core for one refresh;
/// [`AccessVerifier`] is the door of a resource server that holds only
/// public keys.) Every call is counted once under its operation's metric
/// label, and a 500's cause is logged once, whatever the route.
///
/// The parts are kept behind one type each ([`BoxUserStore`],
/// [`BoxLedger`], [`BoxSigner`]), so that a service picks them at run time
/// and `TokenService` is one concrete type for extractors and router state.
/// That costs one boxed future per store or signer call, a small
/// allocation beside an Ed25519 signature. In-memory stores stay ready at
/// once through the boxes: a future of the memory ledger completes on its
/// first poll.
///
/// ```
/// use token_refresh::{Ed25519Signer, Event, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService, User};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
/// let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock)
///     .with_event_sink(|event: &Event| println!("{event}"));
///
/// let pair = service.issue("bob@mail.com").await?;
/// let claims = service.verify_access_unrevoked(Some(format!("Bearer {}", pair.access_token).as_bytes())).await?;
/// assert_eq!(claims.subject, "bob@mail.com");
/// let next = service.refresh(Some(pair.refresh_token.as_bytes())).await?;
/// service.logout(Some(next.refresh_token.as_bytes())).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenService(Arc<Inner>);

/// The service's parts; `Clone` only for [`TokenService::with_event_sink`]
/// on a service that was already cloned (every field is shared).
#[derive(Clone)]
struct Inner {
    policy: Policy,
    /// The parts, erased once: the accessors hand these out, and the core
    /// borrows the trait object inside each (`as_dyn`), so a call boxes its
    /// future once.
    users: BoxUserStore,
    ledger: BoxLedger,
    signer: BoxSigner,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
    /// Run-time state of the policy's login rate limit.
    login_limiter: LoginLimiter,
    verifier: AccessVerifier,
    jwks: Jwks,
}

impl TokenService {
    /// A service from its parts, reporting events to no sink (see
    /// [`TokenService::with_event_sink`]).
    pub fn new<U, L, S, C>(policy: Policy, users: U, ledger: L, signer: S, clock: C) -> Self
    where
        U: UserStore + 'static,
        L: SessionLedger + 'static,
        S: Signer + 'static,
        C: Clock + 'static,
    {
        let jwks = signer.keyring().to_jwks(policy.algorithm());
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let boxed_signer = BoxSigner::new(signer);
        Self(Arc::new(Inner {
            login_limiter: LoginLimiter::new(policy.login_rate_limit()),
            verifier: AccessVerifier::issuer(policy.clone(), boxed_signer.clone(), Arc::clone(&clock)),
            policy,
            users: BoxUserStore::new(users),
            ledger: BoxLedger::new(ledger),
            signer: boxed_signer,
            clock,
            events: None,
            jwks,
        }))
    }

    /// Reports every [`Event`](crate::Event) (sessions started, rotations,
    /// grace replays, reuse, revocations, evictions) to `sink`, in place of
    /// any sink set before. The sink is wiring, not configuration, so it is
    /// set here rather than on the [`Policy`]. Call it while building the
    /// service: clones made before keep reporting to the sink they had.
    #[must_use]
    pub fn with_event_sink(mut self, sink: impl EventSink) -> Self {
        Arc::make_mut(&mut self.0).events = Some(Arc::new(sink));
        self
    }

    /// The core's context for one call.
    fn parts(&self) -> Parts<'_> {
        let p = &*self.0;
        Parts {
            policy: &p.policy,
            users: p.users.as_dyn(),
            ledger: p.ledger.as_dyn(),
            signer: p.signer.as_dyn(),
            clock: &*p.clock,
            events: p.events.as_deref(),
        }
    }

    /// The FIB login (`POST` on the session endpoint): `body` is
    /// `{email, signature, publicKey}` where `signature` is the hex Ed25519
    /// signature of the e-mail's UTF-8 bytes and `publicKey` the hex of the
    /// user's registered key.
    ///
    /// 400 malformed body (or over [`MAX_LOGIN_BODY`](crate::policy::MAX_LOGIN_BODY));
    /// 422 bad hex or lengths; 404 unknown user; 422 a key that is not the
    /// user's; 401 bad signature or disabled user; 429 over the policy's
    /// [login rate limit](crate::policy::PolicyBuilder::login_rate_limit).
    pub async fn login(&self, body: &[u8]) -> Result<TokenPair, Error> {
        self.parts().login(&self.0.login_limiter, body).await
    }

    /// Starts a session for `subject` without checking a credential: call
    /// it after your own authentication. 404 for an unknown user, 401 for a
    /// disabled one.
    pub async fn issue(&self, subject: &str) -> Result<TokenPair, Error> {
        self.parts().issue(subject).await
    }

    /// The refresh (`PATCH`): verifies the presented refresh token, rotates
    /// it in the ledger, and signs the new pair.
    ///
    /// `authorization` is the raw `Authorization` header value (`None` when
    /// absent), bare or `Bearer`. The checks run in
    /// [spec §4](crate::spec#4-which-outcome-in-which-order) order; the
    /// first that fails decides the [`Error`].
    pub async fn refresh(&self, authorization: Option<&[u8]>) -> Result<TokenPair, Error> {
        self.parts().refresh(authorization).await
    }

    /// The logout (`DELETE`): revokes the whole session of the presented
    /// refresh token, and with it every access token of the session.
    /// Idempotent: logging out of a revoked session succeeds. Works for any
    /// token of the session, and without consulting the user directory (a
    /// deleted user can still be logged out).
    pub async fn logout(&self, authorization: Option<&[u8]>) -> Result<(), Error> {
        self.parts().logout(authorization).await
    }

    /// Checks an access token without the ledger: signature, kind, `exp`
    /// (the service's [`verifier`](TokenService::verifier)). A token of a
    /// session revoked since it was issued passes until its `exp`;
    /// [`TokenService::verify_access_unrevoked`] asks the ledger.
    pub fn verify_access(&self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        self.0.verifier.verify(authorization)
    }

    /// Checks an access token and its session in the ledger: an access token
    /// of a session logged out, caught in a reuse, evicted or forgotten is
    /// refused with 401. An access token superseded by a rotation is refused
    /// too when the policy says so
    /// ([`PolicyBuilder::revoke_superseded_access`](crate::policy::PolicyBuilder::revoke_superseded_access)).
    pub async fn verify_access_unrevoked(&self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        self.parts().verify_access_unrevoked(authorization).await
    }

    /// The stateless access-token check of this service, to hand to code
    /// that should not hold the service: it verifies the service's own
    /// tokens by re-signing where the signer and the policy allow
    /// ([`PolicyBuilder::verify_by_resigning`](crate::policy::PolicyBuilder::verify_by_resigning)).
    pub fn verifier(&self) -> AccessVerifier {
        self.0.verifier.clone()
    }

    /// The public keys tokens verify under, as the JWKS document to serve.
    pub fn jwks(&self) -> &Jwks {
        &self.0.jwks
    }

    /// The live sessions of `subject`, oldest login first: for a "your
    /// devices" page or an administrator.
    pub async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>, Error> {
        self.parts().sessions(subject).await
    }

    /// Revokes one session of `subject` by its id (from
    /// [`TokenService::sessions`]), with every token of it; `Ok(false)` when
    /// there was no such live session.
    pub async fn revoke_session(&self, subject: &str, session: SessionId) -> Result<bool, Error> {
        self.parts().revoke_session(subject, session).await
    }

    /// Removes the ledger's records of sessions that have ended (see
    /// [`SessionLedger::purge`]) and returns how many went. Whatever ledger
    /// the service was built with, this is its retention;
    /// [`TokenService::purge_every`] runs it on a timer.
    pub async fn purge(&self) -> Result<u64, Error> {
        self.parts().purge().await
    }

    /// Purges every `every`, forever (feature `http`, for tokio's timer):
    /// spawn it once at start. Each deployment needs one such loop (more
    /// are harmless). A failed purge is retried at the next tick and, with
    /// the `tracing` feature, logged as a WARN. A minute suits every
    /// ledger: the memory ledger's pass is one walk of its table, Redis's
    /// is free (records expire by TTL), PostgreSQL's is one `DELETE`.
    ///
    /// ```no_run
    /// # fn demo(service: token_refresh::TokenService) {
    /// tokio::spawn(service.clone().purge_every(std::time::Duration::from_secs(60)));
    /// # }
    /// ```
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub async fn purge_every(self, every: std::time::Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = self.purge().await;
            #[cfg(feature = "tracing")]
            match &outcome {
                Ok(purged) => tracing::debug!(target: "token_refresh", purged, "ledger purged"),
                Err(error) => tracing::warn!(target: "token_refresh", %error, "ledger purge failed"),
            }
            drop(outcome);
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// The session ledger (for `revoke_user`, purging, monitoring).
    pub fn ledger(&self) -> &BoxLedger {
        &self.0.ledger
    }

    /// The user directory.
    pub fn users(&self) -> &BoxUserStore {
        &self.0.users
    }

    /// The signer.
    pub fn signer(&self) -> &BoxSigner {
        &self.0.signer
    }
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.0.policy)
            .field("signer", &self.0.signer)
            .field("events", &self.0.events.is_some())
            .finish_non_exhaustive()
    }
}
