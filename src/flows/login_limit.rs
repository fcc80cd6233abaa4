//! The per-subject login rate limit: a leaked login body (a static,
//! replayable credential) cannot be replayed thousands of times a second.
//!
//! A generic cell rate algorithm per subject: a subject may log in `n`
//! times at once, then once every `60 / n` seconds. Only authentic logins
//! are counted (the flow checks the signature first), so knowing a user's
//! e-mail address is not enough to spend their allowance. The state is one
//! instant per subject that logged in within the last minute, in this
//! process: with several instances the limit applies per instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// The limiter of one service (shared by its clones): run-time state, so it
/// lives in [`TokenService`](crate::TokenService), not in the
/// [`Policy`](crate::Policy) value that configures its rate.
#[derive(Clone)]
pub(crate) struct LoginLimiter {
    per_minute: u32,
    state: Arc<Mutex<Subjects>>,
}

#[derive(Default)]
struct Subjects {
    /// Per subject, the instant (ms) its allowance is full again: each
    /// admitted login pushes it one interval later.
    full_at: HashMap<String, i64>,
    /// Admitted logins since the last sweep of full allowances.
    since_sweep: usize,
}

/// Sweep once the admissions since the last sweep pass this, so the map
/// holds about the subjects of the last minute and the sweep's walk costs
/// a constant per login.
const SWEEP_EVERY: usize = 1024;

impl LoginLimiter {
    /// `per_minute` logins per subject; 0 turns the limit off.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self { per_minute, state: Arc::default() }
    }

    /// Whether `subject` may log in at `now` (unix seconds); counts the
    /// login when it may.
    pub(crate) fn admit(&self, subject: &str, now: i64) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let interval = 60_000 / i64::from(self.per_minute);
        let burst = interval.saturating_mul(i64::from(self.per_minute).saturating_sub(1));
        let now = now.saturating_mul(1000);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let full_at = state.full_at.get(subject).copied().unwrap_or(now).max(now);
        if full_at.saturating_sub(now) > burst {
            return false;
        }
        state.full_at.insert(subject.to_owned(), full_at.saturating_add(interval));
        state.since_sweep = state.since_sweep.saturating_add(1);
        if state.since_sweep >= SWEEP_EVERY {
            state.since_sweep = 0;
            state.full_at.retain(|_, full_at| *full_at > now);
        }
        true
    }
}

impl fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginLimiter").field("per_minute", &self.per_minute).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let limiter = LoginLimiter::new(30);
        assert!((0..30).all(|_| limiter.admit("bob", 1_000)), "the burst");
        assert!(!limiter.admit("bob", 1_000), "the 31st in the same second");
        assert!(limiter.admit("alice", 1_000), "another subject has its own allowance");
        assert!(!limiter.admit("bob", 1_001), "one second is half an interval");
        assert!(limiter.admit("bob", 1_002), "two seconds refill one login");
        assert!(!limiter.admit("bob", 1_002));
        assert!((0..30).all(|_| limiter.admit("bob", 1_100)), "a full minute refills the burst");
    }

    #[test]
    fn zero_is_off() {
        let limiter = LoginLimiter::new(0);
        assert!((0..10_000).all(|_| limiter.admit("bob", 1_000)));
    }

    #[test]
    fn a_flood_admits_the_rate_and_no_more() {
        let limiter = LoginLimiter::new(30);
        let admitted = (0..60_000).filter(|i| limiter.admit("bob", 1_000 + i / 1_000)).count();
        // 60 s of 1 000 attempts a second: the burst plus one every 2 s.
        assert_eq!(admitted, 30 + 29);
    }

    #[test]
    fn full_allowances_are_swept() {
        let limiter = LoginLimiter::new(30);
        for i in 0..5_000 {
            limiter.admit(&format!("user{i}"), 1_000);
        }
        limiter.admit("late", 2_000);
        for i in 0..SWEEP_EVERY {
            limiter.admit(&format!("later{i}"), 2_000);
        }
        let held = limiter.state.lock().map(|state| state.full_at.len()).unwrap_or(0);
        assert!(held <= SWEEP_EVERY + 1, "{held} subjects held");
    }
}
