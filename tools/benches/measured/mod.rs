//! What the criterion benches and the report measure, in one place so both
//! run exactly the same code: the crate's flows, the Ed25519 floor, and two
//! peers (`jsonwebtoken`, `jwt-simple`) doing the same refresh pipeline.
//!
//! The pipeline every refresher runs, header bytes in, envelope bytes out:
//! parse the `Authorization` header, verify the EdDSA refresh JWT, validate
//! `exp`/`sub`/`jti`, look the user up, rotate in an in-memory ledger, sign
//! an access and a refresh token with the same claims, serialize the SPEC §3
//! envelope. Each call presents the refresh token the previous call returned
//! (a chain), so every iteration is a fresh, valid, single-use token.
#![allow(dead_code, reason = "each bench target uses a different part")]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use token_refresh::token::jws::UntrustedToken;
use token_refresh::{
    AccessClaims, Ed25519Signer, Policy, Reply, SystemClock, TokenPair, keys::Algorithm, token::RefreshClaims,
};
use token_refresh_test_support::flow::{SharedStore, service_over, shared_store};
use token_refresh_test_support::keys::{SEED, private_der};
use token_refresh_test_support::ready;
use token_refresh_test_support::users::{BOB, BOB_ACCOUNT, BOB_ROLE, bob};
use uuid::Uuid;

pub(crate) const ACCESS_TTL: i64 = 300;
pub(crate) const REFRESH_TTL: i64 = 86_400;

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One refresh implementation: a login, and one refresh step.
pub(crate) trait Refresher: Sync {
    /// Starts a session; returns its first refresh token.
    fn login(&self) -> String;
    /// Refreshes with the `Authorization` header value; returns the envelope
    /// bytes and the new refresh token.
    fn refresh(&self, authorization: &[u8]) -> (Vec<u8>, String);
}

/// A session refreshed over and over: each step presents the token the
/// previous step returned.
pub(crate) struct Chain<'a, R: Refresher> {
    refresher: &'a R,
    header: String,
}

impl<'a, R: Refresher> Chain<'a, R> {
    pub(crate) fn new(refresher: &'a R) -> Self {
        let token = refresher.login();
        Self { refresher, header: format!("Bearer {token}") }
    }

    /// One refresh; returns the envelope's length.
    pub(crate) fn step(&mut self) -> usize {
        let (body, next) = self.refresher.refresh(black_box(self.header.as_bytes()));
        self.header.truncate("Bearer ".len());
        self.header.push_str(&next);
        black_box(body).len()
    }
}

// ---------------------------------------------------------------- the crate

/// token-refresh with its in-memory stores and the seed defaults, through
/// [`TokenService`](token_refresh::TokenService) over parts the bench
/// keeps a hand on (the flows' one door since the `Policy` methods went).
pub(crate) struct Crate<S = Ed25519Signer> {
    pub policy: Policy,
    pub service: token_refresh::TokenService,
    pub store: SharedStore,
    pub signer: Arc<S>,
    /// The stateless access-token check with the public keys only, as a
    /// resource server makes it (no re-signing).
    pub verifier: token_refresh::AccessVerifier,
    /// An access token and a refresh token that stay valid for a day, for
    /// the stateless cases (`verify_access`, `decode`).
    pub long_lived: TokenPair,
}

impl Crate {
    pub(crate) fn new() -> Self {
        Self::with_signer(Ed25519Signer::from_seed(&SEED).expect("seed key"))
    }
}

/// The crate with the AWS-LC signer (feature `aws-lc`).
pub(crate) fn with_aws_lc() -> Crate<token_refresh::AwsLcSigner> {
    Crate::with_signer(token_refresh::AwsLcSigner::from_seed(&SEED).expect("seed key"))
}

