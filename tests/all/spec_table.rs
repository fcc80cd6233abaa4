//! Every row of SPEC §4, over the public flow, with its exact status and
//! name, and the ledger unchanged by every refusal.

// A panic in a test is a failed assertion: the no-panic lints guard src/ only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use token_refresh::ed25519_dalek::SigningKey;
use token_refresh::error::BadRequest::{EmptyHeader, HeaderNotAscii, HeaderTooLong, MissingHeader};
use token_refresh::error::Unauthorized::{Expired, Reused, SessionRevoked, UnknownToken, UserDisabled, WrongScheme};
use token_refresh::error::Unprocessable::Claims;
use token_refresh::token::DecodeError::{Malformed, NotJson, Signature};

use token_refresh::{Error, Reply, TokenService};
use token_refresh_test_support::NOW;
use token_refresh_test_support::flow::Fixture;
use token_refresh_test_support::keys::{signer, signing_key};
use token_refresh_test_support::outcome::{Refusal, assert_refused};
use token_refresh_test_support::tokens::{mint, mint_with, payload, refresh_claims, uuid};
use token_refresh_test_support::users::BOB;

const SEED_ACCESS: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJhY2MiOiJib2JAYWRtaW4iLCJzdWIiOiJib2JAbWFpbC5jb20iLCJyb2xlIjoiUk9MRV9BRE1JTiIsImV4cCI6MTcwMzI2MTU3NCwianRpIjoiOGUxNzgzZDgtNGE1Yi00ZGQ0LWI3OGQtYjUwNTY1NDAwNTAzIn0.BUqeWAnkqtE6oKc-ztDwaQ36om9trZTNKR8vwelMqr4m67y3td-cVu9lOY7WTY09tTMoVQQ-rbuEFcmxCY17BA";
const SEED_REFRESH: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJzdWIiOiJib2JAbWFpbC5jb20iLCJhY2p0aSI6IjhlMTc4M2Q4LTRhNWItNGRkNC1iNzhkLWI1MDU2NTQwMDUwMyIsImV4cCI6MTcwMzM0NzY3NCwianRpIjoiYTZmYmQ5ZjktZThkZC00YzBmLWJhNDYtNDlkMDE5MDg2MjZhIn0.LUBHyyqMMRpQ81jsd08Ip5Yft7IeWtwYWO-PSffhhVHEsWDgtZykbsE-RLRh8Xi9KUljkqibdCc7qJlMZLeHBg";

/// Runs one refusal: asserts status, name, the exact refusal, and that the
/// ledger is untouched.
async fn refused(fx: &Fixture, header: Option<&[u8]>, code: u16, name: &str, want: impl Into<Refusal>) -> Error {
    let before = fx.store.ledger().stats();
    let result = fx.service.refresh(header).await;
    let error = assert_refused(result, want);
    assert_eq!((error.status_code(), error.name()), (code, name), "{error:?}");
    assert_eq!(fx.store.ledger().stats(), before, "a refusal changed the ledger: {error:?}");
    let body = Reply::from_error(&error).into_body();
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["status"]["code"], code);
    assert_eq!(envelope["status"]["name"], name);
    assert!(envelope["data"].is_null());
    error
}

async fn fixture_with_session() -> (Fixture, String) {
    let fx = Fixture::new();
    let pair = fx.login(BOB).await;
    (fx, pair.refresh_token)
}

#[tokio::test]
async fn step_1_header_problems_are_400() {
    let (fx, _) = fixture_with_session().await;
    refused(&fx, None, 400, "BAD_REQUEST", MissingHeader).await;
    refused(&fx, Some(b""), 400, "BAD_REQUEST", EmptyHeader).await;
    refused(&fx, Some(b"   "), 400, "BAD_REQUEST", EmptyHeader).await;
    refused(&fx, Some(&vec![b'a'; 8 * 1024 + 1]), 400, "BAD_REQUEST", HeaderTooLong).await;
    refused(&fx, Some("Bearer tökén".as_bytes()), 400, "BAD_REQUEST", HeaderNotAscii).await;
    refused(&fx, Some(b"Bearer a.b.c\n"), 400, "BAD_REQUEST", HeaderNotAscii).await;
}

