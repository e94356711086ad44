//! The only error is the macro's: the impl is still emitted (its methods resolve) and the type still
//! implements `Workflow`, so code using it adds no follow-on errors.
use acf_sdk::{workflow, step, Context, StepError, Workflow};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

#[workflow]
impl W {
    #[step(retries = "three")]
    async fn a(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }

    fn helper(&self) -> u8 { 1 }
}

fn register(workflow: impl Workflow) -> String {
    workflow.name().to_owned()
}

fn main() {
    let _ = W.helper();
    let _ = register(W);
}
