use acf_sdk::{on_failure, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

impl W {
    #[on_failure]
    async fn a(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }
}

fn main() {}
