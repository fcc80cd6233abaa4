//! In process, no network: start a session, refresh, retry that refresh
//! (the grace window answers the same pair), refresh again, then present
//! the first token once more: reuse, and the session is revoked. Prints
//! each envelope as one JSON line, the exact bytes an HTTP adapter would
//! send.
//!
//! ```text
//! cargo run -p token-refresh-examples --bin quickstart
//! ```

use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, Reply, SystemClock, TokenService, User};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
    // A fixed demo key: a real service loads its key from a secret store
    // (see `token_refresh::keys::SecretKey`).
    let signer = Ed25519Signer::from_seed(&[0x5e; 32])?;
    let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock);

    let login = service.issue("bob@mail.com").await;
    print_line("login", &Reply::from_result(&login));
    let first = format!("Bearer {}", login?.refresh_token);

    let refreshed = service.refresh(Some(first.as_bytes())).await;
    print_line("refresh", &Reply::from_result(&refreshed));

    // The same token again, as a client whose answer was lost retries it:
    // inside the grace window (10 s by default) the same pair, byte for byte.
    let retried = service.refresh(Some(first.as_bytes())).await;
    print_line("retry inside the grace window", &Reply::from_result(&retried));

    let second = format!("Bearer {}", refreshed?.refresh_token);
    let again = service.refresh(Some(second.as_bytes())).await;
    print_line("refresh again", &Reply::from_result(&again));

    // The first token once more: no longer the immediate predecessor, so it
    // is reuse, and the session is revoked.
    let reused = service.refresh(Some(first.as_bytes())).await;
    print_line("reuse", &Reply::from_result(&reused));

    // The newest pair died with the session.
    let newest = format!("Bearer {}", again?.refresh_token);
    let after = service.refresh(Some(newest.as_bytes())).await;
    print_line("newest after reuse", &Reply::from_result(&after));
    Ok(())
}

fn print_line(step: &str, reply: &Reply) {
    eprintln!("# {step}: HTTP {}", reply.status());
    println!("{}", String::from_utf8_lossy(reply.body()));
}
