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
use acf_tests::macros_fixtures::{Checked, Order, OrderPipeline, Priced, Shipped};
use std::time::Duration;

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

/// Fails `ship` for an empty order; its on-failure handler takes `Option<Order>` and reads `check`'s output
/// through the step constant.
struct Refusing;

#[workflow]
impl Refusing {
    #[step]
    async fn check(&self, _ctx: &Context, input: &Order) -> Result<Checked, StepError> {
        Ok(Checked { ok: input.qty > 0 })
    }

    #[step(parents = [check])]
    async fn ship(
        &self,
        _ctx: &Context,
        _input: &Order,
        checked: &Checked,
    ) -> Result<Shipped, StepError> {
        if checked.ok {
            Ok(Shipped {
                label: "sent".into(),
            })
        } else {
            Err(StepError::non_retryable("empty order"))
        }
    }

    #[on_failure]
    async fn report(
        &self,
        ctx: &Context,
        input: Option<Order>,
    ) -> Result<serde_json::Value, StepError> {
        let checked: Option<Checked> = ctx.completed_parent_output(Self::CHECK)?;
        let shipped: Option<Shipped> = ctx.completed_parent_output(Self::SHIP)?;
        Ok(serde_json::json!({
            "order": input.map(|o| o.id),
            "checked": checked.map(|c| c.ok),
            "shipped": shipped.is_some(),
        }))
    }
}

#[tokio::test]
async fn an_on_failure_handler_taking_option_input_runs_when_the_input_does_not_decode() {
    use acf_sdk::testing::run_workflow;
    let failed = run_workflow(&Refusing, TestContext::new(Order { id: 4, qty: 0 }))
        .await
        .unwrap_err();
    assert_eq!(failed.step, "ship");
    assert_eq!(
        failed.on_failure.unwrap().unwrap(),
        serde_json::json!({"order": 4, "checked": false, "shipped": false})
    );
    // The input does not decode: `check` refuses it, the handler still runs, with `None`.
    let failed = run_workflow(&Refusing, TestContext::new(serde_json::json!({"id": "x"})))
        .await
        .unwrap_err();
    assert_eq!(failed.step, "check");
    assert!(failed.error.is_non_retryable());
    assert_eq!(
        failed.on_failure.unwrap().unwrap(),
        serde_json::json!({"order": null, "checked": null, "shipped": false})
    );
    // A parent output that exists but does not decode is an error naming it, never `None`.
    let ctx = TestContext::new(Order { id: 1, qty: 1 })
        .step("report-on-failure")
        .parent_output("check", serde_json::json!({"ok": "yes"}))
        .build();
    let error = Refusing
        .dispatch("report-on-failure", ctx)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("parent output `check`"),
        "{error}"
    );
}
