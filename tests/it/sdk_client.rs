//! Client calls against the embedded engine: bulk trigger, schedule, run details, event push and bulk push
//! (triggers and namespacing), rate limits, the typed client, and the task limit of a worker.

use acf_tests::sdk_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use acf_sdk::model::{Priority, RateLimitDuration};
use acf_sdk::proto::v1::RunStatus;
use acf_sdk::{
    Context, PushOptions, StepError, TaskDefinition, TriggerOptions, TypedWorkflowClient,
    WorkflowBuilder,
};
use sdk_support::{client, client_with, engine, eventually, ready, serve, spawn, within};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Doubled {
    v: i64,
}

fn counting(name: &str, event: Option<&str>, count: Arc<AtomicU32>) -> acf_sdk::FnWorkflow {
    let mut builder = WorkflowBuilder::new(name);
    if let Some(event) = event {
        let event = event.to_owned();
        builder = builder.configure(move |d| d.on_event(event));
    }
    builder
        .task(
            TaskDefinition::new("count"),
            move |input: Value, _ctx: Context| {
                let count = Arc::clone(&count);
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, StepError>(
                        json!({ "v": input.get("n").and_then(Value::as_i64).unwrap_or(0) * 2 }),
                    )
                }
            },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_schedule_details_events_and_typed_client() {
    let engine = engine().await;
    let client = client(&engine);
    let (runs, events, scheduled) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let worker = serve(
        client
            .worker("client-worker")
            .workflow(counting("counted", None, Arc::clone(&runs)))
            .workflow(counting(
                "on-event",
                Some("thing:happened"),
                Arc::clone(&events),
            ))
            .workflow(counting("scheduled", None, Arc::clone(&scheduled))),
    )
    .await;

    // Bulk trigger: ids in input order, each awaited.
    let refs = client
        .bulk_trigger(
            (0..5)
                .map(|n| {
                    (
                        "counted".to_owned(),
                        json!({ "n": n }),
                        TriggerOptions::default(),
                    )
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(refs.len(), 5);
    for (n, r) in refs.iter().enumerate() {
        let out = within(30, r.result()).await.unwrap();
        assert_eq!(
            out.step::<Doubled>("count").unwrap(),
            Doubled { v: 2 * n as i64 }
        );
    }

    // Run details of a finished run.
    let details = client.run_details(&refs[3].run_id).await.unwrap();
    assert!(details.done);
    assert_eq!(details.status, RunStatus::Completed);
    assert_eq!(details.tasks["count"].output, Some(json!({ "v": 6 })));

    // The typed client.
    let typed: TypedWorkflowClient<Value, Doubled> =
        TypedWorkflowClient::new(&client, "counted", Some("count"));
    assert_eq!(
        within(30, typed.run(json!({ "n": 21 }))).await.unwrap(),
        Doubled { v: 42 }
    );

    // Events trigger workflows, one by one and in bulk.
    client
        .push("thing:happened", json!({ "n": 1 }), PushOptions::default())
        .await
        .unwrap();
    let ids = client
        .bulk_push(vec![
            (
                "thing:happened".to_owned(),
                json!({ "n": 2 }),
                PushOptions::default().metadata("k", "v"),
            ),
            (
                "thing:happened".to_owned(),
                json!({ "n": 3 }),
                PushOptions::default().scope("s"),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    eventually(Duration::from_secs(20), || async {
        events.load(Ordering::SeqCst) == 3
    })
    .await;

    // A scheduled run happens at its time.
    let at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let ids = client
        .schedule(
            "scheduled",
            &[at],
            json!({ "n": 1 }),
            TriggerOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    eventually(Duration::from_secs(30), || async {
        scheduled.load(Ordering::SeqCst) == 1
    })
    .await;

    // Rate limits and priorities are accepted.
    client
        .put_rate_limit("external-api", 10, RateLimitDuration::Second)
        .await
        .unwrap();
    let out = client
        .run(
            "counted",
            json!({ "n": 1 }),
            TriggerOptions::default().priority(Priority::High),
        )
        .await;
    assert!(out.is_ok());

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_prefixes_workflows_events_and_worker() {
    let engine = engine().await;
    let client = client_with(&engine, &[("HATCHET_CLIENT_NAMESPACE", "Team")]);
    let events = Arc::new(AtomicU32::new(0));
    let worker = serve(client.worker("ns-worker").workflow(counting(
        "Greeter",
        Some("hello"),
        Arc::clone(&events),
    )))
    .await;
    let registered = engine.registered_workflows();
    let req = registered
        .iter()
        .find(|r| r.name.ends_with("Greeter"))
        .unwrap();
    assert_eq!(req.name, "team_Greeter");
    assert_eq!(req.event_triggers, ["team_hello"]);
    assert_eq!(req.tasks[0].action, "team_greeter:count");
    // The client applies the same namespace to triggers and pushes.
    let out = within(
        30,
        client.run("Greeter", json!({ "n": 2 }), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["count"], json!({ "v": 4 }));
    client
        .push("hello", json!({}), PushOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        events.load(Ordering::SeqCst) == 2
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_stops_after_its_task_limit() {
    let engine = engine().await;
    let client = client_with(
        &engine,
        &[("HATCHET_CLIENT_TERMINATE_WORKER_AFTER_NUM_TASKS", "2")],
    );
    let runs = Arc::new(AtomicU32::new(0));
    let (handle, join) = spawn(client.worker("limited").workflow(counting(
        "limited-wf",
        None,
        Arc::clone(&runs),
    )));
    ready(&handle).await;
    for n in 0..2 {
        within(
            30,
            client.run("limited-wf", json!({ "n": n }), TriggerOptions::default()),
        )
        .await
        .unwrap();
    }
    // The worker drains and exits cleanly on its own.
    within(30, join).await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_spawn_and_await_child_runs() {
    let engine = engine().await;
    let client = client(&engine);
    let children = Arc::new(AtomicU32::new(0));
    let parent = WorkflowBuilder::new("parent")
        .task(
            TaskDefinition::new("fan_out"),
            |_: Value, ctx: Context| async move {
                let a = ctx
                    .run_child("child", json!({ "n": 1 }), TriggerOptions::default())
                    .await?;
                let b = ctx
                    .run_child("child", json!({ "n": 2 }), TriggerOptions::default())
                    .await?;
                let (a, b): (Doubled, Doubled) = (a.step("count")?, b.step("count")?);
                Ok::<_, StepError>(json!({ "sum": a.v + b.v }))
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("family").workflow(parent).workflow(counting(
        "child",
        None,
        Arc::clone(&children),
    )))
    .await;
    let out = within(
        60,
        client.run(
            "parent",
            json!({}),
            TriggerOptions::default().metadata("trace", "t1"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["fan_out"], json!({ "sum": 6 }));
    assert_eq!(children.load(Ordering::SeqCst), 2);
    worker.stop().await;
}
