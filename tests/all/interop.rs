//! Our tokens are ordinary EdDSA JWTs to the rest of the world.
//!
//! Two independent JOSE implementations, PyJWT (with `cryptography`) and
//! Node's `jose`, check tokens minted by this crate using only the published
//! JWK Set; tokens they mint with our key pass our signature check and then
//! get the SPEC status their claims deserve.
//!
//! The peers' packages (pinned in `tests/interop/`) are installed on first
//! use under Cargo's per-target temporary directory. If they cannot be
//! installed the test fails: it never skips.

// A panic in a test is a failed assertion: the no-panic lints guard src/ only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use token_refresh::ed25519_dalek::SigningKey;
use token_refresh::error::{Unauthorized, Unprocessable::Claims};
use token_refresh::token::DecodeError;
use token_refresh::{AccessVerifier, Ed25519Signer, KeyId, Policy, Signer as _, clock::ManualClock, keys::Algorithm};
use token_refresh_test_support::flow::{SharedStore, service_over, shared_store};
use token_refresh_test_support::keys::{SEED, private_pem, signer};
use token_refresh_test_support::outcome::assert_refused;
use token_refresh_test_support::tokens::{mint_with, payload, uuid};
use token_refresh_test_support::users::{BOB, bob};

const HERE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(output.status.success(), "{what} failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

/// Installs the pinned peers once per build directory.
fn peers() -> &'static (PathBuf, PathBuf) {
    static PEERS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PEERS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop");
        let python = root.join("python");
        let probe = Command::new("python3")
            .args(["-c", "import jwt, cryptography"])
            .env("PYTHONPATH", &python)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !probe {
            let mut pip = Command::new("python3");
            pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
                .arg(&python)
                .args(["-r", &format!("{HERE}/requirements.txt")]);
            run(pip, "pip install of PyJWT and cryptography");
        }
        let node = root.join("node");
        if !node.join("node_modules/jose/package.json").exists() {
            std::fs::create_dir_all(&node).unwrap();
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(format!("{HERE}/{file}"), node.join(file)).unwrap();
            }
            let mut npm = Command::new("npm");
            npm.args(["ci", "--silent", "--no-audit", "--no-fund"]).current_dir(&node);
            run(npm, "npm ci of jose");
        }
        // Node resolves packages from the script's own directory.
        std::fs::copy(format!("{HERE}/jose_peer.mjs"), node.join("jose_peer.mjs")).unwrap();
        (python, node)
    })
}

#[derive(Clone, Copy, Debug)]
enum Peer {
    PyJwt,
    Jose,
}

