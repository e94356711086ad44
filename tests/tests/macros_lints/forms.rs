//! The expansion of conditions, `#[on_success]`, `#[task]` and the remaining workflow options stays clean under
//! the same strict lints (a public module, so its items are reachable and `missing_docs`/`unreachable_pub` apply).

use acf_sdk::{Context, StepError, Workflow, on_success, step, task, workflow};

use crate::{Input, Output};

/// The concurrency key, shared with the declaration.
pub const KEY: &str = "input.n";

/// A workflow with every condition form and the remaining workflow options.
pub struct Gated;

#[workflow(
    version = "v1",
    cron_input = r#"{"n": 1}"#,
    concurrency(expression = KEY, max_runs = 2),
    default_filter(expression = "input.n > 1", scope = "s", payload = r#"{"a": 1}"#),
    idempotency(expression = "input.n", ttl = "5m")
)]
impl Gated {
    #[step]
    async fn first(&self, _ctx: &Context, input: &Input) -> Result<Output, StepError> {
        Ok(Output { n: input.n })
    }

    #[step(
        parents = [first],
        wait_for = [any(sleep("5s"), event("go", filter = "input.ok", scope = "s")), parent(first, "output.n > 0")],
        skip_if = parent(first, "output.n == 0"),
        cancel_if = event("stop", key = "stopped")
    )]
    async fn second(
        &self,
        _ctx: &Context,
        _input: &Input,
        first: &Output,
    ) -> Result<Output, StepError> {
        Ok(Output { n: first.n + 1 })
    }

    #[on_success]
    async fn done(&self, ctx: &Context, _input: &Input) -> Result<(), StepError> {
        let _second: Output = ctx.parent_output(Self::SECOND)?;
        Ok(())
    }
}

/// A standalone task.
///
/// # Errors
///
/// Never; the signature is the one tasks have.
#[task(retries = 1, durable)]
pub async fn standalone(_ctx: &Context, input: &Input) -> Result<Output, StepError> {
    Ok(Output { n: input.n })
}

#[test]
fn linted_forms_register() {
    let definition = Gated.definition();
    assert_eq!(
        definition
            .tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        [Gated::FIRST, Gated::SECOND, Gated::DONE]
    );
    assert_eq!(definition.tasks[1].conditions.len(), 4);
    assert_eq!(definition.tasks[2].parents, [Gated::SECOND]);
    let task = Standalone.definition();
    assert_eq!(task.name, "standalone");
    assert!(task.tasks[0].durable);
}
