//! base64url (unpadded, as JOSE writes it) and lowercase hex.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// `bytes` in unpadded base64url.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of unpadded base64url `text`; panics if it is not.
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("test input is base64url")
}

/// `bytes` in padded standard base64, as PEM bodies write it.
pub fn b64_standard(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// `bytes` in lowercase hex, as login bodies carry keys and signatures.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
