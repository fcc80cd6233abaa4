//! Makes an Ed25519 signing key for the server and prints its public half.
//!
//! ```text
//! cargo run --example keygen -- key.pem [--kid ID]
//! ```
//!
//! Writes a PKCS#8 PEM file (the same v1 form `openssl genpkey -algorithm
//! ed25519` writes) with mode 0600, refusing to overwrite an existing file,
//! then prints the public key as a JWK (RFC 8037) and its RFC 7638
//! thumbprint. The secret is never printed.

use std::io::Write as _;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use token_refresh::{Algorithm, Ed25519Signer, KeyId, Signer as _};
use zeroize::Zeroizing;

/// The fixed DER prefix of an RFC 8410 v1 PKCS#8 Ed25519 private key; the
/// 32-byte seed follows.
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keygen: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut kid = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kid" => kid = Some(args.next().ok_or("--kid needs a value")?),
            "-h" | "--help" => {
                println!("usage: keygen FILE [--kid ID]");
                return Ok(());
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => path = Some(other.to_owned()),
        }
    }
    let path = path.ok_or("usage: keygen FILE [--kid ID]")?;

    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| format!("no randomness: {e}"))?;
    let mut signer = Ed25519Signer::from_seed(&seed).map_err(|e| e.to_string())?;
    if let Some(kid) = kid {
        signer = signer.with_key_id(KeyId::new(&kid).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }

    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PKCS8_V1_PREFIX);
    der.extend_from_slice(seed.as_ref());
    let pem =
        Zeroizing::new(format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&*der)));
    write_secret(&path, pem.as_bytes())?;

    let jwks = signer.keyring().to_jwks(Algorithm::EdDsa);
    let jwk = jwks.keys.first().ok_or("no key")?;
    println!("wrote {path}");
    println!("public JWK: {}", serde_json::to_string(jwk).map_err(|e| e.to_string())?);
    println!("thumbprint: {}", jwk.thumbprint());
    Ok(())
}

/// Creates `path` readable by its owner only; never replaces a file.
fn write_secret(path: &str, contents: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("{path}: {e}"))?;
    file.write_all(contents).map_err(|e| format!("{path}: {e}"))
}
