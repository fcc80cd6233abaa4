//! The `Authorization` header and the compact-JWS parser: any bytes, as a
//! header value, through the stateless access-token check (scheme, sizes,
//! base64url, JOSE header, signature, claims), and as a bare token through
//! `UntrustedToken::parse` under both algorithm policies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use token_refresh::token::jws::UntrustedToken;
use token_refresh::{clock::ManualClock, keys::Algorithm, AccessVerifier, Policy, Signer as _};
use token_refresh_fuzz::{World, NOW, check_refusal};

static WORLD: OnceLock<World> = OnceLock::new();
/// A resource server's check: the world's public keys only, at [`NOW`].
static VERIFIER: OnceLock<AccessVerifier> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let world = WORLD.get_or_init(World::new);
    let verifier = VERIFIER.get_or_init(|| {
        AccessVerifier::new(Policy::default(), world.signer.keyring().clone(), ManualClock::at_unix(NOW))
    });
    match verifier.verify(Some(data)) {
        // Only an access token we signed gets here (the seeds hold none
        // that is still valid, but a fuzzer may keep one intact).
        Ok(claims) => assert!(!claims.subject.is_empty()),
        Err(error) => check_refusal(&error),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for algorithm in [Algorithm::EdDsa, Algorithm::Ed25519] {
            if let Ok(untrusted) = UntrustedToken::parse(text, algorithm) {
                // The untrusted token exposes only its kid, and only as text.
                let _ = untrusted.key_id().map(str::len);
                let _ = format!("{untrusted:?}");
            }
        }
    }
});
