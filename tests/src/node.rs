//! The official TypeScript SDK (`@hatchet-dev/typescript-sdk`) as a test peer: the committed node
//! project in `tests/ts` (installed by `scripts/ensure-node` with `npm ci`) and its scripts.
//!
//! Like the Python peer, a missing installation fails the test loudly ([`project`] panics with the
//! fix) instead of letting it skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::peer::{Language, Script};
use crate::workspace_root;

/// The SDK version pinned in `tests/ts/package.json` (and its lockfile).
pub const SDK_VERSION: &str = "1.33.2";

/// How to get a usable installation; part of every failure message.
pub const FIX: &str = "run `scripts/ensure-node` from the workspace root (it runs `npm ci` in \
                       tests/ts with Node 20+, installing @hatchet-dev/typescript-sdk@1.33.2)";

/// The node project directory, checked once: `node` runs and the pinned SDK is installed.
///
/// # Panics
///
/// When node is missing or the SDK is not installed at [`SDK_VERSION`], with the fix ([`FIX`]).
pub fn project() -> PathBuf {
    static VERDICT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VERDICT.get_or_init(check) {
        Ok(dir) => dir.clone(),
        Err(problem) => panic!(
            "\n==== TYPESCRIPT INTEROP UNAVAILABLE ====\n{problem}\nFix: {FIX}\n\
             (interop tests fail rather than skip so a missing SDK is never mistaken for a pass)\n"
        ),
    }
}

fn check() -> Result<PathBuf, String> {
    let dir = workspace_root().join("tests/ts");
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|err| format!("cannot run `node`: {err}"))?;
    if !version.status.success() {
        return Err(format!("`node --version` failed ({})", version.status));
    }
    let manifest = dir.join("node_modules/@hatchet-dev/typescript-sdk/package.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|err| format!("the SDK is not installed ({}: {err})", manifest.display()))?;
    let installed: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| format!("{}: {err}", manifest.display()))?;
    if installed["version"] != SDK_VERSION {
        return Err(format!(
            "{} has version {}, expected {SDK_VERSION}",
            manifest.display(),
            installed["version"]
        ));
    }
    Ok(dir)
}

/// The TypeScript peer on node (marker of [`NodeScript`]).
#[derive(Debug)]
pub struct Node;

impl Language for Node {
    const NAME: &'static str = "node";
}

/// `node <tests/ts/script> [args…]` run from `tests/ts` in its own process group.
pub type NodeScript = Script<Node>;

impl Script<Node> {
    /// Prepares a script shipped in `tests/ts`.
    ///
    /// # Panics
    ///
    /// When the project is not installed (see [`project`]) or the script does not exist.
    pub fn new(script: &str) -> Self {
        Self::in_dir(&project(), script)
    }

    /// Prepares `script` of another node project `dir` (installed by its test), run from `dir`.
    ///
    /// # Panics
    ///
    /// When the script does not exist.
    pub fn in_dir(dir: &Path, script: &str) -> Self {
        let path = dir.join(script);
        assert!(
            path.is_file(),
            "no TypeScript test script at {}",
            path.display()
        );
        let mut command = Command::new("node");
        command.arg(path).current_dir(dir);
        Self::from_command(command)
    }
}
