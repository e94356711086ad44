use acf_sdk::{task, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize, serde::Deserialize)]
struct Out {}

#[task]
async fn greet(_ctx: &Context, _input: &Input, _more: u32) -> Result<Out, StepError> { Ok(Out {}) }

fn main() {}
