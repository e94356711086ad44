//! A DAG: two steps fan out from `fetch`, `report` joins them; parent outputs are typed.
//!
//! `cargo run -p acf-examples --example dag`

use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Numbers {
    values: Vec<i64>,
}

#[derive(Serialize, Deserialize, Debug)]
struct Stat {
    value: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_engine, client) = acf_examples::local_engine().await?;
    let workflow = WorkflowBuilder::new("stats")
        .task(TaskDefinition::new("fetch"), |input: Numbers, _ctx: Context| async move {
            Ok::<_, StepError>(Numbers { values: input.values })
        })
        .task(TaskDefinition::new("sum").parents(["fetch"]), |_: Numbers, ctx: Context| async move {
            let fetched: Numbers = ctx.parent_output("fetch")?;
            Ok::<_, StepError>(Stat { value: fetched.values.iter().sum() })
        })
        .task(TaskDefinition::new("max").parents(["fetch"]), |_: Numbers, ctx: Context| async move {
            let fetched: Numbers = ctx.parent_output("fetch")?;
            let max = fetched.values.iter().copied().max().ok_or_else(|| StepError::non_retryable("no values"))?;
            Ok::<_, StepError>(Stat { value: max })
        })
        .task(TaskDefinition::new("report").parents(["sum", "max"]), |_: Numbers, ctx: Context| async move {
            let sum: Stat = ctx.parent_output("sum")?;
            let max: Stat = ctx.parent_output("max")?;
            Ok::<_, StepError>(serde_json::json!({ "summary": format!("sum={} max={}", sum.value, max.value) }))
        })
        .build()?;
    let worker = client
        .worker("dag-worker")
        .handle_signals(false)
        .workflow(workflow)
        .build()?;
    let handle = worker.handle();
    let running = tokio::spawn(worker.run());

    let output = client
        .run(
            "stats",
            Numbers {
                values: vec![3, 9, 4],
            },
            TriggerOptions::default(),
        )
        .await?;
    println!("{}", output.outputs["report"]["summary"]);

    handle.shutdown();
    running.await??;
    Ok(())
}
