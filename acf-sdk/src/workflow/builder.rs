//! The macro-free API: a [`WorkflowBuilder`] of typed handlers `async fn(Input, Context) -> Result<Output, E>`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Workflow;
use super::io::encode_output;
use crate::context::Context;
use crate::model::{DefinitionError, TaskDefinition, WorkflowDefinition};
use crate::step_error::{StepError, StepErrorKind};

type Handler = Arc<dyn Fn(Context) -> BoxFuture<'static, Result<Value, StepError>> + Send + Sync>;

/// Erases a typed handler: decodes the input (error names the step and `input`), runs the handler, converts
/// its error and encodes the output as a JSON object.
fn erase<I, O, E, F, Fut>(handler: F) -> Handler
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    E: Into<StepError> + Send + 'static,
    F: Fn(I, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |ctx: Context| {
        let handler = Arc::clone(&handler);
        async move {
            let input: I = ctx.input()?;
            let step = ctx.step_name().to_owned();
            let output = handler(input, ctx).await.map_err(Into::into)?;
            encode_output(&step, &output)
        }
        .boxed()
    })
}

/// Builds a workflow from typed async functions, without macros.
///
/// ```
/// use acf_sdk::{Context, StepError, TaskDefinition, WorkflowBuilder};
/// #[derive(serde::Deserialize)]
/// struct Order { qty: u32 }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Checked { ok: bool }
///
/// async fn check(order: Order, _ctx: Context) -> Result<Checked, StepError> {
///     Ok(Checked { ok: order.qty > 0 })
/// }
///
/// let wf = WorkflowBuilder::new("order-flow")
///     .configure(|d| d.on_event("order:created"))
///     .task(TaskDefinition::new("check").retries(2), check)
///     .task(TaskDefinition::new("ship").parents(["check"]), |_: Order, ctx: Context| async move {
///         let checked: Checked = ctx.parent_output("check")?;
///         Ok::<_, StepError>(serde_json::json!({ "shipped": checked.ok }))
///     })
///     .build()
///     .unwrap();
/// # let _ = wf;
/// ```
pub struct WorkflowBuilder {
    definition: WorkflowDefinition,
    handlers: HashMap<String, Handler>,
}

impl WorkflowBuilder {
    /// A workflow named `name` with Python's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            definition: WorkflowDefinition::new(name),
            handlers: HashMap::new(),
        }
    }

    /// Adjusts workflow options (triggers, concurrency, sticky, priority…) on the definition.
    #[must_use]
    pub fn configure(mut self, f: impl FnOnce(WorkflowDefinition) -> WorkflowDefinition) -> Self {
        self.definition = f(self.definition);
        self
    }

    /// Derives the input JSON Schema from `T` (sent at registration, as Python does for Pydantic models).
    #[must_use]
    pub fn input_schema<T: schemars::JsonSchema>(mut self) -> Self {
        self.definition.input_json_schema = Some(crate::__private::input_schema::<T>());
        self
    }

    /// Adds a task and its handler.
    #[must_use]
    pub fn task<I, O, E, F, Fut>(mut self, task: TaskDefinition, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Into<StepError> + Send + 'static,
        F: Fn(I, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.handlers.insert(task.name.clone(), erase(handler));
        self.definition.tasks.push(task);
        self
    }

    /// Sets the on-failure task and its handler (it reads failures with [`Context::step_run_errors`]).
    #[must_use]
    pub fn on_failure<I, O, E, F, Fut>(mut self, task: TaskDefinition, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Into<StepError> + Send + 'static,
        F: Fn(I, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.handlers.insert(task.name.clone(), erase(handler));
        self.definition.on_failure = Some(task);
        self
    }

    /// Validates the definition and returns the runnable workflow.
    pub fn build(self) -> Result<FnWorkflow, DefinitionError> {
        self.definition.validate()?;
        Ok(FnWorkflow {
            definition: self.definition,
            handlers: self.handlers,
        })
    }
}

/// A workflow built with [`WorkflowBuilder`].
pub struct FnWorkflow {
    definition: WorkflowDefinition,
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for FnWorkflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnWorkflow")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

impl Workflow for FnWorkflow {
    fn name(&self) -> &str {
        &self.definition.name
    }

    fn definition(&self) -> WorkflowDefinition {
        self.definition.clone()
    }

    fn dispatch<'a>(
        &'a self,
        step: &'a str,
        ctx: Context,
    ) -> BoxFuture<'a, Result<Value, StepError>> {
        match self.handlers.get(step) {
            Some(handler) => handler(ctx),
            None => {
                let err = StepError::from_kind(StepErrorKind::UnknownAction(format!(
                    "{}:{step}",
                    self.definition.name
                )));
                async move { Err(err) }.boxed()
            }
        }
    }
}
