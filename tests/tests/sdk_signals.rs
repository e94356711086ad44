//! SIGTERM drains a step in flight and the worker exits cleanly; a second signal forces the exit.
//! (Its own test binary: the signals are sent to this process.)

use acf_tests::sdk_support;

use std::process::Command;
use std::time::Duration;

use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use sdk_support::{client, engine, eventually, ready, within};
use serde_json::{Value, json};

fn sigterm() {
    let status = Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn sleeper(ms: u64) -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("slow")
        .task(
            TaskDefinition::new("sleep").execution_timeout(Duration::from_secs(300)),
            move |_: Value, _ctx: Context| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, StepError>(json!({ "slept": ms }))
            },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_a_second_signal_forces() {
    let engine = engine().await;
    let client = client(&engine);

    // 1. One SIGTERM with a step in flight: the step finishes, is reported, and `run` returns Ok.
    let worker = client
        .worker("sig-worker")
        .workflow(sleeper(1500))
        .build()
        .unwrap();
    let handle = worker.handle();
    let join = tokio::spawn(worker.run());
    ready(&handle).await;
    let run = client
        .trigger("slow", json!({}), TriggerOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        handle.status().running == 1
    })
    .await;
    sigterm();
    eventually(Duration::from_secs(5), || async {
        handle.status().draining
    })
    .await;
    within(30, join).await.unwrap().expect("graceful exit");
    let out = within(30, run.result()).await.unwrap();
    assert_eq!(out.outputs["sleep"], json!({ "slept": 1500 }));

    // 2. Two signals: the second forces the exit while a long step is still running.
    let worker = client
        .worker("sig-worker-2")
        .workflow(sleeper(120_000))
        .build()
        .unwrap();
    let handle = worker.handle();
    let join = tokio::spawn(worker.run());
    ready(&handle).await;
    client
        .trigger("slow", json!({}), TriggerOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        handle.status().running == 1
    })
    .await;
    sigterm();
    eventually(Duration::from_secs(5), || async {
        handle.status().draining
    })
    .await;
    sigterm();
    let result = within(30, join).await.unwrap();
    assert!(result.unwrap_err().to_string().contains("forced"));
}
