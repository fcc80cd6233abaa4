//! Where "now" comes from.
//!
//! Every expiry decision reads the injected [`Clock`], so tests drive time
//! explicitly and a deployment can plug in a trusted time source.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

use crate::error::{Error, InternalKind};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time. An error becomes a 500: a flow never guesses the
    /// time.
    fn now(&self) -> Result<OffsetDateTime, ClockError>;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Result<OffsetDateTime, ClockError> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Result<OffsetDateTime, ClockError> {
        (**self).now()
    }
}

/// The clock could not tell the time.
#[derive(Debug, thiserror::Error)]
#[error("clock unavailable: {0}")]
pub struct ClockError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<OffsetDateTime, ClockError> {
        Ok(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to, for tests.
///
/// ```
/// use token_refresh::{Clock, clock::ManualClock};
/// use time::Duration;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::seconds(30));
/// assert_eq!(clock.now()?.unix_timestamp(), 1_700_000_030);
/// # Ok::<(), token_refresh::clock::ClockError>(())
/// ```
#[derive(Debug)]
pub struct ManualClock {
    unix_seconds: AtomicI64,
}

impl ManualClock {
    /// A clock reading `unix_seconds`.
    pub fn at_unix(unix_seconds: i64) -> Self {
        Self { unix_seconds: AtomicI64::new(unix_seconds) }
    }

    /// Sets the time (whole seconds).
    pub fn set(&self, time: OffsetDateTime) {
        self.unix_seconds.store(time.unix_timestamp(), Ordering::SeqCst);
    }

    /// The time it reads, in unix seconds.
    pub fn now_unix(&self) -> i64 {
        self.unix_seconds.load(Ordering::SeqCst)
    }

    /// Moves the time by `by` (whole seconds; may be negative).
    pub fn advance(&self, by: time::Duration) {
        self.unix_seconds.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Result<OffsetDateTime, ClockError> {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds.load(Ordering::SeqCst))
            .map_err(|e| ClockError(Box::new(e)))
    }
}

/// Now, in unix seconds, from the injected clock; a clock failure is a 500.
pub(crate) fn unix_now(clock: &dyn Clock) -> Result<i64, Error> {
    clock.now().map(|t| t.unix_timestamp()).map_err(|e| Error::internal(InternalKind::Clock, e))
}
