//! Where a session's tokens live between calls and between processes.
//!
//! The contract every [`TokenStore`] keeps:
//! - **Writes are compare-and-swap on the generation.** A write names the
//!   generation it expects to replace and fails, returning what is there,
//!   when that is not what is stored. There is no blind overwrite: a process
//!   holding an older pair can never replace a newer one.
//! - **Writes happen under the store's lock**, and a session holds that lock
//!   for the whole of a refresh (load, network call, write). Sessions of
//!   several processes sharing one store therefore send one refresh per
//!   generation; the others find the newer generation when they get the
//!   lock and adopt it without a network call.
//! - **Loads see whole records**: a reader never observes half a write.

mod file;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use self::file::FileTokenStore;
use crate::error::StoreError;
use crate::wire::{ServerGrace, TokenPair};

/// One stored session: its token pair, its generation and when the pair
/// arrived.
///
/// `received_at_ms` is this machine's wall clock, in milliseconds since the
/// Unix epoch, when the answer arrived. It is only ever compared with the
/// same machine's clock, by another process that adopts the pair, to know
/// how much of `expirationTime` is left; the server's clock and the JWT's
/// `exp` are never involved. A wall-clock step between the write and the
/// read moves one refresh earlier or later (an age outside
/// `0..=expirationTime` counts as "due now"); it cannot cause a second
/// refresh, because refreshes are serialised by the lock and the generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    generation: u64,
    pair: TokenPair,
    received_at_ms: u64,
    /// The grace window the server stated with this pair
    /// (`Token-Refresh-Grace`), so a process that adopts the pair keeps
    /// the promise too. Absent in records of older clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_replays: Option<u32>,
}

