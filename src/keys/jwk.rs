//! Publishing the verification keys as JSON Web Keys.
//!
//! A resource server that checks access tokens on its own fetches the
//! issuer's key set (conventionally at `/.well-known/jwks.json`). Ed25519
//! keys are written as RFC 8037 `OKP` keys: `kty: "OKP"`, `crv: "Ed25519"`,
//! `x` the base64url (no padding) of the 32 public-key bytes. Only public
//! halves ever become a [`Jwk`]: there is no `d` member to leak.
//!
//! [`Jwk::thumbprint`] is the RFC 7638 SHA-256 thumbprint, the usual way to
//! name a key in logs and a good choice for a `kid`.
//!
//! ```
//! use token_refresh::{keys::Algorithm, Ed25519Signer, Signer};
//!
//! let signer = Ed25519Signer::from_seed(&[7; 32])?;
//! let jwks = signer.keyring().to_jwks(Algorithm::EdDsa);
//! let json = serde_json::to_string(&jwks)?;
//! assert!(json.starts_with(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":""#));
//! assert_eq!(jwks.keys[0].to_verification_key()?, *signer.verification_key());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
#[cfg(feature = "thumbprint")]
use sha2::{Digest as _, Sha256};

use crate::keys::Algorithm;
use crate::keys::{KeyError, KeyId, Keyring, VerificationKey};

/// `kty` of an Ed25519 key (RFC 8037 §2).
const KTY_OKP: &str = "OKP";
/// `crv` of an Ed25519 key (RFC 8037 §2).
const CRV_ED25519: &str = "Ed25519";

/// A JWK Set (RFC 7517 §5): `{"keys":[…]}`, active key first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, in keyring order (the signing key first).
    pub keys: Vec<Jwk>,
}

/// One public key as a JWK. Members are written in the order `kty`, `crv`,
/// `x`, `use`, `alg`, `kid`; absent optional members are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; `OKP` for Ed25519.
    pub kty: String,
    /// Curve; `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Intended use; `sig` for the keys this crate publishes.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The JWS `alg` the key is used with (`EdDSA`, or `Ed25519` when the
    /// policy opted in to RFC 9864 names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The key id tokens name in their header, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

impl Jwk {
    /// The signing JWK of `key` for tokens with `alg` = `algorithm`:
    /// `use: "sig"`, and `kid` when the key has one.
    pub fn from_key(key: &VerificationKey, algorithm: Algorithm) -> Self {
        Self {
            kty: KTY_OKP.to_owned(),
            crv: CRV_ED25519.to_owned(),
            x: URL_SAFE_NO_PAD.encode(key.to_bytes()),
            key_use: Some("sig".to_owned()),
            alg: Some(algorithm.as_str().to_owned()),
            kid: key.key_id().map(|kid| kid.as_str().to_owned()),
        }
    }

    #[cfg(feature = "thumbprint")]
    #[cfg_attr(docsrs, doc(cfg(feature = "thumbprint")))]
    /// The RFC 7638 SHA-256 thumbprint, base64url without padding (43
    /// characters). It depends on `kty`, `crv` and `x` only, so the same key
    /// has the same thumbprint whatever its `kid`, `use` or `alg`.
    pub fn thumbprint(&self) -> String {
        // RFC 7638 §3: the required members in lexicographic order, no
        // whitespace. `Value`'s `Display` cannot fail, unlike `to_vec`.
        let mut input = serde_json::Map::new();
        input.insert("crv".to_owned(), self.crv.clone().into());
        input.insert("kty".to_owned(), self.kty.clone().into());
        input.insert("x".to_owned(), self.x.clone().into());
        let json = serde_json::Value::Object(input).to_string();
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
    }

    /// Loads the key this JWK describes, with the same load-time checks as
    /// [`VerificationKey::from_bytes`] (weak keys are refused). Refuses any
    /// `kty`/`crv` other than `OKP`/`Ed25519`, an `x` that is not 32 bytes of
    /// unpadded base64url, a `use` other than `sig`, and an invalid `kid`.
    /// `alg` is not checked here: the policy decides which name it accepts.
    pub fn to_verification_key(&self) -> Result<VerificationKey, KeyError> {
        if self.kty != KTY_OKP || self.crv != CRV_ED25519 || self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::InvalidPublicKey);
        }
        let bytes = URL_SAFE_NO_PAD.decode(&self.x).map_err(|_| KeyError::InvalidPublicKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidPublicKey)?;
        let key = VerificationKey::from_bytes(&bytes)?;
        match &self.kid {
            Some(kid) => Ok(key.with_key_id(KeyId::new(kid)?)),
            None => Ok(key),
        }
    }
}

