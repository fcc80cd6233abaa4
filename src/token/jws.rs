//! Compact JWS with Ed25519 (RFC 7515, RFC 8037): [spec §2](crate::spec#2-tokens-byte-for-byte) and [spec §4](crate::spec#4-which-outcome-in-which-order) steps 2–5.
//!
//! Decoding is a typestate: [`UntrustedToken::parse`] checks shape, sizes
//! and the JOSE header, and exposes nothing from the payload.
//! [`UntrustedToken::verify`] checks the signature and only then yields a
//! [`VerifiedToken`], the one type with claim accessors. "Claims read before
//! the signature was checked" does not compile.
//!
//! Security decisions, each refusing a known JWT attack:
//! - `alg` is pinned to one name (`EdDSA`, or `Ed25519` by opt-in); `none`,
//!   HMAC and every other label are refused before any key is touched, so
//!   algorithm confusion has nothing to confuse.
//! - Only `typ`, `alg` and `kid` may appear in the header. `jwk`, `jku`,
//!   `x5u`, `x5c` (attacker-chosen keys), `crit` (extensions we do not
//!   implement), `b64`, `zip` and anything else are refused, as is a member
//!   given twice.
//! - base64url is strict: no padding, no `+`/`/`, no non-zero trailing bits,
//!   so one token has exactly one spelling.
//! - Sizes are checked before decoding: the header segment, the payload and
//!   the signature (exactly 86 characters) each have a fixed bound.
//! - The payload is not parsed at all until the signature verifies.
//!
//! # Which Ed25519 check, and why
//!
//! We accept exactly what ed25519-dalek's
//! [`VerifyingKey::verify_strict`](ed25519_dalek::VerifyingKey::verify_strict)
//! accepts, never what the permissive rules of plain `verify` add:
//! - `S` must be canonical (`S < L`), so `(R, S + L)` is not a second valid
//!   spelling of a signature (malleability). Both dalek modes do this in
//!   ed25519-dalek 3; we do not enable its `legacy_compatibility` feature,
//!   which would turn it off.
//! - The public key must not be a small-order point. Under a small-order key
//!   the cofactorless equation holds for forged signatures (`R` = identity,
//!   `S` = 0 verifies *every* message under the identity key). We refuse such
//!   keys once, when they are loaded ([`crate::keys::VerificationKey::new`]), so a
//!   keyring never holds one.
//! - `R` must not be a small-order point: we compare its bytes with the
//!   eight small-order encodings before anything else.
//! - `R` must be canonical: dalek's `verify` compares the canonical encoding
//!   of the expected `R` with the signature's bytes, so a non-canonical
//!   spelling never matches.
//!
//! With the key checked at load time, these are `verify_strict`'s rules, but
//! `verify_strict` would decompress `R` and re-test the key's order on every
//! call; our order costs about 5 µs less per verification here (the
//! performance report measures both). A unit test pins the equivalence on
//! the cases where the two dalek checks differ, and Project Wycheproof's
//! Ed25519 vectors pin the acceptance set (every valid vector accepted, every
//! invalid one refused: `tests/all/vectors.rs`). Honest signers, ours included,
//! always pass.
//!
//! # Verification by re-signing
//!
//! Under the key our own signer holds ([`crate::keys::Signer::resigning_key`]),
//! [`UntrustedToken::verify_resigning`] signs the signing input again and
//! compares the signatures in constant time: one signature instead of one
//! verification. It accepts a subset of the above (RFC 8032 signatures
//! by our key) and refuses one thing `verify_strict` accepts, a second
//! signature under our key with another nonce, which only a holder of the
//! secret key can make. The argument is in `docs/security.md`
//! (§ Verification by re-signing); `tests/all/resigning.rs` holds it to
//! `verify_strict` on 100 000 tokens.
//!
//! Timing: verification handles only public values (the token, its
//! signature, our public key). ed25519-dalek computes `[S]B - [k]A` with a
//! variable-time double-scalar multiplication, which is safe precisely
//! because nothing secret is involved. Refusals before that (shape, header,
//! `kid`, non-canonical `S`, small-order `R`) depend only on what the caller
//! sent. Signing, which does use the secret key, is constant-time.
//!
//! # Bounded work
//!
//! An unauthenticated request costs at most: one pass over an
//! `Authorization` value of at most 8 KiB (longer is refused before anything
//! else); base64url decoding of a header segment of at most 256 characters
//! into a stack buffer and one JSON parse of it (none for the exact header we
//! issue); and at most [`crate::keys::MAX_KEYS`] signature checks over a signing
//! input of at most 4 353 bytes (256 + 1 + 4096), of which at most one is
//! a re-signing. The payload (at most 4096
//! characters) is decoded and parsed only after the signature verified.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier as _};
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::keys::Algorithm;
use crate::keys::Keyring;
use crate::keys::ResigningKey;
use crate::token::DecodeError;

