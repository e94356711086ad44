//! The [`Workflow`] trait (implemented by `#[workflow]` types and by [`FnWorkflow`]) and the macro-free builder.

mod builder;
mod io;

use futures::future::BoxFuture;

pub use builder::{FnWorkflow, WorkflowBuilder};
pub use io::encode_output;

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
