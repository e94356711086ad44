//! The official Python SDK (`hatchet-sdk`) as a test peer: finding its interpreter and running
//! Python scripts with a deadline.
//!
//! Interop tests must never pass silently without Python, so [`interpreter`] panics with the fix
//! instead of returning something a test could skip on.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::peer::{Language, Script};
use crate::workspace_root;

pub use crate::peer::{DEFAULT_TIMEOUT, ScriptOutput};

/// Environment variable naming a Python interpreter to use instead of `<workspace>/.venv/bin/python`.
pub const PYTHON_ENV: &str = "ACF_PYTHON";

/// How to get a usable interpreter; part of every failure message.
pub const FIX: &str = "run `scripts/ensure-venv` from the workspace root (it creates .venv with \
                       hatchet-sdk==1.43.1), or set ACF_PYTHON to a Python that can `import hatchet_sdk`";

/// The Python interpreter that has the official SDK: `$ACF_PYTHON` if set and non-empty, otherwise
/// `<workspace>/.venv/bin/python`.
///
/// The first call in a process checks that the interpreter has `hatchet_sdk` at [`SDK_VERSION`], by package
/// metadata rather than by importing it: the import costs 1.5 CPU-seconds and nextest runs every test in a process
/// of its own (the scripts themselves import it, so a broken install still fails, with Python's error).
///
/// # Panics
///
/// When the interpreter is missing or cannot import `hatchet_sdk`, with a message saying which
/// interpreter was tried, why it failed and how to fix it ([`FIX`]).
pub fn interpreter() -> PathBuf {
    static VERDICT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VERDICT.get_or_init(|| locate_interpreter(std::env::var_os(PYTHON_ENV))) {
        Ok(path) => path.clone(),
        Err(problem) => panic!(
            "\n==== PYTHON INTEROP UNAVAILABLE ====\n{problem}\nFix: {FIX}\n\
             (interop tests fail rather than skip so a missing SDK is never mistaken for a pass)\n"
        ),
    }
}

/// The `hatchet-sdk` release the interop tests are written against (`scripts/ensure-venv` installs it).
pub const SDK_VERSION: &str = "1.43.1";

/// Exits non-zero, saying why, unless `hatchet_sdk` is importable at the version given as the first argument.
const PROBE: &str = "\
import importlib.metadata, importlib.util, sys
if importlib.util.find_spec('hatchet_sdk') is None:
    sys.exit('No module named hatchet_sdk')
found = importlib.metadata.version('hatchet-sdk')
if found != sys.argv[1]:
    sys.exit(f'hatchet-sdk {found} is installed, the tests are written against {sys.argv[1]}')
";

/// Picks the interpreter (`override_path` is the value of `$ACF_PYTHON`) and checks it; `Err` holds
/// the human-readable problem.
fn locate_interpreter(override_path: Option<OsString>) -> Result<PathBuf, String> {
    let (path, origin) = match override_path {
        Some(value) if !value.is_empty() => (PathBuf::from(value), format!("${PYTHON_ENV}")),
        _ => (
            workspace_root().join(".venv/bin/python"),
            "the workspace venv".to_owned(),
        ),
    };
    if !path.exists() {
        return Err(format!(
            "Python interpreter {} (from {origin}) does not exist.",
            path.display()
        ));
    }
    let probe = Command::new(&path)
        .arg("-c")
        .arg(PROBE)
        .arg(SDK_VERSION)
        .output()
        .map_err(|err| format!("cannot run {} (from {origin}): {err}", path.display()))?;
    if !probe.status.success() {
        return Err(format!(
            "{} (from {origin}) cannot `import hatchet_sdk` ({}):\n{}",
            path.display(),
            probe.status,
            String::from_utf8_lossy(&probe.stderr).trim_end()
        ));
    }
    Ok(path)
}

/// Path of a script shipped in `<workspace>/tests/python/`.
///
/// # Panics
///
/// When the file does not exist (a typo in a test, not an environment problem).
pub fn script(name: &str) -> PathBuf {
    let path = workspace_root().join("tests/python").join(name);
    assert!(
        path.is_file(),
        "no Python test script at {}",
        path.display()
    );
    path
}

