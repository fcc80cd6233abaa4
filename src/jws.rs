//! Compact JWS with Ed25519 (RFC 7515, RFC 8037): SPEC §2 and §4 steps 2–5.
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
//! Signatures are checked with ed25519-dalek's
//! [`VerifyingKey::verify_strict`](ed25519_dalek::VerifyingKey::verify_strict),
//! never the permissive `verify`:
//! - `S` must be canonical (`S < L`), so `(R, S + L)` is not a second valid
//!   spelling of a signature (malleability). Both modes do this in
//!   ed25519-dalek 3; we do not enable its `legacy_compatibility` feature,
//!   which would turn it off.
//! - `R` and the public key must not be small-order points. Under a
//!   small-order key the cofactorless equation holds for forged signatures
//!   (`R` = identity, `S` = 0 verifies *every* message under the identity
//!   key): `verify` accepts that, `verify_strict` refuses it. We also refuse
//!   such keys when they are loaded ([`crate::VerificationKey::new`]), so a
//!   keyring never holds one.
//! - Honest signers, ours included, always produce signatures that pass:
//!   the stricter check costs two cheap small-order tests and turns away no
//!   legitimate token. Project Wycheproof's Ed25519 vectors pin this (every
//!   valid vector accepted, every invalid one refused: `tests/vectors.rs`).
//!
//! Timing: verification handles only public values (the token, its
//! signature, our public key). ed25519-dalek computes `[S]B - [k]A` with a
//! variable-time double-scalar multiplication, which is safe precisely
//! because nothing secret is involved, and compares the result with `R` in
//! constant time (`ct_eq`). Refusals before that (shape, header, `kid`,
//! non-canonical `S`, small-order `R`) depend only on what the caller sent.
//! Signing, which does use the secret key, is constant-time.
//!
//! # Bounded work
//!
//! An unauthenticated request costs at most: one pass over an
//! `Authorization` value of at most 8 KiB (longer is refused before anything
//! else); base64url decoding of a header segment of at most 256 characters
//! into a stack buffer and one JSON parse of it; and at most
//! [`crate::MAX_KEYS`] signature checks over a signing input of at most
//! 4 353 bytes (256 + 1 + 4096). The payload (at most 4096 characters) is decoded and parsed only
//! after the signature verified.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signature;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::{Error, Unauthorized, Unprocessable};
use crate::keys::Keyring;

/// Largest accepted JOSE header segment, in base64url characters.
const MAX_HEADER_SEGMENT: usize = 256;
/// Largest accepted payload segment, in base64url characters.
const MAX_PAYLOAD_SEGMENT: usize = 4096;
/// An Ed25519 signature is 64 bytes: 86 base64url characters.
const SIGNATURE_SEGMENT: usize = 86;

/// The JOSE `alg` name written into and required of every token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// `EdDSA` (RFC 8037), the name the seed uses. The default.
    #[default]
    EdDsa,
    /// `Ed25519`, the fully specified name of RFC 9864. Opt in to issue and
    /// accept this name instead of `EdDSA`; never both.
    Ed25519,
}

