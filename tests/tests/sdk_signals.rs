//! SIGTERM drains a step in flight and the worker exits cleanly; a second signal forces the exit.
//! (Its own test binary: the signals are sent to this process.)

use acf_tests::sdk_support;

use std::process::Command;
use std::time::Duration;

use acf_sdk::{
    Client, Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder, WorkflowRunRef,
};
use sdk_support::{client, engine, eventually, ready, within};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

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

/// Starts a worker named `name` whose one step sleeps `ms`, triggers it and sends SIGTERM once the step
/// runs; returns when the worker drains, with the worker's join handle and the run.
async fn sigterm_with_a_step_in_flight(
    client: &Client,
    name: &str,
    ms: u64,
) -> (JoinHandle<acf_sdk::Result<()>>, WorkflowRunRef) {
    let worker = client.worker(name).workflow(sleeper(ms)).build().unwrap();
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
    (join, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_a_second_signal_forces() {
    let engine = engine().await;
    let client = client(&engine);

    // 1. One SIGTERM with a step in flight: the step finishes, is reported, and `run` returns Ok.
    let (join, run) = sigterm_with_a_step_in_flight(&client, "sig-worker", 1500).await;
    within(30, join).await.unwrap().expect("graceful exit");
    let out = within(30, run.result()).await.unwrap();
    assert_eq!(out.outputs["sleep"], json!({ "slept": 1500 }));

    // 2. Two signals: the second forces the exit while a long step is still running.
    let (join, _run) = sigterm_with_a_step_in_flight(&client, "sig-worker-2", 120_000).await;
    sigterm();
    let result = within(30, join).await.unwrap();
    assert!(result.unwrap_err().to_string().contains("forced"));
}
