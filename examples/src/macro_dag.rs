//! A three-step DAG declared with `#[workflow]`, `#[step]` and `#[on_failure]` (run it with
//! `cargo run -p acf-examples --example macro_dag`).
//!
//! ```text
//! validate ──┬──────────► receipt
//!            └─► price ──┘
//! ```
//!
//! The macros turn the `impl` block below into a registered workflow whose inputs and outputs are plain Rust
//! types: each step receives the run input and its parents' outputs already decoded, and the generated
//! `Checkout::client(&client)` triggers runs and returns the leaf step's output, typed.

use std::time::Duration;

use acf_sdk::{Context, StepError, on_failure, step, workflow};
// The schema derive comes through acf_sdk (this crate has no direct schemars dependency).
use acf_sdk::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// How long [`run`] waits for the worker to be ready, or for the on-failure report, before giving up.
const LIMIT: Duration = Duration::from_secs(30);

/// The run input. Every step of a workflow takes the same input type; `JsonSchema` lets the macro register
/// its schema with the engine.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone)]
#[schemars(crate = "acf_sdk::schemars")]
pub struct Order {
    /// Order id.
    pub id: u64,
    /// Quantity of each line of the order.
    pub quantities: Vec<u32>,
    /// Price of one item, in cents.
    pub unit_price_cents: u64,
}

/// Output of `validate`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Validated {
    /// Items in the order.
    pub items: u32,
}

/// Output of `price`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Priced {
    /// Order total, in cents.
    pub total_cents: u64,
    /// The attempt that succeeded (0 = first try).
    pub attempt: i32,
}

/// Output of `receipt`, the only leaf step, hence the typed result of a run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Receipt {
    /// Order id.
    pub order_id: u64,
    /// Items in the order.
    pub items: u32,
    /// Order total, in cents.
    pub total_cents: u64,
    /// Retries `price` needed.
    pub price_retries: i32,
}

/// The workflow type. Its fields are ordinary state shared by every step: here, where the failure handler
/// reports to.
pub struct Checkout {
    failures: mpsc::UnboundedSender<String>,
}

// Registered as "checkout" (the type name in kebab case).
#[workflow]
impl Checkout {
    /// A root step (no parents). A bad order is not worth retrying: `non_retryable` fails the run at once.
    #[step(retries = 2, execution_timeout = "10s")]
    async fn validate(&self, _ctx: &Context, order: &Order) -> Result<Validated, StepError> {
        if order.quantities.is_empty() {
            return Err(StepError::non_retryable(format!(
                "order {} has no lines",
                order.id
            )));
        }
        Ok(Validated {
            items: order.quantities.iter().sum(),
        })
    }

    /// Runs after `validate` and receives its output as a typed argument. It fails its first attempt with an
    /// ordinary (retryable) error, as a flaky pricing service would; `retries = 3` lets the engine run it
    /// again (immediately: no backoff is configured), and `execution_timeout` bounds every attempt.
    #[step(parents = [validate], retries = 3, execution_timeout = "30s")]
    async fn price(
        &self,
        ctx: &Context,
        order: &Order,
        validated: &Validated,
    ) -> Result<Priced, StepError> {
        if ctx.retry_count() == 0 {
            return Err(StepError::msg("pricing service unavailable"));
        }
        Ok(Priced {
            total_cents: u64::from(validated.items) * order.unit_price_cents,
            attempt: ctx.retry_count(),
        })
    }

    /// Joins both branches: one argument per parent, in `parents` order, each typed as that parent's output
    /// (a mismatch is a compile error).
    #[step(parents = [validate, price])]
    async fn receipt(
        &self,
        _ctx: &Context,
        order: &Order,
        validated: &Validated,
        priced: &Priced,
    ) -> Result<Receipt, StepError> {
        Ok(Receipt {
            order_id: order.id,
            items: validated.items,
            total_cents: priced.total_cents,
            price_retries: priced.attempt,
        })
    }

    /// Runs once when a step has failed for good (registered as `checkout-on-failure`); the context lists
    /// which steps failed and why.
    #[on_failure]
    async fn alert(&self, ctx: &Context, order: &Order) -> Result<(), StepError> {
        for (step, error) in ctx.step_run_errors() {
            // The receiver may be gone if the program is exiting; nothing to do then.
            let _ = self
                .failures
                .send(format!("order {}: {step} failed: {error}", order.id));
        }
        Ok(())
    }
}

/// What [`run`] observed.
#[derive(Debug)]
pub struct Outcome {
    /// The typed result of the successful run.
    pub receipt: Receipt,
    /// The error the client got for the run that failed.
    pub failed_run_error: String,
    /// What the `#[on_failure]` handler reported for that run.
    pub on_failure_report: String,
}

/// Starts an embedded engine and a worker serving [`Checkout`], runs one good order and one empty order
/// through the typed client, and returns what happened.
pub async fn run() -> Result<Outcome, Box<dyn std::error::Error>> {
    let (_engine, client) = crate::local_engine().await?;

    let (failures, mut reports) = mpsc::unbounded_channel();
    let worker = client
        .worker("macro-dag-worker")
        .handle_signals(false)
        .workflow(Checkout { failures })
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());
    // Triggers name the workflow, so let the worker register it (and connect) first.
    timeout(LIMIT, async {
        while handle.status().not_ready_reason().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| "the worker did not become ready")?;

    // The generated typed client: `run` takes an `Order` and returns the leaf step's `Receipt`.
    let checkout = Checkout::client(&client);
    let receipt = checkout
        .run(Order {
            id: 1,
            quantities: vec![2, 3],
            unit_price_cents: 250,
        })
        .await?;

    // An empty order fails `validate`; the run fails and the on-failure handler reports it.
    let failed_run_error = match checkout
        .run(Order {
            id: 2,
            quantities: vec![],
            unit_price_cents: 250,
        })
        .await
    {
        Ok(receipt) => return Err(format!("an empty order was accepted: {receipt:?}").into()),
        Err(error) => error.to_string(),
    };
    let on_failure_report = timeout(LIMIT, reports.recv())
        .await
        .ok()
        .flatten()
        .ok_or("the on-failure handler never reported")?;

    handle.shutdown();
    running.await??;
    Ok(Outcome {
        receipt,
        failed_run_error,
        on_failure_report,
    })
}
