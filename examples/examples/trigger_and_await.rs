//! A client-only view: trigger runs (one, bulk, scheduled), await results without polling, and push events.
//! The worker runs in the same process only to make the example self-contained.
//!
//! `cargo run -p acf-examples --example trigger_and_await`

use acf_sdk::{
    Context, PushOptions, StepError, TaskDefinition, TriggerOptions, TypedWorkflowClient,
    WorkflowBuilder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize)]
struct Order {
    id: u32,
}

#[derive(Serialize, Deserialize, Debug)]
struct Receipt {
    order: u32,
    source: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_engine, client) = acf_examples::local_engine().await?;
    let workflow = WorkflowBuilder::new("orders")
        .configure(|d| d.on_event("order:placed"))
        .task(
            TaskDefinition::new("receipt"),
            |order: Order, ctx: Context| async move {
                let source = ctx
                    .additional_metadata()
                    .get("source")
                    .and_then(|v| v.as_str())
                    .unwrap_or("event")
                    .to_owned();
                Ok::<_, StepError>(Receipt {
                    order: order.id,
                    source,
                })
            },
        )
        .build()?;
    let worker = client
        .worker("orders-worker")
        .handle_signals(false)
        .workflow(workflow)
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());

    // Typed: input and output types checked at compile time.
    let orders: TypedWorkflowClient<Order, Receipt> =
        TypedWorkflowClient::new(&client, "orders", Some("receipt"));
    println!("{:?}", orders.run(Order { id: 1 }).await?);

    // Untyped, with metadata; many runs awaited at once over one subscription.
    let runs = client
        .bulk_trigger(
            (2..5)
                .map(|id| {
                    (
                        "orders".to_owned(),
                        json!({ "id": id }),
                        TriggerOptions::default().metadata("source", "bulk"),
                    )
                })
                .collect(),
        )
        .await?;
    for run in runs {
        println!("{:?}", run.result().await?.step::<Receipt>("receipt")?);
    }

    // An event triggers the workflow too.
    let event_id = client
        .push("order:placed", json!({ "id": 9 }), PushOptions::default())
        .await?;
    println!("pushed event {event_id}");

    handle.shutdown();
    running.await??;
    Ok(())
}
