//! The one home of token-refresh's test fixtures, shared by the integration
//! tests (`tests/`), the benchmarks (`benches/`) and the fuzz targets
//! (`fuzz/`), so a fixture is defined once and means one thing everywhere.
//!
//! - [`keys`]: the service's signing seed, the signer made from it, and the
//!   key documents (PKCS#8, SPKI, JWK) other tools read.
//! - [`users`]: the demo users, their login keys and login bodies.
//! - [`tokens`]: hand-minted tokens (arbitrary header and payload bytes,
//!   signed with any key) and ways to take tokens apart, for hostile tests.
//! - [`encoding`]: base64url and hex.
//! - [`outcome`]: the exact outcome of a refusal, comparable with `==`.
//! - [`flow`]: in-memory deployments with a settable clock.
//! - [`ledger`] (feature `ledger`): sessions, rotations and rotation chains
//!   under injected faults, for the ledger backends' tests.
//! - [`http_client`] (feature `http-client`): a hyper client for the
//!   example servers.
//! - [`reference`](mod@reference) (feature `http-client`): the reference server's routes
//!   built from the library's pieces, in process, on any clock.
//! - [`process`] (feature `http-client`): the built example servers as
//!   child processes, for their command lines and start-up.
//! - [`redis_cluster`] (feature `redis-cluster`): a throwaway three-node
//!   Redis Cluster on spare loopback ports, or the one
//!   `TOKEN_REFRESH_REDIS_CLUSTER_URL` names; [`redis_server`] (same
//!   feature): one throwaway standalone `redis-server`.
//! - [`raw`] (feature `http-client`): one HTTP/1.1 connection driven by
//!   hand, for the serving loop's connection limits.
//!
//! Not published: it is a workspace member with `publish = false`, a path
//! dev-dependency of `token-refresh` (dropped from the published manifest)
//! and a path dependency of the fuzz crate. Test code: a helper that finds
//! something wrong panics, failing the test that called it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a panic is a failed test"
)]

pub mod encoding;
pub mod flow;
#[cfg(feature = "http-client")]
pub mod http_client;
pub mod keys;
#[cfg(feature = "ledger")]
pub mod ledger;
pub mod outcome;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "http-client")]
pub mod raw;
#[cfg(feature = "redis-cluster")]
pub mod redis_cluster;
#[cfg(feature = "redis-cluster")]
pub mod redis_server;
#[cfg(all(feature = "axum", feature = "server"))]
pub mod reference;
pub mod tls;
pub mod tokens;
pub mod users;

use std::future::IntoFuture;

use futures_util::FutureExt as _;
use token_refresh::clock::ManualClock;

/// The fixtures' fixed "now" (Unix seconds), in 2027.
pub const NOW: i64 = 1_800_000_000;

/// A manual clock at [`NOW`].
pub fn clock() -> ManualClock {
    ManualClock::at_unix(NOW)
}

/// The output of a future that is ready at once, as every in-memory flow
/// and ledger call is: polled once, without a runtime (so none of a
/// runtime's cost lands in a benchmark). Panics if the future would wait.
pub fn ready<F: IntoFuture>(future: F) -> F::Output {
    future.into_future().now_or_never().expect("an in-memory future is ready at once")
}
