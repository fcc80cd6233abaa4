//! The card's `store` argument: the user directory and the session ledger
//! as one value, for [`refresh`](crate::refresh).

use crate::ledger::SessionLedger;
use crate::ledger::memory::MemoryLedger;
use crate::users::{MemoryUserStore, User, UserStore};

/// The user directory and the session ledger, the design card's `store`
/// argument of [`refresh`](crate::refresh). A service passes them to
/// [`TokenService::new`](crate::TokenService::new) instead.
#[derive(Debug, Default)]
pub struct Store<U, L> {
    users: U,
    ledger: L,
}

impl<U: UserStore, L: SessionLedger> Store<U, L> {
    /// Pairs a user directory with a ledger.
    pub fn new(users: U, ledger: L) -> Self {
        Self { users, ledger }
    }

    /// The user directory.
    pub fn users(&self) -> &U {
        &self.users
    }

    /// The session ledger.
    pub fn ledger(&self) -> &L {
        &self.ledger
    }
}

/// Both stores in memory: the one-process default.
pub type MemoryStore = Store<MemoryUserStore, MemoryLedger>;

impl MemoryStore {
    /// In-memory stores holding `users` and no sessions.
    pub fn in_memory(users: impl IntoIterator<Item = User>) -> Self {
        Self::new(MemoryUserStore::new(users), MemoryLedger::new())
    }
}
