//! Counters and a histogram through the [`metrics`] facade (feature
//! `metrics`): the crate records, the application installs the exporter it
//! likes (Prometheus, StatsD, …). Without the feature, or without an
//! installed recorder, recording costs nothing measurable.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `token_refresh_requests_total` | counter | `endpoint` (`login`, `issue`, `refresh`, `logout`, `verify_access`, `sessions`, `revoke_session`, `purge`), `status` (the envelope's name: `OK`, `UNAUTHORIZED`, …) |
//! | `token_refresh_sessions_started_total` | counter | |
//! | `token_refresh_rotations_total` | counter | |
//! | `token_refresh_reuse_detected_total` | counter | |
//! | `token_refresh_grace_replays_total` | counter | |
//! | `token_refresh_sessions_evicted_total` | counter | |
//! | `token_refresh_sessions_revoked_total` | counter | |
//! | `token_refresh_ledger_duration_seconds` | histogram | `op` (`create`, `rotate`, `revoke_session`, `sessions`, `access_state`) |
//! | `token_refresh_ledger_timeouts_total` | counter | `op` (`create`, `rotate`, `revoke_session`, `revoke_user`, `sessions`, `access_state`, `ping`, `check_eviction_policy`): a shared ledger's call that got no answer within its response timeout (Redis, PostgreSQL) |
//!
//! Every operation is counted once, at the flows' entry (`flows/entry.rs`),
//! whichever door it came through ([`TokenService`](crate::TokenService),
//! [`AccessVerifier`](crate::AccessVerifier) or the card's
//! [`refresh`](crate::refresh)); `verify_access` counts both access-token
//! checks, with and without the ledger.
//!
//! Labels are fixed words only: no token, subject, session id or key ever
//! becomes a label (or any other part of a metric).

use std::future::Future;

use crate::error::Error;

/// Counts one flow call under `endpoint`, labelled with its outcome's
/// envelope name.
#[cfg_attr(not(feature = "metrics"), expect(unused_variables, reason = "recording is compiled out"))]
pub(crate) fn request<T>(endpoint: &'static str, result: &Result<T, Error>) {
    #[cfg(feature = "metrics")]
    {
        let status = match result {
            Ok(_) => "OK",
            Err(error) => error.status().as_str(),
        };
        metrics::counter!("token_refresh_requests_total", "endpoint" => endpoint, "status" => status).increment(1);
    }
}

/// Adds one to the counter `name` (an event's, named by the event).
#[cfg_attr(not(feature = "metrics"), expect(unused_variables, reason = "recording is compiled out"))]
pub(crate) fn count(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(name).increment(1);
}

/// Counts one ledger call of `op` that timed out.
#[cfg_attr(not(feature = "metrics"), expect(unused_variables, reason = "recording is compiled out"))]
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres")),
    expect(dead_code, reason = "only the shared ledgers time their calls out themselves")
)]
pub(crate) fn ledger_timeout(op: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("token_refresh_ledger_timeouts_total", "op" => op).increment(1);
}

/// Runs the ledger call `call`, recording how long it took under `op`.
#[cfg_attr(not(feature = "metrics"), expect(unused_variables, reason = "recording is compiled out"))]
pub(crate) async fn ledger<F: Future>(op: &'static str, call: F) -> F::Output {
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let output = call.await;
    #[cfg(feature = "metrics")]
    metrics::histogram!("token_refresh_ledger_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    output
}
