//! Every integration test that needs neither an optional feature nor a
//! process of its own, in one test binary: one link instead of eleven
//! (`cargo test --all-features --no-run` after `touch src/lib.rs`; the
//! figures are in the commit that merged them).
//!
//! Separate binaries: `conformance_*` (they need the ledger backends'
//! features) and `http_logs` (tracing caches per call site whether anyone
//! listens, so it needs a process of its own). The tests that run the
//! example servers as processes are the examples crate's
//! (`examples/tests/`).

mod hostile;
// The reference router over real HTTP (test-support builds it with the
// core's `axum` and `server`).
#[cfg(all(feature = "axum", feature = "server"))]
mod http_server;
mod interop;
mod keys;
mod login;
mod properties;
mod readme;
// Verification by re-signing against verify_strict: needs the feature.
#[cfg(feature = "resigning")]
mod resigning;
mod rotation;
mod scratch_ledger;
mod spec_table;
mod vectors;
