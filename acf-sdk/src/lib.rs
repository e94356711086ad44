//! acf-sdk: a wire-exact Hatchet client and worker runtime, with an embedded Hatchet-compatible engine
//! behind the `engine` feature.
//!
//! ```no_run
//! use acf_sdk::{Client, Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Same environment as the official SDKs: HATCHET_CLIENT_TOKEN, _HOST_PORT, _TLS_STRATEGY, _NAMESPACE…
//! let client = Client::from_env()?;
//! let greeter = WorkflowBuilder::new("greeter")
//!     .task(TaskDefinition::new("greet").retries(2), |input: serde_json::Value, ctx: Context| async move {
//!         ctx.log(format!("greeting {}", input["name"])).await?;
//!         Ok::<_, StepError>(serde_json::json!({ "message": format!("Hello, {}!", input["name"]) }))
//!     })
//!     .build()?;
//! let worker = client.worker("my-worker").slots(20).workflow(greeter).build()?;
//! tokio::spawn(worker.run()); // drains on SIGTERM, reconnects on its own
//! let out = client.run("greeter", serde_json::json!({ "name": "Ada" }), TriggerOptions::default()).await?;
//! println!("{}", out.outputs["greet"]["message"]);
//! # Ok(()) }
//! ```
//!
//! Layers (dependencies point downwards):
//! * **model** — [`model`], [`Workflow`], [`WorkflowBuilder`]: what a workflow is, and its registration
//!   request ([`WorkflowDefinition::to_proto`]);
//! * **runtime** — [`Context`], [`worker`], durable waits, [`log_layer`]; [`testing`] runs steps and whole
//!   workflows in-process;
//! * **connection / clients** — [`config`], [`channel`], [`client`], [`retry`];
//! * **wire** — [`proto`], generated from Hatchet's contracts.

#[cfg(feature = "engine")]
pub mod engine;
pub mod proto;

#[doc(hidden)]
pub mod __private;
pub mod channel;
pub mod client;
pub mod config;
pub mod context;
mod durable_client;
pub mod duration;
pub mod error;
pub mod log_layer;
pub mod model;
pub mod namespace;
pub mod retry;
pub mod step_error;
pub mod testing;
pub mod worker;
pub mod workflow;

pub use client::{
    Client, PushOptions, RunOutput, TriggerOptions, TypedWorkflowClient, WorkflowRunRef,
};
pub use config::ClientConfig;
pub use context::{Context, LogLevel, RunInfo, WaitResult};
pub use error::{Error, Result};
pub use model::{Condition, ConditionGroup, TaskDefinition, WorkflowDefinition};
/// The Prometheus client crate the worker metrics are built on, for registering extra metrics with
/// [`worker::Metrics::register`].
pub use prometheus_client;
pub use step_error::{ResultExt, StepError, StepErrorKind};
pub use worker::{Worker, WorkerBuilder, WorkerHandle, WorkerStatus};
pub use workflow::{Configured, FnWorkflow, Workflow, WorkflowBuilder, json_kind};

/// The serialization crates the SDK's traits come from, re-exported so an input or output type can derive
/// what the SDK needs without depending on `serde` and `schemars` itself (and without picking a schemars
/// version whose `JsonSchema` is a different trait: the SDK needs schemars 1). Point the derives at these
/// paths:
///
/// ```
/// use acf_sdk::{Deserialize, JsonSchema, Serialize};
///
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// #[serde(crate = "acf_sdk::serde")]
/// #[schemars(crate = "acf_sdk::schemars")]
/// struct Order {
///     id: u64,
/// }
///
/// let schema = acf_sdk::schemars::schema_for!(Order);
/// assert_eq!(schema.get("type"), Some(&acf_sdk::serde_json::json!("object")));
/// ```
pub use schemars;
#[doc(no_inline)]
pub use schemars::JsonSchema;
#[doc(no_inline)]
pub use serde::{self, Deserialize, Serialize};
#[doc(no_inline)]
pub use serde_json;

