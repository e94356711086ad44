//! What the Python and TypeScript peers share: a script invocation under construction ([`Script`]) that
//! runs in its own process group, either to completion with a deadline ([`Script::run`]) or in the
//! background with its output in a log file ([`Script::spawn`], a [`Background`] process).
//!
//! Each peer names its language with a marker type ([`crate::python::Python`], [`crate::node::Node`]) and
//! adds its own constructor; [`crate::python::PythonScript`] and [`crate::node::NodeScript`] are the two
//! instances.

use std::ffi::OsStr;
use std::io::Read;
use std::marker::PhantomData;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Deadline of [`Script::run`] unless [`Script::timeout`] changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A peer language: names the interpreter in failure messages.
pub trait Language {
    /// The language as failure messages name it ("Python", "node").
    const NAME: &'static str;
}

/// A script invocation under construction: the inherited environment plus any [`env`](Self::env), its
/// own process group (so a kill also takes whatever the script spawned), stdin closed.
#[derive(Debug)]
pub struct Script<L> {
    command: Command,
    timeout: Duration,
    language: PhantomData<L>,
}

impl<L: Language> Script<L> {
    /// Wraps a prepared interpreter command; the peers' constructors call this.
    pub(crate) fn from_command(mut command: Command) -> Self {
        command.process_group(0);
        Self {
            command,
            timeout: DEFAULT_TIMEOUT,
            language: PhantomData,
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

    /// Sets environment variables for the script (an engine's `client_env()`, typically).
    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.command.envs(vars);
        self
    }

    /// Changes the deadline of [`run`](Self::run) (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The prepared command, for long-running scripts that the caller spawns and stops itself. The
    /// command runs in its own process group.
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
        run_to_completion(&mut self.command, self.timeout, L::NAME)
    }

    /// [`run`](Self::run) on a blocking thread, for async tests (the script may take seconds).
    ///
    /// # Panics
    ///
    /// As [`run`](Self::run) does, with its message.
    pub async fn run_async(self) -> ScriptOutput
    where
        L: Send + 'static,
    {
        match tokio::task::spawn_blocking(move || self.run()).await {
            Ok(output) => output,
            Err(failed) => std::panic::resume_unwind(failed.into_panic()),
        }
    }

    /// Starts the script in the background (a worker), its stdout and stderr written to `log`.
    ///
    /// # Panics
    ///
    /// When the log cannot be created or the interpreter cannot be spawned.
    pub fn spawn(self, log: impl Into<PathBuf>) -> Background {
        let log = log.into();
        Background::spawn(self.command, Some(log.clone())).unwrap_or_else(|err| {
            panic!(
                "cannot start the {} script (log {}): {err}",
                L::NAME,
                log.display()
            )
        })
    }
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
            "script failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The text after `RESULT ` on the first stdout line that starts so (the interop scripts print
    /// their result that way).
    pub fn result_line(&self) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix("RESULT "))
    }

    /// The script's `RESULT` line as JSON.
    ///
    /// # Panics
    ///
    /// When there is no `RESULT` line or it is not JSON, showing stdout and stderr.
    #[track_caller]
    pub fn result(&self) -> serde_json::Value {
        let line = self.result_line().unwrap_or_else(|| {
            panic!(
                "the script printed no RESULT line\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout, self.stderr
            )
        });
        serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("RESULT is not JSON ({err}): {line}"))
    }
}

/// A process running in the background for the length of a test (a peer worker, a browser driver):
/// it leads its own process group, and the whole group is SIGKILLed when this is dropped (pass or
/// fail) or [`kill`](Self::kill)ed.
#[derive(Debug)]
pub struct Background {
    child: Child,
    log: Option<PathBuf>,
    killed: bool,
}

impl Background {
    /// Spawns `command` in its own process group with stdin closed, its stdout and stderr written to
    /// `log` (created or truncated), or discarded without one.
    ///
    /// # Errors
    ///
    /// When the log cannot be created or the command cannot be spawned.
    pub fn spawn(mut command: Command, log: Option<PathBuf>) -> std::io::Result<Self> {
        command.process_group(0).stdin(Stdio::null());
        match &log {
            Some(path) => {
                let file = std::fs::File::create(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        Ok(Self {
            child: command.spawn()?,
            log,
            killed: false,
        })
    }

    /// Where the output goes, if anywhere.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The output so far (empty without a log), for failure messages.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// SIGKILLs the whole process group (once) and reaps the process.
    pub fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            kill_group(&mut self.child);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGKILLs the process group `child` leads; at least `child` itself when that fails.
fn kill_group(child: &mut Child) {
    // A negative pid targets the group; `--` keeps it from being read as an option (procps
    // `kill -KILL -<pid>` without it is not safe).
    let group = format!("-{}", child.id());
    let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
    if !killed.is_ok_and(|status| status.success()) {
        // Best effort: the process may already be gone.
        let _ = child.kill();
    }
}

/// Runs `command` (which leads its own process group) with stdin closed, capturing both streams,
/// until it exits or `timeout` passes.
///
/// # Panics
///
/// When the command cannot be spawned, or when it outlives `timeout`; its process group is then
/// killed and the output so far is shown, naming the `peer` language.
fn run_to_completion(command: &mut Command, timeout: Duration, peer: &str) -> ScriptOutput {
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
            kill_group(child);
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
