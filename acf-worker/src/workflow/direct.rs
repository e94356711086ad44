//! Running a logical turn in-process, without Hatchet: the steps in dependency order through the SDK's test
//! contexts, retrying retryable failures up to each step's `retries` (after a short fixed pause instead of the
//! engine's backoff) and calling `on_failure` with every completed step's output, as the engine does.

use std::collections::BTreeMap;
use std::time::Duration;

use acf_sdk::testing::TestContext;
use acf_sdk::{StepError, Workflow};
use serde_json::Value;

use super::{FailureReport, TurnInput};
use crate::models::WorkflowOutput;

/// Pause between attempts of a step in a direct run.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A direct run that failed for good.
#[derive(Debug)]
pub struct DirectFailure {
    /// The step that failed.
    pub step: String,
    /// Its last error.
    pub error: StepError,
    /// What `on_failure` recorded (an error text if it failed too).
    pub report: Result<FailureReport, String>,
}

/// The result of [`run_direct`].
#[derive(Debug)]
pub struct DirectRun {
    /// The final output, or the failure.
    pub result: Result<WorkflowOutput, DirectFailure>,
    /// Every completed step's output, by step name.
    pub outputs: BTreeMap<String, Value>,
    /// Attempts per step, by step name.
    pub attempts: BTreeMap<String, i32>,
}

/// Runs one logical turn for `input` on `workflow` (a `LogicalTurnWorkflow` or a `ConfiguredWorkflow`).
pub async fn run_direct<W: Workflow + ?Sized>(workflow: &W, input: &TurnInput) -> DirectRun {
    let definition = workflow.definition();
    let base = TestContext::new(input.as_json());
    let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
    let mut attempts: BTreeMap<String, i32> = BTreeMap::new();
    let mut last_step = String::new();
    for task in &definition.tasks {
        last_step.clone_from(&task.name);
        let mut attempt = 0;
        loop {
            let mut ctx = base.clone().step(&task.name).retry_count(attempt);
            for parent in &task.parents {
                if let Some(output) = outputs.get(parent) {
                    ctx = ctx.parent_output(parent, output);
                }
            }
            attempts.insert(task.name.clone(), attempt + 1);
            match workflow.dispatch(&task.name, ctx.build()).await {
                Ok(output) => {
                    outputs.insert(task.name.clone(), output);
                    break;
                }
                Err(error) if !error.is_non_retryable() && attempt < task.retries => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(error) => {
                    let report = match &definition.on_failure {
                        Some(handler) => {
                            let mut ctx = base
                                .clone()
                                .step(&handler.name)
                                .step_run_error(&task.name, &error.to_report());
                            for (step, output) in &outputs {
                                ctx = ctx.parent_output(step, output);
                            }
                            match workflow.dispatch(&handler.name, ctx.build()).await {
                                Ok(value) => {
                                    serde_json::from_value(value).map_err(|e| e.to_string())
                                }
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        None => Err("the workflow has no on_failure handler".to_owned()),
                    };
                    return DirectRun {
                        result: Err(DirectFailure {
                            step: task.name.clone(),
                            error,
                            report,
                        }),
                        outputs,
                        attempts,
                    };
                }
            }
        }
    }
    let result = outputs
        .get(&last_step)
        .cloned()
        .ok_or_else(|| "the workflow has no steps".to_owned())
        .and_then(|value| serde_json::from_value(value).map_err(|e| e.to_string()))
        .map_err(|reason| DirectFailure {
            step: last_step.clone(),
            error: StepError::non_retryable(reason),
            report: Err("not run".to_owned()),
        });
    DirectRun {
        result,
        outputs,
        attempts,
    }
}
