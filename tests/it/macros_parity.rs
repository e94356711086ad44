//! Workflows declared with `#[workflow]` register exactly what the same declarations in the official Python
//! SDK (`tests/python/macros_parity.py`) register: both `PutWorkflow` requests are captured by the embedded
//! engine and compared field by field. Two workflows cover every option the macros accept (the DAG one is the
//! shared fixture, `acf_tests::macros_fixtures::OrderPipeline`). Only the input
//! JSON schema differs in spelling (schemars vs pydantic), so it is compared by meaning: the same
//! properties, each with the same JSON type, and the same required set.

use acf_sdk::{Context, StepError, step, workflow};
use acf_tests::macros_fixtures::{Order, OrderPipeline, registered_pair, registered_with_python};

struct ParityLimits;

#[workflow(
    concurrency(expression = "input.id", max_runs = 5),
    concurrency(max_runs = 100, strategy = "cancel_newest")
)]
impl ParityLimits {
    #[step(concurrency(max_runs = 3))]
    async fn only(&self, _ctx: &Context, _input: &Order) -> Result<(), StepError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn macro_registration_matches_the_python_sdk() {
    let requests = registered_with_python("macros_parity.py", async |client| {
        client
            .register(&OrderPipeline { cents_per_item: 5 })
            .await
            .expect("the DAG workflow registers");
        client
            .register(&ParityLimits)
            .await
            .expect("the limits workflow registers");
    })
    .await;
    let (rust, python) = registered_pair(&requests, "order-pipeline");
    assert_eq!(rust, python);
    let (rust, python) = registered_pair(&requests, "parity-limits");
    assert_eq!(rust, python);
}