impl Peer {
    fn call(self, mode: &str, request: &Value) -> Value {
        let (python, node) = peers();
        let mut command = match self {
            Self::PyJwt => {
                let mut c = Command::new("python3");
                c.arg(format!("{HERE}/pyjwt_peer.py")).arg(mode).env("PYTHONPATH", python);
                c
            }
            Self::Jose => {
                let mut c = Command::new("node");
                c.arg(node.join("jose_peer.mjs")).arg(mode).current_dir(node);
                c
            }
        };
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{self:?} {mode}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

struct Deployment {
    store: SharedStore,
    signer: Arc<Ed25519Signer>,
    clock: Arc<ManualClock>,
    pem: String,
}

impl Deployment {
    /// A resource server's check of access tokens under `policy`, with
    /// only the public keys.
    fn verifier(&self, policy: &Policy) -> AccessVerifier {
        AccessVerifier::new(policy.clone(), self.signer.keyring().clone(), Arc::clone(&self.clock))
    }
}

fn deployment(kid: Option<&str>) -> Deployment {
    let mut signer = signer();
    if let Some(kid) = kid {
        signer = signer.with_key_id(KeyId::new(kid).unwrap()).unwrap();
    }
    // PKCS#8 v1, as `openssl genpkey -algorithm ed25519` writes it (RFC
    // 8410 §7): OpenSSL 3 (under both peers) refuses the v2 form with an
    // embedded public key.
    let pem = private_pem(&SEED);
    // The peers check `exp` against the real clock, so issue at real time.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Deployment {
        store: shared_store([bob()]),
        signer: Arc::new(signer),
        clock: Arc::new(ManualClock::at_unix(now)),
        pem,
    }
}

#[tokio::test]
async fn peers_verify_our_tokens_with_only_the_jwks() {
    for kid in [None, Some("2026-11-a")] {
        let d = deployment(kid);
        let first = service_over(&Policy::default(), &d.store, &d.signer, &d.clock).issue(BOB).await.unwrap();
        let second =
            token_refresh::refresh(Some(first.refresh_token.as_bytes()), &d.store, &d.signer, &d.clock).await.unwrap();
        let jwks = serde_json::to_value(d.signer.keyring().to_jwks(Algorithm::EdDsa)).unwrap();
        let tokens = [&first.access_token, &first.refresh_token, &second.access_token, &second.refresh_token];
        // A forged token proves the peers can say no.
        let forged = mint_with(
            &SigningKey::from_bytes(&[0x77; 32]),
            r#"{"typ":"JWT","alg":"EdDSA"}"#,
            payload(tokens[0]).to_string(),
        );
        let request = json!({"jwks": jwks, "tokens": [tokens[0], tokens[1], tokens[2], tokens[3], forged]});
        for peer in [Peer::PyJwt, Peer::Jose] {
            let verdicts = peer.call("verify", &request);
            for (i, token) in tokens.iter().enumerate() {
                assert_eq!(verdicts[i], payload(token), "{peer:?} kid={kid:?} token {i}");
            }
            assert!(verdicts[4]["error"].is_string(), "{peer:?} must refuse a forged token: {}", verdicts[4]);
        }
    }
}

async fn refresh(
    d: &Deployment,
    policy: &Policy,
    token: &str,
) -> Result<token_refresh::TokenPair, token_refresh::Error> {
    let header = format!("Bearer {token}");
    service_over(policy, &d.store, &d.signer, &d.clock).refresh(Some(header.as_bytes())).await
}

#[tokio::test]
async fn tokens_the_peers_mint_with_our_key_get_the_status_their_claims_deserve() {
    let policy = Policy::default();
    for peer in [Peer::PyJwt, Peer::Jose] {
        let d = deployment(None);
        let first = service_over(&policy, &d.store, &d.signer, &d.clock).issue(BOB).await.unwrap();
        let now = d.clock.now_unix();
        let current = payload(&first.refresh_token);
        let unknown_session = json!({"sub": BOB, "acjti": uuid(), "exp": now + 600, "jti": uuid()});
        let mut extra_claim = current.clone();
        extra_claim["iat"] = json!(now);
        let access = payload(&first.access_token);
        let minted = peer.call(
            "mint",
            &json!({"pem": d.pem, "kid": null, "claims": [current, unknown_session, extra_claim, access]}),
        );
        let minted: Vec<String> = serde_json::from_value(minted).unwrap();

        // The peer re-signed our current refresh token's claims: a valid
        // refresh of the real session.
        assert!(refresh(&d, &policy, &minted[0]).await.is_ok(), "{peer:?}: our claims, their token");
        // Authentic but unknown to the ledger: 401 after the signature check.
        let error = refresh(&d, &policy, &minted[1]).await.unwrap_err();
        assert_eq!((error.status_code(), error.public_message()), (401, "refresh token is not valid"), "{peer:?}");
        // Authentic with a claim we never write: 422.
        assert_refused(refresh(&d, &policy, &minted[2]).await, Claims);
        // Their access token verifies as an access token, not as a refresh one.
        assert!(d.verifier(&policy).verify(Some(minted[3].as_bytes())).is_ok(), "{peer:?}");
        assert_refused(refresh(&d, &policy, &minted[3]).await, Claims);
    }
}

#[tokio::test]
async fn the_rfc_9864_name_is_refused_unless_opted_in() {
    let d = deployment(None);
    let first = service_over(&Policy::default(), &d.store, &d.signer, &d.clock).issue(BOB).await.unwrap();
    let minted =
        Peer::Jose.call("mint", &json!({"pem": d.pem, "alg": "Ed25519", "claims": [payload(&first.access_token)]}));
    let token = minted[0].as_str().unwrap();
    let error = d.verifier(&Policy::default()).verify(Some(token.as_bytes()));
    assert_refused(error, Unauthorized::Token(DecodeError::Algorithm));
    let ed25519 = Policy::builder().algorithm(Algorithm::Ed25519).build().unwrap();
    assert!(d.verifier(&ed25519).verify(Some(token.as_bytes())).is_ok());
}
