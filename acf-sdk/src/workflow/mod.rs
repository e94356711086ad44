//! The [`Workflow`] trait (implemented by `#[workflow]` types and by [`FnWorkflow`]) and the macro-free builder.

mod builder;
mod io;

use futures::future::BoxFuture;

pub use builder::{FnWorkflow, WorkflowBuilder};
pub(crate) use io::json_text;
pub use io::{encode_output, json_kind};

use crate::context::Context;
use crate::model::WorkflowDefinition;
use crate::step_error::StepError;

/// A workflow the worker can register and run.
///
/// Implemented by the `#[workflow]` macro for an annotated impl block, and by [`FnWorkflow`] for the
/// macro-free builder. The worker registers [`definition`](Workflow::definition) and, for every assigned
/// action `service:step`, calls [`dispatch`](Workflow::dispatch) with the lower-cased step name.
pub trait Workflow: Send + Sync + 'static {
    /// The workflow name (without namespace, case kept).
    fn name(&self) -> &str;

    /// The registration definition.
    fn definition(&self) -> WorkflowDefinition;

    /// Runs `step` (a lower-cased task readable id) and returns its output as a JSON object. An unknown step
    /// returns [`StepError`] of kind `UnknownAction`.
    fn dispatch<'a>(
        &'a self,
        step: &'a str,
        ctx: Context,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>>;

    /// This workflow with its registration definition adjusted by `configure` at every
    /// [`definition`](Workflow::definition) call; dispatch is unchanged.
    ///
    /// This is how values known only at start-up (configuration) override what the macros declared at compile
    /// time: retries, backoff, timeouts, concurrency, … The closure must keep the workflow's name and step names
    /// (dispatch still goes to the declared steps); the worker validates the adjusted definition when it is built.
    ///
    /// ```
    /// use acf_sdk::{TaskDefinition, Workflow, WorkflowBuilder};
    /// let wf = WorkflowBuilder::new("w")
    ///     .task(TaskDefinition::new("only").retries(1), |v: serde_json::Value, _| async move {
    ///         Ok::<_, acf_sdk::StepError>(v)
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let retries = 5; // e.g. read from a configuration file
    /// let configured = wf.configured(move |def| def.tasks.iter_mut().for_each(|t| t.retries = retries));
    /// assert_eq!(configured.definition().tasks[0].retries, 5);
    /// ```
    fn configured<F>(self, configure: F) -> Configured<Self>
    where
        Self: Sized,
        F: Fn(&mut WorkflowDefinition) + Send + Sync + 'static,
    {
        Configured {
            inner: self,
            configure: Box::new(configure),
        }
    }
}

/// A workflow whose registration definition is adjusted at registration time; see [`Workflow::configured`].
pub struct Configured<W> {
    inner: W,
    configure: Box<dyn Fn(&mut WorkflowDefinition) + Send + Sync>,
}

impl<W> Configured<W> {
    /// The workflow as declared.
    pub fn inner(&self) -> &W {
        &self.inner
    }
}

impl<W: std::fmt::Debug> std::fmt::Debug for Configured<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<W: Workflow> Workflow for Configured<W> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn definition(&self) -> WorkflowDefinition {
        let mut definition = self.inner.definition();
        (self.configure)(&mut definition);
        definition
    }
    fn dispatch<'a>(
        &'a self,
        step: &'a str,
        ctx: Context,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        self.inner.dispatch(step, ctx)
    }
}

impl<W: Workflow + ?Sized> Workflow for std::sync::Arc<W> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn definition(&self) -> WorkflowDefinition {
        (**self).definition()
    }
    fn dispatch<'a>(
        &'a self,
        step: &'a str,
        ctx: Context,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        (**self).dispatch(step, ctx)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::model::TaskDefinition;
    use crate::testing::{TestContext, run_workflow};

    #[tokio::test]
    async fn configured_adjusts_the_definition_and_keeps_dispatch() {
        let wf = WorkflowBuilder::new("w")
            .task(
                TaskDefinition::new("echo").retries(1),
                |v: Value, _ctx: Context| async move { Ok::<_, StepError>(v) },
            )
            .build()
            .unwrap();
        assert_eq!(wf.definition().tasks[0].retries, 1);
        let configured = wf.configured(|def| {
            for task in &mut def.tasks {
                task.retries = 7;
            }
        });
        assert_eq!(configured.name(), "w");
        assert_eq!(configured.definition().tasks[0].retries, 7);
        assert_eq!(configured.inner().definition().tasks[0].retries, 1);
        let out = run_workflow(&configured, TestContext::new(json!({"k": 1})))
            .await
            .unwrap();
        assert_eq!(out["echo"], json!({"k": 1}));
    }
}
