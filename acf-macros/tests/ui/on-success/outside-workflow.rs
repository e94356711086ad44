use acf_sdk::{on_success, Context, StepError};

struct W;

impl W {
    #[on_success]
    async fn done(&self, _ctx: &Context) -> Result<(), StepError> { Ok(()) }
}

fn main() {}
