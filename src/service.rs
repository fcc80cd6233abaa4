//! [`TokenService`]: one value per deployment, and the one way in.

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::error::Error;
use crate::flows::policy::Policy;
use crate::flows::store::Store;
use crate::flows::{access, session};
use crate::keys::jwk::Jwks;
use crate::keys::signer::{BoxSigner, Signer};
use crate::ledger::{BoxLedger, SessionInfo, SessionLedger};
use crate::token::claims::AccessClaims;
use crate::token::ids::SessionId;
use crate::token::pair::TokenPair;
use crate::users::{BoxUserStore, UserStore};

/// Everything a deployment's token endpoints need, in one cheap-to-clone
/// value: the [`Policy`], the user directory, the session ledger, the
/// signer and the clock. Build it once at start-up and hand a clone to each
/// handler (it is an `Arc` inside).
///
/// The parts are kept behind one type each ([`BoxUserStore`],
/// [`BoxLedger`], [`BoxSigner`]), so that a service picks them at run time
/// and `TokenService` is one concrete type for extractors and router state.
/// That costs one boxed future per store or signer call, a small
/// allocation beside an Ed25519 signature.
///
/// ```
/// use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService, User};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
/// let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock);
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
pub struct TokenService(Arc<Parts>);

struct Parts {
    policy: Policy,
    store: Store<BoxUserStore, BoxLedger>,
    signer: BoxSigner,
    clock: Arc<dyn Clock>,
    jwks: Jwks,
}

impl TokenService {
    /// A service from its parts.
    pub fn new<U, L, S, C>(policy: Policy, users: U, ledger: L, signer: S, clock: C) -> Self
    where
        U: UserStore + 'static,
        L: SessionLedger + 'static,
        S: Signer + 'static,
        C: Clock + 'static,
    {
        let jwks = signer.keyring().to_jwks(policy.algorithm());
        Self(Arc::new(Parts {
            policy,
            store: Store::new(BoxUserStore::new(users), BoxLedger::new(ledger)),
            signer: BoxSigner::new(signer),
            clock: Arc::new(clock),
            jwks,
        }))
    }

    /// The login (`POST` on the session endpoint): `body` is the FIB login
    /// body `{email, signature, publicKey}`; see [`Policy::login`].
    pub async fn login(&self, body: &[u8]) -> Result<TokenPair, Error> {
        let p = &self.0;
        p.policy.login(body, &p.store, &p.signer, &p.clock).await
    }

    /// Starts a session for `subject` after your own authentication; see
    /// [`Policy::issue`].
    pub async fn issue(&self, subject: &str) -> Result<TokenPair, Error> {
        let p = &self.0;
        p.policy.issue(subject, &p.store, &p.signer, &p.clock).await
    }

    /// The refresh (`PATCH`): `authorization` is the raw `Authorization`
    /// header value, `None` when absent; see [`Policy::refresh`].
    pub async fn refresh(&self, authorization: Option<&[u8]>) -> Result<TokenPair, Error> {
        let p = &self.0;
        p.policy.refresh(authorization, &p.store, &p.signer, &p.clock).await
    }

    /// The logout (`DELETE`): revokes the session of the presented refresh
    /// token; see [`Policy::revoke`].
    pub async fn logout(&self, authorization: Option<&[u8]>) -> Result<(), Error> {
        let p = &self.0;
        p.policy.revoke(authorization, p.store.ledger(), &p.signer, &p.clock).await
    }

    /// Checks an access token without the ledger: signature, kind, `exp`.
    /// A token of a session revoked since it was issued passes until its
    /// `exp`; [`TokenService::verify_access_unrevoked`] asks the ledger.
    pub fn verify_access(&self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        let p = &self.0;
        // Our own tokens: verified by re-signing where the signer allows.
        let own = p.policy.resigning_key(&p.signer);
        access::verify_access(&p.policy, authorization, p.signer.keyring(), own, &p.clock)
    }

    /// Checks an access token and its session in the ledger: an access token
    /// of a session logged out, caught in a reuse or evicted is refused
    /// with 401; see [`Policy::verify_access_unrevoked`].
    pub async fn verify_access_unrevoked(&self, authorization: Option<&[u8]>) -> Result<AccessClaims, Error> {
        let p = &self.0;
        let own = p.policy.resigning_key(&p.signer);
        let result = access::verify_access_unrevoked(
            &p.policy,
            authorization,
            p.signer.keyring(),
            own,
            p.store.ledger(),
            &p.clock,
        )
        .await;
        crate::recording::request("verify_access", &result);
        result
    }

    /// The public keys tokens verify under, as the JWKS document to serve.
    pub fn jwks(&self) -> &Jwks {
        &self.0.jwks
    }

    /// The live sessions of `subject`, oldest login first.
    pub async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>, Error> {
        let p = &self.0;
        session::sessions(subject, p.store.ledger(), &p.clock).await
    }

    /// Revokes one session of `subject` by id; `Ok(false)` when there was
    /// no such live session.
    pub async fn revoke_session(&self, subject: &str, session: SessionId) -> Result<bool, Error> {
        let p = &self.0;
        session::revoke_session(&p.policy, subject, session, p.store.ledger(), &p.clock).await
    }

    /// Removes the ledger's records of sessions that have ended (see
    /// [`SessionLedger::purge`]) and returns how many went. Whatever ledger
    /// the service was built with, this is its retention;
    /// [`TokenService::purge_every`] runs it on a timer.
    pub async fn purge(&self) -> Result<u64, Error> {
        let p = &self.0;
        let now = crate::flows::mint::unix_now(&p.clock)?;
        p.store.ledger().purge(now).await.map_err(|e| Error::internal(crate::error::InternalKind::Ledger, e))
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
        self.0.store.ledger()
    }

    /// The user directory.
    pub fn users(&self) -> &BoxUserStore {
        self.0.store.users()
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
            .finish_non_exhaustive()
    }
}