impl<S: token_refresh::Signer + 'static> Crate<S> {
    pub(crate) fn with_signer(signer: S) -> Self {
        let store = shared_store([bob()]);
        let (signer, clock) = (Arc::new(signer), Arc::new(SystemClock));
        let long = Policy::builder().access_lifetime(time::Duration::days(1)).build().expect("policy");
        let long_lived = ready(service_over(&long, &store, &signer, &clock).issue(BOB)).expect("issue");
        Self::with_policy(Policy::default(), store, signer, long_lived)
    }

    fn with_policy(policy: Policy, store: SharedStore, signer: Arc<S>, long_lived: TokenPair) -> Self {
        let clock = Arc::new(SystemClock);
        let service = service_over(&policy, &store, &signer, &clock);
        let verifier = token_refresh::AccessVerifier::new(policy.clone(), signer.keyring().clone(), SystemClock);
        Self { policy, service, store, signer, verifier, long_lived }
    }

    /// `TokenService::issue`: a new session and its first pair.
    pub(crate) fn issue(&self) -> TokenPair {
        ready(self.service.issue(BOB)).expect("issue")
    }

    /// `AccessVerifier::verify` (public keys only) on `Authorization`
    /// header bytes.
    pub(crate) fn verify_access(&self, authorization: &[u8]) -> AccessClaims {
        self.verifier.verify(Some(authorization)).expect("valid access token")
    }

    /// Decoding only: `UntrustedToken::parse` + `verify` + `claims`.
    pub(crate) fn decode(&self, token: &str) -> RefreshClaims {
        UntrustedToken::parse(token, Algorithm::EdDsa)
            .expect("parses")
            .verify(self.signer.keyring())
            .expect("verifies")
            .claims()
            .expect("refresh claims")
    }
}

impl Default for Crate {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: token_refresh::Signer + 'static> Refresher for Crate<S> {
    fn login(&self) -> String {
        self.issue().refresh_token
    }

    fn refresh(&self, authorization: &[u8]) -> (Vec<u8>, String) {
        let result = ready(self.service.refresh(Some(authorization)));
        let body = Reply::from_result(&result).into_body();
        match result {
            Ok(pair) => (body, pair.refresh_token),
            Err(error) => panic!("refresh failed: {error} {}", String::from_utf8_lossy(&body)),
        }
    }
}

/// The crate with verification by re-signing turned off
/// (`PolicyBuilder::verify_by_resigning(false)`): every token takes the
/// normal Ed25519 verification, as before re-signing existed.
pub(crate) fn plain_verification<S: token_refresh::Signer + 'static>(ours: Crate<S>) -> Crate<S> {
    let policy = Policy::builder().verify_by_resigning(false).build().expect("policy");
    Crate::with_policy(policy, ours.store, ours.signer, ours.long_lived)
}

/// `TokenService::verify_access` on the service that issued the token:
/// the issuer's check, by re-signing where the signer allows it.
pub(crate) struct Issuer {
    service: token_refresh::TokenService,
    header: String,
}

impl Issuer {
    pub(crate) fn new<S: token_refresh::Signer + 'static>(signer: S) -> Self {
        let long = Policy::builder().access_lifetime(time::Duration::days(1)).build().expect("policy");
        let service = token_refresh::TokenService::new(
            long,
            token_refresh::MemoryUserStore::new([bob()]),
            token_refresh::MemoryLedger::new(),
            signer,
            SystemClock,
        );
        let pair = ready(service.issue(BOB)).expect("issue");
        Self { service, header: format!("Bearer {}", pair.access_token) }
    }

    pub(crate) fn verify_access(&self) -> AccessClaims {
        self.service.verify_access(Some(black_box(self.header.as_bytes()))).expect("valid access token")
    }
}

/// The crate through `TokenService`: the same flow with every part behind
/// one type (`BoxUserStore`, `BoxLedger`, `BoxSigner`: a boxed future per
/// store and signer call).
pub(crate) struct Service {
    service: token_refresh::TokenService,
}

impl Service {
    pub(crate) fn new() -> Self {
        let signer = Ed25519Signer::from_seed(&SEED).expect("seed key");
        let service = token_refresh::TokenService::new(
            Policy::default(),
            token_refresh::MemoryUserStore::new([bob()]),
            token_refresh::MemoryLedger::new(),
            signer,
            SystemClock,
        );
        Self { service }
    }
}

impl Refresher for Service {
    fn login(&self) -> String {
        ready(self.service.issue(BOB)).expect("issue").refresh_token
    }

    fn refresh(&self, authorization: &[u8]) -> (Vec<u8>, String) {
        let result = ready(self.service.refresh(Some(authorization)));
        let body = Reply::from_result(&result).into_body();
        match result {
            Ok(pair) => (body, pair.refresh_token),
            Err(error) => panic!("refresh failed: {error} {}", String::from_utf8_lossy(&body)),
        }
    }
}

