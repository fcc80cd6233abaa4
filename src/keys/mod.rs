//! Verification keys, key ids and the keyring.
//!
//! Keys are checked when they are loaded, not when a token arrives: a
//! small-order ("weak") public key is refused, because every signature made
//! for it verifies for many messages. A key id is a short string of
//! URL-safe characters (an RFC 7638 thumbprint fits), so it can be written
//! into a JOSE header without escaping.

mod algorithm;
#[cfg(feature = "aws-lc")]
pub(crate) mod aws_lc;
pub(crate) mod hex;
pub(crate) mod jwk;
pub(crate) mod resigning;
pub(crate) mod secret;
pub(crate) mod signer;

pub use algorithm::Algorithm;
#[cfg(feature = "aws-lc")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-lc")))]
pub use aws_lc::AwsLcSigner;
pub use jwk::{Jwk, Jwks};
pub use resigning::ResigningKey;
pub use secret::SecretKey;
pub use signer::{BoxSigner, Ed25519Signer, Signer, SignerError};

use std::fmt;

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::DecodePublicKey;

/// The most keys a keyring holds. A token without `kid` is tried against
/// each key in turn, so this bounds the work an unauthenticated request can
/// cause.
pub const MAX_KEYS: usize = 4;

/// The longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A key could not be loaded or a keyring could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a point on the curve, or the wrong length.
    #[error("not an Ed25519 public key")]
    InvalidPublicKey,
    /// A small-order public key: signatures under it prove nothing.
    #[error("weak (small-order) public key refused")]
    WeakKey,
    /// A secret key of the wrong length or encoding.
    #[error("not an Ed25519 secret key")]
    InvalidSecretKey,
    /// PKCS#8 / SPKI PEM or DER that could not be decoded.
    #[error("key file could not be decoded: {0}")]
    Encoding(String),
    /// A key id that is empty, too long, or has characters outside
    /// `A-Z a-z 0-9 - _ . ~`.
    #[error("invalid key id")]
    InvalidKeyId,
    /// Two keys with the same id.
    #[error("duplicate key id")]
    DuplicateKeyId,
    /// Two copies of one public key.
    #[error("duplicate key")]
    DuplicateKey,
    /// No keys, or more than [`MAX_KEYS`].
    #[error("a keyring holds 1 to {MAX_KEYS} keys")]
    KeyCount,
}

/// A key id (`kid`): 1 to 64 characters from `A-Z a-z 0-9 - _ . ~`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(Box<str>);

impl KeyId {
    /// Validates `id`.
    ///
    /// ```
    /// use token_refresh::KeyId;
    /// assert!(KeyId::new("2026-11-key1").is_ok());
    /// assert!(KeyId::new("../../etc/passwd").is_err());
    /// ```
    pub fn new(id: &str) -> Result<Self, KeyError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        let shape_ok = !id.is_empty() && id.len() <= MAX_KEY_ID_LEN && id.bytes().all(allowed);
        // "." and ".." alone are refused: a kid is never a path.
        if !shape_ok || id.bytes().all(|b| b == b'.') {
            return Err(KeyError::InvalidKeyId);
        }
        Ok(Self(id.into()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ed25519 public key that passed the load-time checks, with its
/// optional key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationKey {
    key: VerifyingKey,
    kid: Option<KeyId>,
}

impl VerificationKey {
    /// Wraps `key`, refusing small-order keys.
    pub fn new(key: VerifyingKey) -> Result<Self, KeyError> {
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(Self { key, kid: None })
    }

    /// From the 32 bytes of a compressed public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        Self::new(VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey)?)
    }

    /// From the hex of the 32 key bytes (64 digits, either case): the form
    /// the FIB login body's `publicKey` and most users tables hold.
    ///
    /// ```
    /// use token_refresh::VerificationKey;
    /// use token_refresh::ed25519_dalek::SigningKey;
    ///
    /// let public = SigningKey::from_bytes(&[7; 32]).verifying_key();
    /// let hex: String = public.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    /// assert_eq!(VerificationKey::from_hex(&hex)?.to_bytes(), public.to_bytes());
    /// assert!(VerificationKey::from_hex(&hex[..62]).is_err());
    /// # Ok::<(), token_refresh::keys::KeyError>(())
    /// ```
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        Self::from_bytes(&hex::decode_array(hex).ok_or(KeyError::InvalidPublicKey)?)
    }

