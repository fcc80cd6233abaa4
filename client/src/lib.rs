//! Client sessions for refresh-token rotation (the session endpoint of the
//! `token-refresh` crate, or any server with its wire format).
//!
//! A [`Session`] keeps one token pair alive for every task and process that
//! shares it:
//! - `access_token().await` reads one atomic pointer while the token is
//!   fresh; when it is due, exactly one refresh runs and every caller
//!   shares its result, success or failure;
//! - refreshes are scheduled on the monotonic clock (the instant the answer
//!   arrived plus `expirationTime`, minus a jittered margin); the JWT's
//!   `exp` and the wall clock are never compared;
//! - a refresh whose answer was lost is retried with the same refresh token
//!   (the server's grace window returns the identical pair); transient
//!   failures keep the session, terminal ones end it with a reason;
//! - a [`TokenStore`] with compare-and-swap on the generation and a lock
//!   lets several processes share one session and one refresh
//!   ([`FileTokenStore`]).
//!
//! The HTTP client is a small [`Transport`] trait; [`HyperTransport`]
//! (feature `hyper`, on by default) is the ready-made one. The `layer`
//! (feature `tower`) authorizes the requests of any tower HTTP client,
//! `BearerMiddleware` (feature `reqwest`) those of a `reqwest-middleware`
//! client.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod config;
mod error;
#[cfg(feature = "hyper")]
mod hyper_transport;
#[cfg(feature = "tower")]
pub mod layer;
mod login;
#[cfg(feature = "reqwest")]
mod middleware;
mod session;
pub mod store;
mod transport;
mod wire;

pub use clock::{SystemWallClock, WallClock};
pub use config::Config;
pub use error::{EndReason, Error, Refusal, StoreError, Transient, TransientKind, TransportError};
#[cfg(feature = "hyper")]
pub use hyper_transport::{HyperTransport, SESSION_PATH};
#[cfg(feature = "tower")]
pub use layer::BearerLayer;
pub use login::Credentials;
#[cfg(feature = "reqwest")]
pub use middleware::BearerMiddleware;
pub use session::{AccessToken, Session, SessionState};
pub use store::{FileTokenStore, MemoryTokenStore, StoredSession, TokenStore};
pub use transport::{Call, Request, Response, Transport};
pub use wire::{GRACE_HEADER, TokenPair};

/// The README's example, compiled as a doctest.
#[cfg(all(doctest, feature = "hyper", feature = "tower"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
