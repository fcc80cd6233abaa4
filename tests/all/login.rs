//! SPEC §1 login: `{email, signature, publicKey}` and its statuses.

// A panic in a test is a failed assertion: the no-panic lints guard src/ only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ed25519_dalek::{Signer as _, SigningKey};
use std::sync::Arc;
use token_refresh::error::BadRequest::MalformedBody;
use token_refresh::error::Unauthorized::{LoginSignature, UserDisabled};
use token_refresh::error::Unprocessable::{LoginEncoding, LoginKey};

use token_refresh::{Ed25519Signer, Policy, TokenService, User, clock::ManualClock};
use token_refresh_test_support::encoding::hex;
use token_refresh_test_support::flow::{SharedStore, service_over, shared_store};
use token_refresh_test_support::outcome::Refusal;

struct Setup {
    service: TokenService,
    store: SharedStore,
    signer: Arc<Ed25519Signer>,
    clock: Arc<ManualClock>,
    user_key: SigningKey,
}

fn setup() -> Setup {
    let user_key = SigningKey::from_bytes(&[0x33; 32]);
    let store = shared_store([
        User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN").with_login_key(user_key.verifying_key()),
        User::new("nokey@mail.com", "n", "ROLE_USER"),
        User::new("off@mail.com", "o", "ROLE_USER").with_login_key(user_key.verifying_key()).disabled(),
    ]);
    let signer = Arc::new(Ed25519Signer::from_seed(&[9; 32]).unwrap());
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    Setup { service: service_over(&Policy::default(), &store, &signer, &clock), store, signer, clock, user_key }
}

fn body(email: &str, signature: &str, public_key: &str) -> Vec<u8> {
    serde_json::json!({"email": email, "signature": signature, "publicKey": public_key}).to_string().into_bytes()
}

fn signed(key: &SigningKey, email: &str) -> Vec<u8> {
    body(email, &hex(&key.sign(email.as_bytes()).to_bytes()), &hex(key.verifying_key().as_bytes()))
}

/// The exact outcome of a login.
async fn outcome(s: &Setup, body: &[u8]) -> Result<(), Refusal> {
    s.service.login(body).await.map(drop).map_err(|e| Refusal::of(&e))
}

async fn status(s: &Setup, body: &[u8]) -> Result<(), (u16, &'static str)> {
    s.service.login(body).await.map(drop).map_err(|e| (e.status_code(), e.public_message()))
}

#[tokio::test]
async fn a_signed_email_logs_in_and_the_pair_refreshes() {
    let s = setup();
    let pair = s.service.login(&signed(&s.user_key, "bob@mail.com")).await.unwrap();
    assert_eq!(pair.expiration_time, 300);
    let refreshed = token_refresh::refresh(Some(pair.refresh_token.as_bytes()), &s.store, &s.signer, &s.clock).await;
    assert_ne!(refreshed.unwrap().refresh_token, pair.refresh_token);
    // Upper-case hex is hex too.
    let upper = body(
        "bob@mail.com",
        &hex(&s.user_key.sign(b"bob@mail.com").to_bytes()).to_uppercase(),
        &hex(s.user_key.verifying_key().as_bytes()).to_uppercase(),
    );
    assert_eq!(status(&s, &upper).await, Ok(()));
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let s = setup();
    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{",
        br#"{"email":"bob@mail.com"}"#,
        br#"{"email":1,"signature":"00","publicKey":"00"}"#,
        br#"{"email":"a","signature":"00","publicKey":"00","extra":1}"#,
    ] {
        assert_eq!(outcome(&s, bad).await, Err(MalformedBody.into()), "{}", String::from_utf8_lossy(bad));
    }
    let huge = body(&"a".repeat(5000), "00", "00");
    assert_eq!(outcome(&s, &huge).await, Err(MalformedBody.into()));
}

