//! The user directory: who a token's `sub` is.

use crate::error::StoreError;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, PoisonError, RwLock};

use ed25519_dalek::VerifyingKey;

/// A user as the token flows need them.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    subject: String,
    account: String,
    role: String,
    enabled: bool,
    login_key: Option<VerifyingKey>,
}

impl User {
    /// An enabled user: `subject` (the `sub` claim, the FIB e-mail),
    /// `account` (`acc`) and `role`.
    pub fn new(subject: impl Into<String>, account: impl Into<String>, role: impl Into<String>) -> Self {
        Self { subject: subject.into(), account: account.into(), role: role.into(), enabled: true, login_key: None }
    }

    /// The same user, with the Ed25519 public key their login signatures
    /// verify under ([spec §1](crate::spec#1-the-endpoint-being-served), the `POST` login).
    #[must_use]
    pub fn with_login_key(mut self, key: VerifyingKey) -> Self {
        self.login_key = Some(key);
        self
    }

    /// The same user, disabled: refreshes and logins are refused with 401.
    #[must_use]
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// `sub`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `acc`.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `role`.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Whether the user may hold sessions.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The registered login key, if any.
    pub fn login_key(&self) -> Option<&VerifyingKey> {
        self.login_key.as_ref()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("subject", &self.subject)
            .field("account", &self.account)
            .field("role", &self.role)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Looks users up by subject.
///
/// Returning `Ok(None)` means "no such user" (404); an `Err` means the
/// directory could not answer (500). Never fold the second into the first.
pub trait UserStore: Send + Sync {
    /// The user whose `sub` is `subject`.
    fn find(&self, subject: &str) -> impl Future<Output = Result<Option<Arc<User>>, StoreError>> + Send;
}

impl<U: UserStore + ?Sized> UserStore for Arc<U> {
    fn find(&self, subject: &str) -> impl Future<Output = Result<Option<Arc<User>>, StoreError>> + Send {
        (**self).find(subject)
    }
}

/// A [`UserStore`] of any type behind one type, picked at run time.
/// Cloning shares the directory. Each lookup costs one boxed future.
#[derive(Clone)]
pub struct BoxUserStore(Arc<dyn DynUserStore>);

impl BoxUserStore {
    /// The erased store itself, for the core: one boxed future per call.
    pub(crate) fn as_dyn(&self) -> &dyn DynUserStore {
        &*self.0
    }
}

impl BoxUserStore {
    /// Boxes `users`.
    pub fn new<U: UserStore + 'static>(users: U) -> Self {
        Self(Arc::new(users))
    }
}

impl fmt::Debug for BoxUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxUserStore").finish_non_exhaustive()
    }
}

type UserFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Option<Arc<User>>, StoreError>> + Send + 'a>>;

/// [`UserStore`] with a boxed future: object safe.
pub(crate) trait DynUserStore: Send + Sync {
    fn find_boxed<'a>(&'a self, subject: &'a str) -> UserFuture<'a>;
}

impl<U: UserStore> DynUserStore for U {
    fn find_boxed<'a>(&'a self, subject: &'a str) -> UserFuture<'a> {
        Box::pin(self.find(subject))
    }
}

impl UserStore for BoxUserStore {
    async fn find(&self, subject: &str) -> Result<Option<Arc<User>>, StoreError> {
        self.0.find_boxed(subject).await
    }
}

/// Lock shards of [`MemoryUserStore`]: lookups of different users rarely
/// touch the same lock.
const USER_SHARDS: usize = 16;

/// An in-memory user directory, sharded so lookups on the refresh path do
/// not share one lock.
///
/// ```
/// use token_refresh::{MemoryUserStore, User};
///
/// let users = MemoryUserStore::new([User::new("bob@mail.com", "bob@admin", "ROLE_ADMIN")]);
/// assert_eq!(users.len(), 1);
/// ```
#[derive(Debug)]
pub struct MemoryUserStore {
    hasher: RandomState,
    shards: Box<[UserShard]>,
}

type UserShard = RwLock<HashMap<String, Arc<User>>>;

impl Default for MemoryUserStore {
    fn default() -> Self {
        Self { hasher: RandomState::new(), shards: (0..USER_SHARDS).map(|_| RwLock::default()).collect() }
    }
}

impl MemoryUserStore {
    /// A directory holding `users`.
    pub fn new(users: impl IntoIterator<Item = User>) -> Self {
        let store = Self::default();
        for user in users {
            store.insert(user);
        }
        store
    }

    #[expect(clippy::indexing_slicing, reason = "the index is reduced modulo the fixed shard count")]
    fn shard(&self, subject: &str) -> &UserShard {
        let index = usize::try_from(self.hasher.hash_one(subject) % USER_SHARDS as u64).unwrap_or(0);
        &self.shards[index % USER_SHARDS]
    }

    /// Adds or replaces a user.
    pub fn insert(&self, user: User) {
        let mut shard = self.shard(&user.subject).write().unwrap_or_else(PoisonError::into_inner);
        shard.insert(user.subject.clone(), Arc::new(user));
    }

    /// Removes a user; their tokens then get 404.
    pub fn remove(&self, subject: &str) -> Option<Arc<User>> {
        self.shard(subject).write().unwrap_or_else(PoisonError::into_inner).remove(subject)
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl UserStore for MemoryUserStore {
    fn find(&self, subject: &str) -> impl Future<Output = Result<Option<Arc<User>>, StoreError>> + Send {
        let found = self.shard(subject).read().unwrap_or_else(PoisonError::into_inner).get(subject).cloned();
        std::future::ready(Ok(found))
    }
}
