//! Token decoding behind the signature: `parse` → `verify` → `claims`.
//!
//! The first input byte picks a mode. Odd: the rest is a *payload* that the
//! harness signs with the service's real key, so the fuzzer explores the
//! claims parser as only an insider could reach it, and checks that it
//! agrees with plain serde_json. Even: the rest is a whole
//! compact token.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use token_refresh::token::jws::UntrustedToken;
use token_refresh::{AccessClaims, keys::Algorithm, token::RefreshClaims, Signer as _};
use token_refresh_fuzz::{World, mint};

static WORLD: OnceLock<World> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let world = WORLD.get_or_init(World::new);
    let Some((&mode, rest)) = data.split_first() else { return };
    let minted;
    let token = if mode & 1 == 1 {
        minted = mint(rest);
        minted.as_str()
    } else {
        match std::str::from_utf8(rest) {
            Ok(text) => text,
            Err(_) => return,
        }
    };
    let algorithm = if mode & 2 == 2 { Algorithm::Ed25519 } else { Algorithm::EdDsa };
    let Ok(untrusted) = UntrustedToken::parse(token, algorithm) else { return };
    let Ok(verified) = untrusted.verify(world.signer.keyring()) else { return };

    let refresh = verified.claims::<RefreshClaims>();
    let access = verified.claims::<AccessClaims>();
    // The two kinds are disjoint: no payload is both.
    assert!(refresh.is_err() || access.is_err(), "a payload parsed as both token kinds");
    for status in [refresh.as_ref().err(), access.as_ref().err()].into_iter().flatten().map(|e| token_refresh::Error::from(*e).status_code()) {
        assert!(status == 401 || status == 422, "claims refused with {status}");
    }
    // The claims parser (serde_json behind an object-only wrapper and
    // range checks) only narrows: whatever `claims` accepts from a payload,
    // plain serde_json reads to the same value.
    if mode & 1 == 1 {
        if let Ok(claims) = &refresh {
            let by_serde = serde_json::from_slice::<RefreshClaims>(rest).ok();
            assert_eq!(by_serde.as_ref(), Some(claims), "refresh claims read differently by serde_json");
        }
        if let Ok(claims) = &access {
            let by_serde = serde_json::from_slice::<AccessClaims>(rest).ok();
            assert_eq!(by_serde.as_ref(), Some(claims), "access claims read differently by serde_json");
        }
    }
    // What parses re-encodes to claims that parse to the same value.
    if let Ok(claims) = refresh {
        let again = mint(&serde_json::to_vec(&claims).expect("claims serialize"));
        let reparsed = UntrustedToken::parse(&again, Algorithm::EdDsa).expect("our token parses");
        let reparsed = reparsed.verify(world.signer.keyring()).expect("our token verifies");
        assert_eq!(reparsed.claims::<RefreshClaims>().expect("round trip"), claims);
    }
    if let Ok(claims) = access {
        let again = mint(&serde_json::to_vec(&claims).expect("claims serialize"));
        let reparsed = UntrustedToken::parse(&again, Algorithm::EdDsa).expect("our token parses");
        let reparsed = reparsed.verify(world.signer.keyring()).expect("our token verifies");
        assert_eq!(reparsed.claims::<AccessClaims>().expect("round trip"), claims);
    }
});
