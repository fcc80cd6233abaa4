//! Tokens by hand: compact JWSs over arbitrary header and payload bytes,
//! signed with any key, and the ways to take a token apart.

use token_refresh::ed25519_dalek::{Signature, Signer as _, SigningKey};
use token_refresh::token::TokenId;

use crate::encoding::{b64, unb64};
use crate::keys::signing_key;

/// The JOSE header of every token the crate issues (no `kid`).
pub const HEADER: &str = r#"{"typ":"JWT","alg":"EdDSA"}"#;

/// Two canonical v4 UUIDs (from the reference API's sample tokens).
pub const ID1: &str = "8e1783d8-4a5b-4dd4-b78d-b50565400503";
/// The second of the two sample UUIDs.
pub const ID2: &str = "a6fbd9f9-e8dd-4c0f-ba46-49d01908626a";

/// `input.signature` for an already encoded `header.payload`.
pub fn sign_input(key: &SigningKey, input: &str) -> String {
    format!("{input}.{}", b64(key.sign(input.as_bytes()).to_bytes()))
}

/// A compact JWS of raw header and payload bytes, signed by `key`.
pub fn mint_with(key: &SigningKey, header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    sign_input(key, &format!("{}.{}", b64(header), b64(payload)))
}

/// A token with [`HEADER`] and `payload`, signed with the service's key:
/// authentic.
pub fn mint(payload: impl AsRef<[u8]>) -> String {
    mint_with(&signing_key(), HEADER, payload)
}

/// Refresh-token claims in the crate's member order, each value given as
/// raw JSON (so a test can put any JSON there).
pub fn refresh_json(sub: &str, acjti: &str, exp: &str, jti: &str) -> String {
    format!(r#"{{"sub":{sub},"acjti":{acjti},"exp":{exp},"jti":{jti}}}"#)
}

/// Well-formed refresh claims of `sub` expiring at `exp`, with fresh ids.
pub fn refresh_claims(sub: &str, exp: i64) -> String {
    format!(r#"{{"sub":"{sub}","acjti":"{}","exp":{exp},"jti":"{}"}}"#, uuid(), uuid())
}

/// A fresh canonical v4 UUID.
pub fn uuid() -> String {
    TokenId::random().to_string()
}

/// Splits a compact token into its three segments; panics unless there
/// are exactly three.
pub fn segments(token: &str) -> [String; 3] {
    let mut parts = token.split('.').map(str::to_owned);
    let out = [parts.next(), parts.next(), parts.next()].map(|p| p.expect("three segments"));
    assert!(parts.next().is_none(), "three segments: {token}");
    out
}

/// The decoded JOSE header of a compact token, as JSON.
pub fn jose_header(token: &str) -> serde_json::Value {
    let [header, _, _] = segments(token);
    serde_json::from_slice(&unb64(&header)).expect("the header is JSON")
}

/// The decoded payload (claims) of a compact token, as JSON.
pub fn payload(token: &str) -> serde_json::Value {
    let [_, payload, _] = segments(token);
    serde_json::from_slice(&unb64(&payload)).expect("the payload is JSON")
}

/// The raw payload bytes of a compact token.
pub fn payload_bytes(token: &str) -> Vec<u8> {
    let [_, payload, _] = segments(token);
    unb64(&payload)
}

/// Whether `token`'s signature verifies (strictly) under the public key of
/// `seed`.
pub fn signed_by(token: &str, seed: &[u8; 32]) -> bool {
    let (input, signature) = token.rsplit_once('.').expect("a compact JWS");
    let Ok(signature) = Signature::from_slice(&unb64(signature)) else { return false };
    SigningKey::from_bytes(seed).verifying_key().verify_strict(input.as_bytes(), &signature).is_ok()
}

/// The group order L of Ed25519, little endian.
pub const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with `S + L` in place of `S`: the same value mod L,
/// so a verifier that does not insist on a canonical `S` accepts it
/// (signature malleability).
pub fn add_group_order_to_s(signature: &[u8; 64]) -> [u8; 64] {
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
pub fn with_trailing_bit(segment: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(matches!(segment.len() % 4, 2 | 3), "segment has trailing bits");
    let last = *segment.as_bytes().last().expect("non-empty");
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(char::from(ALPHABET[index ^ 1]));
    out
}

/// The `Authorization` value that presents `token`: `Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
