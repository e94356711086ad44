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
mod durable;
pub mod duration;
pub mod error;
pub mod log_layer;
pub mod model;
pub mod namespace;
pub mod retry;
mod sdk_error;
pub mod testing;
pub mod worker;
pub mod workflow;

pub use client::{
    Client, PushOptions, RunOutput, TriggerOptions, TypedWorkflowClient, WorkflowRunRef,
};
pub use config::ClientConfig;
pub use context::{Context, LogLevel, RunInfo, WaitResult};
pub use error::{ResultExt, StepError, StepErrorKind};
pub use model::{Condition, ConditionGroup, TaskDefinition, WorkflowDefinition};
/// The Prometheus client crate the worker metrics are built on, for registering extra metrics with
/// [`worker::Metrics::register`].
pub use prometheus_client;
pub use sdk_error::{Error, Result};
pub use worker::{Worker, WorkerBuilder, WorkerHandle, WorkerStatus};
pub use workflow::{FnWorkflow, Workflow, WorkflowBuilder};

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
/// | `on_events = ["order:created"]` | event triggers |
/// | `cron = ["0 * * * *"]` | cron triggers (5 fields, or 6 with seconds) |
/// | `concurrency(expression = "input.id", max_runs = 1, strategy = "group_round_robin")` | CEL-keyed limit; `strategy` is `group_round_robin` (default), `cancel_in_progress` or `cancel_newest`; without `expression`, one global group; repeatable |
/// | `sticky = "soft"` / `"hard"` | sticky assignment |
/// | `default_priority = 1..=3` | default run priority |
/// | `crate = "::path::to::acf_sdk"` | where the generated code finds this crate (when re-exported) |
///
/// The step signature is `async fn(&self, ctx: &Context, input: &Input, <one argument per parent>) ->
/// Result<Output, E>` where every step takes the same `Input: Serialize + DeserializeOwned + JsonSchema`,
/// `Output: Serialize + DeserializeOwned`, and `E: Into<StepError>` (any `std::error::Error + Send + Sync`).
/// The input and parent arguments may be taken by reference or by value. The generated `client` method
/// means a method of that name is rejected.
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
///
/// Outside a `#[workflow]` impl block this attribute is a compile error.
#[doc(inline)]
pub use acf_macros::step;

/// Marks the method run when any step of a [`#[workflow]`](macro@workflow) fails. At most one per workflow; it takes
/// `(&self, ctx: &Context, input: &Input)` and reads the failures from [`Context::step_run_errors`]. It accepts
/// the [`#[step]`](macro@step) options except `parents` and `durable`. Like the Python SDK, it registers as
/// `<name>-on-failure`.
///
/// Outside a `#[workflow]` impl block this attribute is a compile error.
#[doc(inline)]
pub use acf_macros::on_failure;
