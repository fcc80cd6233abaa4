//! A whole refresh against the in-memory ledger (one user, one session with
//! fixed ids).
//!
//! The first input byte picks a mode. Odd: the rest is a payload the
//! harness signs with the real key and presents as `Bearer <token>`. Even:
//! the rest is the raw `Authorization` value.
//!
//! Invariants: a refusal is 400/401/404/422 and leaves the ledger exactly
//! as it was, except a detected reuse (an id of the world's session other
//! than its current one: only a signed token can carry it), which revokes
//! exactly that session; a success is exactly one rotation. Because other
//! refusals change nothing (checked on every input), the world is reused
//! between inputs and rebuilt only after a success or a reuse: every input
//! meets the same state.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use token_refresh::{Error, error::Unauthorized};
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
        Err(Error::Unauthorized(Unauthorized::Reused)) => {
            assert_eq!(after.revoked_sessions, before.revoked_sessions + 1, "reuse revokes the session");
            assert_eq!((after.sessions, after.rotations), (before.sessions, before.rotations));
            *slot = None;
        }
        Err(error) => {
            check_refusal(&error);
            assert_eq!(before, after, "a refused request changed the ledger: {error:?}");
        }
    }
});
