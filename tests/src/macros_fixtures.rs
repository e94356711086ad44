//! One `#[workflow]` using every option the macros accept on a DAG: `macros_definition` checks it registers what
//! the macro-free API builds and dispatches with typed decoding, `macros_parity` that it registers what the same
//! declaration in the official Python SDK registers (`tests/python/macros_parity.py`). [`registered_with_python`]
//! captures both sides' requests for the parity tests and [`registered_pair`] takes them apart. [`In`] and [`Num`]
//! are the data of the workflows the `macros_*e2e` tests serve.

use std::collections::{BTreeMap, BTreeSet};

use acf_sdk::proto::v1::CreateWorkflowVersionRequest;
use acf_sdk::{Client, Context, StepError, on_failure, step, workflow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::python::{PythonScript, script};
use crate::sdk_support;

/// The input of the workflows the `macros_*e2e` tests serve.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct In {
    /// The number the steps compute with.
    pub n: i64,
}

/// A number a step of the `macros_*e2e` workflows returns.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Num {
    /// The value.
    pub v: i64,
}

/// The workflow input.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// Order id.
    pub id: u32,
    /// Items ordered.
    pub qty: u32,
}

/// `check`'s output.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Checked {
    /// Whether the order has items.
    pub ok: bool,
}

/// `price`'s output.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Priced {
    /// The price.
    pub cents: u64,
}

/// `ship`'s output.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Shipped {
    /// `step:id:ok:cents`.
    pub label: String,
}

/// Check, price, then ship an order (`order-pipeline`).
pub struct OrderPipeline {
    /// Price of one item.
    pub cents_per_item: u64,
}

#[workflow(
    description = "orders",
    on_events = ["order:created"],
    cron = ["0 * * * *"],
    concurrency(expression = "input.id", max_runs = 2, strategy = "cancel_newest"),
    sticky = "soft",
    default_priority = 2
)]
impl OrderPipeline {
    #[step(
        retries = 3,
        backoff_factor = 2.0,
        backoff_max = "10m",
        execution_timeout = "30s",
        schedule_timeout = "1h30m"
    )]
    async fn check(&self, _ctx: &Context, input: &Order) -> Result<Checked, StepError> {
        Ok(Checked { ok: input.qty > 0 })
    }

    #[step(
        parents = [check],
        rate_limit(key = "pricing", units = 2),
        worker_label(key = "region", value = "eu", required),
        slots = 2
    )]
    async fn price(
        &self,
        _ctx: &Context,
        input: &Order,
        checked: &Checked,
    ) -> Result<Priced, StepError> {
        let cents = if checked.ok {
            u64::from(input.qty) * self.cents_per_item
        } else {
            0
        };
        Ok(Priced { cents })
    }

    #[step(
        name = "Ship",
        parents = [check, price],
        durable,
        rate_limit(dynamic_key = "input.id", units = "input.qty", limit = 10, duration = "hour"),
        worker_label(key = "gpu", value = 2, weight = 50, comparator = "greater_than")
    )]
    async fn ship(
        &self,
        ctx: &Context,
        input: Order,
        checked: Checked,
        priced: &Priced,
    ) -> Result<Shipped, std::io::Error> {
        Ok(Shipped {
            label: format!(
                "{}:{}:{}:{}",
                ctx.step_name(),
                input.id,
                checked.ok,
                priced.cents
            ),
        })
    }

    #[on_failure(retries = 1)]
    async fn cleanup(&self, _ctx: &Context, _input: &Order) -> Result<(), StepError> {
        Ok(())
    }
}

/// Property name -> JSON type, and the required names: what both schema generators must agree on.
fn schema_meaning(schema: &[u8]) -> (BTreeMap<String, Value>, BTreeSet<String>) {
    let schema: Value = serde_json::from_slice(schema).expect("the schema is JSON");
    let properties = schema["properties"]
        .as_object()
        .expect("the schema lists properties")
        .iter()
        .map(|(name, property)| (name.clone(), property["type"].clone()))
        .collect();
    let required = schema["required"]
        .as_array()
        .expect("the schema lists required properties")
        .iter()
        .map(|name| {
            name.as_str()
                .expect("property names are strings")
                .to_owned()
        })
        .collect();
    (properties, required)
}

/// The Rust and Python requests registered under `name` (the Rust one first), their input schemas
/// compared by meaning and removed: schemars and pydantic spell the same schema differently.
///
/// # Panics
///
/// Unless exactly two requests are named `name`, both with an input schema of the same meaning.
pub fn registered_pair(
    requests: &[CreateWorkflowVersionRequest],
    name: &str,
) -> (CreateWorkflowVersionRequest, CreateWorkflowVersionRequest) {
    let mut matching = requests.iter().filter(|r| r.name == name).cloned();
    let mut rust = matching.next().expect("the Rust request was captured");
    let mut python = matching.next().expect("the Python request was captured");
    assert!(
        matching.next().is_none(),
        "exactly two registrations of {name}"
    );
    let rust_schema = rust
        .input_json_schema
        .take()
        .expect("Rust sends the input schema");
    let python_schema = python
        .input_json_schema
        .take()
        .expect("Python sends the input schema");
    assert_eq!(
        schema_meaning(&rust_schema),
        schema_meaning(&python_schema),
        "{name}: input schema"
    );
    (rust, python)
}

/// Registers the Rust side (`ours`, the test's `Client::register` calls) with an embedded engine, then
/// runs the Python SDK's declarations of the same workflows (`tests/python/<python_script>`) against it;
/// returns every captured `PutWorkflow` request (take them apart with [`registered_pair`]).
///
/// # Panics
///
/// When the engine does not start or the Python script fails.
pub async fn registered_with_python(
    python_script: &str,
    ours: impl AsyncFnOnce(&Client),
) -> Vec<CreateWorkflowVersionRequest> {
    let engine = sdk_support::engine().await;
    ours(&sdk_support::client(&engine)).await;
    PythonScript::new(script(python_script))
        .envs(engine.client_env())
        .run_async()
        .await
        .assert_success();
    engine.registered_workflows()
}
