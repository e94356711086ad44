//! Registration, triggering, scheduling, run details and cancellation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Client, RunOutput, encode_input, json_object_text, metadata_text};
use crate::error::{Error, Result};
use crate::model::{DesiredWorkerLabel, Priority, RateLimitDuration};
use crate::proto::{self, v1};
use crate::workflow::Workflow;

/// Options of a trigger.
#[derive(Debug, Clone, Default)]
pub struct TriggerOptions {
    /// Additional metadata (a JSON object).
    pub additional_metadata: Map<String, Value>,
    /// Run priority.
    pub priority: Option<Priority>,
    /// Desired worker labels for this run.
    pub desired_worker_labels: BTreeMap<String, DesiredWorkerLabel>,
    /// Pin the run to a worker (sticky).
    pub desired_worker_id: Option<String>,
    /// Spawn as a child of this (workflow run id, task run id, child index).
    pub parent: Option<(String, String, i32)>,
    /// Dedupe key of a child run.
    pub child_key: Option<String>,
}

impl TriggerOptions {
    /// Adds a metadata entry.
    #[must_use]
    pub fn metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.additional_metadata
            .insert(key.to_owned(), value.into());
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// A triggered run.
#[derive(Debug, Clone)]
pub struct WorkflowRunRef {
    /// The workflow run id.
    pub run_id: String,
    client: Client,
}

impl WorkflowRunRef {
    /// Waits for the run to finish (through the shared `SubscribeToWorkflowRuns` stream, no polling).
    pub async fn result(&self) -> Result<RunOutput> {
        self.client.result(&self.run_id).await
    }
}

/// Status of a run (`GetRunDetails`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetails {
    /// Run status (`v1.RunStatus`), e.g. `Completed`.
    pub status: v1::RunStatus,
    /// Whether the run is finished.
    pub done: bool,
    /// The run input.
    pub input: Value,
    /// Additional metadata.
    pub additional_metadata: Value,
    /// Tasks by readable id.
    pub tasks: BTreeMap<String, TaskRunDetail>,
}

/// Status of one task run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRunDetail {
    /// Task run id.
    pub external_id: String,
    /// Status.
    pub status: v1::RunStatus,
    /// Error text if failed.
    pub error: Option<String>,
    /// Output if completed.
    pub output: Option<Value>,
}

fn json_bytes(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or(Value::Null)
    }
}

impl Client {
    /// Registers a workflow (`v1.AdminService/PutWorkflow`), namespaced with the client's namespace.
    pub async fn register(&self, workflow: &dyn Workflow) -> Result<()> {
        let request = workflow.definition().to_proto(&self.config().namespace)?;
        let admin = self
            .connection()
            .admin_for(prost::Message::encoded_len(&request));
        self.unary_policy()
            .run("v1.AdminService/PutWorkflow", || {
                let mut admin = admin.clone();
                let request = request.clone();
                async move { admin.put_workflow(request).await }
            })
            .await?;
        Ok(())
    }

    pub(crate) fn trigger_request(
        &self,
        workflow: &str,
        input: &Value,
        options: &TriggerOptions,
    ) -> v1::TriggerWorkflowRequest {
        let (parent_id, parent_task, child_index) = match &options.parent {
            Some((run, task, index)) => (Some(run.clone()), Some(task.clone()), *index),
            None => (None, None, 0),
        };
        v1::TriggerWorkflowRequest {
            name: self.config().apply_namespace(workflow),
            input: json_object_text(input),
            parent_id,
            parent_task_run_external_id: parent_task,
            child_index: Some(child_index),
            child_key: options.child_key.clone(),
            additional_metadata: metadata_text(&options.additional_metadata),
            desired_worker_id: options.desired_worker_id.clone(),
            priority: options.priority.map(Priority::as_i32),
            desired_worker_labels: options
                .desired_worker_labels
                .iter()
                .map(|(k, v)| (k.clone(), crate::model::desired_label_proto(v)))
                .collect(),
        }
    }