// The README's code blocks compile as doctests, so what it shows is what works.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// Declares a Hatchet workflow from an inherent `impl` block.
///
/// Every `#[step]` method becomes a task and `parents = [...]` wires the DAG. The macro generates the
/// [`Workflow`] impl (registration, typed decoding, dispatch) and a typed trigger client, and rejects a broken
/// workflow at compile time: unknown or cyclic parents, wrong step signatures, bad options or durations, and
/// parent arguments whose type differs from the parent's output type. All errors are reported at once, each on
/// the offending token.
///
/// ```
/// use acf_sdk::{Context, StepError, Workflow, on_failure, step, workflow};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, schemars::JsonSchema)]
/// struct Order { id: u64, qty: u32 }
///
/// #[derive(Serialize, Deserialize)]
/// struct Checked { ok: bool }
///
/// #[derive(Serialize, Deserialize)]
/// struct Shipped { tracking: String }
///
/// struct OrderPipeline;
///
/// #[workflow(on_events = ["order:created"], concurrency(expression = "input.id", max_runs = 1))]
/// impl OrderPipeline {
///     #[step(retries = 3, execution_timeout = "30s")]
///     async fn check(&self, _ctx: &Context, order: &Order) -> Result<Checked, StepError> {
///         Ok(Checked { ok: order.qty > 0 })
///     }
///
///     // One argument per parent, in `parents` order, typed as that parent's output.
///     #[step(parents = [check], backoff_factor = 2.0, backoff_max = "5m")]
///     async fn ship(&self, _ctx: &Context, order: &Order, checked: &Checked) -> Result<Shipped, StepError> {
///         if !checked.ok {
///             return Err(StepError::non_retryable("empty order"));
///         }
///         Ok(Shipped { tracking: format!("T-{}", order.id) })
///     }
///
///     #[on_failure]
///     async fn alert(&self, ctx: &Context, _order: &Order) -> Result<(), StepError> {
///         for (step, error) in ctx.step_run_errors() {
///             eprintln!("{step} failed: {error}");
///         }
///         Ok(())
///     }
/// }
///
/// let definition = OrderPipeline.definition();
/// assert_eq!(definition.name, "order-pipeline"); // the type name in kebab case
/// assert_eq!(definition.tasks[1].parents, ["check"]);
/// ```
///
/// Triggering it from a client is typed end to end; with a single leaf step the result is that step's output
/// (with several leaves, a tuple of their outputs in declaration order):
///
/// ```no_run
/// # use acf_sdk::{Context, StepError, workflow, step};
/// # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)] struct Order { id: u64 }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Shipped { tracking: String }
/// # struct OrderPipeline;
/// # #[workflow] impl OrderPipeline {
/// #     #[step] async fn ship(&self, _: &Context, o: &Order) -> Result<Shipped, StepError> {
/// #         Ok(Shipped { tracking: o.id.to_string() })
/// #     }
/// # }
/// # async fn demo() -> acf_sdk::Result<()> {
/// let client = acf_sdk::Client::from_env()?;
/// let shipped: Shipped = OrderPipeline::client(&client).run(Order { id: 7 }).await?;
/// # let _ = shipped;
/// # Ok(())
/// # }
/// ```
///
/// # Workflow options
///
/// | option | meaning |
/// |---|---|
/// | `name = "orders"` | registered name (default: the type name in kebab case) |
/// | `description = "..."` | description |
/// | `version = "v2"` | version label (v1 engines version workflows by content) |
/// | `on_events = ["order:created"]` | event triggers |
/// | `cron = ["0 * * * *"]` | cron triggers (5 fields, or 6 with seconds) |
/// | `cron_input = r#"{"batch": 100}"#` | input of cron-triggered runs: a JSON object, checked at compile time |
/// | `concurrency(expression = "input.id", max_runs = 1, strategy = "group_round_robin")` | CEL-keyed limit; `strategy` is `group_round_robin` (default), `cancel_in_progress` or `cancel_newest`; without `expression`, one global group; `expression = SESSION_KEY` takes a path to a `&str` constant; repeatable |
/// | `sticky = "soft"` / `"hard"` | sticky assignment |
/// | `default_priority = 1..=3` | default run priority |
/// | `default_filter(expression = "input.vip", scope = "tenant-1", payload = r#"{"tier": 1}"#)` | event filter created with the workflow; repeatable |
/// | `idempotency(expression = "input.order_id", ttl = "10m", method = "ttl" \| "status")` | triggers whose CEL key collides are rejected |
/// | `crate = "::path::to::acf_sdk"` | where the generated code finds this crate (when re-exported) |
///
/// CEL strings given as literals (concurrency keys, filters, conditions, dynamic rate-limit keys, idempotency
/// keys) are parsed at compile time by the same parser the embedded engine uses, so a syntax error fails the
/// build. That parser comes with the `cel-check` feature (implied by `engine`); without it, a syntax error is
/// reported by the engine when the workflow registers.
///
/// # Generated items
///
/// Besides the [`Workflow`] impl, the macro adds to the type:
/// * `fn client(&Client) -> TypedWorkflowClient<Input, Output>`, the typed trigger client;
/// * one constant per step holding its readable id, named after the method in upper case
///   (`OrderPipeline::CHECK == "check"`, `OrderPipeline::ALERT == "alert-on-failure"`), for code that names a
///   step: `ctx.parent_output::<Checked>(Self::CHECK)`.
///
/// # Parity with the Python SDK
///
/// Every argument of the Python SDK's (1.43.1) declaration decorators, the macro option that declares it and the
/// [`WorkflowDefinition`] / [`TaskDefinition`] method the expansion calls. A test (`parity_table` in
/// `acf-macros`) checks that this table lists every Python argument and every macro option; `f(*)` stands for
/// every argument `f` shares with its non-durable twin.
///
/// | Python | macro | builder |
/// |---|---|---|
/// | `hatchet.workflow(name)`, `hatchet.task(name)` | `#[workflow(name)]`, `#[task(name)]` | `WorkflowDefinition::new` |
/// | `hatchet.workflow(description)`, `hatchet.task(description)` | `#[workflow(description)]`, `#[task(description)]` | `description` |
/// | `hatchet.workflow(input_validator)`, `hatchet.task(input_validator)` | the step's input type | `input_json_schema` |
/// | `hatchet.workflow(on_events)`, `hatchet.task(on_events)` | `#[workflow(on_events)]`, `#[task(on_events)]` | `on_event` |
/// | `hatchet.workflow(on_crons)`, `hatchet.task(on_crons)` | `#[workflow(cron)]`, `#[task(cron)]` | `on_cron` |
/// | `hatchet.workflow(cron_input)`, `hatchet.task(cron_input)` | `#[workflow(cron_input)]`, `#[task(cron_input)]` | `cron_input` |
/// | `hatchet.workflow(version)`, `hatchet.task(version)` | `#[workflow(version)]`, `#[task(version)]` | `version` |
/// | `hatchet.workflow(sticky)`, `hatchet.task(sticky)` | `#[workflow(sticky)]`, `#[task(sticky)]` | `sticky` |
/// | `hatchet.workflow(default_priority)`, `hatchet.task(default_priority)` | `#[workflow(default_priority)]`, `#[task(default_priority)]` | `default_priority` |
/// | `hatchet.workflow(concurrency)` | `#[workflow(concurrency)]` | `WorkflowDefinition::concurrency` |
/// | `hatchet.workflow(default_filters)`, `hatchet.task(default_filters)` | `#[workflow(default_filter)]`, `#[task(default_filter)]` | `default_filter` |
/// | `hatchet.workflow(idempotency)`, `hatchet.task(idempotency)` | `#[workflow(idempotency)]`, `#[task(idempotency)]` | `idempotency` |
/// | `hatchet.workflow(task_defaults)` | — Python-side defaults for later tasks; give the options on each step | — |
/// | `hatchet.workflow(default_additional_metadata)`, `hatchet.task(default_additional_metadata)` | — not registered (sent with each trigger) | `TriggerOptions::additional_metadata` |
/// | `Workflow.task(name)`, `Workflow.on_failure_task(name)`, `Workflow.on_success_task(name)` | `#[step(name)]`, `#[on_failure(name)]`, `#[on_success(name)]` | `TaskDefinition::new` |
/// | `Workflow.task(parents)` | `#[step(parents)]` | `parents` |
/// | `Workflow.task(retries)`, `Workflow.on_failure_task(retries)`, `Workflow.on_success_task(retries)`, `hatchet.task(retries)` | `#[step(retries)]`, `#[on_failure(retries)]`, `#[on_success(retries)]`, `#[task(retries)]` | `retries` |
/// | `Workflow.task(backoff_factor)`, `Workflow.on_failure_task(backoff_factor)`, `Workflow.on_success_task(backoff_factor)`, `hatchet.task(backoff_factor)` | `#[step(backoff_factor)]`, `#[on_failure(backoff_factor)]`, `#[on_success(backoff_factor)]`, `#[task(backoff_factor)]` | `backoff_factor` (field) |
/// | `Workflow.task(backoff_max_seconds)`, `Workflow.on_failure_task(backoff_max_seconds)`, `Workflow.on_success_task(backoff_max_seconds)`, `hatchet.task(backoff_max_seconds)` | `#[step(backoff_max)]`, `#[on_failure(backoff_max)]`, `#[on_success(backoff_max)]`, `#[task(backoff_max)]` | `backoff_max_seconds` (field) |
/// | `Workflow.task(execution_timeout)`, `Workflow.on_failure_task(execution_timeout)`, `Workflow.on_success_task(execution_timeout)`, `hatchet.task(execution_timeout)` | `#[step(execution_timeout)]`, `#[on_failure(execution_timeout)]`, `#[on_success(execution_timeout)]`, `#[task(execution_timeout)]` | `execution_timeout` |
/// | `Workflow.task(schedule_timeout)`, `Workflow.on_failure_task(schedule_timeout)`, `Workflow.on_success_task(schedule_timeout)`, `hatchet.task(schedule_timeout)` | `#[step(schedule_timeout)]`, `#[on_failure(schedule_timeout)]`, `#[on_success(schedule_timeout)]`, `#[task(schedule_timeout)]` | `schedule_timeout` |
/// | `Workflow.task(concurrency)`, `Workflow.on_failure_task(concurrency)`, `Workflow.on_success_task(concurrency)`, `hatchet.task(concurrency)` | `#[step(concurrency)]`, `#[on_failure(concurrency)]`, `#[on_success(concurrency)]`, `#[task(concurrency)]` | `TaskDefinition::concurrency` |
/// | `Workflow.task(rate_limits)`, `Workflow.on_failure_task(rate_limits)`, `Workflow.on_success_task(rate_limits)`, `hatchet.task(rate_limits)` | `#[step(rate_limit)]`, `#[on_failure(rate_limit)]`, `#[on_success(rate_limit)]`, `#[task(rate_limit)]` | `rate_limit` |
/// | `Workflow.task(desired_worker_labels)`, `hatchet.task(desired_worker_labels)` | `#[step(worker_label)]`, `#[on_failure(worker_label)]`, `#[on_success(worker_label)]`, `#[task(worker_label)]` (with `weight`, `comparator`, `required`) | `desired_label` |
/// | `Workflow.task(slot_cost)`, `hatchet.task(slot_cost)` | `#[step(slots)]`, `#[on_failure(slots)]`, `#[on_success(slots)]`, `#[task(slots)]` | `slot_requests`, `slot_cost` |
/// | `Workflow.task(wait_for)` | `#[step(wait_for)]` | `wait_for` |
/// | `Workflow.task(skip_if)` | `#[step(skip_if)]` | `skip_if` |
/// | `Workflow.task(cancel_if)` | `#[step(cancel_if)]` | `cancel_if` |
/// | `Workflow.durable_task(*)`, `hatchet.durable_task(*)`: the arguments of `Workflow.task` / `hatchet.task`, each as in its row | `#[step(durable)]`, `#[task(durable)]` | `durable` |
/// | `Workflow.durable_task(eviction_policy)`, `hatchet.durable_task(eviction_policy)` | — worker-side in Python, not registered | — |
/// | `Workflow.on_failure_task` | `#[on_failure]` | `on_failure` |
/// | `Workflow.on_success_task` | `#[on_success]` (parents: every leaf step) | `task(...).parents(leaves)` |
/// | — | `#[workflow(crate)]`, `#[task(crate)]` | — |
///
/// Hatchet has no per-step description or priority (`CreateTaskOpts` carries neither), so the macros have none.
///
/// The step signature is `async fn(&self, ctx: &Context, input: &Input, <one argument per parent>) ->
/// Result<Output, E>` where every step takes the same `Input: Serialize + DeserializeOwned + JsonSchema`,
/// `Output: Serialize + DeserializeOwned`, and `E: Into<StepError>` (any `std::error::Error + Send + Sync`).
/// The input and parent arguments may be taken by reference or by value. The generated `client` method
/// means a method of that name is rejected. `Output` must serialize to a JSON object (a struct with named
/// fields, a map, or `()` for none): Hatchet stores outputs as objects, so `Result<u32, _>`, strings, sequences
/// and tuples are refused at compile time.
///
/// To see what the macro generates, build with `ACF_MACROS_DEBUG=1` (every workflow) or
/// `ACF_MACROS_DEBUG=OrderPipeline` (one type): the expansion is printed to stderr.
#[doc(inline)]
pub use acf_macros::workflow;

