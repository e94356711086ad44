//! The `ruche-worker` binary as a process: its command on the self-contained `test` configuration, a guard that
//! kills it, its stdout as lines, and the gateway's `send` of one message. Shared by the tests that run the binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The worker binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ruche-worker");

/// A worker command on the self-contained `test` configuration (in-memory stores) with info logs, blind to the
/// caller's Hatchet connection and configuration directory. Callers add their own settings and arguments.
pub fn worker() -> Command {
    let mut command = Command::new(BIN);
    command
        .env("RUCHE_ENV", "test")
        .env("RUCHE_OBSERVABILITY__LOGGING__LEVEL", "info")
        .env_remove("HATCHET_CLIENT_TOKEN")
        .env_remove("HATCHET_CLIENT_HOST_PORT")
        .env_remove("RUCHE_CONFIG_DIR")
        .stdin(Stdio::null());
    command
}

/// The arguments of `ruche-worker send` submitting `message` as one fixed conversation on the `web` channel and
/// waiting for the run's output.
pub fn send_args(message: &str) -> [&str; 12] {
    [
        "send",
        "--tenant-id",
        "6f1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f60",
        "--agent-id",
        "7a1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f61",
        "--interlocutor-id",
        "8b1c2a56-0a43-4f7e-9d3a-1b2c3d4e5f62",
        "--channel",
        "web",
        "--message",
        message,
        "--wait",
    ]
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to `child` (a worker drains and exits 0 on it).
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// Streams the child's stdout lines into a channel (its stdout must be piped).
pub fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects lines into `seen` until one satisfies `done`, or panics after `limit` with the output so far.
pub fn until(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = done(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("timed out; output so far:\n{}", seen.join("\n")),
        }
    }
}
