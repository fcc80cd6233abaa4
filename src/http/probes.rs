//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use crate::envelope::Reply;
use crate::ledger::SessionLedger as _;
use crate::service::TokenService;

/// How long [`readiness`] waits for the session ledger: well inside the 2 s
/// a probe's own timeout usually allows, so a hung ledger reads as "not
/// ready", never as a probe timeout.
pub const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The readiness answer of `service`: [`Reply::ready`] (200) when its
/// session ledger answers a [ping](crate::ledger::SessionLedger::ping)
/// within [`READY_TIMEOUT`], [`Reply::not_ready`] (503) otherwise. The
/// cause is logged (feature `tracing`), never sent.
///
/// Liveness needs no such check: [`Reply::live`] is the answer whenever the
/// process can answer at all, so a ledger outage takes instances out of
/// rotation without getting them restarted.
///
/// ```
/// use token_refresh::http::readiness;
/// # use token_refresh::{Ed25519Signer, MemoryLedger, MemoryUserStore, Policy, SystemClock, TokenService};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let signer = Ed25519Signer::from_seed(&[7u8; 32])?;
/// # let service = TokenService::new(Policy::default(), MemoryUserStore::new([]), MemoryLedger::new(), signer, SystemClock);
/// assert_eq!(readiness(&service).await.status(), 200);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// Outside a tokio runtime with the time driver enabled (tokio's rule).
pub async fn readiness(service: &TokenService) -> Reply {
    match tokio::time::timeout(READY_TIMEOUT, service.ledger().ping()).await {
        Ok(Ok(())) => Reply::ready(),
        Ok(Err(_error)) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(target: "token_refresh", error = %_error, cause = ?std::error::Error::source(&_error), "not ready: the session ledger failed its ping");
            Reply::not_ready()
        }
        Err(_) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(target: "token_refresh", timeout_ms = 1000, "not ready: the session ledger did not answer");
            Reply::not_ready()
        }
    }
}
