//! Makes an Ed25519 signing key for the server and prints its public half.
//!
//! ```text
//! cargo run -p token-refresh-examples --bin keygen -- key.pem [--kid ID]
//! ```
//!
//! Writes a PKCS#8 PEM file (the same v1 form `openssl genpkey -algorithm
//! ed25519` writes) with mode 0600, refusing to overwrite an existing file,
//! then prints the public key as a JWK (RFC 8037) and its RFC 7638
//! thumbprint. The secret is never printed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes, spki::der::pem::LineEnding};
use token_refresh::{Ed25519Signer, KeyId, Signer as _, keys::Algorithm};
use zeroize::Zeroizing;

/// Makes an Ed25519 signing key (PKCS#8 PEM, mode 0600) and prints its
/// public JWK and thumbprint. The secret is never printed.
#[derive(Debug, Parser)]
#[command(name = "keygen", version)]
struct Args {
    /// The key file to create; an existing file is never replaced.
    file: PathBuf,
    /// Key id for tokens and the JWKS (A-Z a-z 0-9 - _ . ~, at most 64).
    #[arg(long, value_name = "ID")]
    kid: Option<String>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keygen: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| format!("no randomness: {e}"))?;
    let mut signer = Ed25519Signer::from_seed(&seed).map_err(|e| e.to_string())?;
    if let Some(kid) = &args.kid {
        signer = signer.with_key_id(KeyId::new(kid).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }

    // The v1 form (no public key inside), as openssl writes it.
    let keypair = KeypairBytes { secret_key: *seed, public_key: None };
    let pem = keypair.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("PKCS#8 encoding: {e}"))?;
    write_secret(&args.file, pem.as_bytes())?;

    let jwks = signer.keyring().to_jwks(Algorithm::EdDsa);
    let jwk = jwks.keys.first().ok_or("no key")?;
    println!("wrote {}", args.file.display());
    println!("public JWK: {}", serde_json::to_string(jwk).map_err(|e| e.to_string())?);
    println!("thumbprint: {}", jwk.thumbprint());
    Ok(())
}

/// Creates `path` readable by its owner only; never replaces a file.
fn write_secret(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let shown = path.display();
    let mut file = options.open(path).map_err(|e| format!("{shown}: {e}"))?;
    file.write_all(contents).map_err(|e| format!("{shown}: {e}"))
}