impl Algorithm {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }
}

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
    /// and the JOSE header (SPEC §4 steps 2–3) of `token`.
    pub fn parse(token: &'a str, algorithm: Algorithm) -> Result<Self, Unauthorized> {
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(Unauthorized::Malformed);
        };
        let sizes_ok = (1..=MAX_HEADER_SEGMENT).contains(&header.len())
            && (1..=MAX_PAYLOAD_SEGMENT).contains(&payload.len())
            && signature.len() == SIGNATURE_SEGMENT;
        if !sizes_ok || !is_base64url(payload) {
            return Err(Unauthorized::Malformed);
        }

        let mut header_json = [0u8; MAX_HEADER_SEGMENT];
        let header_len = URL_SAFE_NO_PAD.decode_slice(header, &mut header_json).map_err(|_| Unauthorized::Malformed)?;
        let header_json = header_json.get(..header_len).ok_or(Unauthorized::Malformed)?;
        let parsed = parse_header(header_json).map_err(|problem| match problem {
            HeaderProblem::NotJson => Unauthorized::NotJson,
            HeaderProblem::Refused => Unauthorized::Header,
        })?;
        if parsed.alg != algorithm.as_str() {
            return Err(Unauthorized::Algorithm);
        }
        if parsed.typ.as_ref().is_some_and(|typ| typ != "JWT") {
            return Err(Unauthorized::TokenType);
        }

        let mut signature_bytes = [0u8; 64];
        let written =
            URL_SAFE_NO_PAD.decode_slice(signature, &mut signature_bytes).map_err(|_| Unauthorized::Malformed)?;
        if written != signature_bytes.len() {
            return Err(Unauthorized::Malformed);
        }

        let signing_input_len = header.len() + 1 + payload.len();
        let signing_input = token.get(..signing_input_len).ok_or(Unauthorized::Malformed)?;
        Ok(Self {
            signing_input,
            payload,
            signature: Signature::from_bytes(&signature_bytes),
            kid: parsed.kid.map(Cow::into_owned),
        })
    }

    /// The `kid` header member, if any. Untrusted: use it only to pick a key.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Verifies the signature (SPEC §4 steps 3–4): `kid`, when present, must
    /// name a key of `keyring`; without it each key is tried, active first.
    pub fn verify(self, keyring: &Keyring) -> Result<VerifiedToken, Unauthorized> {
        let candidates = keyring.candidates(self.kid.as_deref()).ok_or(Unauthorized::UnknownKey)?;
        let mut verified = false;
        for key in candidates {
            if key.verify_strict(self.signing_input.as_bytes(), &self.signature).is_ok() {
                verified = true;
                break;
            }
        }
        if !verified {
            return Err(Unauthorized::Signature);
        }
        // Authentic from here on: the payload was written by a key we trust.
        let payload = URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| Unauthorized::Malformed)?;
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
    /// The claims, parsed strictly as `C` (SPEC §4 step 5).
    ///
    /// A payload that is not JSON is 401 (it cannot be ours); JSON that is
    /// not exactly a `C` is 422.
    pub fn claims<'a, C: serde::Deserialize<'a> + crate::claims::Validate>(&'a self) -> Result<C, Error> {
        match from_json_object::<C>(&self.payload) {
            Ok(claims) if claims.is_valid() => Ok(claims),
            Ok(_) => Err(Unprocessable::Claims.into()),
            // JSON that is not our claims: wrong shape or types, or a number
            // out of range (`"exp":1e400` is JSON, just not an i64).
            Err(_) if is_json(&self.payload) => Err(Unprocessable::Claims.into()),
            Err(_) => Err(Unauthorized::NotJson.into()),
        }
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken").finish_non_exhaustive()
    }
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
    let claims = de::Deserializer::deserialize_map(&mut deserializer, ObjectOnly(PhantomData))?;
    deserializer.end()?;
    Ok(claims)
}

/// Whether `bytes` is one JSON text: UTF-8 (RFC 8259 §8.1; serde_json's
/// skipping parser does not check it) and well formed.
fn is_json(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && serde_json::from_slice::<de::IgnoredAny>(bytes).is_ok()
}

