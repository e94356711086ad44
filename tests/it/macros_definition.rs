//! `#[workflow]` registers exactly what the macro-free API builds, and dispatches to the right method with
//! typed decoding whose errors name the step and the field.

use acf_sdk::model::{
    Concurrency, ConcurrencyLimitStrategy, DesiredWorkerLabel, IntOrExpr, Priority, RateLimit,
    RateLimitDuration, StickyStrategy, WorkerLabelComparator, WorkflowConcurrency,
};
use acf_sdk::testing::TestContext;
use acf_sdk::{
    Context, StepError, TaskDefinition, Workflow, WorkflowDefinition, on_failure, step, workflow,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, JsonSchema)]
struct Order {
    id: u32,
    qty: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Checked {
    ok: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Priced {
    cents: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Shipped {
    label: String,
}

struct OrderPipeline {
    cents_per_item: u64,
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

/// The same workflow written against the macro-free API.
fn hand_written() -> WorkflowDefinition {
    let mut check = TaskDefinition::new("check")
        .retries(3)
        .execution_timeout(Duration::from_secs(30))
        .schedule_timeout(Duration::from_secs(5400));
    check.backoff_factor = Some(2.0);
    check.backoff_max_seconds = Some(600);
    WorkflowDefinition::new("order-pipeline")
        .description("orders")
        .on_event("order:created")
        .on_cron("0 * * * *")
        .sticky(StickyStrategy::Soft)
        .default_priority(Priority::Medium)
        .concurrency(WorkflowConcurrency::Single(Concurrency::new(
            "input.id",
            2,
            ConcurrencyLimitStrategy::CancelNewest,
        )))
        .input_json_schema(serde_json::to_value(schemars::schema_for!(Order)).unwrap())
        .task(check)
        .task(
            TaskDefinition::new("price")
                .parents(["check"])
                .rate_limit(RateLimit::fixed("pricing", 2))
                .desired_label("region", DesiredWorkerLabel::new("eu").required())
                .slot_requests([("default".to_owned(), 2)]),
        )
        .task(
            TaskDefinition::new("ship")
                .parents(["check", "price"])
                .rate_limit(RateLimit::dynamic(
                    "input.id",
                    IntOrExpr::Expr("input.qty".to_owned()),
                    IntOrExpr::Int(10),
                    RateLimitDuration::Hour,
                ))
                .desired_label(
                    "gpu",
                    DesiredWorkerLabel::new(2)
                        .weight(50)
                        .comparator(WorkerLabelComparator::GreaterThan),
                )
                .durable(true),
        )
        .on_failure(TaskDefinition::new("cleanup-on-failure").retries(1))
}

#[test]
fn definition_equals_the_macro_free_api() {
    let wf = OrderPipeline { cents_per_item: 5 };
    assert_eq!(wf.name(), "order-pipeline");
    assert_eq!(wf.definition(), hand_written());
    wf.definition()
        .validate()
        .expect("the generated definition is valid");
}

#[tokio::test]
async fn dispatch_decodes_input_and_parents_by_readable_id() {
    let wf = OrderPipeline { cents_per_item: 5 };
    let order = Order { id: 7, qty: 3 };

    let ctx = TestContext::new(&order).step("check").build();
    let out = wf.dispatch("check", ctx).await.expect("check runs");
    assert_eq!(out, serde_json::json!({ "ok": true }));

    let ctx = TestContext::new(&order)
        .step("price")
        .parent_output("check", Checked { ok: true })
        .build();
    let out = wf.dispatch("price", ctx).await.expect("price runs");
    assert_eq!(out, serde_json::json!({ "cents": 15 }));

    let ctx = TestContext::new(&order)
        .step("ship")
        .parent_output("check", Checked { ok: true })
        .parent_output("price", Priced { cents: 15 })
        .build();
    let out = wf.dispatch("ship", ctx).await.expect("ship runs");
    assert_eq!(out, serde_json::json!({ "label": "ship:7:true:15" }));

    let ctx = TestContext::new(&order).step("cleanup-on-failure").build();
    assert_eq!(
        wf.dispatch("cleanup-on-failure", ctx)
            .await
            .expect("cleanup runs"),
        serde_json::json!({})
    );
}

#[tokio::test]
async fn decode_errors_name_the_step_and_the_field() {
    let wf = OrderPipeline { cents_per_item: 5 };

    let ctx = TestContext::new(serde_json::json!({ "id": "seven", "qty": 1 }))
        .step("check")
        .build();
    let err = wf
        .dispatch("check", ctx)
        .await
        .expect_err("a string id does not decode");
    let text = err.to_string();
    assert!(
        text.contains("step `check`") && text.contains("input"),
        "{text}"
    );
    assert!(err.is_non_retryable());

    let ctx = TestContext::new(Order { id: 1, qty: 1 })
        .step("ship")
        .parent_output("check", Checked { ok: true })
        .parent_output("price", serde_json::json!({ "cents": "many" }))
        .build();
    let text = wf
        .dispatch("ship", ctx)
        .await
        .expect_err("a string cents does not decode")
        .to_string();
    assert!(
        text.contains("step `ship`") && text.contains("parent output `price`"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_actions_and_user_errors_are_reported() {
    let wf = OrderPipeline { cents_per_item: 5 };
    let ctx = TestContext::new(Order { id: 1, qty: 1 })
        .step("nope")
        .build();
    let err = wf.dispatch("nope", ctx).await.expect_err("no such step");
    assert!(err.to_string().contains("order-pipeline:nope"), "{err}");
}