#[tokio::test]
async fn undecodable_or_wrong_length_hex_is_422() {
    let s = setup();
    let good = s.user_key.sign(b"bob@mail.com").to_bytes();
    let key = hex(s.user_key.verifying_key().as_bytes());
    for (signature, public_key) in [
        (hex(&good).replace('a', "g"), key.clone()),
        (hex(&good[..63]), key.clone()),
        (hex(&good), key[..62].to_owned()),
        (hex(&good), format!("{key}00")),
        (String::new(), key.clone()),
    ] {
        assert_eq!(outcome(&s, &body("bob@mail.com", &signature, &public_key)).await, Err(LoginEncoding.into()));
    }
}

#[tokio::test]
async fn unknown_user_is_404_wrong_key_is_422_bad_signature_is_401() {
    let s = setup();
    assert_eq!(outcome(&s, &signed(&s.user_key, "ghost@mail.com")).await, Err(Refusal::UserNotFound));
    let stranger = SigningKey::from_bytes(&[0x44; 32]);
    assert_eq!(status(&s, &signed(&stranger, "bob@mail.com")).await, Err((422, "public key does not match the user")));
    assert_eq!(outcome(&s, &signed(&stranger, "bob@mail.com")).await, Err(LoginKey.into()));
    assert_eq!(outcome(&s, &signed(&s.user_key, "nokey@mail.com")).await, Err(LoginKey.into()));
    // The user's key, but a signature over another message.
    let wrong = body(
        "bob@mail.com",
        &hex(&s.user_key.sign(b"alice@mail.com").to_bytes()),
        &hex(s.user_key.verifying_key().as_bytes()),
    );
    assert_eq!(status(&s, &wrong).await, Err((401, "signature is invalid")));
    assert_eq!(outcome(&s, &wrong).await, Err(LoginSignature.into()));
    assert_eq!(status(&s, &signed(&s.user_key, "off@mail.com")).await, Err((401, "user is disabled")));
    assert_eq!(outcome(&s, &signed(&s.user_key, "off@mail.com")).await, Err(UserDisabled.into()));
    assert_eq!(s.store.ledger().stats().sessions, 0, "no refused login created a session");
}

/// A leaked login body replayed in a loop: the policy admits 30 logins of
/// one user at once, then one every 2 s, and answers the rest 429 with the
/// envelope and `Retry-After`; forged logins do not spend the allowance.
#[tokio::test]
async fn logins_beyond_the_rate_limit_are_429_and_start_no_session() {
    let s = setup();
    let policy = Policy::default();
    assert_eq!(policy.login_rate_limit(), 30);
    let limited = service_over(&policy, &s.store, &s.signer, &s.clock);
    let login = signed(&s.user_key, "bob@mail.com");
    let forged = body("bob@mail.com", &hex(&[7; 64]), &hex(s.user_key.verifying_key().as_bytes()));
    for _ in 0..100 {
        let refused = limited.login(&forged).await.unwrap_err();
        assert_eq!(refused.status_code(), 401);
    }
    for _ in 0..30 {
        limited.login(&login).await.unwrap();
    }
    let refused = limited.login(&login).await.unwrap_err();
    assert_eq!((refused.status_code(), refused.name()), (429, "TOO_MANY_REQUESTS"));
    let reply = token_refresh::Reply::from_error(&refused);
    assert_eq!(
        reply.body(),
        br#"{"status":{"code":429,"name":"TOO_MANY_REQUESTS","message":"too many logins for this user; retry later"},"data":null}"#
    );
    assert!(reply.headers().any(|header| header == ("retry-after", "60")));
    assert_eq!(s.store.ledger().stats().sessions, 30, "the refused login started no session");
    s.clock.advance(time::Duration::seconds(2));
    limited.login(&login).await.unwrap();
    assert!(limited.login(&login).await.is_err());

    let unlimited = Policy::builder().login_rate_limit(0).build().unwrap();
    let unlimited = service_over(&unlimited, &s.store, &s.signer, &s.clock);
    for _ in 0..1_000 {
        unlimited.login(&login).await.unwrap();
    }
    assert_eq!(s.store.ledger().stats().sessions, 100, "the cap bounds the records with the limit off");
}
