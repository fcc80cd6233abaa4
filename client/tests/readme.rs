//! The READMEs' client program is one program: the client README's copy
//! compiles as a doctest (`src/lib.rs`), and the workspace README carries
//! the same text (marked `ignore` there: the server crate's doctests cannot
//! see this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

/// The first fenced block that opens with `fence` in `text`.
fn block<'a>(text: &'a str, fence: &str) -> &'a str {
    let start = text.find(fence).expect("the block") + fence.len();
    let end = text[start..].find("\n```").expect("its end");
    &text[start..start + end]
}

#[test]
fn the_workspace_readme_shows_the_tested_client_program() {
    let client = include_str!("../README.md");
    let workspace = include_str!("../../README.md");
    // `ignore` in the workspace README: that crate's doctests cannot see
    // the client crate; the client README's copy is the compiled one.
    let program = "use std::time::Duration;\n\nuse bytes::Bytes;\n";
    let compiled = format!("```rust,no_run\n{program}");
    assert_eq!(block(workspace, &format!("```rust,ignore\n{program}")), block(client, &compiled));
    assert_eq!(
        block(workspace, "```toml\n[dependencies]\ntoken-refresh-client"),
        block(client, "```toml\n[dependencies]\ntoken-refresh-client")
    );
    // The soak command, too (tests/chaos.rs runs it against the server binary).
    assert_eq!(
        block(workspace, "```sh\ncargo run -p token-refresh-examples --bin server -- --access-ttl 3"),
        block(client, "```sh\ncargo run -p token-refresh-examples --bin server -- --access-ttl 3")
    );
}
