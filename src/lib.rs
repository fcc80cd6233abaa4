//! Refresh-token rotation for Rust services.
//!
//! `token-refresh` serves one endpoint well: a client presents its refresh
//! token, the service verifies it, rotates it, and answers with a new
//! access/refresh pair in a typed JSON envelope. Tokens are compact EdDSA
//! JWTs, byte-compatible with the FIB API (the API of the service whose
//! documentation page, "Refreshing authentication tokens", the crate
//! reproduces; the page does not expand the acronym); every refresh token is single
//! use, and presenting a rotated one revokes the whole session.
//!
//! The core is framework-agnostic: it takes the `Authorization` header as
//! bytes and returns a [`TokenPair`] or an [`Error`] that knows its HTTP
//! status; [`Reply`] turns either into status, headers and body.
//!
//! # Getting started
//!
//! ```
//! use token_refresh::{Ed25519Signer, MemoryStore, SystemClock, User, Reply};
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::in_memory([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
//! let signer = Ed25519Signer::from_seed(&[0x5e; 32])?;
//! let clock = SystemClock;
//!
//! // At login, after your own authentication:
//! let first = token_refresh::Policy::default().issue("bob@mail.com", &store, &signer, &clock).await?;
//!
//! // PATCH /auth/api/v1/authentication-management/session
//! let header = format!("Bearer {}", first.refresh_token);
//! let second = token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock).await?;
//! assert_ne!(second.refresh_token, first.refresh_token);
//!
//! // The rotated token again, as a client whose answer was lost retries it:
//! // inside the grace window (10 s by default) the same pair, byte for byte.
//! let retried = token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock).await?;
//! assert_eq!(retried, second);
//!
//! // Once the successor is rotated too, the first token is spent for good:
//! // presenting it again is reuse, and revokes the session.
//! let next = format!("Bearer {}", second.refresh_token);
//! token_refresh::refresh(Some(next.as_bytes()), &store, &signer, &clock).await?;
//! let reused = token_refresh::refresh(Some(header.as_bytes()), &store, &signer, &clock).await;
//! let reply = Reply::from_result(&reused);
//! assert_eq!(reply.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().map(|rt| rt.block_on(f)).unwrap_or_else(|e| panic!("{e}"))
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shape
//!
//! The crate root holds what an application touches; the rest lives in
//! modules by role.
//!
//! - One service: [`TokenService`] (login, refresh, logout, access-token
//!   checks, the JWKS) over a [`Policy`], a user directory, a ledger, a
//!   [`Signer`] and a [`Clock`]. The design card's framework-agnostic
//!   [`refresh`] and the [`Policy`] methods run the same flows.
//! - Extension points: [`UserStore`], [`ledger::SessionLedger`], [`Signer`],
//!   [`Clock`]. Store traits return `Send` futures, so any async runtime
//!   (or none) drives them.
//! - In memory: [`MemoryUserStore`], [`MemoryLedger`].
//! - Shared by many instances (features `postgres`, `redis`):
//!   `PostgresLedger`, `RedisLedger`, with the same semantics; the
//!   `conformance` feature's suite checks any ledger against the contract.
//! - Modules: [`policy`] (builder, limits, event sink), [`error`] (the
//!   refusal details behind [`Error`]), [`clock`], [`users`], [`ledger`]
//!   (the contract and the backends), [`keys`] (key rings, JWK,
//!   [`keys::Keyring::to_jwks`], RFC 7638 thumbprints), [`token`] (the wire
//!   format), and the `http` and `axum` integrations.

//! # Security
//!
//! The [`token::jws`] module states how tokens are checked and which attacks each
//! rule refuses; [`ledger`] states the rotation contract every backend
//! keeps. The README's security section collects the decisions.
//!
//! # Features
//!
//! - `http`: `http::StatusCode` for errors, `http::Response` from
//!   [`Reply`], and `http::Endpoint`: the session and JWKS endpoints as one
//!   framework-neutral tower service (hyper, or any server of tower
//!   services).
//! - `axum`: the axum 0.8 integration (`axum` module).
//! - `tracing`: `tracing` events for every [`Event`].
//! - `aws-lc`: `AwsLcSigner`, Ed25519 signing on AWS-LC (same bytes, about
//!   twice as fast as ed25519-dalek here).
//! - `postgres`: `PostgresLedger` (tokio-postgres, deadpool-postgres).
//! - `redis`: `RedisLedger` (the `redis` crate's tokio `ConnectionManager`).
//! - `conformance`: the `conformance` module, the checks every
//!   [`SessionLedger`](ledger::SessionLedger) must pass.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod clock;
mod envelope;
pub mod error;
mod events;
mod flows;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod keys;
pub mod ledger;
mod recording;
mod service;
pub mod token;
pub mod users;

/// The policy's parts beyond [`Policy`] itself: its builder, its
/// configuration error, its limits, and the event sink it reports to.
pub mod policy {
    pub use crate::events::EventSink;
    pub use crate::flows::authorization::MAX_HEADER_LEN;
    pub use crate::flows::policy::{
        DEFAULT_GRACE, DEFAULT_GRACE_REPLAYS, MAX_GRACE, MAX_GRACE_REPLAYS, MAX_LEEWAY, MAX_SESSIONS_PER_USER,
        PolicyBuilder, PolicyError,
    };
}

// The crate root: what an application touches. Implementer types live under
// `ledger`, the wire format under `token`, keys under `keys`.
pub use clock::{Clock, SystemClock};
pub use envelope::{Envelope, GRACE_HEADER, Reply, ReplyData, Status};
pub use error::{Error, StoreError};
pub use events::Event;
pub use flows::policy::Policy;
pub use flows::session::MAX_LOGIN_BODY;
pub use flows::store::{MemoryStore, Store};
#[cfg(feature = "aws-lc")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws-lc")))]
pub use keys::aws_lc::AwsLcSigner;
pub use keys::jwk::Jwks;
pub use keys::signer::{Ed25519Signer, Signer};
pub use keys::{KeyId, VerificationKey};
pub use ledger::SessionInfo;
pub use ledger::memory::MemoryLedger;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use ledger::postgres::{PostgresLedger, PostgresOptions};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ledger::redis::RedisLedger;
pub use service::TokenService;
pub use token::claims::AccessClaims;
pub use token::ids::SessionId;
pub use token::pair::TokenPair;
pub use users::{MemoryUserStore, User, UserStore};

/// The behaviour contract this crate implements (`docs/spec.md`): token
/// bytes, envelope, statuses, rotation and reuse detection. The code cites
/// its sections as "spec §N".
#[doc = include_str!("../docs/spec.md")]
pub mod spec {}

// The README's Rust blocks compile as doctests, so its examples cannot rot.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/ledgers.md")]
struct LedgersDoctests;

/// The ed25519-dalek version this crate builds on, for key types in the
/// public API.
pub use ed25519_dalek;

/// The `time` version this crate builds on: [`Policy`] lifetimes are
/// [`time::Duration`]s, so a service needs no `time` dependency of its own
/// (`token_refresh::time::Duration::minutes(5)`).
pub use time;

/// The deadpool-postgres version [`PostgresLedger`] builds on, for its pool
/// type.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use deadpool_postgres;

/// The `redis` crate version [`RedisLedger`] builds on, for its connection
/// type.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis;

/// [`Policy::refresh`] with the reference API's defaults (300 s access, 86 400 s
/// refresh, no grace window).
pub async fn refresh<U, L, S, C>(
    authorization: Option<&[u8]>,
    store: &Store<U, L>,
    signer: &S,
    clock: &C,
) -> Result<TokenPair, Error>
where
    U: UserStore,
    L: ledger::SessionLedger,
    S: Signer,
    C: Clock,
{
    Policy::default().refresh(authorization, store, signer, clock).await
}
