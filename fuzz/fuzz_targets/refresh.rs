//! A whole refresh against the in-memory ledger (one user, one session with
//! fixed ids).
//!
//! The first input byte picks a mode. Odd: the rest is a payload the
//! harness signs with the real key and presents as `Bearer <token>`. Even:
//! the rest is the raw `Authorization` value.
//!
//! Invariants: a refusal is 400/401/404/422 and leaves the ledger exactly
//! as it was; a success is exactly one rotation. Because a refusal changes
//! nothing (checked on every input), the world is reused between inputs
//! and rebuilt only after a success: every input meets the same state.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use token_refresh_fuzz::{World, check_refusal, mint};

static WORLD: Mutex<Option<World>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let header = if mode & 1 == 1 { format!("Bearer {}", mint(rest)).into_bytes() } else { rest.to_vec() };
    let mut slot = WORLD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let world = slot.get_or_insert_with(World::new);
    let before = world.stats();
    let result = world.refresh(Some(&header));
    let after = world.stats();
    match result {
        Ok(pair) => {
            assert_eq!(after.rotations, before.rotations + 1, "a success is one rotation");
            assert_eq!(after.sessions, before.sessions);
            assert!(!pair.refresh_token.is_empty() && !pair.access_token.is_empty());
            *slot = None;
        }
        Err(error) => {
            check_refusal(&error);
            assert_eq!(before, after, "a refused request changed the ledger: {error:?}");
        }
    }
});
