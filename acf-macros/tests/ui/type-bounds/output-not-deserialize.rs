use acf_sdk::{workflow, step, Context, StepError};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
struct Input {}

#[derive(serde::Serialize)]
struct Out {}

struct W;

#[workflow]
impl W {
    #[step]
    async fn a(&self, _ctx: &Context, _input: &Input) -> Result<Out, StepError> { Ok(Out {}) }
}

/// The missing `Deserialize` is reported here, where the result is decoded, not in the generated client.
async fn trigger(client: &acf_sdk::Client) {
    let _ = W::client(client).run(Input {}).await;
}

fn main() {
    let _ = trigger;
}
