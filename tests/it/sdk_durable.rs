//! Durable waits against the embedded engine: satisfied by an event, by the timeout, and not by an event of
//! another scope; plus a durable sleep.

use acf_tests::sdk_support;

use std::time::{Duration, Instant};

use acf_sdk::{
    Client, Context, PushOptions, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder,
    WorkflowRunRef,
};
use sdk_support::{client, engine, serve, within};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
struct Wait {
    scope: String,
    timeout_ms: u64,
}

async fn wait_step(input: Wait, ctx: Context) -> Result<Value, StepError> {
    let got = ctx
        .wait_for_event(
            "reply",
            Some(&input.scope),
            None,
            Some(Duration::from_millis(input.timeout_ms)),
        )
        .await?;
    Ok(json!({ "event": got }))
}

fn workflow() -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("durable-wait")
        .task(
            TaskDefinition::new("wait")
                .durable(true)
                .execution_timeout(Duration::from_secs(120)),
            wait_step,
        )
        .build()
        .unwrap()
}

fn nap() -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("durable-nap")
        .task(
            TaskDefinition::new("nap").durable(true),
            |_: Value, ctx: Context| async move {
                let before = Instant::now();
                ctx.sleep_for(Duration::from_secs(1)).await?;
                Ok::<_, StepError>(json!({ "slept_ms": before.elapsed().as_millis() as u64 }))
            },
        )
        .build()
        .unwrap()
}

/// Starts a `durable-wait` run waiting for a `reply` of `scope`, for at most `timeout_ms`.
async fn trigger_wait(client: &Client, scope: &str, timeout_ms: u64) -> WorkflowRunRef {
    client
        .trigger(
            "durable-wait",
            Wait {
                scope: scope.into(),
                timeout_ms,
            },
            TriggerOptions::default(),
        )
        .await
        .unwrap()
}

/// Pushes a `reply` event `{"text": text}` of `scope`.
async fn push_reply(client: &Client, text: &str, scope: &str) {
    client
        .push(
            "reply",
            json!({ "text": text }),
            PushOptions::default().scope(scope),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_wait_by_event_by_timeout_and_scope_isolation() {
    let engine = engine().await;
    let client = client(&engine);
    let worker = serve(
        client
            .worker("durable-worker")
            .workflow(workflow())
            .workflow(nap()),
    )
    .await;

    // 1. Satisfied by an event of its scope; an event of another scope pushed first does not wake it.
    let run = trigger_wait(&client, "s1", 60_000).await;
    // Let the wait register (the step must be running and waiting).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    push_reply(&client, "other", "s2").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    push_reply(&client, "mine", "s1").await;
    let out = within(60, run.result()).await.unwrap();
    assert_eq!(out.outputs["wait"], json!({"event": {"text": "mine"}}));

    // 2. Satisfied by the timeout: only another scope's event arrives.
    let started = Instant::now();
    let run = trigger_wait(&client, "s3", 2000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    push_reply(&client, "not yours", "s4").await;
    let out = within(60, run.result()).await.unwrap();
    assert_eq!(out.outputs["wait"], json!({"event": null}));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the timeout fired early: {:?}",
        started.elapsed()
    );

    // 3. A durable sleep resolves after (about) its duration.
    let out = within(
        60,
        client.run("durable-nap", json!({}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert!(
        out.outputs["nap"]["slept_ms"].as_u64().unwrap() >= 1000,
        "{:?}",
        out.outputs
    );

    worker.stop().await;
}
