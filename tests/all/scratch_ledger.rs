//! The proof that the ledger contract is public and complete: the ledger
//! in `tests/scratch-ledger/`, a crate outside this workspace that sees
//! only the public API, reuses `ledger::rules::decide`, and passes the
//! whole conformance suite with lost connections and purge. Built and
//! tested here so that `cargo test --workspace --all-features` (the
//! README's command) runs it; a failure to build or to pass fails this
//! test, it never skips it.

use std::path::Path;
use std::process::Command;

#[test]
fn a_ledger_outside_the_workspace_passes_the_whole_suite() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scratch-ledger/Cargo.toml");
    // Under this build's target directory, apart from it: its own lock and
    // its own (small) dependency set, built once and then incremental.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scratch-ledger");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--offline", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the scratch ledger failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("test the_scratch_ledger_passes_the_whole_suite ... ok"), "{stdout}");
}
