//! A typed trigger client for one workflow (what `#[workflow]` generates as `MyWorkflow::client(&client)`).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, RunOutput, TriggerOptions, WorkflowRunRef};
use crate::error::Result;

/// Triggers a workflow with input `I` and decodes its result as `O`: the output of `output_step`, the map of
/// every step's output, or what a custom [`Decoder`] builds.
///
/// Constructing one needs no bounds: `I: Serialize` and `O: DeserializeOwned` are required by the methods that
/// send the input or decode the result, so a type missing them is reported where the user calls those methods.
pub struct TypedWorkflowClient<I, O> {
    client: Client,
    workflow: String,
    output_step: Option<&'static str>,
    /// `None`: the map of every step's output (decoded with `O`'s `DeserializeOwned`, needed only then).
    decode: Option<Decoder<O>>,
    _input: PhantomData<fn(I)>,
}

/// Turns a finished run's outputs into the typed result.
pub type Decoder<O> = fn(&RunOutput) -> Result<O>;

fn decode_all<O: DeserializeOwned>(output: &RunOutput) -> Result<O> {
    output.all()
}

impl<I, O> Clone for TypedWorkflowClient<I, O> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            workflow: self.workflow.clone(),
            decode: self.decode,
            output_step: self.output_step,
            _input: PhantomData,
        }
    }
}

impl<I, O> TypedWorkflowClient<I, O> {
    /// A client for `workflow` (name without namespace).
    pub fn new(client: &Client, workflow: &str, output_step: Option<&'static str>) -> Self {
        Self {
            client: client.clone(),
            workflow: workflow.to_owned(),
            output_step,
            decode: None,
            _input: PhantomData,
        }
    }

    /// A client whose result is built by `decode` (e.g. a tuple of several leaf steps' outputs).
    pub fn with_decoder(client: &Client, workflow: &str, decode: Decoder<O>) -> Self {
        Self {
            client: client.clone(),
            workflow: workflow.to_owned(),
            output_step: None,
            decode: Some(decode),
            _input: PhantomData,
        }
    }
}

impl<I: Serialize, O> TypedWorkflowClient<I, O> {
    /// Triggers without waiting.
    pub async fn run_no_wait(&self, input: I) -> Result<WorkflowRunRef> {
        self.run_no_wait_with(input, TriggerOptions::default())
            .await
    }

    /// Triggers with options (metadata, priority, desired worker or labels, child key: as
    /// [`Client::trigger`]) without waiting; [`result`](Self::result) gives the typed result later.
    pub async fn run_no_wait_with(
        &self,
        input: I,
        options: TriggerOptions,
    ) -> Result<WorkflowRunRef> {
        self.client.trigger(&self.workflow, input, options).await
    }

    /// Triggers many runs at once, each with its options (as [`Client::bulk_trigger`]); the references
    /// come back in input order.
    pub async fn run_many_no_wait(
        &self,
        runs: Vec<(I, TriggerOptions)>,
    ) -> Result<Vec<WorkflowRunRef>> {
        let runs = runs
            .into_iter()
            .map(|(input, options)| {
                Ok((self.workflow.clone(), super::encode_input(input)?, options))
            })
            .collect::<Result<Vec<_>>>()?;
        self.client.bulk_trigger(runs).await
    }

    /// Schedules runs at the given instants.
    pub async fn schedule(&self, at: &[DateTime<Utc>], input: I) -> Result<Vec<String>> {
        self.schedule_with(at, input, TriggerOptions::default())
            .await
    }

    /// Schedules runs at the given instants, with options (as [`Client::schedule`]).
    pub async fn schedule_with(
        &self,
        at: &[DateTime<Utc>],
        input: I,
        options: TriggerOptions,
    ) -> Result<Vec<String>> {
        self.client
            .schedule(&self.workflow, at, input, options)
            .await
    }
}

impl<I, O: DeserializeOwned> TypedWorkflowClient<I, O> {
    /// The typed result of a run triggered earlier.
    pub async fn result(&self, run: &WorkflowRunRef) -> Result<O> {
        let output = run.result().await?;
        match (self.output_step, self.decode) {
            (Some(step), _) => output.step(step),
            (None, Some(decode)) => decode(&output),
            (None, None) => decode_all(&output),
        }
    }
}

impl<I: Serialize, O: DeserializeOwned> TypedWorkflowClient<I, O> {
    /// Runs the workflow and waits for its typed result.
    pub async fn run(&self, input: I) -> Result<O> {
        self.run_with(input, TriggerOptions::default()).await
    }

    /// Runs with options and waits for the typed result.
    pub async fn run_with(&self, input: I, options: TriggerOptions) -> Result<O> {
        let run = self.client.trigger(&self.workflow, input, options).await?;
        self.result(&run).await
    }
}
