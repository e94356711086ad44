//! The expansion stays clean under strict lints a user may enable: this crate denies them, so
//! `cargo clippy --all-targets -- -D warnings` (CI) fails if generated code trips any of them.

#![deny(
    missing_docs,
    unused,
    unused_qualifications,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic,
    clippy::allow_attributes,
    clippy::absolute_paths,
    clippy::used_underscore_binding
)]

pub mod forms;

use acf_sdk::{Context, StepError, Workflow, on_failure, step, workflow};
use serde::{Deserialize, Serialize};

/// Input of the linted workflow.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Input {
    /// A number.
    pub n: u32,
}

/// Output of the linted workflow's steps.
#[derive(Serialize, Deserialize)]
pub struct Output {
    /// A number.
    pub n: u32,
}

/// A workflow exercising every generated item (parents, options, on-failure, tuple client).
pub struct Linted;

#[workflow(on_events = ["lint"], sticky = "soft", default_priority = 3)]
impl Linted {
    #[step(
        retries = 2,
        execution_timeout = "10s",
        backoff_factor = 1.5,
        backoff_max = "1m"
    )]
    async fn first(&self, _ctx: &Context, input: &Input) -> Result<Output, StepError> {
        Ok(Output { n: input.n })
    }

    #[step(parents = [first], durable, rate_limit(dynamic_key = "input.n", limit = 3))]
    async fn second(
        &self,
        _ctx: &Context,
        _input: &Input,
        first: &Output,
    ) -> Result<Output, StepError> {
        Ok(Output { n: first.n + 1 })
    }

    #[step(parents = [first], worker_label(key = "gpu", value = "a100", required))]
    async fn third(
        &self,
        _ctx: &Context,
        input: Input,
        first: Output,
    ) -> Result<Output, StepError> {
        Ok(Output {
            n: first.n + input.n,
        })
    }

    #[on_failure]
    async fn failed(&self, _ctx: &Context, _input: &Input) -> Result<(), StepError> {
        Ok(())
    }
}

#[test]
fn linted_workflow_registers() {
    let definition = Linted.definition();
    assert_eq!(definition.name, "linted");
    assert_eq!(
        definition
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["first", "second", "third"]
    );
    assert_eq!(
        definition.on_failure.map(|t| t.name),
        Some("failed-on-failure".to_owned())
    );
}
