//! The context a step runs with: typed input and parent outputs, run identity, cancellation, and the
//! engine-backed operations (logs, streams, timeouts, slots, durable waits).

mod backend;
mod durable_waits;
mod payload;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

pub(crate) use backend::StepBackend;
pub(crate) use backend::decode_wait_payload;
pub use backend::{LogLevel, WaitResult};
pub use payload::StepRunData;

use crate::error::Result;
use crate::step_error::StepError;

/// Identity of one task-run attempt, as assigned by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// Workflow (namespaced) name, when known.
    pub workflow_name: String,
    /// Task readable id (the step name, lower-cased).
    pub step_name: String,
    /// Action id `service:task`.
    pub action_id: String,
    /// The workflow run id.
    pub workflow_run_id: String,
    /// The task run id used in every follow-up call.
    pub task_run_external_id: String,
    /// Task definition id (`task_id` / `job_id` on the wire).
    pub task_id: String,
    /// Job run id (equal to the task run id on v1 engines).
    pub job_run_id: String,
    /// Attempt index (0 = first).
    pub retry_count: i32,
    /// The worker running the step.
    pub worker_id: String,
    /// Run priority (1..3).
    pub priority: i32,
    /// Durable invocation count (1 for the first invocation).
    pub durable_invocation_count: i32,
    /// Parent workflow run (children only).
    pub parent_workflow_run_id: Option<String>,
    /// Child index (children only).
    pub child_index: Option<i32>,
    /// Child key (children only).
    pub child_key: Option<String>,
    /// Key of the event that triggered the run.
    pub triggering_event_key: Option<String>,
    /// Whether the task is durable.
    pub durable: bool,
    /// The namespace in force (normalised), used for event keys of durable waits.
    pub namespace: String,
}

struct Inner {
    info: RunInfo,
    data: StepRunData,
    metadata: Map<String, Value>,
    cancel: CancellationToken,
    backend: Arc<dyn StepBackend>,
    stream_index: AtomicI64,
    wait_seq: AtomicU32,
    child_index: std::sync::atomic::AtomicI32,
}