/// Largest accepted JOSE header segment, in base64url characters.
const MAX_HEADER_SEGMENT: usize = 256;
/// Largest accepted payload segment, in base64url characters.
const MAX_PAYLOAD_SEGMENT: usize = 4096;
/// An Ed25519 signature is 64 bytes: 86 base64url characters.
const SIGNATURE_SEGMENT: usize = 86;

/// The members we accept in a JOSE header.
struct JoseHeader<'a> {
    alg: Cow<'a, str>,
    typ: Option<Cow<'a, str>>,
    kid: Option<Cow<'a, str>>,
}

/// Why a header was refused, before it is mapped to a 401 detail.
enum HeaderProblem {
    NotJson,
    Refused,
}

impl<'de> de::Deserialize<'de> for JoseHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = JoseHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut alg, mut typ, mut kid) = (None, None, None);
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match name.as_ref() {
                        "alg" => &mut alg,
                        "typ" => &mut typ,
                        "kid" => &mut kid,
                        _ => return Err(de::Error::custom("refused header member")),
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("duplicate header member"));
                    }
                    *slot = Some(map.next_value::<Cow<'de, str>>()?);
                }
                let alg = alg.ok_or_else(|| de::Error::missing_field("alg"))?;
                Ok(JoseHeader { alg, typ, kid })
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// Decodes and checks a JOSE header segment ([spec §4](crate::spec#4-which-outcome-in-which-order) steps 2–3); returns
/// its `kid`.
fn check_header(segment: &str, algorithm: Algorithm) -> Result<Option<String>, DecodeError> {
    let mut json = [0u8; MAX_HEADER_SEGMENT];
    let len = URL_SAFE_NO_PAD.decode_slice(segment, &mut json).map_err(|_| DecodeError::Malformed)?;
    let json = json.get(..len).ok_or(DecodeError::Malformed)?;
    let parsed = parse_header(json).map_err(|problem| match problem {
        HeaderProblem::NotJson => DecodeError::NotJson,
        HeaderProblem::Refused => DecodeError::Header,
    })?;
    if parsed.alg != algorithm.as_str() {
        return Err(DecodeError::Algorithm);
    }
    if parsed.typ.as_ref().is_some_and(|typ| typ != "JWT") {
        return Err(DecodeError::TokenType);
    }
    Ok(parsed.kid.map(Cow::into_owned))
}

fn parse_header(json: &[u8]) -> Result<JoseHeader<'_>, HeaderProblem> {
    serde_json::from_slice::<JoseHeader<'_>>(json)
        .map_err(|e| if e.is_data() { HeaderProblem::Refused } else { HeaderProblem::NotJson })
}

/// A compact JWS whose shape and header were checked but whose signature was
/// not: nothing in it can be trusted, and it offers no claims.
pub struct UntrustedToken<'a> {
    signing_input: &'a str,
    payload: &'a str,
    signature: Signature,
    kid: Option<String>,
}

impl<'a> UntrustedToken<'a> {
    /// Checks the shape (three strict base64url segments within size bounds)
    /// and the JOSE header ([spec §4](crate::spec#4-which-outcome-in-which-order) steps 2–3) of `token`.
    pub fn parse(token: &'a str, algorithm: Algorithm) -> Result<Self, DecodeError> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(DecodeError::Malformed);
        };
        let sizes_ok = (1..=MAX_HEADER_SEGMENT).contains(&header.len())
            && (1..=MAX_PAYLOAD_SEGMENT).contains(&payload.len())
            && signature.len() == SIGNATURE_SEGMENT;
        if !sizes_ok || !is_base64url(payload) {
            return Err(DecodeError::Malformed);
        }

