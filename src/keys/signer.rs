//! Who signs tokens: the [`Signer`] trait and its Ed25519 implementation.

use std::fmt;
use std::future::Future;

use ed25519_dalek::hazmat::{self, ExpandedSecretKey};
use ed25519_dalek::{Sha512, Signature, VerifyingKey};

use crate::keys::resigning::ResigningKey;
use crate::keys::secret::SecretKey;
use crate::keys::{KeyError, KeyId, Keyring, VerificationKey};

/// Signs tokens with the active key and publishes the keys that verify them.
///
/// # Contract
///
/// - `sign` must be deterministic for a given key and message, as Ed25519
///   is (RFC 8032). The grace window re-signs a stored successor pair and
///   promises the client the same bytes.
/// - `keyring` must contain the active key first, so fresh tokens verify on
///   the first try.
/// - `sign` may be slow (a KMS or HSM round trip): it returns a `Send`
///   future and must not block the executor.
pub trait Signer: Send + Sync {
    /// The `kid` written into new tokens, if the deployment configured one.
    fn key_id(&self) -> Option<&KeyId>;

    /// The keys tokens are verified against, active key first.
    fn keyring(&self) -> &Keyring;

    /// Signs `message` (a JWS signing input) with the active key.
    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signature, SignerError>> + Send;

    /// Whether tokens under the active key can be verified by re-signing
    /// them: `Some` when this signer holds that key in this process and
    /// signs deterministically (RFC 8032), as [`Ed25519Signer`] and
    /// `AwsLcSigner` do. The flows then check a token whose `kid` names
    /// that key (or that has no `kid` and is tried against it) by signing
    /// its signing input again and comparing the two signatures in
    /// constant time: one signature instead of one verification, with
    /// the same answer for every token except a second, differently
    /// nonced signature that only a holder of our secret key can make
    /// (`docs/security.md`, § Verification by re-signing).
    ///
    /// The default, `None`, keeps the normal verification, and is the
    /// only right answer for a remote or non-deterministic signer (a KMS
    /// or HSM). A [`ResigningKey`] can only be made by this crate's own
    /// signers, so a signer of yours opts in only by forwarding one of
    /// theirs (as `Arc<S>` and [`BoxSigner`] do). The decoder re-signs
    /// only for the public key the `ResigningKey` carries; every other key
    /// of the keyring (verify-only keys during a rotation) is verified the
    /// normal way. [`PolicyBuilder::verify_by_resigning`](crate::policy::PolicyBuilder::verify_by_resigning)
    /// turns it off.
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        None
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn key_id(&self) -> Option<&KeyId> {
        (**self).key_id()
    }
    fn keyring(&self) -> &Keyring {
        (**self).keyring()
    }
    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signature, SignerError>> + Send {
        (**self).sign(message)
    }
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        (**self).resigning_key()
    }
}

/// A [`Signer`] of any type behind one type, picked at run time (an
/// in-process key, AWS-LC, a remote signer). Cloning shares the signer.
/// Each signature costs one boxed future.
#[derive(Clone)]
pub struct BoxSigner(std::sync::Arc<dyn DynSigner>);

impl BoxSigner {
    /// The erased signer itself, for the core: one boxed future per call.
    pub(crate) fn as_dyn(&self) -> &dyn DynSigner {
        &*self.0
    }
}

impl BoxSigner {
    /// Boxes `signer`.
    pub fn new<S: Signer + 'static>(signer: S) -> Self {
        Self(std::sync::Arc::new(signer))
    }
}

impl fmt::Debug for BoxSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxSigner").field("key_id", &Signer::key_id(self)).finish_non_exhaustive()
    }
}

type SignFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Signature, SignerError>> + Send + 'a>>;

/// [`Signer`] with a boxed future: object safe.
pub(crate) trait DynSigner: Send + Sync {
    fn key_id(&self) -> Option<&KeyId>;
    fn keyring(&self) -> &Keyring;
    fn sign_boxed<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a>;
    fn resigning_key(&self) -> Option<ResigningKey<'_>>;
}

impl<S: Signer> DynSigner for S {
    fn key_id(&self) -> Option<&KeyId> {
        Signer::key_id(self)
    }
    fn keyring(&self) -> &Keyring {
        Signer::keyring(self)
    }
    fn sign_boxed<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(Signer::sign(self, message))
    }
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        Signer::resigning_key(self)
    }
}

impl Signer for BoxSigner {
    fn key_id(&self) -> Option<&KeyId> {
        self.0.key_id()
    }
    fn keyring(&self) -> &Keyring {
        self.0.keyring()
    }
    async fn sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        self.0.sign_boxed(message).await
    }
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        self.0.resigning_key()
    }
}

/// A signer could not sign (remote signer down, key unavailable).
#[derive(Debug, thiserror::Error)]
#[error("signer failed: {0}")]
pub struct SignerError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// An in-process Ed25519 signer.
///
/// The secret key is zeroized on drop (ed25519-dalek's `zeroize`), and
/// `Debug` shows only the public key and key id.
///
/// ```
/// use token_refresh::Ed25519Signer;
///
/// let signer = Ed25519Signer::from_seed(&[7; 32])?;
/// assert!(format!("{signer:?}").contains("public"));
/// # Ok::<(), token_refresh::keys::KeyError>(())
/// ```
pub struct Ed25519Signer {
    /// `SHA-512(seed)` split into the clamped scalar and the nonce prefix,
    /// computed once: `SigningKey::sign` recomputes it for every signature.
    /// It is exactly what that derivation yields (RFC 8032 §5.1.5), never
    /// built from anything else, which is the one rule `hazmat::raw_sign`
    /// asks its callers to keep. Zeroized on drop.
    expanded: ExpandedSecretKey,
    verifying_key: VerifyingKey,
    public: PublicKeys,
}

