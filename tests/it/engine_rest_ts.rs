//! The official TypeScript SDK's REST calls (runs get/list/cancel/replay, workers pause, crons,
//! schedules, filters, events) against the embedded engine, with a Python SDK worker executing the
//! runs. The checks live in `tests/ts-rest/rest_api.mjs`; its pinned dependencies are installed
//! with `npm ci` on first use. Without `node`/`npm` the test fails, it never skips.

use acf_tests::python::{PythonScript, script};
use acf_tests::workspace_root;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIX: &str = "install Node.js 20+ with npm (the test runs `npm ci` in tests/ts-rest)";

struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_rest_calls_work_against_the_engine() {
    let dir_ts = workspace_root().join("tests/ts-rest");
    if !dir_ts
        .join("node_modules/@hatchet-dev/typescript-sdk/package.json")
        .is_file()
    {
        let status = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir_ts)
            .status()
            .unwrap_or_else(|e| {
                panic!("\n==== TS INTEROP UNAVAILABLE ====\ncannot run npm: {e}\nFix: {FIX}\n")
            });
        assert!(
            status.success(),
            "npm ci failed in {}\nFix: {FIX}",
            dir_ts.display()
        );
    }
    let engine = acf_sdk::engine::Engine::builder()
        .start()
        .await
        .expect("engine starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worker = PythonScript::new(script("rest_api.py"))
        .env("ACF_TEST_DIR", dir.path())
        .arg("worker")
        .arg("ts-rest-worker");
    for (k, v) in engine.client_env() {
        worker = worker.env(k, v);
    }
    let log = std::fs::File::create(dir.path().join("worker.log")).expect("log");
    let mut cmd = worker.into_command();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    let _worker = Group(cmd.spawn().expect("python worker spawns"));

    let mut node = Command::new("node");
    node.arg("rest_api.mjs")
        .arg("ts-rest-worker")
        .current_dir(&dir_ts)
        .envs(engine.client_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut node, 0);
    let child = node.spawn().unwrap_or_else(|e| {
        panic!("\n==== TS INTEROP UNAVAILABLE ====\ncannot run node: {e}\nFix: {FIX}\n")
    });
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(150);
    let waiter = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = tokio::select! {
        out = waiter => out.expect("join").expect("node output"),
        () = tokio::time::sleep_until(deadline.into()) => {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            let worker_log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
            panic!("rest_api.mjs timed out\n--- worker log ---\n{worker_log}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().any(|l| l == "TS OK"),
        "rest_api.mjs failed ({}).\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    engine.shutdown().await;
}
