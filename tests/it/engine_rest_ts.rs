//! The official TypeScript SDK's REST calls (runs get/list/cancel/replay, workers pause, crons,
//! schedules, filters, events) against the embedded engine, with a Python SDK worker executing the
//! runs. The checks live in `tests/ts-rest/rest_api.mjs`; its pinned dependencies are installed
//! with `npm ci` on first use. Without `node`/`npm` the test fails, it never skips.

use acf_tests::engine_support::rest_api_script;
use acf_tests::node::NodeScript;
use acf_tests::{sdk_support, workspace_root};
use std::process::Command;
use std::time::Duration;

const FIX: &str = "install Node.js 20+ with npm (the test runs `npm ci` in tests/ts-rest)";

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
    let engine = sdk_support::engine().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let worker = rest_api_script(&engine, dir.path(), "worker", "ts-rest-worker")
        .spawn(dir.path().join("worker.log"));
    // Run by node from the project directory; `npm ci` above made sure its SDK is installed.
    let output = NodeScript::in_dir(&dir_ts, "rest_api.mjs")
        .arg("ts-rest-worker")
        .envs(engine.client_env())
        .timeout(Duration::from_secs(150))
        .run_async()
        .await;
    assert!(
        output.success() && output.stdout.lines().any(|l| l == "TS OK"),
        "rest_api.mjs failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- worker log ---\n{}",
        output.status,
        output.stdout,
        output.stderr,
        worker.log()
    );
    engine.shutdown().await;
}
