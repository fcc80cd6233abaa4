//! [`BoxLedger`]: any ledger behind one type, chosen at run time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::StoreError;
use crate::ledger::{
    AccessState, Created, NewSession, Revocation, Rotation, RotationRequest, SessionInfo, SessionLedger,
};
use crate::token::ids::{SessionId, TokenId};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A [`SessionLedger`] of any type, so that a service picks memory,
/// PostgreSQL or Redis at run time without an enum of its own (tower's
/// `BoxCloneService` is the model). Cloning shares the ledger.
///
/// Each call costs one boxed future on top of the ledger's own work: a
/// small allocation beside a network round trip or an Ed25519 signature.
///
/// ```
/// use token_refresh::MemoryLedger;
/// use token_refresh::ledger::BoxLedger;
///
/// let ledger = BoxLedger::new(MemoryLedger::new());
/// let shared = ledger.clone();
/// # let _ = shared;
/// ```
#[derive(Clone)]
pub struct BoxLedger(Arc<dyn DynLedger>);

impl BoxLedger {
    /// The erased ledger itself, for the core: one boxed future per call
    /// (going through `BoxLedger`'s own `SessionLedger` impl would box twice).
    pub(crate) fn as_dyn(&self) -> &dyn DynLedger {
        &*self.0
    }
}

impl BoxLedger {
    /// Boxes `ledger`.
    pub fn new<L: SessionLedger + 'static>(ledger: L) -> Self {
        Self(Arc::new(ledger))
    }
}

impl fmt::Debug for BoxLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxLedger").finish_non_exhaustive()
    }
}

/// [`SessionLedger`] with boxed futures: object safe.
pub(crate) trait DynLedger: Send + Sync {
    fn create<'a>(&'a self, session: &'a NewSession) -> BoxFuture<'a, Created>;
    fn rotate<'a>(&'a self, request: &'a RotationRequest) -> BoxFuture<'a, Rotation>;
    fn revoke_session<'a>(&'a self, subject: &'a str, session: SessionId, now: i64) -> BoxFuture<'a, Revocation>;
    fn revoke_user<'a>(&'a self, subject: &'a str, now: i64) -> BoxFuture<'a, u64>;
    fn sessions<'a>(&'a self, subject: &'a str, now: i64) -> BoxFuture<'a, Vec<SessionInfo>>;
    fn access_state<'a>(&'a self, subject: &'a str, access_id: TokenId) -> BoxFuture<'a, AccessState>;
    fn ping(&self) -> BoxFuture<'_, ()>;
    fn purge(&self, now: i64) -> BoxFuture<'_, u64>;
}

impl<L: SessionLedger> DynLedger for L {
    fn create<'a>(&'a self, session: &'a NewSession) -> BoxFuture<'a, Created> {
        Box::pin(SessionLedger::create(self, session))
    }
    fn rotate<'a>(&'a self, request: &'a RotationRequest) -> BoxFuture<'a, Rotation> {
        Box::pin(SessionLedger::rotate(self, request))
    }
    fn revoke_session<'a>(&'a self, subject: &'a str, session: SessionId, now: i64) -> BoxFuture<'a, Revocation> {
        Box::pin(SessionLedger::revoke_session(self, subject, session, now))
    }
    fn revoke_user<'a>(&'a self, subject: &'a str, now: i64) -> BoxFuture<'a, u64> {
        Box::pin(SessionLedger::revoke_user(self, subject, now))
    }
    fn sessions<'a>(&'a self, subject: &'a str, now: i64) -> BoxFuture<'a, Vec<SessionInfo>> {
        Box::pin(SessionLedger::sessions(self, subject, now))
    }
    fn access_state<'a>(&'a self, subject: &'a str, access_id: TokenId) -> BoxFuture<'a, AccessState> {
        Box::pin(SessionLedger::access_state(self, subject, access_id))
    }
    fn ping(&self) -> BoxFuture<'_, ()> {
        Box::pin(SessionLedger::ping(self))
    }
    fn purge(&self, now: i64) -> BoxFuture<'_, u64> {
        Box::pin(SessionLedger::purge(self, now))
    }
}

impl SessionLedger for BoxLedger {
    async fn create(&self, session: &NewSession) -> Result<Created, StoreError> {
        self.0.create(session).await
    }
    async fn rotate(&self, request: &RotationRequest) -> Result<Rotation, StoreError> {
        self.0.rotate(request).await
    }
    async fn revoke_session(&self, subject: &str, session: SessionId, now: i64) -> Result<Revocation, StoreError> {
        self.0.revoke_session(subject, session, now).await
    }
    async fn revoke_user(&self, subject: &str, now: i64) -> Result<u64, StoreError> {
        self.0.revoke_user(subject, now).await
    }
    async fn sessions(&self, subject: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        self.0.sessions(subject, now).await
    }
    async fn access_state(&self, subject: &str, access_id: TokenId) -> Result<AccessState, StoreError> {
        self.0.access_state(subject, access_id).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.0.purge(now).await
    }
}
