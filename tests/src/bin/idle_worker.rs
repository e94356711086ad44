//! A worker process that gets no work, for the idle-shutdown test (`tests/tests/sdk_idle.rs`).
//!
//! Connects from `HATCHET_CLIENT_*`, serves one workflow with the health server on a free local port,
//! prints `READY <health address>` once `/readyz` would answer 200, handles SIGTERM/SIGINT like any worker,
//! and exits 0 after a graceful shutdown (1 otherwise, with the error on stderr).

use acf_sdk::{Client, Context, StepError, TaskDefinition, WorkflowBuilder};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    if let Err(e) = serve().await {
        eprintln!("idle_worker: {e}");
        std::process::exit(1);
    }
}

async fn serve() -> acf_sdk::Result<()> {
    let client = Client::from_env()?;
    let workflow = WorkflowBuilder::new("idle-wf")
        .task(
            TaskDefinition::new("never"),
            |_: Value, _ctx: Context| async move { Ok::<_, StepError>(json!({})) },
        )
        .build()?;
    let worker = client
        .worker("idle-worker")
        .health_server(Some(([127, 0, 0, 1], 0).into()))
        .workflow(workflow)
        .build()?;
    let handle = worker.handle();
    let run = tokio::spawn(worker.run());
    handle.ready().await;
    let health = handle
        .health_addr()
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    println!("READY {health}");
    run.await
        .map_err(|e| acf_sdk::Error::Worker(format!("worker task: {e}")))?
}