// ---------------------------------------------------------------- the floor

/// The Ed25519 work a refresh cannot avoid: two signatures and one
/// verification, over messages of the sizes a refresh really signs.
pub(crate) struct Floor {
    key: SigningKey,
    public: VerifyingKey,
    access_input: Vec<u8>,
    refresh_input: Vec<u8>,
    refresh_signature: Signature,
    small_order: [[u8; 32]; 8],
}

fn signing_input(token: &str) -> Vec<u8> {
    let end = token.rfind('.').expect("compact JWS");
    token.as_bytes().get(..end).expect("in bounds").to_vec()
}

impl Floor {
    pub(crate) fn new(sample: &TokenPair) -> Self {
        let key = SigningKey::from_bytes(&SEED);
        let access_input = signing_input(&sample.access_token);
        let refresh_input = signing_input(&sample.refresh_token);
        let refresh_signature = key.sign(&refresh_input);
        let small_order = curve25519_dalek::constants::EIGHT_TORSION.map(|point| point.compress().to_bytes());
        let floor =
            Self { public: key.verifying_key(), key, access_input, refresh_input, refresh_signature, small_order };
        assert!(floor.verify_strict() && floor.verify() && floor.verify_small_order_bytes());
        floor.check_identity_r();
        floor
    }

    /// The one signature `verify` accepts and `verify_strict` refuses for a
    /// non-weak key: `R` = identity, `S = k·a` (only the key holder can make
    /// it). The byte check refuses it too, as it refuses every canonical
    /// small-order `R`; a non-canonical spelling of the identity (y = p + 1)
    /// is refused by all three, because `verify` compares `R` with a
    /// canonical encoding.
    fn check_identity_r(&self) {
        let mut canonical = [0u8; 32];
        canonical[0] = 1;
        let mut non_canonical = [0xff_u8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(self.identity_r_outcome(canonical), (true, false, false), "canonical identity R");
        assert_eq!(self.identity_r_outcome(non_canonical), (false, false, false), "non-canonical identity R");
    }

    /// (`verify`, `verify_strict`, byte check) on a signature with the given
    /// identity encoding as `R` and `S = k·a`.
    fn identity_r_outcome(&self, r: [u8; 32]) -> (bool, bool, bool) {
        use sha2::Digest as _;
        let k = curve25519_dalek::Scalar::from_hash(
            sha2::Sha512::new().chain_update(r).chain_update(self.public.as_bytes()).chain_update(&self.refresh_input),
        );
        let s = k * self.key.to_scalar();
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(s.as_bytes());
        let forged = Signature::from_bytes(&bytes);
        let plain = self.public.verify(&self.refresh_input, &forged).is_ok();
        let strict = self.public.verify_strict(&self.refresh_input, &forged).is_ok();
        let checked = !self.small_order.iter().any(|bad| bad == forged.r_bytes()) && plain;
        (plain, strict, checked)
    }

    pub(crate) fn sign(&self) -> Signature {
        self.key.sign(black_box(&self.access_input))
    }

    pub(crate) fn sign_pair(&self) -> (Signature, Signature) {
        (self.key.sign(black_box(&self.access_input)), self.key.sign(black_box(&self.refresh_input)))
    }

    pub(crate) fn verify_strict(&self) -> bool {
        self.public.verify_strict(black_box(&self.refresh_input), &self.refresh_signature).is_ok()
    }

    pub(crate) fn verify(&self) -> bool {
        self.public.verify(black_box(&self.refresh_input), &self.refresh_signature).is_ok()
    }

    /// `verify` plus a byte comparison of `R` against the eight canonical
    /// small-order encodings. For a key refused at load when weak (as
    /// `VerificationKey::new` does) this accepts exactly what
    /// `verify_strict` accepts: a non-canonical or invalid `R` can never
    /// equal the canonical encoding `verify` compares against, so the only
    /// extra rule left is "R not of small order", and that is 8 memcmps
    /// instead of a point decompression.
    pub(crate) fn verify_small_order_bytes(&self) -> bool {
        let r = self.refresh_signature.r_bytes();
        !self.small_order.iter().any(|bad| bad == r)
            && self.public.verify(black_box(&self.refresh_input), &self.refresh_signature).is_ok()
    }

    /// 2 × sign + 1 × `verify_strict`: what the crate must do per refresh.
    pub(crate) fn floor_strict(&self) -> bool {
        black_box(self.sign_pair());
        self.verify_strict()
    }

    /// 3 × sign: a refresh's floor when the presented token is verified
    /// by re-signing it.
    pub(crate) fn floor_resign(&self) -> (Signature, Signature, Signature) {
        let (access, refresh) = self.sign_pair();
        (access, refresh, self.key.sign(black_box(&self.refresh_input)))
    }

    /// 2 × sign + 1 × `verify`, for reference.
    pub(crate) fn floor_plain(&self) -> bool {
        black_box(self.sign_pair());
        self.verify()
    }

    pub(crate) fn access_input(&self) -> &[u8] {
        &self.access_input
    }
}

/// aws-lc-rs Ed25519, for reference: the backend `jsonwebtoken` signs with.
pub(crate) struct AwsLc {
    key: aws_lc_rs::signature::Ed25519KeyPair,
    public: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl AwsLc {
    pub(crate) fn new(message: &[u8]) -> Self {
        use aws_lc_rs::signature::KeyPair as _;
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&SEED).expect("seed");
        let public = key.public_key().as_ref().to_vec();
        let signature = key.sign(message).as_ref().to_vec();
        Self { key, public, message: message.to_vec(), signature }
    }

