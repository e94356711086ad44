//! A single-task workflow: run a worker, trigger the task, await its typed output.
//!
//! `cargo run -p acf-examples --example simple_task`

use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, acf_sdk::JsonSchema)]
#[schemars(crate = "acf_sdk::schemars")]
struct Greet {
    name: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct Greeting {
    message: String,
}

async fn greet(input: Greet, ctx: Context) -> Result<Greeting, StepError> {
    ctx.log(format!("greeting {}", input.name)).await?;
    Ok(Greeting {
        message: format!("Hello, {}!", input.name),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_engine, client) = acf_examples::local_engine().await?;
    let workflow = WorkflowBuilder::new("greeter")
        .input_schema::<Greet>()
        .task(TaskDefinition::new("greet").retries(2), greet)
        .build()?;
    let worker = client
        .worker("example-worker")
        .handle_signals(false)
        .workflow(workflow)
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());

    let output = client
        .run(
            "greeter",
            Greet { name: "Ada".into() },
            TriggerOptions::default(),
        )
        .await?;
    let greeting: Greeting = output.step("greet")?;
    println!("{}", greeting.message);

    handle.shutdown();
    running.await??;
    Ok(())
}
