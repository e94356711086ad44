//! `v1.AdminService`: workflow registration (with validation), triggers, run details, cancel/replay.

use super::{check_priority, check_size, parse_id, parse_json, parse_object};
use crate::engine::Shared;
use crate::engine::lifecycle::TriggerSpec;
use crate::engine::queries::{RunFilter, task_status};
use crate::engine::state::{RunOrigin, State};
use crate::engine::validation;
use crate::proto::v1::admin_service_server::AdminService;
use crate::proto::v1::{
    BranchDurableTaskRequest, BranchDurableTaskResponse, CancelTasksRequest, CancelTasksResponse,
    CreateWorkflowVersionRequest, CreateWorkflowVersionResponse, GetRunDetailsRequest,
    GetRunDetailsResponse, ReplayTasksRequest, ReplayTasksResponse, RunStatus, TaskRunDetail,
    TasksFilter, TriggerWorkflowRunRequest, TriggerWorkflowRunResponse,
};
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub(crate) struct AdminSvc(pub(crate) Arc<Shared>);

/// The `external_ids` of a `CancelTasks` / `ReplayTasks` request, all checked before anything changes.
fn external_ids(ids: &[String]) -> Result<Vec<Uuid>, Status> {
    ids.iter()
        .map(|id| parse_id("external_ids", id))
        .collect::<Result<Vec<_>, _>>()
}

