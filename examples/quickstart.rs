//! In process, no network: start a session, refresh once, then present the
//! rotated token again. Prints each envelope as one JSON line, the exact
//! bytes an HTTP adapter would send.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use token_refresh::{Ed25519Signer, MemoryStore, Reply, SystemClock, User};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::in_memory([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
    // A fixed demo key: a real service loads its key from a secret store
    // (see `Ed25519Signer::from_pkcs8_pem`).
    let signer = Ed25519Signer::from_seed(&[0x5e; 32])?;
    let clock = SystemClock;

    let login = token_refresh::Policy::default().issue("bob@mail.com", &store, &signer, &clock).await;
    print_line("login", &Reply::from_result(&login));
    let first = login?;

    let header = format!("Bearer {}", first.refresh_token);
    let refreshed = token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock).await;
    print_line("refresh", &Reply::from_result(&refreshed));

    // The same (now rotated) token again: reuse, and the session is revoked.
    let reused = token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock).await;
    print_line("reuse", &Reply::from_result(&reused));

    // The successor died with the session.
    let successor = format!("Bearer {}", refreshed?.refresh_token);
    let after = token_refresh::refresh(Some(successor.as_bytes()), &store, &signer, &clock).await;
    print_line("successor after reuse", &Reply::from_result(&after));
    Ok(())
}

fn print_line(step: &str, reply: &Reply) {
    eprintln!("# {step}: HTTP {}", reply.status());
    println!("{}", String::from_utf8_lossy(reply.body()));
}
