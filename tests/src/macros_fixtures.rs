//! One `#[workflow]` using every option the macros accept on a DAG: `macros_definition` checks it registers what
//! the macro-free API builds and dispatches with typed decoding, `macros_parity` that it registers what the same
//! declaration in the official Python SDK registers (`tests/python/macros_parity.py`).

use acf_sdk::{Context, StepError, on_failure, step, workflow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
