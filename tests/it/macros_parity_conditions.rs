//! Conditions, the remaining workflow options, `#[on_success]` and `#[task]` register exactly what the same
//! declarations in the official Python SDK (`tests/python/macros_parity_conditions.py`) register: the
//! `PutWorkflow` requests are captured by the embedded engine and compared field by field.
//!
//! Two things Python leaves to chance are compared by meaning: or-group ids (random UUIDs in Python,
//! deterministic here) by which conditions share a group, and the input JSON schema (pydantic vs schemars) by
//! its properties and required set.

use acf_sdk::proto::v1::{CreateWorkflowVersionRequest, TaskConditions};
use acf_sdk::{Context, StepError, on_failure, on_success, step, task, workflow};
use acf_tests::macros_fixtures::{registered_pair, registered_with_python};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct Order {
    id: i64,
    total: i64,
}

#[derive(Serialize, Deserialize)]
struct Checked {
    total: i64,
}

#[derive(Serialize, Deserialize)]
struct Charged {
    charged: bool,
}

/// The concurrency key, stated once and shared with the declaration.
const SESSION_KEY: &str = "input.id";

struct ParityConditions;

#[workflow(
    description = "gated orders",
    version = "v3",
    on_events = ["order:placed"],
    cron = ["*/5 * * * *"],
    cron_input = r#"{"id": 0, "total": 0}"#,
    concurrency(expression = SESSION_KEY, max_runs = 1),
    default_filter(expression = "input.total > 100", scope = "vip", payload = r#"{"tier": 1}"#),
    default_filter(expression = "true", scope = "all"),
    idempotency(expression = "input.id", ttl = "10m")
)]
impl ParityConditions {
    #[step]
    async fn check(&self, _ctx: &Context, input: &Order) -> Result<Checked, StepError> {
        Ok(Checked { total: input.total })
    }

    #[step(
        parents = [check],
        wait_for = [
            any(sleep("90s"), event("order:approved", filter = "input.approved == true", scope = "tenant-1")),
            parent(check, "output.total > 0"),
        ],
        skip_if = parent(check, "output.total == 0"),
        cancel_if = event("order:cancelled", key = "cancelled"),
        worker_label(key = "gpu", value = "a100", weight = 80)
    )]
    async fn charge(
        &self,
        _ctx: &Context,
        _input: &Order,
        _checked: &Checked,
    ) -> Result<Charged, StepError> {
        Ok(Charged { charged: true })
    }

    #[step(parents = [check], wait_for = sleep("2m"))]
    async fn remind(
        &self,
        _ctx: &Context,
        _input: &Order,
        _checked: &Checked,
    ) -> Result<(), StepError> {
        Ok(())
    }

    #[on_success(retries = 2, execution_timeout = "20s")]
    async fn notify(&self, _ctx: &Context, _input: &Order) -> Result<(), StepError> {
        Ok(())
    }

    #[on_failure]
    async fn rollback(&self, _ctx: &Context, _input: &Order) -> Result<(), StepError> {
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Greeting {
    text: String,
}

#[task(
    name = "greet-user",
    on_events = ["user:created"],
    retries = 2,
    execution_timeout = "15s",
    concurrency(expression = "input.id", max_runs = 3, strategy = "cancel_in_progress"),
    rate_limit(key = "greetings", units = 1),
    worker_label(key = "region", value = "eu", required),
    default_priority = 3,
    idempotency(expression = "input.id", ttl = "1h", method = "status")
)]
async fn greet(_ctx: &Context, _input: &Order) -> Result<Greeting, StepError> {
    Ok(Greeting {
        text: "hi".to_owned(),
    })
}

#[task(durable)]
async fn archive_order(_ctx: &Context, _input: &Order) -> Result<(), StepError> {
    Ok(())
}

/// Replaces each or-group id by the order in which the task first uses it, so two requests compare equal
/// exactly when the same conditions share a group.
fn normalize_or_groups(conditions: &mut TaskConditions) {
    let mut seen: Vec<String> = Vec::new();
    let mut rename = |id: &mut String| {
        let index = seen.iter().position(|s| s == id).unwrap_or_else(|| {
            seen.push(id.clone());
            seen.len() - 1
        });
        *id = format!("group-{index}");
    };
    for c in &mut conditions.sleep_conditions {
        rename(&mut c.base.as_mut().expect("a base").or_group_id);
    }
    for c in &mut conditions.user_event_conditions {
        rename(&mut c.base.as_mut().expect("a base").or_group_id);
    }
    for c in &mut conditions.parent_override_conditions {
        rename(&mut c.base.as_mut().expect("a base").or_group_id);
    }
}

/// Filter payloads are JSON text: Python's `json.dumps` puts a space after `:` and `,`, serde_json does not.
/// Compared as JSON values.
fn normalized(mut request: CreateWorkflowVersionRequest) -> CreateWorkflowVersionRequest {
    for filter in &mut request.default_filters {
        if let Some(payload) = filter.payload.as_mut() {
            let value: Value = serde_json::from_slice(payload).expect("the payload is JSON");
            *payload = value.to_string().into_bytes();
        }
    }
    for task in request
        .tasks
        .iter_mut()
        .chain(request.on_failure_task.iter_mut())
    {
        if let Some(conditions) = task.conditions.as_mut() {
            normalize_or_groups(conditions);
        }
    }
    request
}

/// The Rust and Python requests registered under `name` ([`registered_pair`]), or-groups normalized.
fn normalized_pair(
    requests: &[CreateWorkflowVersionRequest],
    name: &str,
) -> (CreateWorkflowVersionRequest, CreateWorkflowVersionRequest) {
    let (rust, python) = registered_pair(requests, name);
    (normalized(rust), normalized(python))
}

#[tokio::test(flavor = "multi_thread")]
async fn conditions_options_and_standalone_tasks_register_like_python() {
    let requests = registered_with_python("macros_parity_conditions.py", async |client| {
        client
            .register(&ParityConditions)
            .await
            .expect("the conditions workflow registers");
        client
            .register(&Greet)
            .await
            .expect("the standalone task registers");
        client
            .register(&ArchiveOrder)
            .await
            .expect("the durable standalone task registers");
    })
    .await;
    for name in ["parity-conditions", "greet-user", "archive_order"] {
        let (rust, python) = normalized_pair(&requests, name);
        assert_eq!(rust, python, "{name}");
    }
    // The step constants name what was registered.
    let (rust, _) = normalized_pair(&requests, "parity-conditions");
    let ids: Vec<&str> = rust.tasks.iter().map(|t| t.readable_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            ParityConditions::CHECK,
            ParityConditions::CHARGE,
            ParityConditions::REMIND,
            ParityConditions::NOTIFY
        ]
    );
    assert_eq!(
        rust.on_failure_task
            .as_ref()
            .map(|t| t.readable_id.as_str()),
        Some(ParityConditions::ROLLBACK)
    );
    assert_eq!(Greet::GREET, "greet-user");
}
