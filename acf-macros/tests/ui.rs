//! Compile-fail UI tests for `#[workflow]`, `#[step]` and `#[on_failure]`: one failure per file under
//! `tests/ui/<category>/`, each with the `.stderr` rustc prints. Regenerate with `TRYBUILD=overwrite` and
//! review the diff.

use std::process::Command;

/// The toolchain the `.stderr` files were generated with (see `rust-toolchain.toml`).
const PINNED: &str = "rustc 1.95.0";

#[test]
#[cfg_attr(miri, ignore)]
fn macros_ui() {
    // rustc's wording and spans change between releases; only the pinned toolchain is authoritative.
    let version = Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc runs");
    let version = String::from_utf8_lossy(&version.stdout);
    // Fail, never pass: a skipped UI suite would hide every regression in the macros' errors.
    assert!(
        version.starts_with(PINNED),
        "the macro UI tests are pinned to {PINNED} (rust-toolchain.toml), found {version}: run them with the \
         pinned toolchain (`rustup run 1.95.0 cargo test -p acf-macros --test ui`)"
    );
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/*.rs");
}