    pub(crate) fn sign(&self) -> aws_lc_rs::signature::Signature {
        self.key.sign(black_box(&self.message))
    }

    pub(crate) fn verify(&self) -> bool {
        use aws_lc_rs::signature::VerificationAlgorithm as _;
        aws_lc_rs::signature::ED25519.verify_sig(&self.public, black_box(&self.message), &self.signature).is_ok()
    }
}

// ---------------------------------------------------------------- peers' shared parts

/// SPEC §4 step 1–2 as a peer would write it: size and charset, then an
/// optional case-insensitive `Bearer` scheme.
fn bearer(header: &[u8]) -> Option<&str> {
    if header.is_empty() || header.len() > 8 * 1024 || !header.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?;
    match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Some(rest.trim_start_matches(' ')),
        Some(_) => None,
        None => Some(text),
    }
}

#[derive(Serialize)]
struct PeerEnvelope<'a> {
    status: PeerStatus,
    data: PeerData<'a>,
}

#[derive(Serialize)]
struct PeerStatus {
    code: u16,
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerData<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
    expiration_time: i64,
}

fn peer_envelope(access_token: &str, refresh_token: &str) -> Vec<u8> {
    let envelope = PeerEnvelope {
        status: PeerStatus { code: 200, name: "OK" },
        data: PeerData { access_token, refresh_token, expiration_time: ACCESS_TTL },
    };
    serde_json::to_vec(&envelope).expect("envelope")
}

struct PeerUser {
    account: String,
    role: String,
    enabled: bool,
}

/// The claims of one pair, as a peer's ledger keeps them.
#[derive(Clone)]
struct PeerPair {
    subject: String,
    account: String,
    role: String,
    access_id: Uuid,
    access_exp: i64,
    refresh_id: Uuid,
    refresh_exp: i64,
}

impl PeerPair {
    fn fresh(subject: &str, user: &PeerUser, now: i64) -> Self {
        Self {
            subject: subject.to_owned(),
            account: user.account.clone(),
            role: user.role.clone(),
            access_id: Uuid::new_v4(),
            access_exp: now + ACCESS_TTL,
            refresh_id: Uuid::new_v4(),
            refresh_exp: now + REFRESH_TTL,
        }
    }
}

struct PeerSession {
    pair: PeerPair,
    generation: u64,
    revoked: bool,
}

/// A peer's in-memory stores: users, and a ledger doing the crate's work per
/// rotation (token lookup, session check, reuse detection, successor record,
/// access-token revocation) with `Mutex<HashMap>`s.
#[derive(Default)]
struct PeerStores {
    users: RwLock<HashMap<String, Arc<PeerUser>>>,
    tokens: Mutex<HashMap<Uuid, (u64, u64)>>,
    sessions: Mutex<HashMap<u64, PeerSession>>,
    revoked_access: Mutex<HashMap<Uuid, i64>>,
    next_session: AtomicU64,
}

