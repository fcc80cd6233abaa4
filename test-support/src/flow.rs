//! In-memory deployments of the flows: the demo users, the service's
//! signer and a manual clock at [`NOW`](crate::NOW), each one
//! [`TokenService`] whose parts the test can still reach.

use std::sync::Arc;

use token_refresh::{
    AccessClaims, AccessVerifier, Ed25519Signer, Error, Event, MemoryLedger, MemoryUserStore, Policy, Signer, Store,
    TokenPair, TokenService, User,
    clock::{Clock, ManualClock},
    ledger::LedgerStats,
};

use crate::users::{ALICE, BOB, demo};

/// The default policy with the grace window off (strict rotation), for
/// tests about reuse detection: since the window became a default, a
/// second presentation inside it is a replay.
pub fn strict_policy() -> Policy {
    Policy::builder().grace_window(time::Duration::ZERO).build().expect("a zero grace window is valid")
}
use crate::{clock, keys, ready};

/// The in-memory parts shared between a [`TokenService`] and the test
/// that looks into them: the card's `store` argument over the same
/// directory and ledger the service uses.
pub type SharedStore = Store<Arc<MemoryUserStore>, Arc<MemoryLedger>>;

/// In-memory stores holding `users` and no sessions, ready to share with
/// services ([`service_over`]).
pub fn shared_store(users: impl IntoIterator<Item = User>) -> SharedStore {
    Store::new(Arc::new(MemoryUserStore::new(users)), Arc::new(MemoryLedger::new()))
}

/// A service with `policy` over `store`'s directory and ledger, `signer`
/// and `clock`, all shared with the caller: several services (one per
/// signer, say) can run over one ledger.
pub fn service_over<S, C>(policy: &Policy, store: &SharedStore, signer: &Arc<S>, clock: &Arc<C>) -> TokenService
where
    S: Signer + 'static,
    C: Clock + 'static,
{
    TokenService::new(
        policy.clone(),
        Arc::clone(store.users()),
        Arc::clone(store.ledger()),
        Arc::clone(signer),
        Arc::clone(clock),
    )
}

/// A deployment with a policy: the demo users in memory, the service's
/// signer, a manual clock at [`NOW`](crate::NOW). Its methods are async, for tests that
/// run on a runtime.
#[derive(Debug)]
pub struct Fixture {
    /// The service over the parts below.
    pub service: TokenService,
    /// Users and ledger, shared with [`Fixture::service`].
    pub store: SharedStore,
    /// The service's signer.
    pub signer: Arc<Ed25519Signer>,
    /// Starts at [`NOW`](crate::NOW); [`Fixture::advance`] moves it.
    pub clock: Arc<ManualClock>,
    /// The service's policy.
    pub policy: Policy,
}

impl Fixture {
    /// The default policy.
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    /// The default policy with strict rotation (no grace window): any
    /// second presentation of a rotated token is reuse.
    pub fn strict() -> Self {
        Self::with_policy(strict_policy())
    }

    /// A policy of the test's own.
    pub fn with_policy(policy: Policy) -> Self {
        let store = shared_store(demo());
        let (signer, clock) = (Arc::new(keys::signer()), Arc::new(clock()));
        let service = service_over(&policy, &store, &signer, &clock);
        Self { service, store, signer, clock, policy }
    }

    /// The same deployment, reporting every event to `sink`.
    pub fn with_event_sink(mut self, sink: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.service = self.service.with_event_sink(sink);
        self
    }

    /// A new session of `subject`; panics if the login is refused.
    pub async fn login(&self, subject: &str) -> TokenPair {
        self.service.issue(subject).await.expect("the login succeeds")
    }

    /// A refresh with `Authorization: <header>`.
    pub async fn refresh(&self, header: &str) -> Result<TokenPair, Error> {
        self.service.refresh(Some(header.as_bytes())).await
    }

    /// Moves the clock `seconds` forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }

    /// The ledger's counters.
    pub fn stats(&self) -> LedgerStats {
        self.store.ledger().stats()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The demo users with one live session each for Alice and Bob, the
/// default policy, and a clock at [`NOW`](crate::NOW) that never moves. Its methods are
/// synchronous (the in-memory flows are ready at once, through the
/// service's boxes too), for corpora and property tests: every refused
/// request must leave both sessions as they were.
#[derive(Debug)]
pub struct TwoSessions {
    /// The service with the default policy.
    pub service: TokenService,
    /// Users and ledger, shared with [`TwoSessions::service`].
    pub store: SharedStore,
    /// The service's signer.
    pub signer: Arc<Ed25519Signer>,
    /// At [`NOW`](crate::NOW).
    pub clock: Arc<ManualClock>,
    /// Alice's first pair.
    pub alice: TokenPair,
    /// Bob's first pair.
    pub bob: TokenPair,
}

impl TwoSessions {
    /// Logs Alice and Bob in.
    pub fn new() -> Self {
        let Fixture { service, store, signer, clock, .. } = Fixture::new();
        let alice = ready(service.issue(ALICE)).expect("alice logs in");
        let bob = ready(service.issue(BOB)).expect("bob logs in");
        Self { service, store, signer, clock, alice, bob }
    }

    /// A refresh with the default policy.
    pub fn refresh(&self, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        ready(self.service.refresh(header))
    }

    /// A refresh with `policy`, by a service over the same parts.
    pub fn refresh_with(&self, policy: &Policy, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        ready(service_over(policy, &self.store, &self.signer, &self.clock).refresh(header))
    }

    /// An access-token check with the default policy, as a resource
    /// server holding only the public keys makes it (no re-signing).
    pub fn verify_access(&self, header: Option<&[u8]>) -> Result<AccessClaims, Error> {
        AccessVerifier::new(Policy::default(), self.signer.keyring().clone(), Arc::clone(&self.clock)).verify(header)
    }

    /// The ledger's counters.
    pub fn stats(&self) -> LedgerStats {
        self.store.ledger().stats()
    }
}

impl Default for TwoSessions {
    fn default() -> Self {
        Self::new()
    }
}
