//! The login body: `{"email","signature","publicKey"}`, signed on the
//! user's side.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use zeroize::Zeroizing;

/// What a login sends: the JSON body of `POST …/session`.
///
/// The body is a replayable credential (it never changes for a user and
/// key), so `Debug` shows only the e-mail address and the body is wiped
/// from memory on drop.
#[derive(Clone)]
pub struct Credentials {
    email: String,
    body: Zeroizing<Vec<u8>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody<'a> {
    email: &'a str,
    signature: &'a str,
    public_key: &'a str,
}

impl Credentials {
    /// Signs `email` with the user's key: `signature` is the hex of the
    /// Ed25519 signature over the e-mail's UTF-8 bytes, `publicKey` the hex
    /// of the 32-byte public key.
    pub fn sign(email: impl Into<String>, key: &SigningKey) -> Self {
        let email = email.into();
        let signature = hex(&key.sign(email.as_bytes()).to_bytes());
        let public_key = hex(key.verifying_key().as_bytes());
        let body = LoginBody { email: &email, signature: &signature, public_key: &public_key };
        // Serializing three strings cannot fail.
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        Self { email, body }
    }

    /// A login body made elsewhere (a file the user's tooling wrote). It is
    /// checked to be a JSON object with a string `email`; the server checks
    /// the rest.
    pub fn from_json(body: impl Into<Vec<u8>>) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Email {
            email: String,
        }
        let body = Zeroizing::new(body.into());
        let Email { email } = serde_json::from_slice(&body)?;
        Ok(Self { email, body })
    }

    /// The e-mail address the body logs in.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The JSON body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("email", &self.email).field("body", &"<redacted>").finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn the_body_verifies_under_the_public_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let credentials = Credentials::sign("carol@example.com", &key);
        let body: serde_json::Value = serde_json::from_slice(credentials.body()).unwrap();
        assert_eq!(body["email"], "carol@example.com");
        let public = unhex(body["publicKey"].as_str().unwrap());
        assert_eq!(public, key.verifying_key().as_bytes());
        let signature = Signature::from_slice(&unhex(body["signature"].as_str().unwrap())).unwrap();
        key.verifying_key().verify_strict(b"carol@example.com", &signature).unwrap();
        key.verifying_key().verify(b"carol@example.com", &signature).unwrap();
        assert!(!format!("{credentials:?}").contains("signature\":"));
    }

    #[test]
    fn a_body_from_a_file_needs_an_email() {
        assert_eq!(Credentials::from_json(br#"{"email":"a@b","signature":"00"}"#.to_vec()).unwrap().email(), "a@b");
        assert!(Credentials::from_json(b"{}".to_vec()).is_err());
    }
}
