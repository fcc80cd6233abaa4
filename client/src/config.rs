//! A session's timing: refresh margin, timeouts, retries.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::clock::{SystemWallClock, WallClock};
use crate::wire::ServerGrace;

/// Timing of a [`Session`](crate::Session). The defaults suit the reference
/// server's 300 s access lifetime; each setter says what it trades.
#[derive(Debug, Clone)]
pub struct Config {
    grace_window: Duration,
    refresh_margin: Duration,
    request_timeout: Duration,
    lock_timeout: Duration,
    max_attempts: u32,
    first_backoff: Duration,
    max_backoff: Duration,
    round_budget: Duration,
    max_cooldown: Duration,
    wall_clock: Arc<dyn WallClock>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grace_window: Duration::ZERO,
            refresh_margin: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(30),
            max_attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            round_budget: Duration::from_secs(20),
            max_cooldown: Duration::from_secs(30),
            wall_clock: Arc::new(SystemWallClock),
        }
    }
}

impl Config {
    /// The grace window to assume until the server states its own
    /// (default 0: strict rotation). A server that sends
    /// [`GRACE_HEADER`](crate::GRACE_HEADER) on its 200s, as the reference
    /// server does, overrides it for every pair it issues.
    ///
    /// The refresh margin is never smaller than the window in force, so the
    /// retries of a lost answer, which the window makes safe, finish while
    /// the old access token is still valid. Retries later than the window
    /// reload the store first, and a round sends at most one more attempt
    /// than the server's stated replays.
    #[must_use]
    pub fn grace_window(mut self, window: Duration) -> Self {
        self.grace_window = window;
        self
    }

    /// How long before the access token's end a refresh starts (default
    /// 30 s, plus up to a quarter more of jitter, at most half the
    /// lifetime). Larger: more room for retries; smaller: fewer refreshes.
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// How long one request may take (default 10 s). A refresh that times
    /// out is retried with the same refresh token.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long to wait for another process's refresh, i.e. the store's
    /// lock (default 30 s; keep it above the round budget). Past it the
    /// call fails transiently.
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Attempts per refresh round (default 4, at least 1) and the time one
    /// round may take including backoff (default 20 s). Past either the
    /// callers get the transient error and the session cools down.
    #[must_use]
    pub fn retries(mut self, max_attempts: u32, round_budget: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.round_budget = round_budget;
        self
    }

    /// Backoff between attempts: the first delay (default 100 ms, short so
    /// a lost answer is retried well inside a grace window) doubling up to
    /// `max` (default 5 s). A `Retry-After` overrides it.
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// The wall clock that stamps stored pairs and ages adopted ones
    /// (default: the system's). Scheduling never reads it: a clock off by
    /// an hour, ahead or behind, changes nothing as long as every process
    /// sharing the store reads the same clock (`tests/chaos.rs` runs the
    /// soak both ways). A step between a write and a read moves one
    /// refresh at most (an age outside `0..=expirationTime` counts as due).
    #[must_use]
    pub fn wall_clock(mut self, clock: impl WallClock) -> Self {
        self.wall_clock = Arc::new(clock);
        self
    }

    pub(crate) fn wall_now(&self) -> SystemTime {
        self.wall_clock.now()
    }

    pub(crate) fn request_timeout_value(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn lock_timeout_value(&self) -> Duration {
        self.lock_timeout
    }

    /// The grace window of a pair whose answer stated `stated`: the
    /// server's word, else the configured assumption.
    pub(crate) fn grace_for(&self, stated: Option<ServerGrace>) -> ServerGrace {
        stated.unwrap_or(ServerGrace { window: self.grace_window, replays: None })
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn round_budget(&self) -> Duration {
        self.round_budget
    }

    /// When to refresh and when the access token ends, from the instant
    /// the answer arrived, its `expirationTime` and the grace window in
    /// force. Only the monotonic clock is involved.
    pub(crate) fn schedule(&self, received: Instant, lifetime: Duration, grace: Duration) -> (Instant, Instant) {
        let expires_at = received + lifetime;
        let base = self.refresh_margin.max(grace);
        let margin = jitter_up(base, 0.25).min(lifetime / 2);
        (expires_at - margin, expires_at)
    }

    /// The delay before attempt `attempt + 1` (1-based `attempt` failed).
    pub(crate) fn backoff_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let delay = self.first_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        jitter_down(delay)
    }

    /// How long a session waits after its `failures`-th failed round in a
    /// row before starting another.
    pub(crate) fn cooldown(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let exponent = failures.saturating_sub(1).min(16);
        jitter_down(Duration::from_secs(1).saturating_mul(1 << exponent).min(self.max_cooldown))
    }
}

/// `base` plus a random share of up to `fraction` of it.
fn jitter_up(base: Duration, fraction: f64) -> Duration {
    base + base.mul_f64(fastrand::f64() * fraction)
}

/// A random delay in `delay/2 ..= delay` ("equal jitter"): waiting tasks of
/// many sessions do not retry in lockstep.
fn jitter_down(delay: Duration) -> Duration {
    delay / 2 + (delay / 2).mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_covers_the_grace_window_and_leaves_half_the_lifetime() {
        let config = Config::default().refresh_margin(Duration::from_secs(5));
        let grace = Duration::from_secs(10);
        let now = Instant::now();
        for _ in 0..100 {
            let (refresh_at, expires_at) = config.schedule(now, Duration::from_secs(300), grace);
            assert_eq!(expires_at, now + Duration::from_secs(300));
            let margin = expires_at - refresh_at;
            assert!(margin >= Duration::from_secs(10) && margin <= Duration::from_millis(12_500), "{margin:?}");
            let (refresh_at, _) = config.schedule(now, Duration::from_secs(3), grace);
            assert!(refresh_at - now >= Duration::from_millis(1500));
        }
    }

    #[test]
    fn backoff_doubles_within_bounds_and_obeys_retry_after() {
        let config = Config::default();
        for attempt in 1..10 {
            let delay = config.backoff_after(attempt, None);
            assert!(delay <= Duration::from_secs(5));
            assert!(delay >= Duration::from_millis(50));
        }
        assert_eq!(config.backoff_after(1, Some(Duration::from_secs(60))), Duration::from_secs(60));
        assert!(config.cooldown(10, None) <= Duration::from_secs(30));
    }
}
