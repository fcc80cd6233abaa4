//! Key ids, verify-only keys and the algorithm name (SPEC §2).

// A panic in a test is a failed assertion: the no-panic lints guard src/ only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use token_refresh::error::Unauthorized;
use token_refresh::token::DecodeError;

use token_refresh::{Ed25519Signer, KeyId, Policy, VerificationKey, keys::Algorithm, keys::KeyError, keys::SecretKey};
use token_refresh_test_support::clock;
use token_refresh_test_support::flow::{SharedStore, service_over, shared_store};
use token_refresh_test_support::outcome::assert_refused;
use token_refresh_test_support::tokens::{jose_header, payload};
use token_refresh_test_support::users::{BOB, bob};

fn store() -> SharedStore {
    shared_store([bob()])
}

#[tokio::test]
async fn kid_appears_only_when_configured_and_must_be_known() {
    let clock = Arc::new(clock());
    let store = store();
    let plain = Arc::new(Ed25519Signer::from_seed(&[1; 32]).unwrap());
    let pair = service_over(&Policy::default(), &store, &plain, &clock).issue(BOB).await.unwrap();
    assert_eq!(jose_header(&pair.access_token), serde_json::json!({"typ": "JWT", "alg": "EdDSA"}));

    let with_kid =
        Arc::new(Ed25519Signer::from_seed(&[1; 32]).unwrap().with_key_id(KeyId::new("2026-11").unwrap()).unwrap());
    let pair = service_over(&Policy::default(), &store, &with_kid, &clock).issue(BOB).await.unwrap();
    assert_eq!(jose_header(&pair.refresh_token), serde_json::json!({"typ": "JWT", "alg": "EdDSA", "kid": "2026-11"}));
    // The member order is the seed's, kid last.
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        pair.refresh_token.split('.').next().unwrap(),
    )
    .unwrap();
    assert_eq!(raw, br#"{"typ":"JWT","alg":"EdDSA","kid":"2026-11"}"#);
    assert!(token_refresh::refresh(Some(pair.refresh_token.as_bytes()), &store, &with_kid, &clock).await.is_ok());

    // Same key, other kid: the token names a key this deployment does not know.
    let other_kid =
        Arc::new(Ed25519Signer::from_seed(&[1; 32]).unwrap().with_key_id(KeyId::new("old").unwrap()).unwrap());
    let error = token_refresh::refresh(Some(pair.access_token.as_bytes()), &store, &other_kid, &clock).await;
    assert_refused(error, DecodeError::UnknownKey);
}

#[tokio::test]
async fn a_rotated_signing_key_keeps_old_sessions_alive_through_a_verify_only_key() {
    let clock = Arc::new(clock());
    let store = store();
    let old = Arc::new(Ed25519Signer::from_seed(&[1; 32]).unwrap());
    let first = service_over(&Policy::default(), &store, &old, &clock).issue(BOB).await.unwrap();

    let new = Arc::new(
        Ed25519Signer::from_seed(&[2; 32]).unwrap().with_verify_only_key(old.verification_key().clone()).unwrap(),
    );
    let second = token_refresh::refresh(Some(first.refresh_token.as_bytes()), &store, &new, &clock).await.unwrap();
    // New tokens are signed by the new key only.
    let only_new = Arc::new(Ed25519Signer::from_seed(&[2; 32]).unwrap());
    assert!(token_refresh::refresh(Some(second.refresh_token.as_bytes()), &store, &only_new, &clock).await.is_ok());
    // Without the verify-only key, the old key's tokens are refused.
    let fresh = service_over(&Policy::default(), &store, &old, &clock).issue(BOB).await.unwrap();
    let error =
        token_refresh::refresh(Some(fresh.refresh_token.as_bytes()), &store, &only_new, &clock).await.unwrap_err();
    assert_eq!((error.status_code(), error.public_message()), (401, "token signature is invalid"));
}

#[tokio::test]
async fn the_fully_specified_name_is_opt_in_and_exclusive() {
    let clock = Arc::new(clock());
    let store = store();
    let signer = Arc::new(Ed25519Signer::from_seed(&[1; 32]).unwrap());
    let ed25519 = Policy::builder().algorithm(Algorithm::Ed25519).build().unwrap();
    let pair = service_over(&ed25519, &store, &signer, &clock).issue(BOB).await.unwrap();
    assert_eq!(jose_header(&pair.access_token)["alg"], "Ed25519");
    assert!(service_over(&ed25519, &store, &signer, &clock).refresh(Some(pair.refresh_token.as_bytes())).await.is_ok());

    // An EdDSA deployment refuses Ed25519 tokens, and the reverse.
    let eddsa_pair = service_over(&Policy::default(), &store, &signer, &clock).issue(BOB).await.unwrap();
    let error =
        service_over(&Policy::default(), &store, &signer, &clock).refresh(Some(pair.refresh_token.as_bytes())).await;
    assert_refused(error, Unauthorized::Token(DecodeError::Algorithm));
    let error =
        service_over(&ed25519, &store, &signer, &clock).refresh(Some(eddsa_pair.refresh_token.as_bytes())).await;
    assert_refused(error, Unauthorized::Token(DecodeError::Algorithm));
    assert_eq!(payload(&eddsa_pair.refresh_token)["sub"], BOB);
}

#[test]
fn keys_load_from_the_forms_deployments_keep() {
    // RFC 8037 A.1's key, as base64url seed, and its public half.
    let signer =
        Ed25519Signer::new(SecretKey::from_text("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap()).unwrap();
    let x =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signer.verification_key().to_bytes());
    assert_eq!(x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    // The same seed as hex and as padded standard base64.
    let hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    let b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    let public = |text: &str| SecretKey::from_text(text).unwrap().verification_key().unwrap().to_bytes();
    assert_eq!(public(hex), public(b64));
    assert_eq!(public(hex), signer.verification_key().to_bytes());
    for bad in ["", "00", &"0".repeat(66), "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2", "not a key at all, really"] {
        assert!(matches!(SecretKey::from_text(bad), Err(KeyError::InvalidSecretKey)), "{bad}");
    }
    // Debug never shows the secret.
    assert!(!format!("{signer:?}").contains("9d61b19d"));
    // Weak public keys are refused at load time.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(VerificationKey::from_bytes(&identity), Err(KeyError::WeakKey)));
}
