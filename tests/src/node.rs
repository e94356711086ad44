//! The official TypeScript SDK (`@hatchet-dev/typescript-sdk`) as a test peer: the committed node
//! project in `tests/ts` (installed by `scripts/ensure-node` with `npm ci`) and its scripts.
//!
//! Like the Python peer, a missing installation fails the test loudly ([`project`] panics with the
//! fix) instead of letting it skip.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::python::{ScriptOutput, run_to_completion};
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

/// `node <tests/ts/script> [args…]` run from `tests/ts` in its own process group.
#[derive(Debug)]
pub struct NodeScript {
    command: Command,
    timeout: Duration,
}

impl NodeScript {
    /// Prepares a script shipped in `tests/ts`.
    ///
    /// # Panics
    ///
    /// When the project is not installed (see [`project`]) or the script does not exist.
    pub fn new(script: &str) -> Self {
        let dir = project();
        let path = dir.join(script);
        assert!(
            path.is_file(),
            "no TypeScript test script at {}",
            path.display()
        );
        let mut command = Command::new("node");
        command.arg(path).current_dir(&dir).process_group(0);
        Self {
            command,
            timeout: Duration::from_secs(120),
        }
    }

    /// Sets an environment variable for the script.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Changes the deadline of [`run`](Self::run) (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The prepared command, for long-running scripts (workers) the caller spawns and stops.
    pub fn into_command(self) -> Command {
        self.command
    }

    /// Runs the script to completion and captures its output.
    ///
    /// # Panics
    ///
    /// When node cannot be spawned or the script outlives its deadline (its group is killed).
    pub fn run(mut self) -> ScriptOutput {
        run_to_completion(&mut self.command, self.timeout, "node")
    }
}