impl VerificationKey {
    /// This key as a signing JWK for `algorithm`; see [`Jwk::from_key`].
    pub fn to_jwk(&self, algorithm: Algorithm) -> Jwk {
        Jwk::from_key(self, algorithm)
    }

    #[cfg(feature = "thumbprint")]
    #[cfg_attr(docsrs, doc(cfg(feature = "thumbprint")))]
    /// The RFC 7638 SHA-256 thumbprint of this key; see [`Jwk::thumbprint`].
    pub fn thumbprint(&self) -> String {
        self.to_jwk(Algorithm::EdDsa).thumbprint()
    }
}

impl Keyring {
    /// Every key of the ring as a JWK Set, active key first, for a
    /// `/.well-known/jwks.json` endpoint. `algorithm` is the policy's
    /// ([`crate::Policy::algorithm`]).
    pub fn to_jwks(&self, algorithm: Algorithm) -> Jwks {
        Jwks { keys: self.keys().iter().map(|key| Jwk::from_key(key, algorithm)).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::signer::{Ed25519Signer, Signer as _};

    // RFC 8037 Appendix A.1: the Ed25519 test key.
    const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    // RFC 8037 Appendix A.3: its RFC 7638 thumbprint.
    #[cfg(feature = "thumbprint")]
    const RFC8037_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    fn rfc8037_signer() -> Ed25519Signer {
        let seed: [u8; 32] =
            URL_SAFE_NO_PAD.decode(RFC8037_D).ok().and_then(|d| d.try_into().ok()).unwrap_or_else(|| unreachable!());
        Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!())
    }

    #[cfg(feature = "thumbprint")]
    #[test]
    fn rfc8037_vector_gives_its_x_and_thumbprint() {
        let signer = rfc8037_signer();
        let jwk = signer.verification_key().to_jwk(Algorithm::EdDsa);
        assert_eq!(jwk.x, RFC8037_X);
        assert_eq!(jwk.thumbprint(), RFC8037_THUMBPRINT);
        assert_eq!(signer.verification_key().thumbprint(), RFC8037_THUMBPRINT);
    }

    #[test]
    fn jwks_bytes_and_kid() {
        let kid = KeyId::new("k1").unwrap_or_else(|_| unreachable!());
        let signer = rfc8037_signer().with_key_id(kid).unwrap_or_else(|_| unreachable!());
        let json = serde_json::to_string(&signer.keyring().to_jwks(Algorithm::Ed25519)).unwrap_or_default();
        assert_eq!(
            json,
            format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}","use":"sig","alg":"Ed25519","kid":"k1"}}]}}"#
            )
        );
        // The kid does not change the thumbprint.
        #[cfg(feature = "thumbprint")]
        assert_eq!(
            signer.keyring().to_jwks(Algorithm::EdDsa).keys.first().map(Jwk::thumbprint).as_deref(),
            Some(RFC8037_THUMBPRINT)
        );
    }

    #[test]
    fn round_trips_and_refuses_foreign_keys() {
        let signer = rfc8037_signer();
        let jwk = signer.verification_key().to_jwk(Algorithm::EdDsa);
        assert_eq!(jwk.to_verification_key().ok().as_ref(), Some(signer.verification_key()));

        let refused = |edit: fn(&mut Jwk)| {
            let mut bad = jwk.clone();
            edit(&mut bad);
            bad.to_verification_key().is_err()
        };
        assert!(refused(|j| j.kty = "EC".into()));
        assert!(refused(|j| j.crv = "X25519".into()));
        assert!(refused(|j| j.key_use = Some("enc".into())));
        assert!(refused(|j| j.x.push('A')));
        assert!(refused(|j| j.x = format!("{}=", j.x)));
        assert!(refused(|j| j.kid = Some("../x".into())));
        // The identity point: a weak key.
        assert!(refused(|j| j.x = URL_SAFE_NO_PAD.encode({
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        })));
    }
}
