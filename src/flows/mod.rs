//! The flows: login, issue, refresh, logout and access-token verification,
//! under one [`Policy`](crate::Policy).

pub(crate) mod access;
pub(crate) mod authorization;
pub(crate) mod login_limit;
pub(crate) mod mint;
pub(crate) mod policy;
pub(crate) mod refresh;
pub(crate) mod session;
pub(crate) mod store;
pub(crate) mod verify;
