//! The one context every flow runs on: the policy and the deployment's
//! parts, each behind a trait object, so the flows are compiled once and
//! take no type parameters.

use crate::clock::Clock;
use crate::events::EventSink;
use crate::keys::signer::DynSigner;
use crate::ledger::DynLedger;
use crate::policy::Policy;
use crate::users::DynUserStore;

/// What a flow reads and calls: lent by [`TokenService`](crate::TokenService)
/// for each call, or built on the stack by the card's
/// [`refresh`](crate::refresh) from its generic arguments (each `&T`
/// coerces to its trait object).
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) users: &'a dyn DynUserStore,
    pub(crate) ledger: &'a dyn DynLedger,
    pub(crate) signer: &'a dyn DynSigner,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) events: Option<&'a dyn EventSink>,
}