fn is_base64url(segment: &str) -> bool {
    segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The base64url JOSE header segment for `algorithm` and optional `kid`:
/// `{"typ":"JWT","alg":"EdDSA"}` plus `"kid"` only when configured.
pub(crate) fn encode_header(algorithm: Algorithm, kid: Option<&str>) -> String {
    // KeyId admits only characters that need no JSON escaping.
    let json = match kid {
        None => format!(r#"{{"typ":"JWT","alg":"{}"}}"#, algorithm.as_str()),
        Some(kid) => format!(r#"{{"typ":"JWT","alg":"{}","kid":"{kid}"}}"#, algorithm.as_str()),
    };
    URL_SAFE_NO_PAD.encode(json)
}

/// `header.payload`: the bytes to sign.
pub(crate) fn signing_input<C: serde::Serialize>(header: &str, claims: &C) -> Result<String, serde_json::Error> {
    let json = serde_json::to_vec(claims)?;
    let mut out = String::with_capacity(header.len() + 1 + json.len().div_ceil(3) * 4 + 1 + SIGNATURE_SEGMENT);
    out.push_str(header);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&json, &mut out);
    Ok(out)
}

/// Appends `.signature` to a signing input, completing the token.
pub(crate) fn finish(mut signing_input: String, signature: &Signature) -> String {
    signing_input.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut signing_input);
    signing_input
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_ACCESS: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJhY2MiOiJib2JAYWRtaW4iLCJzdWIiOiJib2JAbWFpbC5jb20iLCJyb2xlIjoiUk9MRV9BRE1JTiIsImV4cCI6MTcwMzI2MTU3NCwianRpIjoiOGUxNzgzZDgtNGE1Yi00ZGQ0LWI3OGQtYjUwNTY1NDAwNTAzIn0.BUqeWAnkqtE6oKc-ztDwaQ36om9trZTNKR8vwelMqr4m67y3td-cVu9lOY7WTY09tTMoVQQ-rbuEFcmxCY17BA";

    #[test]
    fn the_seed_header_is_what_we_write() {
        let header = encode_header(Algorithm::EdDsa, None);
        assert_eq!(header, "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9");
        assert!(SEED_ACCESS.starts_with(&header));
    }

    #[test]
    fn the_seed_token_parses_but_is_not_ours() {
        let untrusted = UntrustedToken::parse(SEED_ACCESS, Algorithm::EdDsa);
        assert!(untrusted.is_ok());
        assert_eq!(UntrustedToken::parse(SEED_ACCESS, Algorithm::Ed25519).err(), Some(Unauthorized::Algorithm));
    }

    #[test]
    fn header_members_are_refused_precisely() {
        let token = |header: &str| {
            let h = URL_SAFE_NO_PAD.encode(header);
            format!("{h}.e30.{}", "A".repeat(86))
        };
        let check = |header: &str| UntrustedToken::parse(&token(header), Algorithm::EdDsa).err();
        assert_eq!(check(r#"{"alg":"EdDSA"}"#), None);
        assert_eq!(check(r#"{"alg":"none"}"#), Some(Unauthorized::Algorithm));
        assert_eq!(check(r#"{"alg":"EdDSA","typ":"at+jwt"}"#), Some(Unauthorized::TokenType));
        assert_eq!(check(r#"{"alg":"none","alg":"EdDSA"}"#), Some(Unauthorized::Header));
        assert_eq!(check(r#"{"alg":"EdDSA","crit":["exp"]}"#), Some(Unauthorized::Header));
        assert_eq!(check(r#"{"alg":"EdDSA","jwk":{}}"#), Some(Unauthorized::Header));
        assert_eq!(check(r#"{"alg":1}"#), Some(Unauthorized::Header));
        assert_eq!(check(r#"{"typ":"JWT"}"#), Some(Unauthorized::Header));
        assert_eq!(check(r#"{"alg":"EdDSA",}"#), Some(Unauthorized::NotJson));
        assert_eq!(check("\u{feff}{\"alg\":\"EdDSA\"}"), Some(Unauthorized::NotJson));
    }

    fn claims_status(payload: &str) -> Result<crate::RefreshClaims, u16> {
        VerifiedToken { payload: payload.as_bytes().to_vec() }.claims().map_err(|e| e.status_code())
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
        let invalid = VerifiedToken { payload: bytes }.claims::<crate::RefreshClaims>().map_err(|e| e.status_code());
        assert_eq!(invalid.err(), Some(401), "invalid UTF-8 is not JSON");
    }
}
