//! Shared support for the workspace tests (Python venv discovery, process helpers).
//!
//! * [`python`] finds the official Python SDK's interpreter and runs Python scripts with a
//!   deadline, capturing their output. Interop tests go through it so that a missing venv fails
//!   loudly instead of skipping.
//! * [`node`] does the same for the official TypeScript SDK's node project in `tests/ts`.
//! * [`peer`] holds what both peers share: the script builder, its output, background processes.
//! * [`sdk_support`], [`engine_support`] and [`e2e_support`] start the embedded engine, clients and
//!   workers for the `sdk_*`, `engine_*` and `e2e_*` tests.
//! * [`macros_fixtures`] holds the `#[workflow]` fixture shared by the macro tests.
//! * [`workspace_root`] anchors every path the tests use; [`env_or`] and [`env_count`] read the
//!   benchmarks' knobs.

use std::path::{Path, PathBuf};

pub mod e2e_support;
pub mod engine_support;
pub mod macros_fixtures;
pub mod node;
pub mod peer;
pub mod python;
pub mod sdk_support;

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives at `<workspace>/tests`; the path is fixed at compile time, so it holds no
    // matter which directory a test binary is started from.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// A benchmark knob: the environment variable `name` parsed as `T`, or `default` when it is unset or
/// does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    env_parsed(name).unwrap_or(default)
}

/// A count knob: the environment variable `name` as a positive integer, or `default` when it is
/// unset, does not parse or is 0.
pub fn env_count(name: &str, default: usize) -> usize {
    env_parsed(name).filter(|n| *n > 0).unwrap_or(default)
}

fn env_parsed<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