/// The context of one step attempt. Cheap to clone; every clone refers to the same attempt.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(
        info: RunInfo,
        data: StepRunData,
        metadata: Map<String, Value>,
        cancel: CancellationToken,
        backend: Arc<dyn StepBackend>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                info,
                data,
                metadata,
                cancel,
                backend,
                stream_index: AtomicI64::new(0),
                wait_seq: AtomicU32::new(0),
                child_index: std::sync::atomic::AtomicI32::new(0),
            }),
        }
    }

    /// Identity of this attempt.
    pub fn info(&self) -> &RunInfo {
        &self.inner.info
    }

    /// The step (task readable id).
    pub fn step_name(&self) -> &str {
        &self.inner.info.step_name
    }

    /// The workflow run id.
    pub fn workflow_run_id(&self) -> &str {
        &self.inner.info.workflow_run_id
    }

    /// The task run id.
    pub fn task_run_id(&self) -> &str {
        &self.inner.info.task_run_external_id
    }

    /// The attempt index (0 = first attempt).
    pub fn retry_count(&self) -> i32 {
        self.inner.info.retry_count
    }

    /// The run's additional metadata.
    pub fn additional_metadata(&self) -> &Map<String, Value> {
        &self.inner.metadata
    }

    /// The workflow input as raw JSON.
    pub fn input_json(&self) -> &Value {
        &self.inner.data.input
    }

    /// The workflow input decoded into `T`; the error names the step and `input`.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        T::deserialize(&self.inner.data.input)
            .map_err(|e| StepError::decode(self.step_name(), "input", e))
    }

    /// A parent's output as raw JSON (`None` if the parent did not complete, or is not a parent).
    pub fn parent_json(&self, parent: &str) -> Option<&Value> {
        self.inner.data.parents.get(&parent.to_lowercase())
    }

    /// A parent's output decoded into `T`; the error names the step and the parent.
    pub fn parent_output<T: DeserializeOwned>(&self, parent: &str) -> Result<T, StepError> {
        let field = format!("parent output `{}`", parent.to_lowercase());
        let value = self.parent_json(parent).ok_or_else(|| {
            StepError::from_kind(crate::step_error::StepErrorKind::Decode {
                step: self.step_name().to_owned(),
                field: field.clone(),
                source: <serde_json::Error as serde::de::Error>::custom(
                    "no output: the parent did not complete",
                ),
            })
        })?;
        T::deserialize(value).map_err(|e| StepError::decode(self.step_name(), field, e))
    }

    /// A parent's output decoded into `T` if that parent completed, `None` if it did not.
    ///
    /// For handlers that see whichever steps completed before a failure (`#[on_failure]`): a missing output is
    /// an expected case there, while an output that exists but does not decode is still an error naming the
    /// step and the parent (never silently treated as missing). Name the parent with the step constants the
    /// macros generate (`MyWorkflow::STEP`), so the name cannot drift from the declaration.
    pub fn completed_parent_output<T: DeserializeOwned>(
        &self,
        parent: &str,
    ) -> Result<Option<T>, StepError> {
        match self.parent_json(parent) {
            None => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|e| {
                StepError::decode(
                    self.step_name(),
                    format!("parent output `{}`", parent.to_lowercase()),
                    e,
                )
            }),
        }
    }

    /// Data of satisfied DAG conditions, by `readable_data_key`.
    pub fn triggers(&self) -> &Map<String, Value> {
        &self.inner.data.triggers
    }

    /// The payload of the event filter that matched the triggering event, if any.
    pub fn filter_payload(&self) -> Option<&Value> {
        self.inner
            .data
            .triggers
            .get("filter_payload")
            .filter(|v| !v.is_null())
    }

    /// In an on-failure step: the failed upstream tasks' errors, by readable id.
    pub fn step_run_errors(&self) -> &BTreeMap<String, String> {
        &self.inner.data.step_run_errors
    }

    /// The cancellation token: fired when the engine cancels this attempt or the worker shuts down. Steps
    /// should select on [`CancellationToken::cancelled`] around long awaits; the worker aborts the step after a
    /// grace period anyway.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends a log line to the engine (`PutLog`, level INFO), attached to this task run.
    pub async fn log(&self, message: impl Into<String>) -> Result<()> {
        self.log_at(LogLevel::Info, message).await
    }

    /// Sends a log line with a level. Messages longer than 10 000 characters are truncated (engine limit).
    pub async fn log_at(&self, level: LogLevel, message: impl Into<String>) -> Result<()> {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(10_000) {
            message.truncate(cut);
        }
        self.inner
            .backend
            .log(&self.inner.info, message, level)
            .await
    }

    /// Streams a chunk to subscribers of this run (`PutStreamEvent`), numbered 0, 1, 2… per attempt.
    pub async fn put_stream(&self, data: impl Into<Vec<u8>>) -> Result<()> {
        let index = self.inner.stream_index.fetch_add(1, Ordering::SeqCst);
        self.inner
            .backend
            .put_stream(&self.inner.info, data.into(), index)
            .await
    }

    /// Extends the execution timeout by `by` (added to the current deadline); returns the new deadline.
    pub async fn refresh_timeout(&self, by: Duration) -> Result<DateTime<Utc>> {
        self.inner
            .backend
            .refresh_timeout(&self.inner.info, by)
            .await
    }

    /// Frees this step's worker slot while it keeps running (e.g. before a long wait on an external system).
    pub async fn release_slot(&self) -> Result<()> {
        self.inner.backend.release_slot(&self.inner.info).await
    }

    /// Pushes an event tagged with this run as its source (`hatchet__source_workflow_run_id`, `…_step_run_id`).
    pub async fn push_event(&self, key: &str, payload: Value, scope: Option<&str>) -> Result<()> {
        self.inner
            .backend
            .push_event(
                &self.inner.info,
                key.to_owned(),
                payload,
                scope.map(str::to_owned),
            )
            .await
    }

    /// Triggers `workflow` as a child of this step: linked to this run (`parent_id`,
    /// `parent_task_run_external_id`), numbered with a per-attempt `child_index` (0, 1, 2…) so that a retried
    /// step re-spawning its children gets the existing runs back instead of duplicates, and carrying this run's
    /// additional metadata under the caller's own entries.
    pub async fn spawn_child(
        &self,
        workflow: &str,
        input: impl serde::Serialize,
        options: crate::client::TriggerOptions,
    ) -> Result<crate::client::WorkflowRunRef> {
        let input = serde_json::to_value(input)?;
        let index = self.inner.child_index.fetch_add(1, Ordering::SeqCst);
        let mut options = options;
        options.parent = Some((
            self.inner.info.workflow_run_id.clone(),
            self.inner.info.task_run_external_id.clone(),
            index,
        ));
        for (k, v) in &self.inner.metadata {
            options
                .additional_metadata
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        self.inner
            .backend
            .trigger_child(workflow.to_owned(), input, options)
            .await
    }

    /// [`spawn_child`](Self::spawn_child), then waits for the child's outputs.
    pub async fn run_child(
        &self,
        workflow: &str,
        input: impl serde::Serialize,
        options: crate::client::TriggerOptions,
    ) -> Result<crate::client::RunOutput> {
        let child = self.spawn_child(workflow, input, options).await?;
        let token = self.inner.cancel.clone();
        tokio::select! {
            biased;
            () = token.cancelled() => Err(crate::Error::Cancelled),
            r = child.result() => r,
        }
    }

    pub(crate) fn backend(&self) -> &Arc<dyn StepBackend> {
        &self.inner.backend
    }

    pub(crate) fn next_wait_seq(&self) -> u32 {
        self.inner.wait_seq.fetch_add(1, Ordering::SeqCst)
    }
}
