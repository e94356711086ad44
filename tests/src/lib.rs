//! Shared support for the workspace tests (Python venv discovery, process helpers).
//!
//! * [`python`] finds the official Python SDK's interpreter and runs Python scripts with a
//!   deadline, capturing their output. Interop tests go through it so that a missing venv fails
//!   loudly instead of skipping.
//! * [`node`] does the same for the official TypeScript SDK's node project in `tests/ts`.
//! * [`macros_fixtures`] holds the `#[workflow]` fixture shared by the macro tests.
//! * [`workspace_root`] anchors every path the tests use.

use std::path::{Path, PathBuf};

pub mod e2e_support;
pub mod engine_support;
pub mod macros_fixtures;
pub mod node;
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
