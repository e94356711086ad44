use acf_sdk::{workflow, step, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

struct W;

use acf_sdk::on_success;

#[workflow]
impl W {
    #[step]
    async fn only(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }
    #[on_success]
    async fn done(&self, _ctx: &Context, _input: &Input) -> Result<(), StepError> { Ok(()) }
    #[on_success]
    async fn again(&self, _ctx: &Context, _input: &Input) -> Result<(), StepError> { Ok(()) }
}

fn main() {}