    /// From SPKI PEM (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout`
    /// writes it).
    pub fn from_public_key_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Encoding(e.to_string()))?;
        Self::new(key)
    }

    /// From SPKI DER.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_der(der).map_err(|e| KeyError::Encoding(e.to_string()))?;
        Self::new(key)
    }

    /// From a key file's bytes, whichever of the usual forms it has: a
    /// public key (SPKI, PEM `-----BEGIN PUBLIC KEY-----` or DER) or a
    /// PKCS#8 private key (PEM `-----BEGIN PRIVATE KEY-----` or DER), of
    /// which only the public half is kept. For `--verify-key`-style
    /// configuration during a key rotation, where either file may be at
    /// hand. Error messages never quote the bytes.
    ///
    /// ```
    /// use token_refresh::VerificationKey;
    /// use token_refresh::ed25519_dalek::SigningKey;
    /// use token_refresh::ed25519_dalek::pkcs8::EncodePublicKey as _;
    /// use token_refresh::ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    ///
    /// let public = SigningKey::from_bytes(&[7; 32]).verifying_key();
    /// let pem = public.to_public_key_pem(LineEnding::LF)?;
    /// assert_eq!(VerificationKey::from_key_document(pem.as_bytes())?.to_bytes(), public.to_bytes());
    /// assert!(VerificationKey::from_key_document(b"-----BEGIN CERTIFICATE-----").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_key_document(bytes: &[u8]) -> Result<Self, KeyError> {
        let public_of = |key: SecretKey| key.verification_key();
        match std::str::from_utf8(bytes).map(str::trim_start) {
            Ok(pem) if pem.starts_with("-----BEGIN PUBLIC KEY-----") => Self::from_public_key_pem(pem),
            Ok(pem) if pem.starts_with("-----BEGIN PRIVATE KEY-----") => {
                SecretKey::from_pkcs8_pem(pem).and_then(public_of)
            }
            Ok(pem) if pem.starts_with("-----BEGIN") => {
                Err(KeyError::Encoding("expected a PEM PUBLIC KEY or PRIVATE KEY (PKCS#8) document".to_owned()))
            }
            _ => Self::from_public_key_der(bytes).or_else(|_| SecretKey::from_pkcs8_der(bytes).and_then(public_of)),
        }
    }

    /// The same key, announced under `kid`.
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.kid = Some(kid);
        self
    }

    /// The key id, if configured.
    pub fn key_id(&self) -> Option<&KeyId> {
        self.kid.as_ref()
    }

    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The 32 bytes of the public key (the JWK `x` before base64url).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("key", &hex::encode(self.key.as_bytes()))
            .field("kid", &self.kid)
            .finish()
    }
}

/// The public keys tokens are checked against: the active key first, then
/// any verify-only keys (during a key rotation), at most [`MAX_KEYS`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Keyring {
    keys: Vec<VerificationKey>,
}

impl Keyring {
    /// A keyring of `keys`, in order of preference. Refuses an empty set,
    /// more than [`MAX_KEYS`], duplicate keys and duplicate key ids.
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Result<Self, KeyError> {
        let keys: Vec<VerificationKey> = keys.into_iter().take(MAX_KEYS + 1).collect();
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(KeyError::KeyCount);
        }
        for (i, key) in keys.iter().enumerate() {
            for other in keys.iter().skip(i + 1) {
                if key.key == other.key {
                    return Err(KeyError::DuplicateKey);
                }
                if key.kid.is_some() && key.kid == other.kid {
                    return Err(KeyError::DuplicateKeyId);
                }
            }
        }
        Ok(Self { keys })
    }

    /// The keys, active first.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// The keys a token with header `kid` may have been signed with: the one
    /// named key, or, without `kid`, every key (bounded by [`MAX_KEYS`]).
    /// `None` when `kid` names no key.
    pub(crate) fn candidates<'a>(&'a self, kid: Option<&'a str>) -> Option<impl Iterator<Item = &'a VerifyingKey>> {
        if let Some(kid) = kid
            && !self.keys.iter().any(|k| k.kid.as_ref().is_some_and(|id| id.as_str() == kid))
        {
            return None;
        }
        Some(
            self.keys
                .iter()
                .filter(move |k| kid.is_none_or(|kid| k.kid.as_ref().is_some_and(|id| id.as_str() == kid)))
                .map(|k| &k.key),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_small_order_keys() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(VerificationKey::from_bytes(&identity), Err(KeyError::WeakKey)));
    }

    #[test]
    fn keyring_bounds_and_lookup() {
        let key = |seed: u8| {
            VerificationKey::new(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key())
                .unwrap_or_else(|_| unreachable!())
        };
        assert!(matches!(Keyring::new([]), Err(KeyError::KeyCount)));
        assert!(matches!(Keyring::new((1..=5).map(key)), Err(KeyError::KeyCount)));
        assert!(matches!(Keyring::new([key(1), key(1)]), Err(KeyError::DuplicateKey)));
        let a = KeyId::new("a").unwrap_or_else(|_| unreachable!());
        let ring = Keyring::new([key(1).with_key_id(a.clone()), key(2)]).unwrap_or_else(|_| unreachable!());
        assert_eq!(ring.candidates(None).map(Iterator::count), Some(2));
        assert_eq!(ring.candidates(Some("a")).map(Iterator::count), Some(1));
        assert!(ring.candidates(Some("b")).is_none());
        assert!(matches!(
            Keyring::new([key(1).with_key_id(a.clone()), key(2).with_key_id(a)]),
            Err(KeyError::DuplicateKeyId)
        ));
    }
}
