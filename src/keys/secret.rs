//! Loading a secret key: one type, whatever the signer.
//!
//! Decoding a key is apart from signing with it (as rustls keeps
//! `KeyProvider::load_private_key` apart from its signing backends): every
//! form a deployment keeps its key in is read here once, and each signer
//! takes the result. Adding a signer adds no loader; adding a key form
//! changes no signer.

use std::fmt;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;

use crate::keys::{KeyError, VerificationKey};

/// An Ed25519 secret key (the RFC 8032 32-byte seed), decoded from any of
/// the forms a deployment keeps it in, for [`Ed25519Signer::new`] or
/// `AwsLcSigner::new`.
///
/// The seed is zeroized on drop (ed25519-dalek's `zeroize`), and `Debug`
/// shows only the public key, so the value may be logged or kept in a
/// configuration struct.
///
/// ```
/// use token_refresh::Ed25519Signer;
/// use token_refresh::keys::SecretKey;
///
/// // A key from an environment variable: PEM, or the seed as hex or base64.
/// let text = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// let key = SecretKey::from_text(text)?;
/// assert!(format!("{key:?}").contains("public"));
/// let signer = Ed25519Signer::new(key)?;
///
/// let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
/// assert_eq!(Ed25519Signer::new(SecretKey::from_text(pem)?)?.verification_key(), signer.verification_key());
/// assert!(SecretKey::from_text("too short").is_err());
/// # Ok::<(), token_refresh::keys::KeyError>(())
/// ```
///
/// [`Ed25519Signer::new`]: crate::Ed25519Signer::new
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// From the 32-byte seed.
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// From a key as text, whatever its form: a PKCS#8 PEM document
    /// (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm
    /// ed25519` writes it), or the seed as 64 hex digits or base64 /
    /// base64url (padding optional). One call for a key read from a file or
    /// an environment variable; surrounding whitespace is ignored. Error
    /// messages never quote the text.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return Self::from_pkcs8_pem(text);
        }
        let mut seed = decode_seed_text(text).ok_or(KeyError::InvalidSecretKey)?;
        let key = Self::from_bytes(&seed);
        // The signing key zeroizes itself; clear this copy too.
        seed.fill(0);
        Ok(key)
    }

    /// From a PKCS#8 PEM document.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(pem).map(Self).map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// From a PKCS#8 DER document.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_der(der).map(Self).map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The public half, checked as every loaded public key is (not of small
    /// order).
    pub fn verification_key(&self) -> Result<VerificationKey, KeyError> {
        VerificationKey::new(self.0.verifying_key())
    }

    /// The seed, for a signer to take into its own representation.
    pub(crate) fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The ed25519-dalek key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl From<SigningKey> for SecretKey {
    fn from(key: SigningKey) -> Self {
        Self(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &crate::keys::hex::encode(self.0.verifying_key().as_bytes()))
            .finish_non_exhaustive()
    }
}

/// A 32-byte seed from 64 hex digits or base64 / base64url text.
fn decode_seed_text(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

    if let Some(seed) = crate::keys::hex::decode_array::<32>(text) {
        return Some(seed);
    }
    let indifferent = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, indifferent),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, indifferent),
    ];
    engines.iter().find_map(|engine| {
        let mut seed = [0u8; 32];
        match engine.decode_slice(text, &mut seed) {
            Ok(32) => Some(seed),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;

    use super::*;

    const SEED: [u8; 32] = [0x42; 32];

    #[test]
    fn every_form_reads_the_same_key() {
        let expected = SecretKey::from_bytes(&SEED).verification_key().map(|key| key.to_bytes()).ok();
        let der = SigningKey::from_bytes(&SEED).to_pkcs8_der().map(|doc| doc.as_bytes().to_vec()).unwrap_or_default();
        let pem = SigningKey::from_bytes(&SEED)
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default();
        let hex = crate::keys::hex::encode(&SEED);
        let read = [
            SecretKey::from_pkcs8_der(&der),
            SecretKey::from_pkcs8_pem(&pem),
            SecretKey::from_text(&pem),
            SecretKey::from_text(&format!("  {hex}\n")),
            SecretKey::from_text("QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="),
            SecretKey::from_text("QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI"),
        ];
        for key in read {
            assert_eq!(key.and_then(|key| key.verification_key()).map(|key| key.to_bytes()).ok(), expected);
        }
    }

    #[test]
    fn refusals_do_not_quote_the_input() {
        for bad in ["", "too short", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----"] {
            let message = SecretKey::from_text(bad).map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(!message.is_empty(), "{bad:?} was accepted");
            assert!(bad.is_empty() || !message.contains(bad), "{message}");
        }
    }

    #[test]
    fn debug_shows_the_public_key_only() {
        let shown = format!("{:?}", SecretKey::from_bytes(&SEED));
        assert!(shown.contains("public"));
        assert!(!shown.contains(&crate::keys::hex::encode(&SEED)));
    }
}