/// Marks an async method of a [`#[workflow]`](macro@workflow) impl block as a step (a task of the DAG).
///
/// | option | meaning |
/// |---|---|
/// | `name = "fetch"` | readable id (default: the method name; lower-cased as Hatchet does) |
/// | `parents = [a, b]` | parent steps (method names); one argument per parent follows `input`, in this order |
/// | `retries = 3` | retries after a failure |
/// | `backoff_factor = 2.0`, `backoff_max = "10m"` | exponential backoff between retries (1..=1000; at most 24h) |
/// | `execution_timeout = "30s"`, `schedule_timeout = "5m"` | durations: `ms`, `s`, `m`, `h`, combinable as `"1h30m"` |
/// | `concurrency(expression = "input.user", max_runs = 1)` | task-level concurrency limit (as on the workflow); repeatable |
/// | `rate_limit(key = "openai", units = 1)` | static rate limit; repeatable |
/// | `rate_limit(dynamic_key = "input.user", units = "input.n", limit = 10, duration = "minute")` | CEL-keyed rate limit |
/// | `worker_label(key = "gpu", value = "a100", required, weight = 100, comparator = "equal")` | desired worker label; repeatable |
/// | `durable` | a durable task (durable slots, durable waits on the [`Context`]) |
/// | `slots = 2` / `slots(default = 1, gpu = 1)` | slots consumed per slot type |
/// | `wait_for = ...` | queue the step only once the conditions hold |
/// | `skip_if = ...` | skip the step when the conditions hold |
/// | `cancel_if = ...` | cancel the step when the conditions hold |
///
/// # Conditions
///
/// `wait_for`, `skip_if` and `cancel_if` take a condition, `any(...)` of conditions (an or-group: any member
/// satisfies it) or a list `[...]` of those (all entries must hold):
///
/// | condition | satisfied when |
/// |---|---|
/// | `sleep("10s")` | the duration has passed since the step was ready (whole seconds) |
/// | `event("order:approved", filter = "input.ok", scope = "tenant-1")` | an event with that key (and scope, if given) is pushed whose payload (`input`) passes the CEL filter |
/// | `parent(check, "output.total > 0")` | the parent `check` (one of `parents`) has an output passing the CEL expression |
///
/// Each takes an optional `key = "..."`, the key its outcome is reported under (defaults as in Python:
/// `sleep:10s`, the event key, `check:<expression>`). CEL is parsed at compile time (feature `cel-check`); a parent condition must
/// name a declared parent.
///
/// ```
/// # use acf_sdk::{Context, StepError, workflow, step};
/// # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)] struct Order { total: u64 }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Checked { total: u64 }
/// struct Approval;
///
/// #[workflow]
/// impl Approval {
///     #[step]
///     async fn check(&self, _ctx: &Context, order: &Order) -> Result<Checked, StepError> {
///         Ok(Checked { total: order.total })
///     }
///
///     #[step(
///         parents = [check],
///         wait_for = any(sleep("1h"), event("order:approved", filter = "input.approved")),
///         skip_if = parent(check, "output.total == 0"),
///     )]
///     async fn ship(&self, _ctx: &Context, _order: &Order, _checked: &Checked) -> Result<(), StepError> {
///         Ok(())
///     }
/// }
/// assert_eq!(Approval::SHIP, "ship");
/// ```
///
/// Outside a `#[workflow]` impl block this attribute is a compile error.
#[doc(inline)]
pub use acf_macros::step;