impl StoredSession {
    /// A record for `pair`, generation `generation`, received `age` ago by
    /// the system clock. A session stamps its records with its
    /// [`Config::wall_clock`](crate::Config::wall_clock) instead
    /// ([`StoredSession::received_at`]).
    pub fn new(generation: u64, pair: TokenPair, age: Duration) -> Self {
        Self::received_at(generation, pair, SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH))
    }

    /// A record for `pair`, generation `generation`, received at `received`
    /// by the clock of the processes sharing the store.
    pub fn received_at(generation: u64, pair: TokenPair, received: SystemTime) -> Self {
        Self { generation, pair, received_at_ms: millis(received), grace_ms: None, grace_replays: None }
    }

    /// The record with the grace window the server stated for the pair.
    pub(crate) fn with_server_grace(mut self, grace: Option<ServerGrace>) -> Self {
        self.grace_ms = grace.map(|grace| u64::try_from(grace.window.as_millis()).unwrap_or(u64::MAX));
        self.grace_replays = grace.and_then(|grace| grace.replays);
        self
    }

    /// The grace window the server stated for the pair, if it did.
    pub(crate) fn server_grace(&self) -> Option<ServerGrace> {
        let window = Duration::from_millis(self.grace_ms?);
        Some(ServerGrace { window, replays: self.grace_replays })
    }

    /// The generation: 1 for the first pair ever stored, +1 for every pair
    /// (refresh or new login) after it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The token pair.
    pub fn pair(&self) -> &TokenPair {
        &self.pair
    }

    /// How long ago the pair arrived, by the system clock; `None` when the
    /// clock says it arrived in the future or longer ago than
    /// `expirationTime` (treat as due for refresh).
    pub fn age(&self) -> Option<Duration> {
        self.age_at(SystemTime::now())
    }

    /// [`StoredSession::age`] with `now` read from another clock (a
    /// session reads its [`Config::wall_clock`](crate::Config::wall_clock)).
    pub fn age_at(&self, now: SystemTime) -> Option<Duration> {
        let age = Duration::from_millis(millis(now).checked_sub(self.received_at_ms)?);
        (age <= Duration::from_secs(self.pair.expiration_time())).then_some(age)
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The result of [`TokenStore::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The store held the expected generation; the new record is in place.
    Done,
    /// The store held something else, returned here; nothing was written.
    Conflict(Option<StoredSession>),
}

/// Proof that the caller holds a store's lock; dropping it releases the
/// lock. Implementations wrap whatever guard their lock returns.
pub struct StoreLock {
    _guard: Box<dyn Any + Send + Sync>,
}

impl StoreLock {
    /// Wraps `guard`, which releases the lock when dropped.
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Self { _guard: Box::new(guard) }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Persistence of one session, shared by everything that holds the store
/// (tasks, `Session` clones, other processes for a file store).
///
/// See the [module documentation](self) for the contract.
pub trait TokenStore: Send + Sync + 'static {
    /// Takes the store's lock, waiting as long as it takes (the session
    /// bounds the wait). Must be cancel-safe: dropping the future must not
    /// leave the lock held.
    fn lock(&self) -> impl Future<Output = Result<StoreLock, StoreError>> + Send;

    /// The stored session, if any. Needs no lock.
    fn load(&self) -> impl Future<Output = Result<Option<StoredSession>, StoreError>> + Send;

    /// Replaces the record if the stored generation is `expected` (`None`:
    /// nothing stored) with `new` (`None`: delete). Called with the lock
    /// held.
    fn compare_and_swap(
        &self,
        lock: &StoreLock,
        expected: Option<u64>,
        new: Option<StoredSession>,
    ) -> impl Future<Output = Result<Swap, StoreError>> + Send;
}

/// A store for the sessions of one process: clones share the record and the
/// lock.
#[derive(Clone, Default)]
pub struct MemoryTokenStore {
    lock: Arc<tokio::sync::Mutex<()>>,
    record: Arc<Mutex<Option<StoredSession>>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let generation = self.record.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|r| r.generation);
        f.debug_struct("MemoryTokenStore").field("generation", &generation).finish()
    }
}

impl TokenStore for MemoryTokenStore {
    async fn lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::new(Arc::clone(&self.lock).lock_owned().await))
    }

    async fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.record.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    async fn compare_and_swap(
        &self,
        _lock: &StoreLock,
        expected: Option<u64>,
        new: Option<StoredSession>,
    ) -> Result<Swap, StoreError> {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        if record.as_ref().map(|r| r.generation) != expected {
            return Ok(Swap::Conflict(record.clone()));
        }
        *record = new;
        Ok(Swap::Done)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`TokenStore`] made object-safe.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn lock_boxed(&self) -> BoxFuture<'_, Result<StoreLock, StoreError>>;
    fn load_boxed(&self) -> BoxFuture<'_, Result<Option<StoredSession>, StoreError>>;
    fn cas_boxed<'a>(
        &'a self,
        lock: &'a StoreLock,
        expected: Option<u64>,
        new: Option<StoredSession>,
    ) -> BoxFuture<'a, Result<Swap, StoreError>>;
}

impl<S: TokenStore> DynStore for S {
    fn lock_boxed(&self) -> BoxFuture<'_, Result<StoreLock, StoreError>> {
        Box::pin(self.lock())
    }

    fn load_boxed(&self) -> BoxFuture<'_, Result<Option<StoredSession>, StoreError>> {
        Box::pin(self.load())
    }

    fn cas_boxed<'a>(
        &'a self,
        lock: &'a StoreLock,
        expected: Option<u64>,
        new: Option<StoredSession>,
    ) -> BoxFuture<'a, Result<Swap, StoreError>> {
        Box::pin(self.compare_and_swap(lock, expected, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(generation: u64) -> StoredSession {
        StoredSession::new(generation, TokenPair::new("a", "r", 300), Duration::ZERO)
    }

    #[tokio::test]
    async fn memory_store_swaps_only_the_expected_generation() {
        let store = MemoryTokenStore::new();
        let lock = store.lock().await.unwrap();
        assert_eq!(store.compare_and_swap(&lock, None, Some(record(1))).await.unwrap(), Swap::Done);
        assert_eq!(
            store.compare_and_swap(&lock, None, Some(record(2))).await.unwrap(),
            Swap::Conflict(Some(record(1)))
        );
        assert_eq!(store.compare_and_swap(&lock, Some(1), Some(record(2))).await.unwrap(), Swap::Done);
        assert_eq!(store.load().await.unwrap().map(|r| r.generation()), Some(2));
        assert_eq!(store.compare_and_swap(&lock, Some(2), None).await.unwrap(), Swap::Done);
        assert_eq!(store.load().await.unwrap(), None);
    }

    #[test]
    fn age_is_unknown_outside_the_lifetime() {
        let fresh = StoredSession::new(1, TokenPair::new("a", "r", 300), Duration::from_secs(10));
        assert!(fresh.age().unwrap() >= Duration::from_secs(10));
        let old = StoredSession::new(1, TokenPair::new("a", "r", 300), Duration::from_secs(301));
        assert_eq!(old.age(), None);
        let future = StoredSession { received_at_ms: millis(SystemTime::now()) + 60_000, ..fresh.clone() };
        assert_eq!(future.age(), None);
        // Another clock: only the difference between stamp and reading counts.
        let ahead = SystemTime::now() + Duration::from_secs(3600);
        let stamped = StoredSession::received_at(1, TokenPair::new("a", "r", 300), ahead - Duration::from_secs(10));
        assert_eq!(stamped.age_at(ahead), Some(Duration::from_secs(10)));
        assert_eq!(stamped.age(), None, "by the system clock it arrived an hour from now");
    }
}
