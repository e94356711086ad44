//! Every condition kind declared with `#[step(wait_for/skip_if/cancel_if = ...)]`, an `#[on_success]` handler
//! and a standalone `#[task]`, served by a real worker against the embedded engine.

use acf_tests::sdk_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acf_sdk::client::PushOptions;
use acf_sdk::proto::v1::RunStatus;
use acf_sdk::{Client, Context, StepError, TriggerOptions, on_success, step, task, workflow};
use acf_tests::macros_fixtures::{In, Num};
use sdk_support::{client, engine, eventually, serve, within};
use serde_json::{Value, json};

/// The steps that ran, in order.
type Ran = Arc<Mutex<Vec<&'static str>>>;

fn record(ran: &Ran, step: &'static str) {
    ran.lock().expect("not poisoned").push(step);
}

fn has_run(ran: &Ran, step: &str) -> bool {
    ran.lock().expect("not poisoned").contains(&step)
}

struct Sleeper {
    ran: Ran,
}

#[workflow(name = "cond-sleep")]
impl Sleeper {
    #[step(wait_for = sleep("1s"))]
    async fn later(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        record(&self.ran, "later");
        Ok(Num { v: input.n })
    }
}

struct Approval {
    ran: Ran,
}

#[workflow(name = "cond-event")]
impl Approval {
    #[step(wait_for = event("cond:approve", filter = "input.ok == true", scope = "tenant-1"))]
    async fn approve(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        record(&self.ran, "approve");
        Ok(Num { v: input.n })
    }
}

struct Charges {
    ran: Ran,
}

#[workflow(name = "cond-parent")]
impl Charges {
    #[step]
    async fn check(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        Ok(Num { v: input.n })
    }

    #[step(parents = [check], skip_if = parent(check, "output.v == 0"))]
    async fn charge(&self, _ctx: &Context, _input: &In, checked: &Num) -> Result<Num, StepError> {
        record(&self.ran, "charge");
        Ok(Num { v: checked.v * 10 })
    }
}

struct Groups {
    ran: Ran,
}

#[workflow(name = "cond-groups")]
impl Groups {
    /// An or-group: the sleep satisfies it although the event never comes.
    #[step(wait_for = any(event("cond:never"), sleep("1s")))]
    async fn either(&self, _ctx: &Context, _input: &In) -> Result<(), StepError> {
        record(&self.ran, "either");
        Ok(())
    }

    /// A list: the sleep alone does not satisfy it, the event is needed too.
    #[step(wait_for = [sleep("1s"), event("cond:go")])]
    async fn both(&self, _ctx: &Context, _input: &In) -> Result<(), StepError> {
        record(&self.ran, "both");
        Ok(())
    }
}

struct Cancellable {
    ran: Ran,
}

#[workflow(name = "cond-cancel")]
impl Cancellable {
    #[step(wait_for = event("cond:never-comes"), cancel_if = event("cond:stop"))]
    async fn blocked(&self, _ctx: &Context, _input: &In) -> Result<(), StepError> {
        record(&self.ran, "blocked");
        Ok(())
    }
}

struct Finale;

#[workflow(name = "cond-finale")]
impl Finale {
    #[step]
    async fn compute(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        Ok(Num { v: input.n + 1 })
    }

    /// Reads the step's output through the generated constant.
    #[on_success]
    async fn report(&self, ctx: &Context, _input: &In) -> Result<Num, StepError> {
        let computed: Num = ctx.parent_output(Self::COMPUTE)?;
        Ok(Num { v: computed.v * 2 })
    }
}

#[task(name = "cond-standalone", retries = 1)]
async fn triple(_ctx: &Context, input: &In) -> Result<Num, StepError> {
    // `?` on any std error converts into a StepError.
    let parsed: i64 = input.n.to_string().parse()?;
    Ok(Num { v: parsed * 3 })
}

async fn trigger(client: &Client, workflow: &str, n: i64) -> acf_sdk::WorkflowRunRef {
    client
        .trigger(workflow, In { n }, TriggerOptions::default())
        .await
        .expect("the run is triggered")
}

async fn push(client: &Client, key: &str, payload: Value, scope: Option<&str>) {
    let mut options = PushOptions::default();
    if let Some(scope) = scope {
        options = options.scope(scope);
    }
    client
        .push(key, payload, options)
        .await
        .expect("the event is pushed");
}