/// Marks the method run when any step of a [`#[workflow]`](macro@workflow) fails. At most one per workflow; it takes
/// `(&self, ctx: &Context, input: &Input)` and reads the failures from [`Context::step_run_errors`] and the
/// outputs of the steps that completed with [`Context::completed_parent_output`] (e.g.
/// `ctx.completed_parent_output::<Checked>(Self::CHECK)?`). It accepts the [`#[step]`](macro@step) options except
/// `parents` and `durable`. Like the Python SDK, it registers as `<name>-on-failure`.
///
/// The handler also runs when the first step refused the input (a decode error): to handle that case, take
/// `input: Option<Input>`, which is `None` when the input does not decode (the step's error says why).
///
/// Outside a `#[workflow]` impl block this attribute is a compile error.
#[doc(inline)]
pub use acf_macros::on_failure;

/// Marks the method run once every step of a [`#[workflow]`](macro@workflow) has succeeded (Python's
/// `on_success_task`): it registers as a last task named `<name>-on-success` whose parents are every leaf
/// step. At most one per workflow; it takes `(&self, ctx: &Context, input: &Input)`, reads the steps' outputs
/// with [`Context::parent_output`] (e.g. `ctx.parent_output::<Shipped>(Self::SHIP)`), and accepts the same
/// options as [`#[on_failure]`](macro@on_failure).
///
/// Outside a `#[workflow]` impl block this attribute is a compile error.
#[doc(inline)]
pub use acf_macros::on_success;