        // The header we issue without kid is one constant: recognise it by
        // its bytes and skip decoding it. Anything else takes the full path.
        let kid = if header == encode_header(algorithm, None) { None } else { check_header(header, algorithm)? };

        let mut signature_bytes = [0u8; 64];
        let written =
            URL_SAFE_NO_PAD.decode_slice(signature, &mut signature_bytes).map_err(|_| DecodeError::Malformed)?;
        if written != signature_bytes.len() {
            return Err(DecodeError::Malformed);
        }

        let signing_input_len = header.len() + 1 + payload.len();
        let signing_input = token.get(..signing_input_len).ok_or(DecodeError::Malformed)?;
        Ok(Self { signing_input, payload, signature: Signature::from_bytes(&signature_bytes), kid })
    }

    /// The `kid` header member, if any. Untrusted: use it only to pick a key.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Verifies the signature ([spec §4](crate::spec#4-which-outcome-in-which-order) steps 3–4): `kid`, when present, must
    /// name a key of `keyring`; without it each key is tried, active first.
    pub fn verify(self, keyring: &Keyring) -> Result<VerifiedToken, DecodeError> {
        self.verify_with(keyring, None)
    }

    /// [`UntrustedToken::verify`], except that under the key `own` signs
    /// for, the signature is checked by re-signing the signing input with
    /// `own` and comparing in constant time (see
    /// [`Signer::resigning_key`](crate::keys::Signer::resigning_key)). Every other
    /// key of `keyring` is verified the normal way; the refusals and their
    /// order are the same.
    ///
    /// ```
    /// use base64::Engine as _;
    /// use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
    /// use token_refresh::keys::Algorithm;
    /// use token_refresh::token::jws::UntrustedToken;
    /// use token_refresh::{Ed25519Signer, Signer as _};
    ///
    /// let signer = Ed25519Signer::from_seed(&[7; 32])?;
    /// let own = signer.resigning_key().ok_or("an in-process signer re-signs")?;
    /// let input = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.e30";
    /// let signature = SigningKey::from_bytes(&[7; 32]).sign(input.as_bytes());
    /// let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.to_bytes());
    /// let token = format!("{input}.{signature}");
    /// assert!(UntrustedToken::parse(&token, Algorithm::EdDsa)?.verify_resigning(signer.keyring(), own).is_ok());
    /// let tampered = token.replace(".e30.", ".e31.");
    /// assert!(UntrustedToken::parse(&tampered, Algorithm::EdDsa)?.verify_resigning(signer.keyring(), own).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_resigning(self, keyring: &Keyring, own: ResigningKey<'_>) -> Result<VerifiedToken, DecodeError> {
        self.verify_with(keyring, Some(own))
    }

    pub(crate) fn verify_with(
        self,
        keyring: &Keyring,
        own: Option<ResigningKey<'_>>,
    ) -> Result<VerifiedToken, DecodeError> {
        let candidates = keyring.candidates(self.kid.as_deref()).ok_or(DecodeError::UnknownKey)?;
        let message = self.signing_input.as_bytes();
        let authentic = |key: &ed25519_dalek::VerifyingKey| match own {
            // Our own signing key: one signature instead of a verification.
            // Where the answer is unknown (feature off, backend failure),
            // fall through to the normal check, which decides the same
            // for every token our key signed.
            Some(own) if own.verifying_key() == key => verify_resigned_signature(own, message, &self.signature),
            _ => signature_verifies(key, message, &self.signature),
        };
        if !candidates.into_iter().any(authentic) {
            return Err(DecodeError::Signature);
        }
        // Authentic from here on: the payload was written by a key we trust.
        let payload = URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| DecodeError::Malformed)?;
        Ok(VerifiedToken { payload })
    }
}

impl fmt::Debug for UntrustedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntrustedToken").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A token whose signature verified under a configured key.
pub struct VerifiedToken {
    payload: Vec<u8>,
}

