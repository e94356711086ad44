//! The `ruche-worker` binary: exit codes, JSON log events, `run --embedded` + `send --wait` across processes, and a
//! drained exit 0 on SIGTERM.

use crate::support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::cli::{BIN, Running, lines, send_args, sigterm, until, worker};
use support::free_addr;

fn events(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .collect()
}

fn run_to_end(mut command: Command) -> Output {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn an_invalid_configuration_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.toml"),
        "[storage.session]\nbackend = \"postgres\"\n",
    )
    .unwrap();
    let mut command = worker();
    command.env("RUCHE_CONFIG_DIR", dir.path()).arg("run");
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configuration error"), "{stderr}");
    assert!(stderr.contains("backend"), "{stderr}");
}

#[test]
fn a_missing_token_or_an_unreachable_hatchet_exits_1_with_a_clear_message() {
    let out = run_to_end({
        let mut command = worker();
        command.arg("run");
        command
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HATCHET_CLIENT_TOKEN"), "{stderr}");

    // A token for an engine that is not listening.
    let engine = Command::new(BIN)
        .args(["engine", "--bind", &free_addr()])
        .env("RUCHE_ENV", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut engine = Running(engine);
    let rx = lines(&mut engine.0);
    let mut exports = Vec::new();
    until(&rx, &mut exports, Duration::from_secs(30), |l| {
        l.contains("TLS_STRATEGY")
    });
    drop(engine);
    let mut command = worker();
    command
        .env("HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS", "1")
        .arg("run");
    for line in &exports {
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            command.env(name, value);
        }
    }
    let started = std::time::Instant::now();
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot register the logical-turn workflow with Hatchet at 127.0.0.1:"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_embedded_worker_answers_send_and_drains_on_sigterm() {
    let addr = free_addr();
    let mut command = worker();
    command
        .args(["run", "--embedded", "--bind", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut running = Running(command.spawn().unwrap());
    let rx = lines(&mut running.0);
    let mut seen = Vec::new();
    until(&rx, &mut seen, Duration::from_secs(60), |l| {
        l.contains("acf_worker_ready")
    });
    let exports: Vec<(String, String)> = seen
        .iter()
        .filter_map(|l| {
            l.strip_prefix("export ")?
                .split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    // Token, host:port, TLS strategy and the REST base for Python/ours and TypeScript.
    assert_eq!(exports.len(), 5, "{seen:?}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("# dashboard: http://{addr}/dashboard#token="))),
        "the dashboard URL is printed: {seen:?}"
    );

    let mut send = worker();
    send.envs(exports.iter().cloned())
        .args(send_args("hello from the cli"));
    let out = run_to_end(send);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("status").is_some())
        .expect("the run's output");
    assert_eq!(result["status"], "complete");
    assert_eq!(result["response"], "Echo: hello from the cli");

    until(&rx, &mut seen, Duration::from_secs(30), |l| {
        l.contains("mutex_released")
    });
    sigterm(&running.0);
    until(&rx, &mut seen, Duration::from_secs(60), |l| {
        l.contains("acf_worker_stopped")
    });
    let code = running.0.wait().unwrap().code();
    assert_eq!(code, Some(0), "{}", seen.join("\n"));
    let events = events(&seen);
    let order = [
        "acf_worker_starting",
        "hatchet_client_initialized",
        "workflow_registered",
        "acf_worker_ready",
        "mutex_acquired",
        "accumulation_complete",
        "brain_starting",
        "brain_complete",
        "turn_committed",
        "mutex_released",
        "shutdown_signal_received",
        "acf_worker_stopped",
    ];
    let mut position = 0;
    for event in order {
        let found = events[position..].iter().position(|e| e == event);
        assert!(
            found.is_some(),
            "`{event}` missing or out of order in {events:?}"
        );
        position += found.unwrap_or(0) + 1;
    }
}
