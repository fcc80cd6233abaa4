//! Shared fixtures for the flow tests: an in-memory deployment with a
//! settable clock, and a minter for arbitrary tokens signed with its key.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::{Ed25519Signer, ManualClock, MemoryStore, Policy, TokenPair, User};

pub(crate) const NOW: i64 = 1_800_000_000;
pub(crate) const SEED: [u8; 32] = [0x5e; 32];
pub(crate) const BOB: &str = "bob@mail.com";

pub(crate) struct Fixture {
    pub store: MemoryStore,
    pub signer: Ed25519Signer,
    pub clock: ManualClock,
    pub policy: Policy,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    pub(crate) fn with_policy(policy: Policy) -> Self {
        Self {
            store: MemoryStore::in_memory([
                User::new(BOB, "bob@admin", "ROLE_ADMIN"),
                User::new("eve@mail.com", "eve@user", "ROLE_USER").disabled(),
                User::new("alice@mail.com", "alice@user", "ROLE_USER"),
            ]),
            signer: signer(),
            clock: ManualClock::at_unix(NOW),
            policy,
        }
    }

    pub(crate) async fn login(&self, subject: &str) -> TokenPair {
        self.policy.issue(subject, &self.store, &self.signer, &self.clock).await.unwrap()
    }

    pub(crate) async fn refresh(&self, header: &str) -> Result<TokenPair, token_refresh::Error> {
        self.policy.refresh(Some(header.as_bytes()), &self.store, &self.signer, &self.clock).await
    }

    pub(crate) fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }
}

/// A compact JWS over arbitrary header and payload JSON, signed with `seed`.
pub(crate) fn mint_with(seed: &[u8; 32], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = SigningKey::from_bytes(seed).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A token with the fixture's key and the seed's header.
pub(crate) fn mint(payload: &str) -> String {
    mint_with(&SEED, r#"{"typ":"JWT","alg":"EdDSA"}"#, payload)
}

/// The decoded payload JSON of a compact token.
pub(crate) fn payload(token: &str) -> serde_json::Value {
    let segment = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

pub(crate) fn uuid() -> String {
    token_refresh::TokenId::random().to_string()
}

pub(crate) fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&SEED).unwrap()
}
