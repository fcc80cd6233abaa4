//! The one context every flow runs on: the policy and the deployment's
//! parts, each behind a trait object, so the flows are compiled once and
//! take no type parameters.

use std::future::Future;
use std::pin::Pin;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::events::EventSink;
use crate::keys::signer::DynSigner;
use crate::ledger::{
    AccessState, Created, NewSession, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
};
use crate::policy::Policy;
use crate::token::ids::{SessionId, TokenId};
use crate::users::DynUserStore;

/// What a flow reads and calls: lent by [`TokenService`](crate::TokenService)
/// for each call, or built on the stack by the card's
/// [`refresh`](crate::refresh) from its generic arguments (each `&T`
/// coerces to its trait object).
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) users: &'a dyn DynUserStore,
    pub(crate) ledger: &'a dyn LedgerCalls,
    pub(crate) signer: &'a dyn DynSigner,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) events: Option<&'a dyn EventSink>,
}

type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The [`SessionLedger`] calls the flows make, with boxed futures so the
/// trait is object safe.
///
/// This repeats part of the private `DynLedger` of `ledger/boxed.rs`; it
/// goes once that trait is `pub(crate)` (the flows may not edit `ledger/`).
/// [`TokenService`](crate::TokenService) lends the ledger itself here, not
/// its [`BoxLedger`](crate::ledger::BoxLedger), so each call boxes once.
pub(crate) trait LedgerCalls: Send + Sync {
    fn create<'a>(&'a self, session: &'a NewSession) -> LedgerFuture<'a, Created>;
    fn rotate<'a>(&'a self, request: &'a RotationRequest) -> LedgerFuture<'a, Rotation>;
    fn revoke_session<'a>(&'a self, subject: &'a str, session: SessionId, now: i64) -> LedgerFuture<'a, Revocation>;
    fn sessions<'a>(&'a self, subject: &'a str, now: i64) -> LedgerFuture<'a, Vec<SessionInfo>>;
    fn access_state<'a>(&'a self, subject: &'a str, access_id: TokenId, now: i64) -> LedgerFuture<'a, AccessState>;
    fn purge(&self, now: i64) -> LedgerFuture<'_, u64>;
}

impl<L: SessionLedger> LedgerCalls for L {
    fn create<'a>(&'a self, session: &'a NewSession) -> LedgerFuture<'a, Created> {
        Box::pin(SessionLedger::create(self, session))
    }
    fn rotate<'a>(&'a self, request: &'a RotationRequest) -> LedgerFuture<'a, Rotation> {
        Box::pin(SessionLedger::rotate(self, request))
    }
    fn revoke_session<'a>(&'a self, subject: &'a str, session: SessionId, now: i64) -> LedgerFuture<'a, Revocation> {
        Box::pin(SessionLedger::revoke_session(self, subject, session, now))
    }
    fn sessions<'a>(&'a self, subject: &'a str, now: i64) -> LedgerFuture<'a, Vec<SessionInfo>> {
        Box::pin(SessionLedger::sessions(self, subject, now))
    }
    fn access_state<'a>(&'a self, subject: &'a str, access_id: TokenId, now: i64) -> LedgerFuture<'a, AccessState> {
        Box::pin(SessionLedger::access_state(self, subject, access_id, now))
    }
    fn purge(&self, now: i64) -> LedgerFuture<'_, u64> {
        Box::pin(SessionLedger::purge(self, now))
    }
}
