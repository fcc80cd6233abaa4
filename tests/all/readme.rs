//! The README is a contract: its test command is the one CI runs.

#![allow(clippy::unwrap_used)]

#[test]
fn ci_runs_the_readme_test_command_verbatim() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    let command = "cargo test --workspace --all-features";
    assert!(readme.contains(&format!("```sh\n{command}\n```")), "README gives the test command");
    assert!(ci.lines().any(|line| line.trim() == command), ".ci/run runs it verbatim");
}
