//! Property tests of the token codec and the refresh door.
//!
//! - Round trip: arbitrary claims, signed and decoded, come back equal; an
//!   arbitrary user's issued tokens verify with that user's values.
//! - Tamper evidence: any single-byte change anywhere in a valid refresh
//!   or access token is refused, never accepted, and changes nothing.
//! - Hostile headers: arbitrary bytes (and arbitrary near-tokens) as the
//!   `Authorization` value never panic, always get 400 or 401, and leave
//!   the ledger untouched.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code: a panic is a test failure")]

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use token_refresh::token::claims::MAX_EXP;
use token_refresh::token::jws::UntrustedToken;
use token_refresh::{
    AccessClaims, AccessVerifier, Ed25519Signer, Policy, Signer as _, User, clock::ManualClock, keys::Algorithm,
    token::RefreshClaims, token::TokenId,
};
use token_refresh_test_support::encoding::b64;
use token_refresh_test_support::flow::{TwoSessions, service_over, shared_store};
use token_refresh_test_support::keys::SEED;
use token_refresh_test_support::tokens::{mint, segments, sign_input};
use token_refresh_test_support::{NOW, ready};

/// One fixture for all cases: a refused request changes nothing (each case
/// checks it), so every case meets the same state.
static FIXTURE: LazyLock<TwoSessions> = LazyLock::new(TwoSessions::new);

/// A v4 UUID from arbitrary bits (version and variant forced).
fn token_id() -> impl Strategy<Value = TokenId> {
    any::<[u8; 16]>().prop_map(|mut bytes| {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        TokenId::from_bytes(bytes)
    })
}

/// Text our claims accept: no control characters (any other Unicode).
fn clean_text(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>().prop_filter("no control characters", |c| !c.is_control()), min..=max)
        .prop_map(String::from_iter)
}

fn refresh_claims() -> impl Strategy<Value = RefreshClaims> {
    (clean_text(1, 200), token_id(), 0..=MAX_EXP, token_id())
        .prop_map(|(subject, access_id, expires_at, id)| RefreshClaims { subject, access_id, expires_at, id })
}

fn access_claims() -> impl Strategy<Value = AccessClaims> {
    (clean_text(0, 100), clean_text(1, 100), clean_text(0, 100), 0..=MAX_EXP, token_id())
        .prop_map(|(account, subject, role, expires_at, id)| AccessClaims { account, subject, role, expires_at, id })
}

fn decode<C: for<'a> serde::Deserialize<'a> + token_refresh::token::claims::Validate>(token: &str) -> C {
    let keyring = FIXTURE.signer.keyring();
    let verified = UntrustedToken::parse(token, Algorithm::EdDsa).expect("parses").verify(keyring).expect("verifies");
    verified.claims::<C>().expect("claims")
}

