//! The official Python SDK (`hatchet-sdk`) as a test peer: finding its interpreter and running
//! Python scripts with a deadline.
//!
//! Interop tests must never pass silently without Python, so [`interpreter`] panics with the fix
//! instead of returning something a test could skip on.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::workspace_root;

/// Environment variable naming a Python interpreter to use instead of `<workspace>/.venv/bin/python`.
pub const PYTHON_ENV: &str = "ACF_PYTHON";

/// How to get a usable interpreter; part of every failure message.
pub const FIX: &str = "run `scripts/ensure-venv` from the workspace root (it creates .venv with \
                       hatchet-sdk==1.43.1), or set ACF_PYTHON to a Python that can `import hatchet_sdk`";

/// Deadline of [`PythonScript::run`] unless [`PythonScript::timeout`] changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Python interpreter that has the official SDK: `$ACF_PYTHON` if set and non-empty, otherwise
/// `<workspace>/.venv/bin/python`.
///
/// The first call checks that `import hatchet_sdk` works; later calls reuse the verdict.
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
        .args(["-c", "import hatchet_sdk"])
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

/// What a finished script printed and how it exited.
#[derive(Debug)]
pub struct ScriptOutput {
    /// Exit status of the interpreter.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
}

impl ScriptOutput {
    /// Whether the script exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Returns `self` if the script succeeded.
    ///
    /// # Panics
    ///
    /// Otherwise, showing the exit status, stdout and stderr.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.success(),
            "Python script failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A Python script invocation under construction: `<interpreter> -u <script> [args…]`, run from the
/// workspace root with `PYTHONUNBUFFERED=1` and the inherited environment plus any [`env`](Self::env).
#[derive(Debug)]
pub struct PythonScript {
    command: Command,
    timeout: Duration,
}

impl PythonScript {
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
            .env("PYTHONUNBUFFERED", "1")
            // Own process group, so a timeout also kills whatever the script spawned.
            .process_group(0);
        Self {
            command,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Appends a command-line argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Sets an environment variable for the script.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Changes the deadline of [`run`](Self::run) (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The prepared command, for long-running scripts (workers) that the caller spawns and stops
    /// itself. The command runs in its own process group.
    pub fn into_command(self) -> Command {
        self.command
    }

    /// Runs the script to completion and captures its output.
    ///
    /// # Panics
    ///
    /// When the interpreter cannot be spawned, or when the script outlives its deadline; the
    /// script's process group is then killed and the output so far is shown.
    pub fn run(mut self) -> ScriptOutput {
        run_to_completion(&mut self.command, self.timeout, "Python")
    }
}

/// Runs `command` (which leads its own process group) with stdin closed, capturing both streams,
/// until it exits or `timeout` passes; shared by the Python and TypeScript peers.
///
/// # Panics
///
/// When the command cannot be spawned, or when it outlives `timeout`; its process group is then
/// killed and the output so far is shown, naming the `peer` language.
pub(crate) fn run_to_completion(
    command: &mut Command,
    timeout: Duration,
    peer: &str,
) -> ScriptOutput {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot spawn {command:?}: {err}"));
    // Drain both pipes concurrently so a chatty script cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_with_deadline(&mut child, timeout);
    let output = ScriptOutput {
        status: status.unwrap_or_else(|| child.wait().expect("reap the killed script")),
        stdout: join(stdout),
        stderr: join(stderr),
    };
    assert!(
        status.is_some(),
        "{peer} script {command:?} did not finish within {timeout:?}; killed.\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.stdout,
        output.stderr
    );
    output
}

/// Waits for `child` until `timeout`; on expiry kills its whole process group and returns `None`.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll the script") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            // The child leads its own group (see `PythonScript::new`): a negative pid targets it.
            let group = format!("-{}", child.id());
            let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
            if !killed.is_ok_and(|status| status.success()) {
                // Best effort: at least the interpreter itself must go; it may already be gone.
                let _ = child.kill();
            }
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end on a helper thread.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only truncates the captured text; the exit status still tells the story.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Collects a drained pipe.
fn join(handle: JoinHandle<String>) -> String {
    handle.join().expect("pipe reader thread panicked")
}

#[cfg(test)]
mod tests {
    use super::*;

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
