//! The one wall-clock read of the crate, behind a trait.
//!
//! Refreshes are scheduled on the monotonic clock (`tokio::time::Instant`).
//! The wall clock has one use: a [`StoredSession`](crate::StoredSession)
//! records when its pair arrived so that another process adopting it knows
//! how much of `expirationTime` is left. Both ends of that comparison read
//! the clock of the machine sharing the store, never the server's clock or
//! the JWT's `exp`, so a clock that is off by any constant amount changes
//! nothing. [`Config::wall_clock`](crate::Config::wall_clock) replaces the
//! system clock, for tests that prove it (the chaos test runs its clients an
//! hour ahead and an hour behind) and for platforms with a clock of their
//! own.

use std::fmt;
use std::time::SystemTime;

/// A source of wall-clock time.
pub trait WallClock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock ([`SystemTime::now`]); the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
