use acf_sdk::{workflow, step, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

#[derive(serde::Deserialize)]
struct OtherInput {}

#[workflow]
impl W {
    #[step]
    async fn a(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }
    #[step]
    async fn b(&self, _ctx: &Context, _input: &OtherInput) -> Result<Out, StepError> { Ok(Out {}) }
}

fn main() {}
