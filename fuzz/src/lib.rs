//! Shared harness for the fuzz targets: a deterministic world (fixed key,
//! clock and one session with fixed ids), a token minter that signs
//! arbitrary payloads with the service's real key, and the invariants every
//! refusal must keep.

use token_refresh::{Ed25519Signer, Error, ledger::LedgerStats, clock::ManualClock, MemoryStore, ledger::NewSession, ledger::PairClaims, Reply, ledger::SessionLedger, token::TokenId, TokenPair};
pub use token_refresh_test_support::keys::SEED;
pub use token_refresh_test_support::tokens::mint;
use token_refresh_test_support::users::{ALICE, ALICE_ACCOUNT, alice};
pub use token_refresh_test_support::{NOW, ready};

/// The one user: Alice.
pub const SUBJECT: &str = ALICE;
/// `jti` of the session's current refresh token.
pub const REFRESH_ID: &str = "a6fbd9f9-e8dd-4c0f-ba46-49d01908626a";
/// `jti` of the session's current access token.
pub const ACCESS_ID: &str = "a6fbd9f9-e8dd-4c0f-b9d4-b50565400503";

/// The refresh claims of the world's session, exactly as we write them.
pub fn refresh_claims() -> String {
    format!(r#"{{"sub":"{SUBJECT}","acjti":"{ACCESS_ID}","exp":{},"jti":"{REFRESH_ID}"}}"#, NOW + 86_400)
}

/// One user, one session with fixed ids, a clock at [`NOW`].
pub struct World {
    pub store: MemoryStore,
    pub signer: Ed25519Signer,
    pub clock: ManualClock,
}

impl World {
    pub fn new() -> Self {
        let store = MemoryStore::in_memory([alice()]);
        let signer = token_refresh_test_support::keys::signer();
        let id = |text: &str| TokenId::parse(text).expect("canonical v4");
        let session = NewSession {
            session: id(REFRESH_ID).session(),
            pair: PairClaims {
                subject: SUBJECT.to_owned(),
                account: ALICE_ACCOUNT.to_owned(),
                role: "ROLE_USER".to_owned(),
                access_id: id(ACCESS_ID),
                access_expires_at: NOW + 300,
                refresh_id: id(REFRESH_ID),
                refresh_expires_at: NOW + 86_400,
            },
            created_at: NOW,
            absolute_expires_at: NOW + 30 * 86_400,
            leeway: 0,
            max_sessions_per_user: 100,
        };
        ready(store.ledger().create(&session)).expect("in-memory create");
        Self { store, signer, clock: ManualClock::at_unix(NOW) }
    }

    pub fn refresh(&self, header: Option<&[u8]>) -> Result<TokenPair, Error> {
        ready(token_refresh::refresh(header, &self.store, &self.signer, &self.clock))
    }

    pub fn stats(&self) -> LedgerStats {
        self.store.ledger().stats()
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Every refusal of hostile input is a 400, 401, 404 or 422 (never a 500:
/// nothing failed inside), and its envelope is well-formed JSON with
/// `data: null`.
pub fn check_refusal(error: &Error) {
    assert!(matches!(error.status_code(), 400 | 401 | 404 | 422), "unexpected status for hostile input: {error:?}");
    let reply = Reply::from_error(error);
    assert_eq!(reply.status(), error.status_code());
    let body: serde_json::Value = serde_json::from_slice(reply.body()).expect("envelope is JSON");
    assert!(body["data"].is_null());
    assert_eq!(body["status"]["name"], error.name());
}