impl PeerStores {
    fn new() -> Self {
        let stores = Self::default();
        let user = PeerUser { account: BOB_ACCOUNT.into(), role: BOB_ROLE.into(), enabled: true };
        stores.users.write().expect("users").insert(BOB.into(), Arc::new(user));
        stores
    }

    fn user(&self, subject: &str) -> Option<Arc<PeerUser>> {
        self.users.read().expect("users").get(subject).cloned()
    }

    fn create(&self, pair: &PeerPair) {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.tokens.lock().expect("tokens").insert(pair.refresh_id, (session, 0));
        self.sessions
            .lock()
            .expect("sessions")
            .insert(session, PeerSession { pair: pair.clone(), generation: 0, revoked: false });
    }

    /// Consumes `presented` and records `successor`; `None` on any refusal.
    fn rotate(&self, presented: Uuid, subject: &str, successor: &PeerPair) -> Option<()> {
        let (session, generation) = *self.tokens.lock().expect("tokens").get(&presented)?;
        let mut sessions = self.sessions.lock().expect("sessions");
        let record = sessions.get_mut(&session)?;
        if record.revoked || record.pair.subject != subject {
            return None;
        }
        let mut revoked = self.revoked_access.lock().expect("revoked");
        revoked.insert(record.pair.access_id, record.pair.access_exp);
        if generation != record.generation {
            record.revoked = true;
            return None;
        }
        record.generation += 1;
        record.pair = successor.clone();
        self.tokens.lock().expect("tokens").insert(successor.refresh_id, (session, record.generation));
        Some(())
    }
}

// ---------------------------------------------------------------- jsonwebtoken

#[derive(Serialize)]
struct JwtAccess<'a> {
    acc: &'a str,
    sub: &'a str,
    role: &'a str,
    exp: i64,
    jti: String,
}

#[derive(Serialize)]
struct JwtRefreshOut<'a> {
    sub: &'a str,
    acjti: String,
    exp: i64,
    jti: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtRefreshIn {
    sub: String,
    acjti: String,
    exp: i64,
    jti: String,
}

/// The refresh pipeline on `jsonwebtoken` (aws-lc-rs backend).
pub(crate) struct JsonWebToken {
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    header: jsonwebtoken::Header,
    stores: PeerStores,
}

impl JsonWebToken {
    pub(crate) fn new() -> Self {
        let public = SigningKey::from_bytes(&SEED).verifying_key().to_bytes();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        Self {
            encoding: jsonwebtoken::EncodingKey::from_ed_der(&private_der(&SEED)),
            decoding: jsonwebtoken::DecodingKey::from_ed_der(&public),
            validation,
            header: jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            stores: PeerStores::new(),
        }
    }

    fn sign_pair(&self, pair: &PeerPair) -> (String, String) {
        let access = JwtAccess {
            acc: &pair.account,
            sub: &pair.subject,
            role: &pair.role,
            exp: pair.access_exp,
            jti: pair.access_id.to_string(),
        };
        let refresh = JwtRefreshOut {
            sub: &pair.subject,
            acjti: pair.access_id.to_string(),
            exp: pair.refresh_exp,
            jti: pair.refresh_id.to_string(),
        };
        let access = jsonwebtoken::encode(&self.header, &access, &self.encoding).expect("sign access");
        let refresh = jsonwebtoken::encode(&self.header, &refresh, &self.encoding).expect("sign refresh");
        (access, refresh)
    }
}

impl Default for JsonWebToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Refresher for JsonWebToken {
    fn login(&self) -> String {
        let user = self.stores.user(BOB).expect("user");
        let pair = PeerPair::fresh(BOB, &user, unix_now());
        self.stores.create(&pair);
        self.sign_pair(&pair).1
    }

    fn refresh(&self, authorization: &[u8]) -> (Vec<u8>, String) {
        let token = bearer(authorization).expect("header");
        let claims =
            jsonwebtoken::decode::<JwtRefreshIn>(token, &self.decoding, &self.validation).expect("valid").claims;
        let presented = Uuid::try_parse(&claims.jti).expect("jti");
        Uuid::try_parse(&claims.acjti).expect("acjti");
        let now = unix_now();
        assert!(claims.exp > now, "expired");
        let user = self.stores.user(&claims.sub).expect("user");
        assert!(user.enabled, "disabled");
        let successor = PeerPair::fresh(&claims.sub, &user, now);
        self.stores.rotate(presented, &claims.sub, &successor).expect("rotated");
        let (access, refresh) = self.sign_pair(&successor);
        (peer_envelope(&access, &refresh), refresh)
    }
}

