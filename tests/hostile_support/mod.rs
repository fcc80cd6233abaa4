//! Helpers shared by the hostile-input test binaries: a fixture with two
//! live sessions, a token minter that signs arbitrary bytes with our real
//! key, and base64url helpers.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use token_refresh::{
    AccessClaims, Ed25519Signer, Error, LedgerStats, ManualClock, MemoryStore, Policy, TokenPair, User,
};

/// The seed of the service's signing key. The tests hold it, so they can
/// mint tokens with arbitrary claims that carry an authentic signature.
pub(crate) const SEED: [u8; 32] = [0x5e; 32];
/// The fixture's fixed "now".
pub(crate) const NOW: i64 = 1_800_000_000;
pub(crate) const ALICE: &str = "alice@mail.com";
pub(crate) const BOB: &str = "bob@mail.com";
/// The header every token we issue carries.
pub(crate) const HEADER: &str = r#"{"typ":"JWT","alg":"EdDSA"}"#;
/// Two canonical v4 UUIDs (from the seed page).
pub(crate) const ID1: &str = "8e1783d8-4a5b-4dd4-b78d-b50565400503";
pub(crate) const ID2: &str = "a6fbd9f9-e8dd-4c0f-ba46-49d01908626a";

/// Drives an in-memory flow to completion: its futures are always ready.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("in-memory flows never wait"),
    }
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("test input is base64url")
}

pub(crate) fn our_key() -> SigningKey {
    SigningKey::from_bytes(&SEED)
}

/// `input.signature` for an already encoded `header.payload`.
pub(crate) fn sign_input(key: &SigningKey, input: &str) -> String {
    format!("{input}.{}", b64(key.sign(input.as_bytes()).to_bytes()))
}

/// A compact JWS of raw header and payload bytes, signed by `key`.
pub(crate) fn mint_with(key: &SigningKey, header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    sign_input(key, &format!("{}.{}", b64(header), b64(payload)))
}

/// A token with our header and `payload`, signed with OUR key: authentic.
pub(crate) fn mint(payload: impl AsRef<[u8]>) -> String {
    mint_with(&our_key(), HEADER, payload)
}

/// Refresh-token claims in the seed's order, each value given as raw JSON.
pub(crate) fn refresh_json(sub: &str, acjti: &str, exp: &str, jti: &str) -> String {
    format!(r#"{{"sub":{sub},"acjti":{acjti},"exp":{exp},"jti":{jti}}}"#)
}

/// The payload of a token as JSON.
pub(crate) fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("three segments");
    serde_json::from_slice(&unb64(payload)).expect("payload is JSON")
}

/// Splits a compact token into its three segments.
pub(crate) fn segments(token: &str) -> [String; 3] {
    let mut parts = token.split('.').map(str::to_owned);
    let out = [parts.next(), parts.next(), parts.next()].map(|p| p.expect("three segments"));
    assert!(parts.next().is_none());
    out
}

/// Two users, each with one live session, a clock at [`NOW`].
pub(crate) struct Fixture {
    pub(crate) store: MemoryStore,
    pub(crate) signer: Ed25519Signer,
    pub(crate) clock: ManualClock,
    pub(crate) alice: TokenPair,
    pub(crate) bob: TokenPair,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let store = MemoryStore::in_memory([
            User::new(ALICE, "alice@acc", "ROLE_USER"),
            User::new(BOB, "bob@admin", "ROLE_ADMIN"),
        ]);
        let signer = Ed25519Signer::from_seed(&SEED).expect("seed is a key");
        let clock = ManualClock::at_unix(NOW);
        let alice = block_on(token_refresh::issue(ALICE, &store, &signer, &clock)).expect("alice logs in");
        let bob = block_on(token_refresh::issue(BOB, &store, &signer, &clock)).expect("bob logs in");
        Self { store, signer, clock, alice, bob }
    }

    pub(crate) fn refresh(&self, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        block_on(token_refresh::refresh(header, &self.store, &self.signer, &self.clock))
    }

    pub(crate) fn refresh_with(&self, policy: &Policy, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        block_on(policy.refresh(header, &self.store, &self.signer, &self.clock))
    }

    pub(crate) fn verify_access(&self, header: Option<&[u8]>) -> Result<AccessClaims, Error> {
        token_refresh::verify_access(header, token_refresh::Signer::keyring(&self.signer), &self.clock)
    }

    pub(crate) fn stats(&self) -> LedgerStats {
        self.store.ledger().stats()
    }
}

/// The group order L of Ed25519, little endian.
pub(crate) const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with `S + L` in place of `S`: the same value mod L,
/// so a verifier that does not insist on a canonical `S` accepts it
/// (signature malleability).
pub(crate) fn add_group_order_to_s(signature: &[u8; 64]) -> [u8; 64] {
    let mut out = *signature;
    let mut carry = 0u16;
    for (i, l) in GROUP_ORDER.iter().enumerate() {
        let sum = u16::from(out[32 + i]) + u16::from(*l) + carry;
        out[32 + i] = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 256 bits");
    out
}

/// The same base64url segment with a non-zero trailing (unused) bit: it
/// decodes to the same bytes under a lenient decoder.
pub(crate) fn with_trailing_bit(segment: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(matches!(segment.len() % 4, 2 | 3), "segment has trailing bits");
    let last = *segment.as_bytes().last().expect("non-empty");
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(char::from(ALPHABET[index ^ 1]));
    out
}
