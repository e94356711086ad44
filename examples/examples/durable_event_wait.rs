//! A durable step that waits for an event in its own scope, or gives up after a timeout.
//!
//! `cargo run -p acf-examples --example durable_event_wait`

use std::time::Duration;

use acf_sdk::{Context, PushOptions, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize)]
struct Session {
    id: String,
}

async fn await_reply(session: Session, ctx: Context) -> Result<serde_json::Value, StepError> {
    // Event OR timeout, in one or-group; only events pushed with this session's scope count.
    let reply = ctx
        .wait_for_event(
            "reply",
            Some(&session.id),
            None,
            Some(Duration::from_secs(30)),
        )
        .await?;
    Ok(match reply {
        Some(payload) => json!({ "reply": payload["text"] }),
        None => json!({ "reply": null, "timed_out": true }),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_engine, client) = acf_examples::local_engine().await?;
    let workflow = WorkflowBuilder::new("conversation")
        .task(
            TaskDefinition::new("await_reply")
                .durable(true)
                .execution_timeout(Duration::from_secs(120)),
            await_reply,
        )
        .build()?;
    let worker = client
        .worker("durable-worker")
        .handle_signals(false)
        .workflow(workflow)
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());

    let run = client
        .trigger(
            "conversation",
            Session { id: "s-42".into() },
            TriggerOptions::default(),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Another conversation's reply does not wake this run; its own does.
    client
        .push(
            "reply",
            json!({ "text": "not for you" }),
            PushOptions::default().scope("s-7"),
        )
        .await?;
    client
        .push(
            "reply",
            json!({ "text": "hi there" }),
            PushOptions::default().scope("s-42"),
        )
        .await?;
    let output = run.result().await?;
    println!("{}", output.outputs["await_reply"]);

    handle.shutdown();
    running.await??;
    Ok(())
}
