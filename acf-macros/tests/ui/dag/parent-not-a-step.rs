use acf_sdk::{workflow, step, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

#[workflow]
impl W {
    async fn helper(&self) {}
    #[step(parents = [helper])]
    async fn a(&self, _ctx: &Context, _input: &Input, _h: &Out) -> Result<Out, StepError> { Ok(Out {}) }
}

fn main() {}