/// What a `CancelTasks` / `ReplayTasks` request acts on: its ids, then the runs its filter matches.
fn targets(state: &State, ids: &[Uuid], filter: Option<&TasksFilter>) -> Vec<Uuid> {
    let mut targets = ids.to_vec();
    if let Some(filter) = filter {
        targets.extend(state.filtered_runs(&RunFilter {
            since: filter.since.and_then(|t| SystemTime::try_from(t).ok()),
            until: filter.until.and_then(|t| SystemTime::try_from(t).ok()),
            workflow_ids: filter.workflow_ids.clone(),
            additional_metadata: filter.additional_metadata.clone(),
            statuses: filter.statuses.clone(),
        }));
    }
    targets
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    async fn put_workflow(
        &self,
        request: Request<CreateWorkflowVersionRequest>,
    ) -> Result<Response<CreateWorkflowVersionResponse>, Status> {
        let req = request.into_inner();
        self.0.record("v1.AdminService/PutWorkflow", &req);
        check_size(&req)?;
        let existing = self.0.lock().workflows.get(&req.name).cloned();
        let previous_req = {
            let registered = self
                .0
                .registered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            registered
                .iter()
                .rev()
                .find(|r| r.name == req.name)
                .cloned()
        };
        let def = match (&existing, previous_req) {
            // Re-registering identical content keeps the version (Hatchet checksums the options).
            (Some(def), Some(prev)) if prev == req => def.clone(),
            _ => {
                let workflow_id = existing
                    .as_ref()
                    .map_or_else(Uuid::new_v4, |d| d.workflow_id);
                Arc::new(
                    validation::workflow(&req, workflow_id)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?,
                )
            }
        };
        let response = CreateWorkflowVersionResponse {
            id: def.version_id.to_string(),
            workflow_id: def.workflow_id.to_string(),
        };
        let cron_input = parse_json(
            "cron_input",
            req.cron_input.as_deref().unwrap_or(""),
            serde_json::json!({}),
        )?;
        self.0
            .mutate(|state, _| {
                state.register_workflow(def)?;
                state.sync_declared_crons(&req.name, &req.cron_triggers, &cron_input);
                Ok(())
            })
            .map_err(|e: validation::ValidationError| Status::invalid_argument(e.to_string()))?;
        self.0
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(req.clone());
        tracing::info!(workflow = %req.name, "workflow registered");
        Ok(Response::new(response))
    }

    async fn cancel_tasks(
        &self,
        request: Request<CancelTasksRequest>,
    ) -> Result<Response<CancelTasksResponse>, Status> {
        let req = request.into_inner();
        let ids = external_ids(&req.external_ids)?;
        let cancelled = self.0.mutate(|state, now| {
            let targets = targets(state, &ids, req.filter.as_ref());
            state.cancel_ids(&targets, now)
        });
        Ok(Response::new(CancelTasksResponse {
            cancelled_tasks: cancelled,
        }))
    }

    async fn replay_tasks(
        &self,
        request: Request<ReplayTasksRequest>,
    ) -> Result<Response<ReplayTasksResponse>, Status> {
        let req = request.into_inner();
        let ids = external_ids(&req.external_ids)?;
        let replayed = self.0.mutate(|state, now| {
            let targets = targets(state, &ids, req.filter.as_ref());
            state.replay_ids(&targets, now)
        });
        Ok(Response::new(ReplayTasksResponse {
            replayed_tasks: replayed,
        }))
    }

    async fn trigger_workflow_run(
        &self,
        request: Request<TriggerWorkflowRunRequest>,
    ) -> Result<Response<TriggerWorkflowRunResponse>, Status> {
        let req = request.into_inner();
        self.0.record("v1.AdminService/TriggerWorkflowRun", &req);
        check_size(&req)?;
        let input_text = String::from_utf8(req.input.clone())
            .map_err(|_| Status::invalid_argument("Invalid request: input must be UTF-8 JSON"))?;
        let meta_text = String::from_utf8(req.additional_metadata.clone()).map_err(|_| {
            Status::invalid_argument("Invalid request: additional_metadata must be UTF-8 JSON")
        })?;
        let spec = TriggerSpec {
            workflow: req.workflow_name.clone(),
            input: parse_json("input", &input_text, serde_json::Value::Null)?,
            metadata: parse_object("additional_metadata", &meta_text)?,
            priority: check_priority(req.priority)?,
            origin: RunOrigin::default(),
        };
        let id = self
            .0
            .mutate(|state, now| state.trigger(spec, now))
            .map_err(|e| super::workflows::trigger_status(&e))?;
        Ok(Response::new(TriggerWorkflowRunResponse {
            external_id: id.to_string(),
        }))
    }

    async fn get_run_details(
        &self,
        request: Request<GetRunDetailsRequest>,
    ) -> Result<Response<GetRunDetailsResponse>, Status> {
        let id = parse_id("external_id", &request.get_ref().external_id)?;
        let state = self.0.lock();
        let run = state
            .runs
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("workflow run {id} not found")))?;
        let status = state.run_status(id).unwrap_or(RunStatus::Queued);
        let task_runs = run
            .tasks
            .iter()
            .chain(&run.on_failure)
            .filter_map(|t| state.tasks.get(t))
            .map(|t| {
                let status = task_status(t.status());
                let detail = TaskRunDetail {
                    external_id: t.id.to_string(),
                    status: status as i32,
                    error: if matches!(status, RunStatus::Failed | RunStatus::Cancelled) {
                        t.error.clone()
                    } else {
                        None
                    },
                    output: if status == RunStatus::Completed {
                        t.output.as_ref().map(|o| o.to_string().into_bytes())
                    } else {
                        None
                    },
                    readable_id: t.readable_id.clone(),
                    is_evicted: status == RunStatus::Evicted,
                };
                (t.readable_id.clone(), detail)
            })
            .collect::<std::collections::HashMap<_, _>>();
        let is_evicted = task_runs.values().any(|t| t.is_evicted);
        let input = if run.input.is_null() {
            "{}".to_owned()
        } else {
            run.input.to_string()
        };
        Ok(Response::new(GetRunDetailsResponse {
            input: input.into_bytes(),
            status: status as i32,
            task_runs,
            done: run.state.is_final(),
            additional_metadata: run.metadata.to_string().into_bytes(),
            is_evicted,
        }))
    }

    async fn branch_durable_task(
        &self,
        _: Request<BranchDurableTaskRequest>,
    ) -> Result<Response<BranchDurableTaskResponse>, Status> {
        Err(Status::unimplemented(
            "BranchDurableTask is not supported by the embedded engine",
        ))
    }
}