// ---------------------------------------------------------------- jwt-simple

mod simple {
    use jwt_simple::prelude::{
        Claims, Duration, Ed25519KeyPair, Ed25519PublicKey, EdDSAKeyPairLike as _, EdDSAPublicKeyLike as _, JWTClaims,
        UnixTimeStamp, VerificationOptions,
    };
    use serde::{Deserialize, Serialize};

    use super::{BOB, PeerPair, PeerStores, Refresher, SEED, bearer, peer_envelope, unix_now};

    #[derive(Serialize)]
    struct AccessCustom<'a> {
        acc: &'a str,
        role: &'a str,
    }

    #[derive(Serialize, Deserialize)]
    struct RefreshCustom {
        acjti: String,
    }

    /// The refresh pipeline on `jwt-simple` (pure-Rust build: its Ed25519 is
    /// `ed25519-compact`).
    pub(crate) struct JwtSimple {
        key: Ed25519KeyPair,
        public: Ed25519PublicKey,
        options: VerificationOptions,
        stores: PeerStores,
    }

    impl JwtSimple {
        pub(crate) fn new() -> Self {
            let public = ed25519_dalek::SigningKey::from_bytes(&SEED).verifying_key().to_bytes();
            let mut keypair = SEED.to_vec();
            keypair.extend_from_slice(&public);
            let key = Ed25519KeyPair::from_bytes(&keypair).expect("key pair");
            let public = Ed25519PublicKey::from_bytes(&public).expect("public key");
            let options = VerificationOptions { time_tolerance: Some(Duration::from_secs(0)), ..Default::default() };
            Self { key, public, options, stores: PeerStores::new() }
        }

        /// Same claim set as the crate's tokens; jwt-simple fixes the order
        /// (`exp`, `sub`, `jti`, then custom members) and we drop its
        /// default `iat`/`nbf` so the payloads are the same size.
        fn claims<T: Serialize>(custom: T, exp: i64, subject: &str, id: uuid::Uuid) -> JWTClaims<T> {
            let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(0))
                .with_subject(subject)
                .with_jwt_id(id.to_string());
            claims.issued_at = None;
            claims.invalid_before = None;
            claims.expires_at = Some(UnixTimeStamp::from_secs(u64::try_from(exp).unwrap_or(0)));
            claims
        }

        fn sign_pair(&self, pair: &PeerPair) -> (String, String) {
            let access = AccessCustom { acc: &pair.account, role: &pair.role };
            let access = Self::claims(access, pair.access_exp, &pair.subject, pair.access_id);
            let refresh = RefreshCustom { acjti: pair.access_id.to_string() };
            let refresh = Self::claims(refresh, pair.refresh_exp, &pair.subject, pair.refresh_id);
            (self.key.sign(access).expect("sign access"), self.key.sign(refresh).expect("sign refresh"))
        }
    }

    impl Default for JwtSimple {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Refresher for JwtSimple {
        fn login(&self) -> String {
            let user = self.stores.user(BOB).expect("user");
            let pair = PeerPair::fresh(BOB, &user, unix_now());
            self.stores.create(&pair);
            self.sign_pair(&pair).1
        }

        fn refresh(&self, authorization: &[u8]) -> (Vec<u8>, String) {
            let token = bearer(authorization).expect("header");
            let claims = self.public.verify_token::<RefreshCustom>(token, Some(self.options.clone())).expect("valid");
            let subject = claims.subject.expect("sub");
            let presented = uuid::Uuid::try_parse(claims.jwt_id.as_deref().expect("jti")).expect("jti");
            uuid::Uuid::try_parse(&claims.custom.acjti).expect("acjti");
            let now = unix_now();
            let user = self.stores.user(&subject).expect("user");
            assert!(user.enabled, "disabled");
            let successor = PeerPair::fresh(&subject, &user, now);
            self.stores.rotate(presented, &subject, &successor).expect("rotated");
            let (access, refresh) = self.sign_pair(&successor);
            (peer_envelope(&access, &refresh), refresh)
        }
    }
}

pub(crate) use simple::JwtSimple;
