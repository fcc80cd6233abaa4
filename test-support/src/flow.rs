//! In-memory deployments of the flows: the demo users, the service's
//! signer and a manual clock at [`NOW`](crate::NOW).

use token_refresh::{
    AccessClaims, Ed25519Signer, Error, MemoryStore, Policy, Signer as _, TokenPair, clock::ManualClock,
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

/// A deployment with a policy: the demo users in memory, the service's
/// signer, a manual clock at [`NOW`](crate::NOW). Its methods are async, for tests that
/// run on a runtime.
#[derive(Debug)]
pub struct Fixture {
    /// Users and ledger.
    pub store: MemoryStore,
    /// The service's signer.
    pub signer: Ed25519Signer,
    /// Starts at [`NOW`](crate::NOW); [`Fixture::advance`] moves it.
    pub clock: ManualClock,
    /// The flows' policy.
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
        Self { store: MemoryStore::in_memory(demo()), signer: keys::signer(), clock: clock(), policy }
    }

    /// A new session of `subject`; panics if the login is refused.
    pub async fn login(&self, subject: &str) -> TokenPair {
        self.policy.issue(subject, &self.store, &self.signer, &self.clock).await.expect("the login succeeds")
    }

    /// A refresh with `Authorization: <header>`.
    pub async fn refresh(&self, header: &str) -> Result<TokenPair, Error> {
        self.policy.refresh(Some(header.as_bytes()), &self.store, &self.signer, &self.clock).await
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
/// synchronous (the in-memory flows are ready at once), for corpora and
/// property tests: every refused request must leave both sessions as they
/// were.
#[derive(Debug)]
pub struct TwoSessions {
    /// Users and ledger.
    pub store: MemoryStore,
    /// The service's signer.
    pub signer: Ed25519Signer,
    /// At [`NOW`](crate::NOW).
    pub clock: ManualClock,
    /// Alice's first pair.
    pub alice: TokenPair,
    /// Bob's first pair.
    pub bob: TokenPair,
}

impl TwoSessions {
    /// Logs Alice and Bob in.
    pub fn new() -> Self {
        let store = MemoryStore::in_memory(demo());
        let signer = keys::signer();
        let clock = clock();
        let alice = ready(Policy::default().issue(ALICE, &store, &signer, &clock)).expect("alice logs in");
        let bob = ready(Policy::default().issue(BOB, &store, &signer, &clock)).expect("bob logs in");
        Self { store, signer, clock, alice, bob }
    }

    /// A refresh with the default policy.
    pub fn refresh(&self, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        ready(token_refresh::refresh(header, &self.store, &self.signer, &self.clock))
    }

    /// A refresh with `policy`.
    pub fn refresh_with(&self, policy: &Policy, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        ready(policy.refresh(header, &self.store, &self.signer, &self.clock))
    }

    /// An access-token check with the default policy.
    pub fn verify_access(&self, header: Option<&[u8]>) -> Result<AccessClaims, Error> {
        Policy::default().verify_access(header, self.signer.keyring(), &self.clock)
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