fn assert_refused_and_unchanged(header: &[u8]) -> Result<u16, TestCaseError> {
    let before = FIXTURE.stats();
    let result = FIXTURE.refresh(Some(header));
    prop_assert_eq!(FIXTURE.stats(), before, "a refused request changed the ledger");
    match result {
        Ok(_) => Err(TestCaseError::fail("accepted")),
        Err(error) => Ok(error.status_code()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn refresh_claims_round_trip(claims in refresh_claims()) {
        let token = mint(serde_json::to_vec(&claims).expect("serializes"));
        prop_assert_eq!(decode::<RefreshClaims>(&token), claims);
    }

    #[test]
    fn access_claims_round_trip(claims in access_claims()) {
        let token = mint(serde_json::to_vec(&claims).expect("serializes"));
        prop_assert_eq!(decode::<AccessClaims>(&token), claims);
    }

    /// The real flows: an arbitrary user logs in, the access token carries
    /// their values, and the refresh token rotates.
    #[test]
    fn issued_pairs_round_trip_through_the_flows(
        subject in clean_text(1, 60),
        account in clean_text(0, 60),
        role in clean_text(0, 60),
    ) {
        let store = shared_store([User::new(subject.clone(), account.clone(), role.clone())]);
        let signer = Arc::new(Ed25519Signer::from_seed(&SEED).expect("seed"));
        let clock = Arc::new(ManualClock::at_unix(NOW));
        let service = service_over(&Policy::default(), &store, &signer, &clock);
        let pair = ready(service.issue(&subject)).expect("issue");
        let header = format!("Bearer {}", pair.access_token);
        let verifier = AccessVerifier::new(Policy::default(), signer.keyring().clone(), Arc::clone(&clock));
        let access = verifier.verify(Some(header.as_bytes())).expect("verify");
        prop_assert_eq!((&access.subject, &access.account, &access.role), (&subject, &account, &role));
        prop_assert_eq!(access.expires_at, NOW + 300);
        let refresh = decode::<RefreshClaims>(&pair.refresh_token);
        prop_assert_eq!(&refresh.subject, &subject);
        prop_assert_eq!(refresh.access_id, access.id);
        let header = format!("Bearer {}", pair.refresh_token);
        let next = ready(token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock)).expect("refresh");
        prop_assert_ne!(next.refresh_token, pair.refresh_token);
    }

    /// Any one byte of a valid refresh token, replaced by any other byte:
    /// refused (400 or 401), never accepted, ledger untouched.
    #[test]
    fn any_single_byte_change_to_a_refresh_token_is_refused(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut token = FIXTURE.alice.refresh_token.clone().into_bytes();
        let at = index.index(token.len());
        prop_assume!(token[at] != byte);
        token[at] = byte;
        let status = assert_refused_and_unchanged(&token)?;
        prop_assert!(status == 400 || status == 401, "status {}", status);
    }

    /// The same for access tokens, through `verify_access`.
    #[test]
    fn any_single_byte_change_to_an_access_token_is_refused(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut token = FIXTURE.alice.access_token.clone().into_bytes();
        let at = index.index(token.len());
        prop_assume!(token[at] != byte);
        token[at] = byte;
        let error = FIXTURE.verify_access(Some(&token)).expect_err("tampered access token accepted");
        prop_assert!(matches!(error.status_code(), 400 | 401), "status {}", error.status_code());
    }

    /// Arbitrary bytes, up to a little past the 8 KiB limit.
    #[test]
    fn arbitrary_header_bytes_get_400_or_401(header in proptest::collection::vec(any::<u8>(), 0..9000)) {
        let status = assert_refused_and_unchanged(&header)?;
        prop_assert!(status == 400 || status == 401, "status {}", status);
    }

    /// Arbitrary visible-ASCII headers, with and without the scheme.
    #[test]
    fn arbitrary_ascii_headers_get_400_or_401(text in "[ -~]{0,600}", bearer in any::<bool>()) {
        let header = if bearer { format!("Bearer {text}") } else { text };
        let status = assert_refused_and_unchanged(header.as_bytes())?;
        prop_assert!(status == 400 || status == 401, "status {}", status);
    }

    /// Near-tokens: three base64url segments of arbitrary content.
    #[test]
    fn arbitrary_three_segment_tokens_get_401(
        header in "[A-Za-z0-9_-]{0,300}",
        payload in "[A-Za-z0-9_-]{0,300}",
        signature in "[A-Za-z0-9_-]{80,90}",
    ) {
        let status = assert_refused_and_unchanged(format!("Bearer {header}.{payload}.{signature}").as_bytes())?;
        prop_assert_eq!(status, 401);
    }

    /// Arbitrary JOSE header objects over Alice's real claims, signed by a
    /// key the service does not trust: 401 whatever the header says.
    #[test]
    fn arbitrary_jose_headers_get_401(
        members in proptest::collection::vec(
            (
                prop::sample::select(vec!["alg", "typ", "kid", "jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "cty", "enc", "x"]),
                prop_oneof![
                    Just("\"EdDSA\"".to_owned()),
                    Just("\"none\"".to_owned()),
                    Just("\"JWT\"".to_owned()),
                    Just("null".to_owned()),
                    Just("false".to_owned()),
                    Just("[\"exp\"]".to_owned()),
                    Just("{}".to_owned()),
                    "[a-zA-Z0-9 ]{0,12}".prop_map(|s| format!("\"{s}\"")),
                ],
            ),
            0..5,
        ),
    ) {
        let body: Vec<String> = members.iter().map(|(name, value)| format!("\"{name}\":{value}")).collect();
        let header = format!("{{{}}}", body.join(","));
        let attacker = ed25519_dalek::SigningKey::from_bytes(&[0xa7; 32]);
        let payload = segments(&FIXTURE.alice.refresh_token)[1].clone();
        let token = sign_input(&attacker, &format!("{}.{payload}", b64(&header)));
        let status = assert_refused_and_unchanged(format!("Bearer {token}").as_bytes())?;
        prop_assert_eq!(status, 401);
    }
}

/// Exhaustive companion of the sampled property above: every position of a
/// valid refresh and access token, each replaced by a set of characters
/// chosen to be hard (a neighbouring base64url digit, which only flips
/// bits; separators; padding; space; NUL; a non-ASCII byte).
#[test]
fn every_position_of_a_valid_token_is_tamper_evident() {
    fn replacements(original: u8) -> Vec<u8> {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let neighbour = ALPHABET.iter().position(|&c| c == original).map(|i| ALPHABET[i ^ 1]);
        [b'.', b'=', b'+', b' ', 0, 0xff].into_iter().chain(neighbour).filter(|&b| b != original).collect()
    }
    let fx = &*FIXTURE;
    let before = fx.stats();
    let mut tried = 0;
    for token in [&fx.alice.refresh_token] {
        for at in 0..token.len() {
            for byte in replacements(token.as_bytes()[at]) {
                let mut tampered = token.clone().into_bytes();
                tampered[at] = byte;
                let error = fx.refresh(Some(&tampered)).expect_err("tampered refresh token accepted");
                assert!(matches!(error.status_code(), 400 | 401), "position {at}: {error:?}");
                tried += 1;
            }
        }
    }
    for at in 0..fx.alice.access_token.len() {
        for byte in replacements(fx.alice.access_token.as_bytes()[at]) {
            let mut tampered = fx.alice.access_token.clone().into_bytes();
            tampered[at] = byte;
            let error = fx.verify_access(Some(&tampered)).expect_err("tampered access token accepted");
            assert!(matches!(error.status_code(), 400 | 401), "position {at}: {error:?}");
            tried += 1;
        }
    }
    assert_eq!(fx.stats(), before, "a tampered token changed the ledger");
    assert!(tried > 2000, "{tried} variants");
}
