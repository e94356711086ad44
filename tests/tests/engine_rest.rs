//! The official Python SDK's REST-backed public API against the embedded engine: runs (get, list,
//! create, cancel and replay by id and by filter), tasks, workers (pause/unpause), scheduled runs,
//! crons, filters, events, auth and the 501 for unsupported endpoints. The checks live in
//! `tests/python/rest_api.py`; this test runs its worker and its client.

use acf_tests::python::{PythonScript, script};
use std::process::Stdio;
use std::time::Duration;

/// Kills the worker's process group when the test ends (pass or fail).
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_rest_calls_work_against_the_engine() {
    let engine = acf_sdk::engine::Engine::builder()
        .start()
        .await
        .expect("engine starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let prepare = |mode: &str| {
        let mut s = PythonScript::new(script("rest_api.py"))
            .env("ACF_TEST_DIR", dir.path())
            .arg(mode)
            .arg("rest-worker");
        for (k, v) in engine.client_env() {
            s = s.env(k, v);
        }
        s
    };
    let log = dir.path().join("worker.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut cmd = prepare("worker").into_command();
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    let _worker = Group(cmd.spawn().expect("python worker spawns"));
    let client = prepare("client").timeout(Duration::from_secs(150));
    let out = tokio::task::spawn_blocking(move || client.run())
        .await
        .expect("client thread");
    if !out.success() {
        let worker_log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "rest_api.py client failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- worker log ---\n{}",
            out.status, out.stdout, out.stderr, worker_log
        );
    }
    assert!(
        out.stdout.lines().any(|l| l == "OK"),
        "the client did not finish its checks:\n{}",
        out.stdout
    );
    engine.shutdown().await;
}