impl VerifiedToken {
    /// The claims, parsed strictly as `T` ([spec §4](crate::spec#4-which-outcome-in-which-order) step 5).
    ///
    /// A payload that is not JSON is 401 (it cannot be ours); JSON that is
    /// not exactly a `T` is 422.
    pub fn claims<'a, T: serde::Deserialize<'a> + crate::token::claims::Validate>(&'a self) -> Result<T, DecodeError> {
        match from_json_object::<T>(&self.payload) {
            Ok(claims) if claims.is_valid() => Ok(claims),
            Ok(_) => Err(DecodeError::Claims),
            // JSON that is not our claims: wrong shape or types, or a number
            // out of range (`"exp":1e400` is JSON, just not an i64).
            Err(_) if is_json(&self.payload) => Err(DecodeError::Claims),
            Err(_) => Err(DecodeError::NotJson),
        }
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken").finish_non_exhaustive()
    }
}

/// The canonical encodings of the eight points of small order (the torsion
/// subgroup of edwards25519). A signature whose `R` is one of them proves
/// nothing about the message; `verify_strict` refuses it, and so do we.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = [
    small_order(0x01, 0x00, 0x00),
    small_order(0xec, 0xff, 0x7f),
    small_order(0x00, 0x00, 0x00),
    small_order(0x00, 0x00, 0x80),
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85,
    ],
];

/// `[first, middle × 30, last]`.
const fn small_order(first: u8, middle: u8, last: u8) -> [u8; 32] {
    let mut bytes = [middle; 32];
    bytes[0] = first;
    bytes[31] = last;
    bytes
}

fn has_small_order_r(signature: &Signature) -> bool {
    SMALL_ORDER_ENCODINGS.contains(signature.r_bytes())
}

/// The signature check every token goes through (see "Which Ed25519 check,
/// and why" above): no small-order `R`, then ed25519-dalek's `verify`,
/// under a key that passed the weak-key check when it was loaded. Exposed
/// so test vectors can run through exactly this path.
///
/// ```
/// use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
/// use token_refresh::VerificationKey;
/// use token_refresh::token::jws::verify_signature;
///
/// let signing = SigningKey::from_bytes(&[7; 32]);
/// let key = VerificationKey::new(signing.verifying_key())?;
/// assert!(verify_signature(&key, b"message", &signing.sign(b"message")));
/// assert!(!verify_signature(&key, b"other", &signing.sign(b"message")));
/// # Ok::<(), token_refresh::keys::KeyError>(())
/// ```
pub fn verify_signature(key: &crate::keys::VerificationKey, message: &[u8], signature: &Signature) -> bool {
    signature_verifies(key.verifying_key(), message, signature)
}

/// The signature check for a token under the key `own` signs for
/// ([`UntrustedToken::verify_resigning`]): `signature` must be the one
/// `own` makes over `message`, compared in constant time. Exposed so test
/// vectors can run through exactly this path.
///
/// It accepts a subset of what [`verify_signature`] accepts: everything
/// our key signed, and not a second signature under our key made with
/// another nonce (only a holder of the secret key can make one; see
/// `docs/security.md`). Where this build cannot re-sign (the `resigning`
/// feature is off, or the backend failed), it is [`verify_signature`].
///
/// ```
/// use token_refresh::ed25519_dalek::{Signer as _, SigningKey};
/// use token_refresh::token::jws::verify_resigned_signature;
/// use token_refresh::{Ed25519Signer, Signer as _};
///
/// let signer = Ed25519Signer::from_seed(&[7; 32])?;
/// let own = signer.resigning_key().ok_or("in process")?;
/// let signature = SigningKey::from_bytes(&[7; 32]).sign(b"message");
/// assert!(verify_resigned_signature(own, b"message", &signature));
/// assert!(!verify_resigned_signature(own, b"other", &signature));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_resigned_signature(own: ResigningKey<'_>, message: &[u8], signature: &Signature) -> bool {
    own.signed(message, signature).unwrap_or_else(|| signature_verifies(own.verifying_key(), message, signature))
}

fn signature_verifies(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    !has_small_order_r(signature) && key.verify(message, signature).is_ok()
}