/// The Python peer (marker of [`PythonScript`]).
#[derive(Debug)]
pub struct Python;

impl Language for Python {
    const NAME: &'static str = "Python";
}

/// A Python script invocation under construction: `<interpreter> -u <script> [args…]`, run from the
/// workspace root with `PYTHONUNBUFFERED=1` and the inherited environment plus any
/// [`env`](Script::env).
pub type PythonScript = Script<Python>;

impl Script<Python> {
    /// Prepares `script` (see [`script`] for the shipped ones) with the SDK's interpreter.
    ///
    /// # Panics
    ///
    /// When no usable interpreter exists (see [`interpreter`]).
    pub fn new(script: impl AsRef<Path>) -> Self {
        let mut command = Command::new(interpreter());
        command
            .arg("-u")
            .arg(script.as_ref())
            .current_dir(workspace_root())
            .env("PYTHONUNBUFFERED", "1");
        Self::from_command(command)
    }

    /// Prepares a script written inline in a test: `text` is saved as `dir/name` first.
    ///
    /// # Panics
    ///
    /// When the file cannot be written, or as [`new`](Self::new) does.
    pub fn inline(dir: impl AsRef<Path>, name: &str, text: &str) -> Self {
        let path = dir.as_ref().join(name);
        std::fs::write(&path, text)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        Self::new(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runs_a_script_with_args_and_env_and_captures_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.py");
        std::fs::write(
            &path,
            "import os, sys\nprint(sys.argv[1], os.environ['ACF_T'])\n\
             print('oops', file=sys.stderr)\nsys.exit(3)\n",
        )
        .unwrap();
        let out = PythonScript::new(&path)
            .arg("hello")
            .env("ACF_T", "world")
            .run();
        assert_eq!(out.stdout.trim(), "hello world");
        assert_eq!(out.stderr.trim(), "oops");
        assert_eq!(out.status.code(), Some(3));
        assert!(!out.success());
    }

    #[test]
    #[should_panic(expected = "did not finish within")]
    fn kills_a_script_past_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sleep.py");
        std::fs::write(&path, "import time\ntime.sleep(60)\n").unwrap();
        PythonScript::new(&path)
            .timeout(Duration::from_millis(300))
            .run();
    }

    #[test]
    fn a_missing_override_is_reported_with_its_origin() {
        let problem = locate_interpreter(Some("/nonexistent/acf/python".into())).unwrap_err();
        assert!(problem.contains("/nonexistent/acf/python"), "{problem}");
        assert!(problem.contains("$ACF_PYTHON"), "{problem}");
    }

    #[test]
    fn an_interpreter_without_the_sdk_is_rejected() {
        // `-S` skips site-packages, so even the venv's own Python cannot import hatchet_sdk.
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("python-without-sdk");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec '{}' -S \"$@\"\n", interpreter().display()),
        )
        .unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&wrapper, executable).unwrap();
        let problem = locate_interpreter(Some(wrapper.as_os_str().to_owned())).unwrap_err();
        assert!(problem.contains("cannot `import hatchet_sdk`"), "{problem}");
        assert!(problem.contains(&*wrapper.to_string_lossy()), "{problem}");
    }

    #[test]
    fn the_default_is_the_workspace_venv_when_no_override_is_set() {
        // Only meaningful where the venv exists; otherwise `interpreter()` panics loudly elsewhere.
        let venv = workspace_root().join(".venv/bin/python");
        if venv.exists() {
            assert_eq!(locate_interpreter(None).unwrap(), venv);
        } else {
            assert!(
                locate_interpreter(None)
                    .unwrap_err()
                    .contains("does not exist")
            );
        }
    }

    #[test]
    fn interpreter_can_import_the_sdk() {
        let out = Command::new(interpreter())
            .args(["-c", "import hatchet_sdk.contracts.dispatcher_pb2"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
