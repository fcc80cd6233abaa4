//! Verification by re-signing: the secret half of a signer's active key,
//! lent to the token decoder.
//!
//! Ed25519 signing is deterministic (RFC 8032 §5.1.6: the nonce is a hash of
//! the key's secret prefix and the message), so a token signed by a key this
//! process holds is authentic exactly when its signature is the one our key
//! makes over the same signing input. Signing again and comparing the 64
//! bytes in constant time costs one signature instead of one verification
//! (about 9 µs with AWS-LC, 18 µs with ed25519-dalek, against 32–37 µs
//! for a verification on the machines we measured). The argument that this
//! accepts a subset of what `verify_strict` accepts, and the one token it
//! refuses that `verify_strict` would accept, are in `docs/security.md`
//! (§ Verification by re-signing).
//!
//! A [`ResigningKey`] can only be made by this crate's in-process signers
//! ([`Ed25519Signer`](crate::Ed25519Signer), and `AwsLcSigner` with the
//! `aws-lc` feature): a third-party [`Signer`](crate::Signer) (a KMS or HSM,
//! or anything not known to be deterministic) cannot opt in by mistake, and
//! the decoder re-signs only for the public key the `ResigningKey` itself
//! carries, whatever the signer's keyring says.

use std::fmt;

use ed25519_dalek::hazmat::{self, ExpandedSecretKey};
use ed25519_dalek::{Sha512, Signature, VerifyingKey};

/// The active signing key of an in-process, deterministic Ed25519 signer,
/// borrowed for verification by re-signing (see
/// [`Signer::resigning_key`](crate::Signer::resigning_key)).
///
/// It has no public constructor, and it never hands out a signature: the
/// only question it answers is "is this the signature our key makes over
/// this message?", in constant time. `Debug` shows the public key only.
#[derive(Clone, Copy)]
pub struct ResigningKey<'a> {
    secret: Secret<'a>,
    public: &'a VerifyingKey,
}

#[derive(Clone, Copy)]
enum Secret<'a> {
    /// The expanded key `Ed25519Signer` signs with: exactly what RFC 8032
    /// §5.1.5 derives from the seed, the rule `hazmat::raw_sign` asks for.
    Dalek(&'a ExpandedSecretKey),
    #[cfg(feature = "aws-lc")]
    AwsLc(&'a aws_lc_rs::signature::Ed25519KeyPair),
}

impl<'a> ResigningKey<'a> {
    /// `public` must be the public key of `expanded` (the signer derived
    /// both from one seed).
    pub(crate) fn dalek(expanded: &'a ExpandedSecretKey, public: &'a VerifyingKey) -> Self {
        Self { secret: Secret::Dalek(expanded), public }
    }

    /// `public` must be the public key of `key` (read from it at load).
    #[cfg(feature = "aws-lc")]
    pub(crate) fn aws_lc(key: &'a aws_lc_rs::signature::Ed25519KeyPair, public: &'a VerifyingKey) -> Self {
        Self { secret: Secret::AwsLc(key), public }
    }

    /// The public key this key re-signs for.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.public
    }

    /// The signature our key makes over `message`, or `None` if the
    /// backend failed (AWS-LC reports errors it never has in practice).
    /// Crate-private: the computed signature must never leave the process,
    /// since it is a valid signature over bytes an attacker chose
    /// (docs/security.md).
    // Without the `resigning` feature nothing compares, so nothing signs.
    #[cfg_attr(not(feature = "resigning"), allow(dead_code))]
    fn sign(&self, message: &[u8]) -> Option<Signature> {
        match self.secret {
            Secret::Dalek(expanded) => Some(hazmat::raw_sign::<Sha512>(expanded, message, self.public)),
            #[cfg(feature = "aws-lc")]
            // `try_sign`, not `sign`: the latter panics on failure.
            Secret::AwsLc(key) => {
                let signature = key.try_sign(message).ok()?;
                <[u8; 64]>::try_from(signature.as_ref()).ok().map(|bytes| Signature::from_bytes(&bytes))
            }
        }
    }

    /// Whether `signature` is the signature our key makes over `message`:
    /// `Some(answer)`, or `None` when this build cannot tell (the
    /// `resigning` feature is off, or the backend failed to sign), and the
    /// caller must verify the normal way.
    ///
    /// The comparison is constant time: the expected signature is secret
    /// until compared (it is a valid signature over attacker-chosen bytes),
    /// so an early exit at the first differing byte would let an attacker
    /// learn it byte by byte from response times and forge a token.
    pub(crate) fn signed(&self, message: &[u8], signature: &Signature) -> Option<bool> {
        #[cfg(feature = "resigning")]
        {
            use subtle::ConstantTimeEq as _;
            let ours = self.sign(message)?.to_bytes();
            Some(ours[..].ct_eq(&signature.to_bytes()[..]).into())
        }
        #[cfg(not(feature = "resigning"))]
        {
            let _ = (message, signature);
            None
        }
    }
}

impl fmt::Debug for ResigningKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.secret {
            Secret::Dalek(_) => "ed25519-dalek",
            #[cfg(feature = "aws-lc")]
            Secret::AwsLc(_) => "aws-lc",
        };
        f.debug_struct("ResigningKey")
            .field("public", &crate::keys::hex::encode(self.public.as_bytes()))
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::Signer as _;

    #[test]
    fn debug_shows_the_public_key_only() {
        let seed = [0x42; 32];
        let signer = crate::Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!());
        let Some(own) = signer.resigning_key() else { unreachable!("an in-process signer re-signs") };
        let shown = format!("{own:?}");
        assert!(shown.contains(&crate::keys::hex::encode(own.verifying_key().as_bytes())), "{shown}");
        assert!(!shown.contains(&crate::keys::hex::encode(&seed)), "{shown}");
    }

    /// Only our key's RFC 8032 signature matches: not another message's,
    /// not a flipped bit.
    #[cfg(feature = "resigning")]
    #[test]
    fn only_our_signature_of_this_message_matches() {
        use ed25519_dalek::Signer as _;
        let seed = [0x42; 32];
        let signer = crate::Ed25519Signer::from_seed(&seed).unwrap_or_else(|_| unreachable!());
        let Some(own) = signer.resigning_key() else { unreachable!("an in-process signer re-signs") };
        let signature = ed25519_dalek::SigningKey::from_bytes(&seed).sign(b"header.payload");
        assert_eq!(own.signed(b"header.payload", &signature), Some(true));
        assert_eq!(own.signed(b"header.payloaD", &signature), Some(false));
        let mut flipped = signature.to_bytes();
        flipped[63] ^= 0x80;
        assert_eq!(own.signed(b"header.payload", &ed25519_dalek::Signature::from_bytes(&flipped)), Some(false));
    }
}
