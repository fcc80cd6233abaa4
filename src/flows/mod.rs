//! The flows: login, issue, refresh, logout, access-token checks and
//! session listing, on one non-generic core.
//!
//! # Layering
//!
//! - **Called only by** `service.rs` ([`TokenService`](crate::TokenService)),
//!   `verifier.rs` ([`AccessVerifier`](crate::AccessVerifier)) and the
//!   card's [`refresh`](crate::refresh) in `lib.rs`, always through
//!   [`entry`], so metrics and 500 logging happen once per call. The flow
//!   files are private to this module, so the compiler keeps the rule; only
//!   the entry, the context ([`parts`]), the login limiter's state (held by
//!   the service) and the card's [`Store`](crate::Store) are visible above.
//! - **Calls down into** `token/`, `keys/`, `ledger/`, `users`, `events`,
//!   `clock`, `error` and the [`Policy`](crate::Policy) value.
//! - **Nothing calls up**: no flow imports the service, the verifier or the
//!   crate root.
//!
//! Inside, imports run one way: `entry` → the flow files (`refresh`,
//! `login`, `logout`, `sessions`, `access`) → `verify`, `mint`,
//! `authorization`, `login_limit` → `parts`.

mod access;
mod authorization;
pub(crate) mod entry;
mod login;
pub(crate) mod login_limit;
mod logout;
mod mint;
pub(crate) mod parts;
mod refresh;
mod sessions;
pub(crate) mod store;
mod verify;