/// Declares a standalone task: a one-task workflow from a free `async fn` (Python's `@hatchet.task`, TS
/// `hatchet.task`).
///
/// The function keeps its signature, `async fn(ctx: &Context, input: &Input) -> Result<Output, E>`, and the
/// macro declares a unit struct named after it in PascalCase, implementing [`Workflow`] with a typed
/// `client` and a constant holding the task's readable id. The workflow and its task are both named `name`
/// (default: the function name), as Python names a standalone task.
///
/// It accepts the [`#[workflow]`](macro@workflow) options and the step options Python's `hatchet.task` /
/// `hatchet.durable_task` take: `retries`, `backoff_factor`, `backoff_max`, `execution_timeout`,
/// `schedule_timeout`, `concurrency` (on the task, as in Python), `rate_limit`, `worker_label`, `durable`
/// and `slots`.
///
/// ```
/// use acf_sdk::{Context, StepError, Workflow, task};
///
/// #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// struct User { name: String }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Greeting { text: String }
///
/// #[task(retries = 2, on_events = ["user:created"])]
/// async fn send_greeting(_ctx: &Context, user: &User) -> Result<Greeting, StepError> {
///     Ok(Greeting { text: format!("hello {}", user.name) })
/// }
///
/// let definition = SendGreeting.definition();
/// assert_eq!(definition.name, "send_greeting");
/// assert_eq!(definition.tasks[0].name, SendGreeting::SEND_GREETING);
/// ```
#[doc(inline)]
pub use acf_macros::task;
