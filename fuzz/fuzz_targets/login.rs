//! The login door (`POST`): any bytes as the request body, against a
//! directory with one user who has a registered login key.
//!
//! Invariants: a refusal is 400/401/404/422 and creates no session; a
//! success (only a genuine body can give one) creates exactly one.
#![no_main]

use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use token_refresh::ed25519_dalek::SigningKey;
use token_refresh::{Ed25519Signer, clock::ManualClock, MemoryLedger, MemoryUserStore, Policy, TokenService, User};
use token_refresh_fuzz::{NOW, SEED, check_refusal, ready};

/// The login key of `carol@mail.com` (seed `[0x11; 32]`, as in the
/// hostile corpus).
const CAROL_SEED: [u8; 32] = [0x11; 32];

struct LoginWorld {
    service: TokenService,
    ledger: Arc<MemoryLedger>,
}

fn world() -> LoginWorld {
    let carol = SigningKey::from_bytes(&CAROL_SEED).verifying_key();
    let users = MemoryUserStore::new([User::new("carol@mail.com", "carol@acc", "ROLE_USER").with_login_key(carol)]);
    let ledger = Arc::new(MemoryLedger::new());
    let signer = Ed25519Signer::from_seed(&SEED).expect("seed is a key");
    let service = TokenService::new(Policy::default(), users, Arc::clone(&ledger), signer, ManualClock::at_unix(NOW));
    LoginWorld { service, ledger }
}

static WORLD: Mutex<Option<LoginWorld>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut slot = WORLD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let world = slot.get_or_insert_with(world);
    let before = world.ledger.stats();
    let result = ready(world.service.login(data));
    let after = world.ledger.stats();
    match result {
        Ok(_) => {
            assert_eq!(after.sessions, before.sessions + 1, "a login is one new session");
            *slot = None;
        }
        Err(error) => {
            check_refusal(&error);
            assert_eq!(before, after, "a refused login changed the ledger: {error:?}");
        }
    }
});
