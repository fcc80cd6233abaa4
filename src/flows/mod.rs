//! The flows: login, issue, refresh, logout, access-token checks and
//! session listing, on one non-generic core.
//!
//! # Layering
//!
//! - **Called only by** `service.rs` ([`TokenService`](crate::TokenService)),
//!   `verifier.rs` ([`AccessVerifier`](crate::AccessVerifier)) and the
//!   card's [`refresh`](crate::refresh) in `lib.rs`, always through
//!   [`entry`] (the access-token check of a verifier through
//!   [`entry::settle`]), so metrics and 500 logging happen once per call.
//! - **Calls down into** `token/`, `keys/`, `ledger/`, `users`, `events`,
//!   `clock`, `error` and the [`Policy`](crate::Policy) value.
//! - **Nothing calls up**: no flow imports the service, the verifier or the
//!   crate root.
//!
//! Inside, imports run one way: `entry` → the flow files (`refresh`,
//! `login`, `logout`, `sessions`, `access`) → `verify`, `mint`,
//! `authorization`, `login_limit` → `parts`.

pub(crate) mod access;
pub(crate) mod authorization;
pub(crate) mod entry;
pub(crate) mod login;
pub(crate) mod login_limit;
pub(crate) mod logout;
pub(crate) mod mint;
pub(crate) mod parts;
pub(crate) mod refresh;
pub(crate) mod sessions;
pub(crate) mod store;
pub(crate) mod verify;
