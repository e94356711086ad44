//! Cross-SDK runs through the embedded engine, both ways, with the official Python SDK as the peer:
//! the Rust client triggers a Python worker's workflow, and a Python client triggers a Rust worker's workflow.

use acf_tests::sdk_support;

use std::time::{Duration, Instant};

use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use acf_tests::python::PythonScript;
use sdk_support::{client, engine, serve};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const PY_WORKER: &str = r#"
from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel

hatchet = Hatchet()

class In(BaseModel):
    n: int

wf = hatchet.workflow(name="py-math", input_validator=In)

@wf.task()
def double(input: In, ctx: Context) -> dict:
    return {"v": input.n * 2, "sdk": "python"}

@wf.task(parents=[double])
def plus_one(input: In, ctx: Context) -> dict:
    return {"v": ctx.task_output(double)["v"] + 1}

# The SDK starts its action listener with multiprocessing's spawn method: guard the entry point.
if __name__ == "__main__":
    hatchet.worker("py-worker", slots=4, workflows=[wf]).start()
"#;

const PY_CLIENT: &str = r#"
import json
from hatchet_sdk import Hatchet
from pydantic import BaseModel

hatchet = Hatchet()

class In(BaseModel):
    n: int

wf = hatchet.workflow(name="rs-math", input_validator=In)
result = wf.run(In(n=20))
print("RESULT " + json.dumps(result))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_runs_a_python_workers_workflow() {
    let engine = engine().await;
    let client = client(&engine);
    let dir = tempfile::tempdir().unwrap();
    let worker = PythonScript::inline(&dir, "py_worker.py", PY_WORKER)
        .envs(engine.client_env())
        .spawn(dir.path().join("worker.log"));

    // The Python worker registers "py-math" when it starts: retry until it exists and a run completes.
    let start = Instant::now();
    let out = loop {
        match tokio::time::timeout(
            Duration::from_secs(30),
            client.run("py-math", json!({"n": 5}), TriggerOptions::default()),
        )
        .await
        {
            Ok(Ok(out)) => break out,
            other => {
                assert!(
                    start.elapsed() < Duration::from_secs(90),
                    "no result: {other:?}\n--- python ---\n{}",
                    worker.log()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert_eq!(out.outputs["double"], json!({"v": 10, "sdk": "python"}));
    assert_eq!(out.outputs["plus_one"], json!({"v": 11}));
}

#[derive(Serialize, Deserialize)]
struct In {
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_runs_a_rust_workers_workflow() {
    let engine = engine().await;
    let client = client(&engine);
    let wf = WorkflowBuilder::new("rs-math")
        .task(
            TaskDefinition::new("double"),
            |i: In, _ctx: Context| async move {
                Ok::<_, StepError>(json!({ "v": i.n * 2, "sdk": "rust" }))
            },
        )
        .task(
            TaskDefinition::new("plus_one").parents(["double"]),
            |_: In, ctx: Context| async move {
                let d: Value = ctx.parent_output("double")?;
                Ok::<_, StepError>(json!({ "v": d["v"].as_i64().unwrap_or_default() + 1 }))
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("rs-worker").workflow(wf)).await;

    let dir = tempfile::tempdir().unwrap();
    let result = PythonScript::inline(&dir, "py_client.py", PY_CLIENT)
        .envs(engine.client_env())
        .run_async()
        .await
        .assert_success()
        .result();
    assert_eq!(result["double"], json!({"v": 40, "sdk": "rust"}));
    assert_eq!(result["plus_one"], json!({"v": 41}));

    worker.stop().await;
}