/// The public side of a signer: the active key, its optional `kid`, and
/// the keyring tokens are verified against. Shared by every built-in signer.
#[derive(Debug, Clone)]
pub(crate) struct PublicKeys {
    kid: Option<KeyId>,
    active: VerificationKey,
    keyring: Keyring,
}

impl PublicKeys {
    pub(crate) fn new(active: VerifyingKey) -> Result<Self, KeyError> {
        let active = VerificationKey::new(active)?;
        let keyring = Keyring::new([active.clone()])?;
        Ok(Self { kid: None, active, keyring })
    }

    pub(crate) fn with_key_id(mut self, kid: KeyId) -> Result<Self, KeyError> {
        let keys = self
            .keyring
            .keys()
            .iter()
            .enumerate()
            .map(|(i, key)| if i == 0 { key.clone().with_key_id(kid.clone()) } else { key.clone() });
        self.keyring = Keyring::new(keys.collect::<Vec<_>>())?;
        self.active = self.active.with_key_id(kid.clone());
        self.kid = Some(kid);
        Ok(self)
    }

    pub(crate) fn with_verify_only_key(mut self, key: VerificationKey) -> Result<Self, KeyError> {
        let keys: Vec<_> = self.keyring.keys().iter().cloned().chain([key]).collect();
        self.keyring = Keyring::new(keys)?;
        Ok(self)
    }

    pub(crate) fn key_id(&self) -> Option<&KeyId> {
        self.kid.as_ref()
    }

    pub(crate) fn active(&self) -> &VerificationKey {
        &self.active
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.keyring
    }
}

impl Ed25519Signer {
    /// A signer for `key` (see [`SecretKey`] for the forms a key is read
    /// from).
    pub fn new(key: SecretKey) -> Result<Self, KeyError> {
        let verifying_key = key.signing_key().verifying_key();
        let public = PublicKeys::new(verifying_key)?;
        let expanded = ExpandedSecretKey::from(key.seed());
        // `key` (and the seed it holds) is zeroized when it drops here.
        Ok(Self { expanded, verifying_key, public })
    }

    /// From the 32-byte secret seed: `Ed25519Signer::new(SecretKey::from_bytes(seed))`.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        Self::new(SecretKey::from_bytes(seed))
    }

    /// Writes `kid` into new tokens and announces the active key under it.
    /// Verify-only keys keep their own ids.
    pub fn with_key_id(mut self, kid: KeyId) -> Result<Self, KeyError> {
        self.public = self.public.with_key_id(kid)?;
        Ok(self)
    }

    /// Also accepts tokens signed by `key` (a previous or upcoming key during
    /// a rotation). Never signs with it.
    pub fn with_verify_only_key(mut self, key: VerificationKey) -> Result<Self, KeyError> {
        self.public = self.public.with_verify_only_key(key)?;
        Ok(self)
    }

    /// The active public key.
    pub fn verification_key(&self) -> &VerificationKey {
        self.public.active()
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("public", &crate::keys::hex::encode(self.verifying_key.as_bytes()))
            .field("kid", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl Signer for Ed25519Signer {
    fn key_id(&self) -> Option<&KeyId> {
        self.public.key_id()
    }

    fn keyring(&self) -> &Keyring {
        self.public.keyring()
    }

    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signature, SignerError>> + Send {
        std::future::ready(Ok(hazmat::raw_sign::<Sha512>(&self.expanded, message, &self.verifying_key)))
    }

    /// In process and deterministic: tokens under the active key are
    /// verified by re-signing them.
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        Some(ResigningKey::dalek(&self.expanded, &self.verifying_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let seed = [0x42; 32];
        let signer = Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!());
        let shown = format!("{signer:?}");
        assert!(!shown.contains(&crate::keys::hex::encode(&seed)), "{shown}");
    }

    #[test]
    fn signatures_are_byte_identical_to_signing_key_sign() {
        use ed25519_dalek::Signer as _;
        for (seed, message) in [([0u8; 32], &b""[..]), ([0x42; 32], b"header.payload"), ([0xff; 32], &[7u8; 300][..])] {
            let signer = Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!());
            let Some(Ok(ours)) = futures_util::FutureExt::now_or_never(Signer::sign(&signer, message)) else {
                unreachable!("the Ed25519 signer is ready at once")
            };
            assert_eq!(ours, ed25519_dalek::SigningKey::from_bytes(&seed).sign(message));
        }
    }

    #[test]
    fn loads_openssl_pkcs8_pem() {
        // `openssl genpkey -algorithm ed25519` output (RFC 8410 §10.3 sample).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let signer = SecretKey::from_pkcs8_pem(pem).and_then(Ed25519Signer::new);
        assert!(signer.is_ok(), "{signer:?}");
        assert!(SecretKey::from_pkcs8_pem("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n").is_err());
    }
}
