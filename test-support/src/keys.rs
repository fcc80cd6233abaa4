//! The service's signing key and the documents other tools read it from.
//!
//! The tests hold the seed, so they can mint tokens with arbitrary claims
//! that carry an authentic signature ([`crate::tokens::mint`]).

use token_refresh::Ed25519Signer;
use token_refresh::ed25519_dalek::SigningKey;

use crate::encoding::{b64, b64_standard};

/// The seed of the service's signing key, in every test, bench, fuzz
/// target and fuzz seed file.
pub const SEED: [u8; 32] = [0x5e; 32];

/// A second service key: the one a key rotation moves to.
pub const NEXT_SEED: [u8; 32] = [0x7b; 32];

/// The service's signer (key of [`SEED`], no `kid`).
pub fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&SEED).expect("the fixture seed is a key")
}

/// The service's signing key, for signing by hand.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&SEED)
}

/// The PKCS#8 v1 DER of the key of `seed` (RFC 8410), written byte by byte
/// so the tests do not trust the encoder they check.
pub fn private_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    PREFIX.iter().chain(seed).copied().collect()
}

/// The PKCS#8 v1 PEM of the key of `seed`, as `openssl genpkey -algorithm
/// ed25519` writes it.
pub fn private_pem(seed: &[u8; 32]) -> String {
    pem("PRIVATE KEY", &private_der(seed))
}

/// The SPKI DER of an Ed25519 public key.
pub fn spki_der(public: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    PREFIX.iter().chain(public).copied().collect()
}

/// The SPKI PEM of an Ed25519 public key, as a JWKS/PEM endpoint publishes
/// it and `openssl pkey -pubout` writes it.
pub fn spki_pem(public: &[u8; 32]) -> String {
    pem("PUBLIC KEY", &spki_der(public))
}

/// The SPKI DER of the public key of `seed`.
pub fn public_der(seed: &[u8; 32]) -> Vec<u8> {
    spki_der(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// The SPKI PEM of the public key of `seed`.
pub fn public_pem(seed: &[u8; 32]) -> String {
    spki_pem(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// The JWK `x` (base64url public key) of the key of `seed`.
pub fn jwk_x(seed: &[u8; 32]) -> String {
    b64(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

fn pem(label: &str, der: &[u8]) -> String {
    // Both documents fit one 64-column line.
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", b64_standard(der))
}
