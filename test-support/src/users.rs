//! The demo users: Bob (an admin), Alice (a user) and Eve (disabled), each
//! with a login key, and the login body a client sends for them.

use token_refresh::User;
use token_refresh::ed25519_dalek::{Signer as _, SigningKey};

use crate::encoding::hex;

/// Bob's e-mail, the subject of most tests.
pub const BOB: &str = "bob@mail.com";
/// Bob's account.
pub const BOB_ACCOUNT: &str = "bob@admin";
/// Bob's role.
pub const BOB_ROLE: &str = "ROLE_ADMIN";
/// The seed of Bob's login key.
pub const BOB_LOGIN_SEED: [u8; 32] = [0xb0; 32];

/// Alice's e-mail: a second user, for "another user's session" rows.
pub const ALICE: &str = "alice@mail.com";
/// Alice's account.
pub const ALICE_ACCOUNT: &str = "alice@acme";
/// The seed of Alice's login key.
pub const ALICE_LOGIN_SEED: [u8; 32] = [0xa1; 32];

/// Eve's e-mail: a disabled user.
pub const EVE: &str = "eve@mail.com";
/// The seed of Eve's login key.
pub const EVE_LOGIN_SEED: [u8; 32] = [0xe7; 32];

/// Bob: `bob@mail.com`, account `bob@admin`, `ROLE_ADMIN`.
pub fn bob() -> User {
    User::new(BOB, BOB_ACCOUNT, BOB_ROLE).with_login_key(login_key(&BOB_LOGIN_SEED).verifying_key())
}

/// Alice: `alice@mail.com`, account `alice@acme`, `ROLE_USER`.
pub fn alice() -> User {
    User::new(ALICE, ALICE_ACCOUNT, "ROLE_USER").with_login_key(login_key(&ALICE_LOGIN_SEED).verifying_key())
}

/// Eve: `eve@mail.com`, account `eve@user`, `ROLE_USER`, disabled.
pub fn eve() -> User {
    User::new(EVE, "eve@user", "ROLE_USER").with_login_key(login_key(&EVE_LOGIN_SEED).verifying_key()).disabled()
}

/// Bob, Alice and Eve.
pub fn demo() -> [User; 3] {
    [bob(), alice(), eve()]
}

/// The login key of `seed`.
pub fn login_key(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

/// A login body (`{email, signature, publicKey}`, hex): `email` signed
/// with the key of `seed`.
pub fn login_body(email: &str, seed: &[u8; 32]) -> String {
    let key = login_key(seed);
    serde_json::json!({
        "email": email,
        "signature": hex(&key.sign(email.as_bytes()).to_bytes()),
        "publicKey": hex(key.verifying_key().as_bytes()),
    })
    .to_string()
}

/// [`demo`] as a `--users` file of the example servers: a JSON array of
/// `{email, account, role, publicKey, disabled}`.
pub fn demo_users_json() -> String {
    let entry = |email: &str, account: &str, role: &str, seed: &[u8; 32], disabled: bool| {
        serde_json::json!({
            "email": email,
            "account": account,
            "role": role,
            "publicKey": hex(login_key(seed).verifying_key().as_bytes()),
            "disabled": disabled,
        })
    };
    serde_json::Value::Array(vec![
        entry(BOB, BOB_ACCOUNT, BOB_ROLE, &BOB_LOGIN_SEED, false),
        entry(ALICE, ALICE_ACCOUNT, "ROLE_USER", &ALICE_LOGIN_SEED, false),
        entry(EVE, "eve@user", "ROLE_USER", &EVE_LOGIN_SEED, true),
    ])
    .to_string()
}
