//! Our SDK's requests against the official Python SDK's (hatchet-sdk 1.43.1), field by field.
//!
//! One recording engine serves both. The Python SDK registers a worker for the workflow `parity-py`, a
//! Python client triggers it once; then our SDK does the same for `parity-rs`. Every recorded request of the
//! worker and trigger protocol is decoded through the proto descriptors, flattened to `field.path → value`
//! (with unset optional fields as `<absent>`), and the two sides compared. Every difference must be listed in
//! [`ALLOWED`] with its reason; anything else fails the test.

use acf_tests::sdk_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use acf_sdk::engine::RecordedRequest;
use acf_sdk::proto::FILE_DESCRIPTOR_SET;
use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use acf_tests::python::PythonScript;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage, Value as Field};
use sdk_support::{client, eventually, ready, recording_engine, spawn, within};
use serde_json::{Value, json};

const PY_WORKER: &str = r#"
from hatchet_sdk import Context, Hatchet
from pydantic import BaseModel

hatchet = Hatchet()

class In(BaseModel):
    n: int

wf = hatchet.workflow(name="parity-py", input_validator=In)

@wf.task()
def echo(input: In, ctx: Context) -> dict:
    return {"ok": True, "n": input.n}

if __name__ == "__main__":
    hatchet.worker("parity-worker", slots=4, workflows=[wf]).start()
"#;

const PY_CLIENT: &str = r#"
import json
from hatchet_sdk import Hatchet
from pydantic import BaseModel

hatchet = Hatchet()

class In(BaseModel):
    n: int

wf = hatchet.workflow(name="parity-py", input_validator=In)
print("RESULT " + json.dumps(wf.run(In(n=1))))
"#;

/// The requests compared: `(rpc, message type, label)`; step events are split by type.
const COMPARED: &[(&str, &str)] = &[
    ("Dispatcher/Register", "WorkerRegisterRequest"),
    (
        "v1.AdminService/PutWorkflow",
        "v1.CreateWorkflowVersionRequest",
    ),
    ("Dispatcher/ListenV2", "WorkerListenRequest"),
    ("Dispatcher/Heartbeat", "HeartbeatRequest"),
    ("Dispatcher/SendStepActionEvent", "StepActionEvent"),
    (
        "WorkflowService/TriggerWorkflow",
        "v1.TriggerWorkflowRequest",
    ),
    (
        "v1.AdminService/TriggerWorkflowRun",
        "v1.TriggerWorkflowRunRequest",
    ),
];

/// Every allowed difference: `(request label, field path, reason)`. A path ending in `*` covers the fields
/// under it.
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "*",
        "worker_id",
        "the engine assigns each worker its id at Register",
    ),
    (
        "*",
        "heartbeat_at.*",
        "a timestamp: when the heartbeat was sent",
    ),
    (
        "*",
        "event_timestamp.*",
        "a timestamp: when the step event happened",
    ),
    (
        "*",
        "job_id",
        "the engine's id of the task definition (each side has its own workflow)",
    ),
    (
        "*",
        "task_id",
        "the engine's id of the task definition (each side has its own workflow)",
    ),
    (
        "*",
        "job_run_id",
        "the engine's id of the run's task (each side triggered its own run)",
    ),
    (
        "*",
        "task_run_external_id",
        "the engine's id of the run's task (each side triggered its own run)",
    ),
    (
        "Dispatcher/Register",
        "runtime_info.sdk_version",
        "each SDK reports its own version",
    ),
    (
        "Dispatcher/Register",
        "runtime_info.language",
        "the SDKS enum has no value for Rust (GO, PYTHON, TYPESCRIPT, RUBY), so ours is left unset",
    ),
    (
        "Dispatcher/Register",
        "runtime_info.extra",
        "with no Rust value in `language`, ours names the SDK and its language here",
    ),
    (
        "Dispatcher/Register",
        "runtime_info.language_version",
        "Python reports its interpreter's version, we the rustc version that built the SDK",
    ),
    (
        "v1.AdminService/PutWorkflow",
        "input_json_schema",
        "the same input type described by two schema generators: pydantic adds titles, schemars adds \
         `$schema`, the doc comment and integer formats",
    ),
];

/// Requests that both sides must have sent (so the comparison cannot pass on nothing).
const EXPECTED: &[&str] = &[
    "Dispatcher/Register",
    "v1.AdminService/PutWorkflow",
    "Dispatcher/ListenV2",
    "Dispatcher/Heartbeat",
    "Dispatcher/SendStepActionEvent STARTED",
    "Dispatcher/SendStepActionEvent COMPLETED",
];

/// The workflow names differ only so that neither SDK's worker can take the other's run; they are
/// mapped to one name before comparing.
fn normalize(text: &str) -> String {
    text.replace("parity-py", "parity-*")
        .replace("parity-rs", "parity-*")
}

/// A scalar as comparable text; JSON documents are compared as JSON (key order and spacing are how each
/// language's serializer writes them, not what is sent).
fn scalar(value: &Field) -> String {
    match value {
        Field::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                format!("json:{}", normalize(&v.to_string()))
            }
            _ => format!("{:?}", normalize(s)),
        },
        Field::Bytes(b) => match serde_json::from_slice::<Value>(b) {
            Ok(v) => format!("json:{}", normalize(&v.to_string())),
            Err(_) => format!("bytes:{b:?}"),
        },
        other => format!("{other:?}"),
    }
}