#[tokio::test]
async fn step_2_shape_problems_are_401() {
    let (fx, token) = fixture_with_session().await;
    refused(&fx, Some(format!("Basic {token}").as_bytes()), 401, "UNAUTHORIZED", WrongScheme).await;
    refused(&fx, Some(b"Bearer not-a-jwt"), 401, "UNAUTHORIZED", Malformed).await;
    let two = token.rsplit_once('.').unwrap().0;
    refused(&fx, Some(two.as_bytes()), 401, "UNAUTHORIZED", Malformed).await;
    refused(&fx, Some(format!("{token}.x").as_bytes()), 401, "UNAUTHORIZED", Malformed).await;
    // Header not JSON, payload not JSON (even when signed with our key).
    refused(
        &fx,
        Some(mint_with(&signing_key(), "{not json", refresh_claims(BOB, NOW + 60)).as_bytes()),
        401,
        "UNAUTHORIZED",
        NotJson,
    )
    .await;
    refused(&fx, Some(mint("not json").as_bytes()), 401, "UNAUTHORIZED", NotJson).await;
}

#[tokio::test]
async fn step_3_header_rules_are_401() {
    let (fx, _) = fixture_with_session().await;
    let claims = refresh_claims(BOB, NOW + 60);
    use token_refresh::token::DecodeError::{Algorithm, Header, TokenType, UnknownKey};
    for (header, why) in [
        (r#"{"typ":"JWT","alg":"none"}"#, Algorithm),
        (r#"{"typ":"JWT","alg":"HS256"}"#, Algorithm),
        (r#"{"typ":"JWT","alg":"Ed25519"}"#, Algorithm),
        (r#"{"typ":"JWT","alg":"eddsa"}"#, Algorithm),
        (r#"{"typ":"JWS","alg":"EdDSA"}"#, TokenType),
        (r#"{"typ":"JWT","alg":"EdDSA","crit":["exp"]}"#, Header),
        (r#"{"typ":"JWT","alg":"EdDSA","jku":"https://evil.example/jwks"}"#, Header),
        (r#"{"typ":"JWT","alg":"EdDSA","jwk":{"kty":"OKP"}}"#, Header),
        (r#"{"typ":"JWT","alg":"EdDSA","x5u":"https://evil.example/cert"}"#, Header),
        (r#"{"typ":"JWT","alg":"EdDSA","x5c":["MIIB"]}"#, Header),
        (r#"{"typ":"JWT","alg":"EdDSA","kid":"unknown"}"#, UnknownKey),
        (r#"{"typ":"JWT","alg":"EdDSA","alg":"EdDSA"}"#, Header),
    ] {
        // Signed with our own key: the header alone must decide.
        let error =
            refused(&fx, Some(mint_with(&signing_key(), header, &claims).as_bytes()), 401, "UNAUTHORIZED", why).await;
        assert!(
            matches!(error, Error::Unauthorized(got) if got == token_refresh::error::Unauthorized::Token(why)),
            "{header}: {error:?}, expected {why:?}"
        );
    }
    // typ is optional.
    let pair = fx.login(BOB).await;
    let without_typ = mint_with(&signing_key(), r#"{"alg":"EdDSA"}"#, payload(&pair.refresh_token).to_string());
    assert!(fx.refresh(&without_typ).await.is_ok());
}

#[tokio::test]
async fn step_4_bad_signatures_are_401() {
    let (fx, token) = fixture_with_session().await;
    let other_key =
        mint_with(&SigningKey::from_bytes(&[0x11; 32]), r#"{"typ":"JWT","alg":"EdDSA"}"#, payload(&token).to_string());
    refused(&fx, Some(other_key.as_bytes()), 401, "UNAUTHORIZED", Signature).await;
    let (input, _) = token.rsplit_once('.').unwrap();
    refused(&fx, Some(format!("{input}.{}", "A".repeat(86)).as_bytes()), 401, "UNAUTHORIZED", Signature).await;
    // The seed's samples parse, but we do not hold their key.
    refused(&fx, Some(SEED_REFRESH.as_bytes()), 401, "UNAUTHORIZED", Signature).await;
    refused(&fx, Some(format!("Bearer {SEED_ACCESS}").as_bytes()), 401, "UNAUTHORIZED", Signature).await;
}

#[tokio::test]
async fn step_5_authentic_but_malformed_claims_are_422() {
    let (fx, _) = fixture_with_session().await;
    let (acjti, jti) = (uuid(), uuid());
    let exp = NOW + 60;
    for claims in [
        format!(r#"{{"acjti":"{acjti}","exp":{exp},"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","sub":"{BOB}","acjti":"{acjti}","exp":{exp},"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":{exp},"jti":"{jti}","jti":"{jti}"}}"#),
        format!(r#"{{"sub":7,"acjti":"{acjti}","exp":{exp},"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":"{exp}","jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":{exp}.5,"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":-1,"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":99999999999999999999,"jti":"{jti}"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":{exp},"jti":"not-a-uuid"}}"#),
        format!(r#"{{"sub":"{BOB}","acjti":"{}","exp":{exp},"jti":"{jti}"}}"#, acjti.to_uppercase()),
        format!(r#"{{"sub":"{BOB}","acjti":"{acjti}","exp":{exp},"jti":"{jti}","admin":true}}"#),
        format!(r#"{{"sub":"","acjti":"{acjti}","exp":{exp},"jti":"{jti}"}}"#),
        // An access token's claims are not a refresh token.
        format!(r#"{{"acc":"bob@admin","sub":"{BOB}","role":"ROLE_ADMIN","exp":{exp},"jti":"{jti}"}}"#),
        "[]".to_owned(),
        "{}".to_owned(),
    ] {
        refused(&fx, Some(mint(&claims).as_bytes()), 422, "UNPROCESSABLE_ENTITY", Claims).await;
    }
    // A real access token offered for refresh.
    let pair = fx.login(BOB).await;
    refused(&fx, Some(pair.access_token.as_bytes()), 422, "UNPROCESSABLE_ENTITY", Claims).await;
}

#[tokio::test]
async fn step_6_expired_is_401_and_comes_before_the_user_lookup() {
    let (fx, token) = fixture_with_session().await;
    fx.advance(86_400);
    let error = refused(&fx, Some(token.as_bytes()), 401, "UNAUTHORIZED", Expired).await;
    assert_eq!(error.public_message(), "token has expired");
    // Expired and of an unknown user: expiry decides (step 6 before 7).
    let ghost = mint(refresh_claims("ghost@mail.com", NOW));
    refused(&fx, Some(ghost.as_bytes()), 401, "UNAUTHORIZED", Expired).await;
}

#[tokio::test]
async fn step_7_unknown_user_is_404() {
    let (fx, token) = fixture_with_session().await;
    refused(
        &fx,
        Some(mint(refresh_claims("ghost@mail.com", NOW + 60)).as_bytes()),
        404,
        "NOT_FOUND",
        Refusal::UserNotFound,
    )
    .await;
    // A user removed after login.
    fx.store.users().remove(BOB);
    refused(&fx, Some(token.as_bytes()), 404, "NOT_FOUND", Refusal::UserNotFound).await;
}

#[tokio::test]
async fn step_8_disabled_user_is_401() {
    let fx = Fixture::new();
    let pair = fx.login("alice@mail.com").await;
    fx.store.users().insert(token_refresh::User::new("alice@mail.com", "alice@user", "ROLE_USER").disabled());
    let error = refused(&fx, Some(pair.refresh_token.as_bytes()), 401, "UNAUTHORIZED", UserDisabled).await;
    assert_eq!(error.public_message(), "user is disabled");
    // Login of a disabled user is refused too.
    assert_refused(fx.service.issue("eve@mail.com").await, UserDisabled);
}

#[tokio::test]
async fn step_9_unknown_revoked_or_expired_sessions_are_401() {
    let (fx, token) = fixture_with_session().await;
    // Authentic, but never recorded by the ledger.
    refused(&fx, Some(mint(refresh_claims(BOB, NOW + 60)).as_bytes()), 401, "UNAUTHORIZED", UnknownToken).await;
    // Revoked by logout.
    fx.service.logout(Some(token.as_bytes())).await.unwrap();
    let error = refused(&fx, Some(token.as_bytes()), 401, "UNAUTHORIZED", SessionRevoked).await;
    assert_eq!(error.public_message(), "session has been revoked");

    // Past the absolute session lifetime: refresh tokens are capped by it.
    let policy = token_refresh::Policy::builder()
        .session_lifetime(time::Duration::seconds(1000))
        .refresh_lifetime(time::Duration::seconds(600))
        .build()
        .unwrap();
    let fx = Fixture::with_policy(policy);
    let mut token = fx.login(BOB).await.refresh_token;
    for _ in 0..2 {
        fx.advance(400);
        token = fx.refresh(&token).await.unwrap().refresh_token;
    }
    assert_eq!(payload(&token)["exp"], NOW + 1000, "refresh exp is capped at the session's absolute expiry");
    fx.advance(200);
    // No refresh token outlives the session: its exp is the session's end.
    assert_refused(fx.refresh(&token).await, Expired);
}

#[tokio::test]
async fn step_10_reuse_is_401_and_revokes_the_family() {
    // Strict rotation: inside the (default) grace window the same retry is a replay.
    let fx = Fixture::strict();
    let first = fx.login(BOB).await.refresh_token;
    let second = fx.refresh(&first).await.unwrap();
    let error = assert_refused(fx.refresh(&first).await, Reused);
    assert_eq!(
        (error.status_code(), error.public_message()),
        (401, "refresh token was already used; the session is revoked")
    );
    let stats = fx.store.ledger().stats();
    assert_eq!(stats.revoked_sessions, 1);
    // The victim's (attacker's) successor is dead too, and so is its access token.
    let error = assert_refused(fx.refresh(&second.refresh_token).await, SessionRevoked);
    assert_eq!(error.public_message(), "session has been revoked");
    let access = fx.service.verify_access_unrevoked(Some(format!("Bearer {}", second.access_token).as_bytes())).await;
    assert_eq!(access.unwrap_err().public_message(), "access token has been revoked");
}

#[tokio::test]
async fn step_12_success_is_200_with_the_seed_envelope() {
    let (fx, token) = fixture_with_session().await;
    let pair = fx.refresh(&format!("Bearer {token}")).await.unwrap();
    let body = Reply::ok(&pair).into_body();
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with(
        r#"{"status":{"code":200,"name":"OK"},"data":{"accessToken":"eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9."#
    ));
    assert!(text.ends_with(r#","expirationTime":300}}"#));
    let access = payload(&pair.access_token);
    let refresh = payload(&pair.refresh_token);
    // Claim order and values, as in the seed.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(access["acc"], "bob@admin");
    assert_eq!(access["role"], "ROLE_ADMIN");
    assert_eq!(refresh["acjti"], access["jti"]);
    assert_eq!(refresh["exp"].as_i64().unwrap() - access["exp"].as_i64().unwrap(), 86_100);
    let mut sorted = keys(&refresh);
    sorted.sort();
    assert_eq!(sorted, ["acjti", "exp", "jti", "sub"]);
    let raw = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            pair.refresh_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(raw.starts_with(r#"{"sub":"bob@mail.com","acjti":""#), "{raw}");
}

/// A ledger, signer and clock that fail: each failure is a 500 whose body
/// says nothing of the cause.
mod failing {
    use std::future::{Future, ready};

    use token_refresh::ledger::{AccessState, Created, NewSession, Revocation, Rotation, RotationRequest, SessionInfo};
    use token_refresh::{
        Clock, Ed25519Signer, KeyId, SessionId, Signer, StoreError, clock::ClockError, keys::Keyring,
        keys::SignerError, ledger::SessionLedger, token::TokenId,
    };

    pub(crate) struct Ledger;
    fn down<T: Send>() -> impl Future<Output = Result<T, StoreError>> + Send {
        ready(Err(StoreError::new("connection to 10.1.2.3:5432 refused (password=hunter2)")))
    }
    impl SessionLedger for Ledger {
        fn create(&self, _: &NewSession) -> impl Future<Output = Result<Created, StoreError>> + Send {
            down()
        }
        fn rotate(&self, _: &RotationRequest) -> impl Future<Output = Result<Rotation, StoreError>> + Send {
            down()
        }
        fn revoke_session(
            &self,
            _: &str,
            _: SessionId,
            _: i64,
        ) -> impl Future<Output = Result<Revocation, StoreError>> + Send {
            down()
        }
        fn revoke_user(&self, _: &str, _: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
            down()
        }
        fn sessions(&self, _: &str, _: i64) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
            down()
        }
        fn access_state(&self, _: &str, _: TokenId) -> impl Future<Output = Result<AccessState, StoreError>> + Send {
            down()
        }
        fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
            down()
        }
        fn purge(&self, _: i64) -> impl Future<Output = Result<u64, StoreError>> + Send {
            down()
        }
    }

    /// Verifies like the real signer, but cannot sign.
    pub(crate) struct BrokenSigner(pub Ed25519Signer);
    impl Signer for BrokenSigner {
        fn key_id(&self) -> Option<&KeyId> {
            None
        }
        fn keyring(&self) -> &Keyring {
            self.0.keyring()
        }
        fn sign(&self, _: &[u8]) -> impl Future<Output = Result<ed25519_dalek::Signature, SignerError>> + Send {
            ready(Err(SignerError("HSM unreachable".into())))
        }
    }

    pub(crate) struct BrokenClock;
    impl Clock for BrokenClock {
        fn now(&self) -> Result<time::OffsetDateTime, ClockError> {
            Err(ClockError("time source lost".into()))
        }
    }
}

#[tokio::test]
async fn step_11_store_signer_and_clock_failures_are_500_without_internals() {
    let (fx, token) = fixture_with_session().await;
    let header = Some(token.as_bytes());
    let (users, ledger) = (|| Arc::clone(fx.store.users()), || Arc::clone(fx.store.ledger()));
    let (shared_signer, clock) = (|| Arc::clone(&fx.signer), || Arc::clone(&fx.clock));
    let policy = || fx.policy.clone();
    let broken_ledger = TokenService::new(policy(), users(), failing::Ledger, shared_signer(), clock());
    let broken_signer = TokenService::new(policy(), users(), ledger(), failing::BrokenSigner(signer()), clock());
    let broken_clock = TokenService::new(policy(), users(), ledger(), shared_signer(), failing::BrokenClock);
    let errors = [
        broken_ledger.refresh(header).await.unwrap_err(),
        broken_signer.refresh(header).await.unwrap_err(),
        broken_clock.refresh(header).await.unwrap_err(),
    ];
    for error in errors {
        assert_eq!((error.status_code(), error.name()), (500, "INTERNAL_SERVER_ERROR"));
        let body = String::from_utf8(Reply::from_error(&error).into_body()).unwrap();
        assert_eq!(
            body,
            r#"{"status":{"code":500,"name":"INTERNAL_SERVER_ERROR","message":"internal server error"},"data":null}"#
        );
        // The cause is there for the logs.
        assert!(std::error::Error::source(&error).is_some());
    }
}
