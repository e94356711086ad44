//! The expansion uses absolute paths only: it compiles and behaves the same with `Result`, `Ok`, `Err`,
//! `Option`, `Some`, `None`, `String`, `Box`, `Vec` and the `core`/`std` names shadowed by user items.

#![allow(dead_code, non_camel_case_types, clippy::upper_case_acronyms)]

use acf_sdk::testing::TestContext;
use acf_sdk::{Context, StepError, Workflow, on_failure, step, workflow};

struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct String;
struct Box;
struct Vec;
struct Duration;
mod core {}
mod std {}
mod serde {}
mod serde_json {}

#[derive(::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
struct Input {
    n: u32,
}

#[derive(::serde::Serialize, ::serde::Deserialize)]
struct Doubled {
    n: u32,
}

#[derive(::serde::Serialize, ::serde::Deserialize)]
struct Tripled {
    n: u32,
}

struct Shadowed;

#[workflow(on_events = ["shadow"], concurrency(expression = "input.n"))]
impl Shadowed {
    #[step(
        execution_timeout = "1m",
        retries = 1,
        backoff_factor = 2.0,
        backoff_max = "10s"
    )]
    async fn double(
        &self,
        _ctx: &Context,
        input: &Input,
    ) -> ::core::result::Result<Doubled, StepError> {
        ::core::result::Result::Ok(Doubled { n: input.n * 2 })
    }

    #[step(parents = [double], rate_limit(key = "k"), worker_label(key = "a", value = 1), slots = 1)]
    async fn triple(
        &self,
        _ctx: &Context,
        input: &Input,
        doubled: &Doubled,
    ) -> ::core::result::Result<Tripled, StepError> {
        ::core::result::Result::Ok(Tripled {
            n: input.n + doubled.n,
        })
    }

    #[step(parents = [double])]
    async fn sibling(
        &self,
        _ctx: &Context,
        _input: &Input,
        _doubled: &Doubled,
    ) -> ::core::result::Result<(), StepError> {
        ::core::result::Result::Ok(())
    }

    #[on_failure]
    async fn failed(
        &self,
        _ctx: &Context,
        _input: &Input,
    ) -> ::core::result::Result<(), StepError> {
        ::core::result::Result::Ok(())
    }
}

#[tokio::test]
async fn expansion_ignores_shadowed_prelude_names() {
    let wf = Shadowed;
    assert_eq!(wf.name(), "shadowed");
    assert_eq!(wf.definition().tasks.len(), 3);
    let ctx = TestContext::new(::serde_json::json!({ "n": 2 }))
        .step("triple")
        .parent_output("double", ::serde_json::json!({ "n": 4 }))
        .build();
    let out = wf.dispatch("triple", ctx).await.expect("triple runs");
    assert_eq!(out, ::serde_json::json!({ "n": 6 }));
}