fn flatten(message: &DynamicMessage, prefix: &str, out: &mut BTreeMap<String, String>) {
    for field in message.descriptor().fields() {
        let path = format!("{prefix}{}", field.name());
        if field.supports_presence() && !message.has_field(&field) {
            out.insert(path, "<absent>".to_owned());
            continue;
        }
        flatten_value(&message.get_field(&field), &path, out);
    }
}

fn flatten_value(value: &Field, path: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Field::Message(m) => flatten(m, &format!("{path}."), out),
        Field::List(items) => {
            out.insert(format!("{path}.len"), items.len().to_string());
            for (i, item) in items.iter().enumerate() {
                flatten_value(item, &format!("{path}[{i}]"), out);
            }
        }
        Field::Map(entries) => {
            let keys: BTreeSet<String> = entries
                .keys()
                .map(|k| match k {
                    MapKey::String(s) => normalize(s),
                    other => format!("{other:?}"),
                })
                .collect();
            out.insert(format!("{path}.keys"), format!("{keys:?}"));
            for (k, v) in entries {
                let key = match k {
                    MapKey::String(s) => normalize(s),
                    other => format!("{other:?}"),
                };
                flatten_value(v, &format!("{path}[{key}]"), out);
            }
        }
        other => {
            out.insert(path.to_owned(), scalar(other));
        }
    }
}

/// The compared requests of one SDK, by label.
fn requests_of(
    pool: &DescriptorPool,
    recorded: &[RecordedRequest],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (rpc, message) in COMPARED {
        let descriptor = pool
            .get_message_by_name(message)
            .unwrap_or_else(|| panic!("no message {message}"));
        for request in recorded.iter().filter(|r| r.rpc == *rpc) {
            let decoded =
                DynamicMessage::decode(descriptor.clone(), request.message.as_slice()).unwrap();
            let mut fields = BTreeMap::new();
            flatten(&decoded, "", &mut fields);
            let label = match fields.get("event_type").map(String::as_str) {
                Some(kind) if *rpc == "Dispatcher/SendStepActionEvent" => {
                    let kind = match kind {
                        "EnumNumber(1)" => "STARTED",
                        "EnumNumber(2)" => "COMPLETED",
                        other => other,
                    };
                    format!("{rpc} {kind}")
                }
                _ => (*rpc).to_owned(),
            };
            // The first of each kind (heartbeats repeat; they are alike).
            out.entry(label).or_insert(fields);
        }
    }
    out
}

fn allowed(label: &str, path: &str) -> bool {
    ALLOWED.iter().any(|(l, p, _)| {
        (*l == label || *l == "*")
            && (p
                .strip_suffix('*')
                .map_or(*p == path, |stem| path.starts_with(stem)))
    })
}

/// The input, as Python's pydantic model declares it (only its schema is used here).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct In {
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_requests_match_the_python_sdks_field_by_field() {
    let engine = recording_engine().await;
    let dir = tempfile::tempdir().unwrap();

    // 1. The Python SDK: worker, then one triggered run.
    let worker = PythonScript::inline(&dir, "worker.py", PY_WORKER)
        .envs(engine.client_env())
        .spawn(dir.path().join("worker.log"));
    eventually(Duration::from_secs(90), || async {
        let requests = engine.requests();
        requests.iter().any(|r| r.rpc == "Dispatcher/ListenV2")
            && requests.iter().any(|r| r.rpc == "Dispatcher/Heartbeat")
    })
    .await;
    let output = PythonScript::inline(&dir, "client.py", PY_CLIENT)
        .envs(engine.client_env())
        .run_async()
        .await;
    output.assert_success();
    assert!(output.stdout.contains("RESULT"), "{}", output.stdout);
    drop(worker);
    let python = engine.requests();

    // 2. Our SDK, the same workflow and trigger.
    let client = client(&engine);
    let wf = WorkflowBuilder::new("parity-rs")
        .input_schema::<In>()
        .task(
            TaskDefinition::new("echo"),
            |input: Value, _ctx: Context| async move {
                Ok::<_, StepError>(json!({ "ok": true, "n": input["n"] }))
            },
        )
        .build()
        .unwrap();
    let (handle, join) = spawn(client.worker("parity-worker").slots(4).workflow(wf));
    ready(&handle).await;
    let out = within(
        60,
        client.run("parity-rs", json!({"n": 1}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["echo"], json!({"ok": true, "n": 1}));
    handle.shutdown();
    within(10, join).await.unwrap().unwrap();
    let ours = engine.requests()[python.len()..].to_vec();

    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let theirs = requests_of(&pool, &python);
    let mine = requests_of(&pool, &ours);
    for label in EXPECTED {
        assert!(theirs.contains_key(*label), "Python sent no {label}");
        assert!(mine.contains_key(*label), "we sent no {label}");
    }
    let triggers = [
        "WorkflowService/TriggerWorkflow",
        "v1.AdminService/TriggerWorkflowRun",
    ];
    assert!(
        triggers.iter().any(|t| theirs.contains_key(*t)),
        "Python sent no trigger"
    );
    let mut unexplained = Vec::new();
    let labels: BTreeSet<&String> = theirs.keys().chain(mine.keys()).collect();
    for label in labels {
        let (Some(a), Some(b)) = (theirs.get(label), mine.get(label)) else {
            unexplained.push(format!(
                "{label}: sent only by {}",
                if theirs.contains_key(label) {
                    "Python"
                } else {
                    "us"
                }
            ));
            continue;
        };
        let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for path in paths {
            let (x, y) = (a.get(path), b.get(path));
            if x != y && !allowed(label, path) {
                unexplained.push(format!("{label} {path}: python {x:?} ours {y:?}"));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "unexplained differences from the Python SDK:\n{}",
        unexplained.join("\n")
    );
}
