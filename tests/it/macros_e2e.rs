//! `#[workflow]` types served by a real worker against the embedded engine, triggered through the generated
//! typed clients: one leaf returns that step's output, several leaves return a tuple in declaration order, and
//! a failing step runs the `#[on_failure]` handler, which sees the failure.

use acf_tests::sdk_support;

use std::sync::{Arc, Mutex};

use acf_sdk::{Context, StepError, on_failure, step, workflow};
use acf_tests::macros_fixtures::{In, Num};
use sdk_support::{client, engine, serve, within};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Label {
    text: String,
}

struct Pipeline {
    bonus: i64,
}

#[workflow]
impl Pipeline {
    #[step]
    async fn double(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        Ok(Num { v: input.n * 2 })
    }

    #[step(parents = [double])]
    async fn add(&self, _ctx: &Context, _input: &In, doubled: &Num) -> Result<Num, StepError> {
        Ok(Num {
            v: doubled.v + self.bonus,
        })
    }
}

struct Fork;

#[workflow(name = "Fork-Flow")]
impl Fork {
    #[step]
    async fn root(&self, _ctx: &Context, input: &In) -> Result<Num, StepError> {
        Ok(Num { v: input.n })
    }

    #[step(parents = [root])]
    async fn left(&self, _ctx: &Context, _input: &In, root: &Num) -> Result<Num, StepError> {
        Ok(Num { v: root.v - 1 })
    }

    #[step(parents = [root])]
    async fn right(&self, _ctx: &Context, _input: In, root: Num) -> Result<Label, StepError> {
        Ok(Label {
            text: format!("n={}", root.v),
        })
    }
}

struct Failing {
    seen: Arc<Mutex<Vec<String>>>,
}

#[workflow]
impl Failing {
    #[step]
    async fn explode(&self, _ctx: &Context, _input: &In) -> Result<Num, StepError> {
        Err(StepError::non_retryable("boom"))
    }

    #[on_failure]
    async fn report(&self, ctx: &Context, _input: &In) -> Result<(), StepError> {
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.extend(
            ctx.step_run_errors()
                .iter()
                .map(|(step, error)| format!("{step}: {error}")),
        );
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_clients_run_macro_workflows_on_a_worker() {
    let engine = engine().await;
    let client = client(&engine);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let worker = client
        .worker("macro-worker")
        .slots(4)
        .workflow(Pipeline { bonus: 1 })
        .workflow(Fork)
        .workflow(Failing {
            seen: Arc::clone(&seen),
        });
    let worker = serve(worker).await;

    let added: Num = within(30, Pipeline::client(&client).run(In { n: 20 }))
        .await
        .expect("pipeline runs");
    assert_eq!(added, Num { v: 41 });

    let (left, right) = within(30, Fork::client(&client).run(In { n: 3 }))
        .await
        .expect("fork runs");
    assert_eq!(left, Num { v: 2 });
    assert_eq!(
        right,
        Label {
            text: "n=3".to_owned()
        }
    );

    let failed = within(30, Failing::client(&client).run(In { n: 0 })).await;
    assert!(failed.is_err(), "the run fails");
    sdk_support::eventually(std::time::Duration::from_secs(20), || {
        let seen = Arc::clone(&seen);
        async move { !seen.lock().expect("not poisoned").is_empty() }
    })
    .await;
    let seen = seen.lock().expect("not poisoned").clone();
    assert!(
        seen.iter()
            .any(|line| line.starts_with("explode") && line.contains("boom")),
        "{seen:?}"
    );

    worker.stop().await;
}