/// Claims (and the login body) are one JSON object and nothing else.
/// serde's derived struct deserializer also accepts a sequence of the field
/// values (`["bob@mail.com","…",1703261574,"…"]`): a second spelling of the
/// same data that we never write, so it is refused like any other
/// malformed input.
struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// Parses `json` as one JSON object deserialized into `T` (see
/// [`ObjectOnly`]), with nothing after it.
pub(crate) fn from_json_object<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Result<T, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let claims = Deserializer::deserialize_map(&mut deserializer, ObjectOnly(PhantomData))?;
    deserializer.end()?;
    Ok(claims)
}

/// Whether `bytes` is one JSON text: UTF-8 (RFC 8259 §8.1; serde_json's
/// skipping parser does not check it) and well formed.
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && serde_json::from_slice::<de::IgnoredAny>(bytes).is_ok()
}

fn is_base64url(segment: &str) -> bool {
    // No early exit, so the compiler vectorizes it; segments are bounded.
    segment.bytes().fold(true, |clean, b| clean & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_')))
}

/// The base64url JOSE header segment for `algorithm` and optional `kid`:
/// `{"typ":"JWT","alg":"EdDSA"}` plus `"kid"` only when configured. The
/// common case without `kid` is a constant.
pub(crate) fn encode_header(algorithm: Algorithm, kid: Option<&str>) -> Cow<'static, str> {
    match (algorithm, kid) {
        // base64url of {"typ":"JWT","alg":"EdDSA"} and {"typ":"JWT","alg":"Ed25519"}.
        (Algorithm::EdDsa, None) => Cow::Borrowed("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9"),
        (Algorithm::Ed25519, None) => Cow::Borrowed("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZDI1NTE5In0"),
        // KeyId admits only characters that need no JSON escaping.
        (algorithm, Some(kid)) => Cow::Owned(
            URL_SAFE_NO_PAD.encode(format!(r#"{{"typ":"JWT","alg":"{}","kid":"{kid}"}}"#, algorithm.as_str())),
        ),
    }
}

/// `header.payload`: the bytes to sign, in a buffer that already has room
/// for the signature segment. `json` is scratch space for the claims.
pub(crate) fn signing_input(
    header: &str,
    claims: &impl crate::token::claims::WriteClaims,
    json: &mut Vec<u8>,
) -> Vec<u8> {
    json.clear();
    claims.write_json(json);
    let payload_len = base64::encoded_len(json.len(), false).unwrap_or(0);
    let mut out = Vec::with_capacity(header.len() + 1 + payload_len + 1 + SIGNATURE_SEGMENT);
    out.extend_from_slice(header.as_bytes());
    out.push(b'.');
    push_base64url(&mut out, json);
    out
}

/// Appends the signature segment and returns the compact token.
pub(crate) fn finish(mut signing_input: Vec<u8>, signature: &Signature) -> Result<String, std::string::FromUtf8Error> {
    signing_input.push(b'.');
    push_base64url(&mut signing_input, &signature.to_bytes());
    // Always ASCII (a base64url header and two base64url segments); the
    // check is one pass over bytes already in cache.
    String::from_utf8(signing_input)
}

/// Appends the unpadded base64url encoding of `bytes`, written in place:
/// no intermediate string and no per-chunk UTF-8 check.
fn push_base64url(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    let Some(len) = base64::encoded_len(bytes.len(), false) else { return };
    out.resize(start + len, 0);
    let written = out.get_mut(start..).map_or(0, |tail| URL_SAFE_NO_PAD.encode_slice(bytes, tail).unwrap_or(0));
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE_ACCESS: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJhY2MiOiJib2JAYWRtaW4iLCJzdWIiOiJib2JAbWFpbC5jb20iLCJyb2xlIjoiUk9MRV9BRE1JTiIsImV4cCI6MTcwMzI2MTU3NCwianRpIjoiOGUxNzgzZDgtNGE1Yi00ZGQ0LWI3OGQtYjUwNTY1NDAwNTAzIn0.BUqeWAnkqtE6oKc-ztDwaQ36om9trZTNKR8vwelMqr4m67y3td-cVu9lOY7WTY09tTMoVQQ-rbuEFcmxCY17BA";

    #[test]
    fn small_order_encodings_are_the_torsion_subgroup() {
        let mut ours = SMALL_ORDER_ENCODINGS.to_vec();
        let mut theirs: Vec<[u8; 32]> =
            curve25519_dalek::constants::EIGHT_TORSION.iter().map(|p| p.compress().to_bytes()).collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    /// `verify` plus our R check accepts exactly what `verify_strict` does,
    /// on the cases where the two dalek checks differ.
    #[test]
    fn verification_matches_verify_strict_on_its_edge_cases() {
        use ed25519_dalek::{Signer as _, SigningKey};

        let key = SigningKey::from_bytes(&[0x42; 32]);
        let keyring =
            Keyring::new([crate::keys::VerificationKey::new(key.verifying_key()).unwrap_or_else(|_| unreachable!())])
                .unwrap_or_else(|_| unreachable!());
        let header = encode_header(Algorithm::EdDsa, None);
        let input = format!("{header}.e30");
        let ours = |signature: &Signature| {
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
            UntrustedToken::parse(&token, Algorithm::EdDsa).and_then(|t| t.verify(&keyring)).is_ok()
        };
        let strict = |signature: &Signature| key.verifying_key().verify_strict(input.as_bytes(), signature).is_ok();
        let lax = |signature: &Signature| key.verifying_key().verify(input.as_bytes(), signature).is_ok();

        // An honest signature: all three accept.
        let honest = key.sign(input.as_bytes());
        assert!(ours(&honest) && strict(&honest) && lax(&honest));

        // R = identity, S = H(R, A, M)·a: only the key holder can make it;
        // `verify` accepts it, `verify_strict` and we do not.
        let identity = SMALL_ORDER_ENCODINGS[0];
        let secret = key.to_scalar();
        let digest: [u8; 64] = sha2::Digest::finalize(sha2::Digest::chain_update(
            sha2::Digest::chain_update(
                sha2::Digest::chain_update(<sha2::Sha512 as sha2::Digest>::new(), identity),
                key.verifying_key().as_bytes(),
            ),
            input.as_bytes(),
        ))
        .into();
        let challenge = curve25519_dalek::Scalar::from_bytes_mod_order_wide(&digest);
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&identity);
        bytes[32..].copy_from_slice((challenge * secret).as_bytes());
        let small_r = Signature::from_bytes(&bytes);
        assert!(lax(&small_r), "the forgery-by-owner is valid for verify");
        assert!(!strict(&small_r) && !ours(&small_r));

        // Non-canonical S (S + L): refused by all three.
        let mut s_plus_l = honest.to_bytes();
        // ℓ = 2^252 + 27742317777372353535851937790883648493, little endian.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (i, byte) in s_plus_l[32..].iter_mut().enumerate() {
            let total = u16::from(*byte) + u16::from(l[i]) + carry;
            *byte = (total & 0xff) as u8;
            carry = total >> 8;
        }
        let non_canonical = Signature::from_bytes(&s_plus_l);
        assert!(!ours(&non_canonical) && !strict(&non_canonical) && !lax(&non_canonical));
    }

    #[test]
    fn header_constants_are_the_encoded_json() {
        for algorithm in [Algorithm::EdDsa, Algorithm::Ed25519] {
            let json = format!(r#"{{"typ":"JWT","alg":"{}"}}"#, algorithm.as_str());
            assert_eq!(encode_header(algorithm, None), URL_SAFE_NO_PAD.encode(json));
        }
        let with_kid = URL_SAFE_NO_PAD.decode(encode_header(Algorithm::EdDsa, Some("k1")).as_bytes());
        assert_eq!(with_kid.ok().as_deref(), Some(&br#"{"typ":"JWT","alg":"EdDSA","kid":"k1"}"#[..]));
    }

    #[test]
    fn the_reference_header_is_what_we_write() {
        let header = encode_header(Algorithm::EdDsa, None);
        assert_eq!(header, "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9");
        assert!(REFERENCE_ACCESS.starts_with(&*header));
    }

    #[test]
    fn the_reference_token_parses_but_is_not_ours() {
        let untrusted = UntrustedToken::parse(REFERENCE_ACCESS, Algorithm::EdDsa);
        assert!(untrusted.is_ok());
        assert_eq!(UntrustedToken::parse(REFERENCE_ACCESS, Algorithm::Ed25519).err(), Some(DecodeError::Algorithm));
    }

    #[test]
    fn header_members_are_refused_precisely() {
        let token = |header: &str| {
            let h = URL_SAFE_NO_PAD.encode(header);
            format!("{h}.e30.{}", "A".repeat(86))
        };
        let check = |header: &str| UntrustedToken::parse(&token(header), Algorithm::EdDsa).err();
        assert_eq!(check(r#"{"alg":"EdDSA"}"#), None);
        assert_eq!(check(r#"{"alg":"none"}"#), Some(DecodeError::Algorithm));
        assert_eq!(check(r#"{"alg":"EdDSA","typ":"at+jwt"}"#), Some(DecodeError::TokenType));
        assert_eq!(check(r#"{"alg":"none","alg":"EdDSA"}"#), Some(DecodeError::Header));
        assert_eq!(check(r#"{"alg":"EdDSA","crit":["exp"]}"#), Some(DecodeError::Header));
        assert_eq!(check(r#"{"alg":"EdDSA","jwk":{}}"#), Some(DecodeError::Header));
        assert_eq!(check(r#"{"alg":1}"#), Some(DecodeError::Header));
        assert_eq!(check(r#"{"typ":"JWT"}"#), Some(DecodeError::Header));
        assert_eq!(check(r#"{"alg":"EdDSA",}"#), Some(DecodeError::NotJson));
        assert_eq!(check("\u{feff}{\"alg\":\"EdDSA\"}"), Some(DecodeError::NotJson));
    }

    fn claims_status(payload: &str) -> Result<crate::token::RefreshClaims, u16> {
        VerifiedToken { payload: payload.as_bytes().to_vec() }
            .claims()
            .map_err(|e| crate::error::Error::from(e).status_code())
    }

    #[test]
    fn claims_are_an_object_not_a_sequence() {
        let object = r#"{"sub":"s","acjti":"8e1783d8-4a5b-4dd4-b78d-b50565400503","exp":1,"jti":"a6fbd9f9-e8dd-4c0f-ba46-49d01908626a"}"#;
        assert!(claims_status(object).is_ok());
        // serde's derived struct deserializer alone would accept this.
        let sequence = r#"["s","8e1783d8-4a5b-4dd4-b78d-b50565400503",1,"a6fbd9f9-e8dd-4c0f-ba46-49d01908626a"]"#;
        assert_eq!(claims_status(sequence).err(), Some(422));
        assert_eq!(claims_status(&format!("{object} {object}")).err(), Some(401));
        assert_eq!(claims_status(&format!(" {object}\n")).map(|c| c.subject), Ok("s".to_owned()));
    }

    #[test]
    fn json_numbers_out_of_range_are_malformed_claims_not_malformed_json() {
        let claims = |exp: &str| {
            format!(
                r#"{{"sub":"s","acjti":"8e1783d8-4a5b-4dd4-b78d-b50565400503","exp":{exp},"jti":"a6fbd9f9-e8dd-4c0f-ba46-49d01908626a"}}"#
            )
        };
        // Valid JSON (RFC 8259 puts no bound on numbers), not an i64: 422.
        assert_eq!(claims_status(&claims("1e400")).err(), Some(422));
        assert_eq!(claims_status(&claims("-1e400")).err(), Some(422));
        assert_eq!(claims_status(&claims("9223372036854775808")).err(), Some(422));
        // Not JSON at all: 401.
        assert_eq!(claims_status(&claims("NaN")).err(), Some(401));
        assert_eq!(claims_status(&claims("1e")).err(), Some(401));
        // Invalid UTF-8 inside a string: serde_json's skipping parser lets
        // it through, RFC 8259 does not. 401.
        let mut bytes = claims("1").into_bytes();
        bytes[8] = 0xff;
        let invalid = VerifiedToken { payload: bytes }
            .claims::<crate::token::RefreshClaims>()
            .map_err(|e| crate::error::Error::from(e).status_code());
        assert_eq!(invalid.err(), Some(401), "invalid UTF-8 is not JSON");
    }
}
