//! An Ed25519 signer on aws-lc-rs (feature `aws-lc`).
//!
//! AWS-LC signs Ed25519 in about half the time ed25519-dalek takes on
//! common x86-64 machines, and a refresh signs twice. Signatures are the
//! same bytes either way (Ed25519 is deterministic, RFC 8032), so the two
//! signers are interchangeable mid-deployment and the grace window's
//! byte-identical promise holds. Verification stays on ed25519-dalek
//! through the [`Keyring`], with the checks the [`crate::token::jws`] module
//! documents.
//!
//! The secret lives inside AWS-LC, which cleanses it when the key is freed;
//! `Debug` shows only the public key.

use std::fmt;
use std::future::Future;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::keys::resigning::ResigningKey;
use crate::keys::secret::SecretKey;
use crate::keys::signer::{PublicKeys, Signer, SignerError};
use crate::keys::{KeyError, KeyId, Keyring, VerificationKey};

/// An in-process Ed25519 signer backed by AWS-LC.
///
/// ```
/// use token_refresh::{AwsLcSigner, Ed25519Signer, Signer};
///
/// let fast = AwsLcSigner::from_seed(&[7; 32])?;
/// let dalek = Ed25519Signer::from_seed(&[7; 32])?;
/// assert_eq!(fast.verification_key(), dalek.verification_key());
/// # Ok::<(), token_refresh::keys::KeyError>(())
/// ```
pub struct AwsLcSigner {
    key: Ed25519KeyPair,
    public: PublicKeys,
}

impl AwsLcSigner {
    /// A signer for `key` (see [`SecretKey`] for the forms a key is read
    /// from).
    pub fn new(key: SecretKey) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(key.seed()).map_err(|_| KeyError::InvalidSecretKey)?;
        let public: [u8; 32] = pair.public_key().as_ref().try_into().map_err(|_| KeyError::InvalidSecretKey)?;
        let public = VerifyingKey::from_bytes(&public).map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(Self { key: pair, public: PublicKeys::new(public)? })
    }

    /// From the 32-byte secret seed: `AwsLcSigner::new(SecretKey::from_bytes(seed))`.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        Self::new(SecretKey::from_bytes(seed))
    }

    /// Writes `kid` into new tokens and announces the active key under it.
    pub fn with_key_id(mut self, kid: KeyId) -> Result<Self, KeyError> {
        self.public = self.public.with_key_id(kid)?;
        Ok(self)
    }

    /// Also accepts tokens signed by `key` during a key rotation.
    pub fn with_verify_only_key(mut self, key: VerificationKey) -> Result<Self, KeyError> {
        self.public = self.public.with_verify_only_key(key)?;
        Ok(self)
    }

    /// The active public key.
    pub fn verification_key(&self) -> &VerificationKey {
        self.public.active()
    }
}

impl fmt::Debug for AwsLcSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsLcSigner")
            .field("public", &crate::keys::hex::encode(self.public.active().verifying_key().as_bytes()))
            .field("kid", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl Signer for AwsLcSigner {
    fn key_id(&self) -> Option<&KeyId> {
        self.public.key_id()
    }

    fn keyring(&self) -> &Keyring {
        self.public.keyring()
    }

    fn sign(&self, message: &[u8]) -> impl Future<Output = Result<Signature, SignerError>> + Send {
        // `try_sign`, not `sign`: the latter panics if AWS-LC reports a
        // failure, and a signer failure must reach the caller as a 500.
        let result =
            self.key.try_sign(message).map_err(|_| SignerError("AWS-LC failed to sign".into())).and_then(|signature| {
                <[u8; 64]>::try_from(signature.as_ref())
                    .map(|bytes| Signature::from_bytes(&bytes))
                    .map_err(|_| SignerError("AWS-LC returned a signature that is not 64 bytes".into()))
            });
        std::future::ready(result)
    }

    /// In process and deterministic (AWS-LC implements RFC 8032 signing,
    /// byte-identical to ed25519-dalek's): tokens under the active key are
    /// verified by re-signing them, at the cost of one AWS-LC signature.
    fn resigning_key(&self) -> Option<ResigningKey<'_>> {
        // The active public key was read from `key` itself at load.
        Some(ResigningKey::aws_lc(&self.key, self.public.active().verifying_key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::signer::Ed25519Signer;

    #[test]
    fn signs_the_same_bytes_as_dalek() {
        let seed = [0x5e; 32];
        let fast = AwsLcSigner::from_seed(&seed).unwrap_or_else(|_| unreachable!());
        let dalek = Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!());
        assert_eq!(fast.verification_key(), dalek.verification_key());
        for message in [&b""[..], b"eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.e30", &[0xff; 1000]] {
            let (a, b) = (poll(fast.sign(message)), poll(dalek.sign(message)));
            assert!(a.is_some());
            assert_eq!(a, b);
        }
    }

    fn poll<F: Future<Output = Result<Signature, SignerError>>>(future: F) -> Option<Signature> {
        futures_util::FutureExt::now_or_never(future).and_then(Result::ok)
    }

    #[test]
    fn debug_shows_no_secret() {
        let signer = AwsLcSigner::from_seed(&[0x42; 32]).unwrap_or_else(|_| unreachable!());
        assert!(!format!("{signer:?}").contains(&crate::keys::hex::encode(&[0x42; 32])));
    }
}