/// Waits until the engine has created the run's task (its conditions are then being waited on).
async fn task_created(client: &Client, run_id: &str, step: &str) {
    eventually(Duration::from_secs(20), || async {
        client
            .run_details(run_id)
            .await
            .is_ok_and(|details| details.tasks.contains_key(step))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_condition_kind_runs_on_the_embedded_engine() {
    let engine = engine().await;
    let client = client(&engine);
    let ran: Ran = Arc::default();
    let worker = client
        .worker("conditions-worker")
        .slots(8)
        .workflow(Sleeper { ran: ran.clone() })
        .workflow(Approval { ran: ran.clone() })
        .workflow(Charges { ran: ran.clone() })
        .workflow(Groups { ran: ran.clone() })
        .workflow(Cancellable { ran: ran.clone() })
        .workflow(Finale)
        .workflow(Triple);
    let worker = serve(worker).await;

    // Sleep: the step is queued only after the duration.
    let started = Instant::now();
    let slept: Num = within(30, Sleeper::client(&client).run(In { n: 4 }))
        .await
        .expect("the sleeping step runs");
    assert_eq!(slept, Num { v: 4 });
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the step waited for its sleep condition ({:?})",
        started.elapsed()
    );

    // User event: only an event with the key, the scope and a payload passing the filter releases the step.
    let run = trigger(&client, "cond-event", 7).await;
    task_created(&client, &run.run_id, Approval::APPROVE).await;
    push(
        &client,
        "cond:approve",
        json!({"ok": false}),
        Some("tenant-1"),
    )
    .await;
    push(
        &client,
        "cond:approve",
        json!({"ok": true}),
        Some("tenant-2"),
    )
    .await;
    push(&client, "cond:other", json!({"ok": true}), Some("tenant-1")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !has_run(&ran, "approve"),
        "no non-matching event released the step"
    );
    push(
        &client,
        "cond:approve",
        json!({"ok": true}),
        Some("tenant-1"),
    )
    .await;
    let output = within(30, run.result())
        .await
        .expect("the approved run completes");
    assert_eq!(
        output.step::<Num>(Approval::APPROVE).expect("decoded"),
        Num { v: 7 }
    );

    // Parent output: `skip_if` skips the step when the parent's output passes the expression.
    let skipped = within(30, trigger(&client, "cond-parent", 0).await.result())
        .await
        .expect("the run completes");
    assert_eq!(skipped.outputs[Charges::CHARGE], json!({"skipped": true}));
    assert!(!has_run(&ran, "charge"), "a skipped step is not called");
    let charged = within(30, trigger(&client, "cond-parent", 5).await.result())
        .await
        .expect("the run completes");
    assert_eq!(
        charged.step::<Num>(Charges::CHARGE).expect("decoded"),
        Num { v: 50 }
    );

    // Or-group and all-of list.
    let run = trigger(&client, "cond-groups", 1).await;
    eventually(Duration::from_secs(20), || async {
        has_run(&ran, "either")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !has_run(&ran, "both"),
        "the sleep alone does not satisfy an all-of list"
    );
    task_created(&client, &run.run_id, Groups::BOTH).await;
    push(&client, "cond:go", json!({}), None).await;
    within(30, run.result())
        .await
        .expect("the groups run completes");
    assert!(has_run(&ran, "both"));

    // Cancel: the event cancels the waiting step, and the run with it.
    let run = trigger(&client, "cond-cancel", 1).await;
    task_created(&client, &run.run_id, Cancellable::BLOCKED).await;
    push(&client, "cond:stop", json!({}), None).await;
    assert!(
        within(30, run.result()).await.is_err(),
        "the run is cancelled"
    );
    let details = client.run_details(&run.run_id).await.expect("details");
    assert_eq!(details.status, RunStatus::Cancelled);
    assert!(!has_run(&ran, "blocked"));

    // On-success handler and standalone task, through their typed clients.
    let finale = within(30, trigger(&client, "cond-finale", 20).await.result())
        .await
        .expect("the run completes");
    assert_eq!(
        finale.step::<Num>(Finale::REPORT).expect("decoded"),
        Num { v: 42 }
    );
    let tripled = within(30, Triple::client(&client).run(In { n: 5 }))
        .await
        .expect("the standalone task runs");
    assert_eq!(tripled, Num { v: 15 });

    worker.stop().await;
}
