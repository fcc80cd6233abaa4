//! Every integration test that needs neither an optional feature nor a
//! process of its own, in one test binary: one link instead of eleven
//! (`cargo test --all-features --no-run` after `touch src/lib.rs`; the
//! figures are in the commit that merged them).
//!
//! Separate binaries: `conformance_*` and `http_shared` (they need the
//! ledger backends' features) and `http_logs` (tracing caches per call
//! site whether anyone listens, so it needs a process of its own).

mod hostile;
mod http_server;
mod http_stacks;
mod interop;
mod keys;
mod login;
mod properties;
mod readme;
mod resigning;
mod rotation;
mod scratch_ledger;
mod server_cli;
mod spec_table;
mod vectors;