    /// Triggers a run of `workflow` (name without namespace) and returns its reference without waiting.
    pub async fn trigger(
        &self,
        workflow: &str,
        input: impl Serialize,
        options: TriggerOptions,
    ) -> Result<WorkflowRunRef> {
        let request = self.trigger_request(workflow, &encode_input(input)?, &options);
        let client = self.connection().workflows_for(request.input.len());
        let response = self
            .unary_policy()
            .run("WorkflowService/TriggerWorkflow", || {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.trigger_workflow(request).await }
            })
            .await?;
        Ok(WorkflowRunRef {
            run_id: response.into_inner().workflow_run_id,
            client: self.clone(),
        })
    }

    /// Triggers a run and waits for its outputs.
    pub async fn run(
        &self,
        workflow: &str,
        input: impl Serialize,
        options: TriggerOptions,
    ) -> Result<RunOutput> {
        self.trigger(workflow, input, options).await?.result().await
    }

    /// Triggers many runs (`BulkTriggerWorkflow`, chunked to ≤ 1000 requests and the max message size); run
    /// ids come back in input order.
    pub async fn bulk_trigger(
        &self,
        runs: Vec<(String, Value, TriggerOptions)>,
    ) -> Result<Vec<WorkflowRunRef>> {
        use prost::Message as _;
        let requests: Vec<_> = runs
            .iter()
            .map(|(w, i, o)| self.trigger_request(w, i, o))
            .collect();
        let limit = self
            .config()
            .max_send_message_length
            .saturating_sub(1024)
            .max(1);
        let mut chunks: Vec<Vec<v1::TriggerWorkflowRequest>> = vec![Vec::new()];
        let mut size = 0;
        for request in requests {
            let len = request.encoded_len() + 8;
            let last = chunks.last().map_or(0, Vec::len);
            if last > 0 && (last >= 1000 || size + len > limit) {
                chunks.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(request);
            }
        }
        let client = self.connection().workflows_for(usize::MAX);
        let mut refs = Vec::new();
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            let request = proto::BulkTriggerWorkflowRequest { workflows: chunk };
            let response = self
                .unary_policy()
                .run("WorkflowService/BulkTriggerWorkflow", || {
                    let mut client = client.clone();
                    let request = request.clone();
                    async move { client.bulk_trigger_workflow(request).await }
                })
                .await?;
            refs.extend(
                response
                    .into_inner()
                    .workflow_run_ids
                    .into_iter()
                    .map(|run_id| WorkflowRunRef {
                        run_id,
                        client: self.clone(),
                    }),
            );
        }
        Ok(refs)
    }

    /// Schedules runs at the given instants (`ScheduleWorkflow`); returns the scheduled run ids.
    pub async fn schedule(
        &self,
        workflow: &str,
        at: &[DateTime<Utc>],
        input: impl Serialize,
        options: TriggerOptions,
    ) -> Result<Vec<String>> {
        let input = encode_input(input)?;
        let request = proto::ScheduleWorkflowRequest {
            name: self.config().apply_namespace(workflow),
            schedules: at
                .iter()
                .map(|t| prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                })
                .collect(),
            input: json_object_text(&input),
            parent_id: options.parent.as_ref().map(|p| p.0.clone()),
            parent_task_run_external_id: options.parent.as_ref().map(|p| p.1.clone()),
            child_index: options.parent.as_ref().map(|p| p.2),
            child_key: options.child_key.clone(),
            additional_metadata: metadata_text(&options.additional_metadata),
            priority: options.priority.map(Priority::as_i32),
        };
        let client = self.connection().workflows_for(request.input.len());
        let response = self
            .unary_policy()
            .run("WorkflowService/ScheduleWorkflow", || {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.schedule_workflow(request).await }
            })
            .await?;
        Ok(response
            .into_inner()
            .scheduled_workflows
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    /// Creates or updates a static rate limit (`PutRateLimit`).
    pub async fn put_rate_limit(
        &self,
        key: &str,
        limit: i32,
        duration: RateLimitDuration,
    ) -> Result<()> {
        let request = proto::PutRateLimitRequest {
            key: key.to_owned(),
            limit,
            duration: crate::model::rate_limit_duration_proto(duration) as i32,
        };
        let client = self.connection().workflows();
        self.unary_policy()
            .run("WorkflowService/PutRateLimit", || {
                let mut client = client.clone();
                let request = request.clone();
                async move { client.put_rate_limit(request).await }
            })
            .await?;
        Ok(())
    }

    /// The status and outputs of a run (`v1.AdminService/GetRunDetails`).
    pub async fn run_details(&self, run_id: &str) -> Result<RunDetails> {
        let request = v1::GetRunDetailsRequest {
            external_id: run_id.to_owned(),
        };
        let admin = self.connection().admin();
        let r = self
            .unary_policy()
            .run("v1.AdminService/GetRunDetails", || {
                let mut admin = admin.clone();
                let request = request.clone();
                async move { admin.get_run_details(request).await }
            })
            .await?
            .into_inner();
        Ok(RunDetails {
            status: v1::RunStatus::try_from(r.status).unwrap_or(v1::RunStatus::Queued),
            done: r.done,
            input: json_bytes(&r.input),
            additional_metadata: json_bytes(&r.additional_metadata),
            tasks: r
                .task_runs
                .into_iter()
                .map(|(k, t)| {
                    let detail = TaskRunDetail {
                        external_id: t.external_id,
                        status: v1::RunStatus::try_from(t.status).unwrap_or(v1::RunStatus::Queued),
                        error: t.error,
                        output: t.output.as_deref().map(json_bytes),
                    };
                    (k, detail)
                })
                .collect(),
        })
    }

    /// Cancels runs or tasks by id (`v1.AdminService/CancelTasks`); returns the cancelled task ids.
    pub async fn cancel(&self, ids: &[&str]) -> Result<Vec<String>> {
        let request = v1::CancelTasksRequest {
            external_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            filter: None,
        };
        let admin = self.connection().admin();
        let r = self
            .unary_policy()
            .run("v1.AdminService/CancelTasks", || {
                let mut admin = admin.clone();
                let request = request.clone();
                async move { admin.cancel_tasks(request).await }
            })
            .await?;
        Ok(r.into_inner().cancelled_tasks)
    }

    /// Waits for a run's outputs (shared `SubscribeToWorkflowRuns` stream; falls back to `GetRunDetails` when
    /// the engine omitted results too large for the stream).
    pub async fn result(&self, run_id: &str) -> Result<RunOutput> {
        let event = self.inner.runs.wait(run_id).await?;
        if event.results.is_empty() {
            return self.result_from_details(run_id).await;
        }
        let mut errors = BTreeMap::new();
        let mut outputs = BTreeMap::new();
        for r in event.results {
            if let Some(e) = r.error {
                errors.insert(r.task_name, e);
            } else if let Some(o) = r.output {
                outputs.insert(
                    r.task_name,
                    serde_json::from_str(&o).unwrap_or(Value::Object(Map::new())),
                );
            }
        }
        if errors.is_empty() {
            Ok(RunOutput {
                run_id: run_id.to_owned(),
                outputs,
            })
        } else {
            Err(Error::RunFailed {
                run_id: run_id.to_owned(),
                errors,
            })
        }
    }

    async fn result_from_details(&self, run_id: &str) -> Result<RunOutput> {
        let d = self.run_details(run_id).await?;
        match d.status {
            v1::RunStatus::Cancelled => Err(Error::RunCancelled(run_id.to_owned())),
            v1::RunStatus::Failed => Err(Error::RunFailed {
                run_id: run_id.to_owned(),
                errors: d
                    .tasks
                    .into_iter()
                    .filter_map(|(k, t)| t.error.map(|e| (k, e)))
                    .collect(),
            }),
            _ => Ok(RunOutput {
                run_id: run_id.to_owned(),
                outputs: d
                    .tasks
                    .into_iter()
                    .filter_map(|(k, t)| t.output.map(|o| (k, o)))
                    .collect(),
            }),
        }
    }
}
