//! The conformance suite against the in-memory ledger, and a model test:
//! random operation sequences run against `MemoryLedger` and against a
//! plain-`HashMap` model of the contract must answer alike.

// Test code: helpers outside #[test] functions may panic on a failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use proptest::prelude::*;
use token_refresh::ledger::conformance::model::{check_sequence, op};
use token_refresh::ledger::conformance::{self, Harness};
use token_refresh::{MemoryLedger, StoreError};
use token_refresh_test_support::ready;

/// Every handle is the same ledger: one process, shared by reference.
struct Memory(Arc<MemoryLedger>);

impl Harness for Memory {
    type Ledger = Arc<MemoryLedger>;
    async fn handle(&self) -> Result<Self::Ledger, StoreError> {
        Ok(Arc::clone(&self.0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_ledger_passes_the_conformance_suite() {
    let report = conformance::run(&Memory(Arc::new(MemoryLedger::new()))).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    // In process: no connection to cut. Everything else runs.
    let skipped: Vec<_> = report.skipped.iter().map(|(check, _)| *check).collect();
    assert_eq!(skipped, ["lost_connections_never_leave_half_a_rotation"], "{report}");
    assert_eq!(report.passed.len(), conformance::CHECKS.len() - 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memory_ledger_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        // The memory ledger's futures are ready at once: no runtime.
        ready(check_sequence(&MemoryLedger::new(), &ops))?;
    }
}
