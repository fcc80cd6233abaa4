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
//! One [`TokenService`] per deployment is the door to every flow:
//!
//! ```
//! use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, Reply, SystemClock, TokenService, User};
//!
//! # tokio_test_block_on(async {
//! let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
//! let signer = Ed25519Signer::from_seed(&[0x5e; 32])?;
//! let service = TokenService::new(Policy::default(), users, MemoryLedger::new(), signer, SystemClock);
//!
//! // At login, after your own authentication:
//! let first = service.issue("bob@mail.com").await?;
//!
//! // PATCH /auth/api/v1/authentication-management/session
//! let header = format!("Bearer {}", first.refresh_token);
//! let second = service.refresh(Some(header.as_bytes())).await?;
//! assert_ne!(second.refresh_token, first.refresh_token);
//!
//! // The rotated token again, as a client whose answer was lost retries it:
//! // inside the grace window (10 s by default) the same pair, byte for byte.
//! let retried = service.refresh(Some(header.as_bytes())).await?;
//! assert_eq!(retried, second);
//!
//! // Once the successor is rotated too, the first token is spent for good:
//! // presenting it again is reuse, and revokes the session.
//! let next = format!("Bearer {}", second.refresh_token);
//! service.refresh(Some(next.as_bytes())).await?;
//! let reused = service.refresh(Some(header.as_bytes())).await;
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
//! The design card's framework-agnostic function, [`refresh`]`(header,
//! store, signer, clock)`, is kept as the card names it: a thin wrapper
//! over the same core, with the reference API's defaults.
//!
//! # Shape
//!
//! The crate root holds what an application touches; the rest lives in
//! modules by role.
//!
//! - Two doors: [`TokenService`] (login, refresh, logout, access-token
//!   checks, sessions, the JWKS) over a [`Policy`], a user directory, a
//!   ledger, a [`Signer`] and a [`Clock`]; and [`AccessVerifier`], for a
//!   resource server that holds only the issuer's public keys. The design
//!   card's framework-agnostic [`refresh`] runs the same core.
//! - Extension points: [`UserStore`], [`ledger::SessionLedger`], [`Signer`],
//!   [`Clock`]. Store traits return `Send` futures, so any async runtime
//!   (or none) drives them.
//! - In memory: [`MemoryUserStore`], [`MemoryLedger`].
//! - Shared by many instances (features `postgres`, `redis`):
//!   `PostgresLedger`, `RedisLedger`, with the same semantics; the
//!   `conformance` feature's suite checks any ledger against the contract.
//! - Modules: [`policy`] (the configuration, its builder and the input
//!   limits), [`error`] (the
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

/// The axum 0.8 integration; it lives with the other HTTP adapters
/// ([`http`]'s answers and session routine), and is named here for short
/// paths.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use http::axum;
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
pub mod policy;
mod recording;
mod service;
pub mod token;
pub mod users;
mod verifier;

// The crate root: what an application touches. Implementer types live under
// `ledger`, the wire format under `token`, keys under `keys`.
pub use clock::{Clock, SystemClock};
pub use envelope::{Envelope, GRACE_HEADER, Reply, ReplyData, Status};
pub use error::{Error, StoreError};
pub use events::{Event, EventSink};
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
pub use policy::{MAX_LOGIN_BODY, Policy};
pub use service::TokenService;
pub use token::claims::AccessClaims;
pub use token::ids::SessionId;
pub use token::pair::TokenPair;
pub use users::{MemoryUserStore, User, UserStore};
pub use verifier::AccessVerifier;

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

/// The design card's refresh, exactly as the card names it: verifies the
/// refresh token in `authorization` (the raw `Authorization` header value,
/// `None` when absent, bare or `Bearer`), rotates it in `store`'s ledger and
/// signs the new pair with `signer`, with the reference API's defaults
/// ([`Policy::default`]: 300 s access, 86 400 s refresh, a 10 s grace
/// window) and no event sink.
///
/// A thin wrapper: it lends its arguments to the same non-generic core
/// [`TokenService::refresh`] runs on (each `&T` coerces to a trait object),
/// so the two answer byte for byte alike and are counted alike. A service
/// with its own policy, an event sink, login or logout uses
/// [`TokenService`].
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
    let policy = Policy::default();
    let parts = flows::parts::Parts {
        policy: &policy,
        users: store.users(),
        ledger: store.ledger(),
        signer,
        clock,
        events: None,
    };
    parts.refresh(authorization).await
}
