use acf_sdk::{step, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

impl W {
    #[step]
    async fn a(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }
}

fn main() {}
