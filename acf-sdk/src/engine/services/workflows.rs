//! `WorkflowService` (v0 admin): the trigger RPCs the Python SDK uses, scheduled runs and static
//! rate-limit definitions.

use super::{check_size, trigger_spec};
use crate::engine::Shared;
use crate::engine::lifecycle::{TriggerError, timestamp};
use crate::engine::schedules::{Method, ScheduledRun};
use crate::proto::v1::TriggerWorkflowRequest;
use crate::proto::workflow_service_server::WorkflowService;
use crate::proto::{
    BulkTriggerWorkflowRequest, BulkTriggerWorkflowResponse, PauseRateLimitRequest,
    PauseRateLimitResponse, PutRateLimitRequest, PutRateLimitResponse, PutWorkflowRequest,
    ScheduleWorkflowRequest, ScheduledWorkflow, TriggerWorkflowResponse, WorkflowVersion,
};
use std::sync::Arc;
use std::time::SystemTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Bulk triggers accept at most this many runs per call (Python chunks to 1000).
const MAX_BULK: usize = 1000;

pub(crate) struct WorkflowSvc(pub(crate) Arc<Shared>);

pub(crate) fn trigger_status(e: &TriggerError) -> Status {
    match e {
        TriggerError::IdempotencyCollision {
            existing,
            colliding,
        } => crate::engine::idempotency::collision_status(*existing, *colliding),
        TriggerError::UnknownWorkflow(_) | TriggerError::IdempotencyKey(_) => {
            Status::invalid_argument(e.to_string())
        }
    }
}

impl WorkflowSvc {
    /// Triggers `reqs`; `bulk` selects the collision detail (`BulkTriggerIdempotencyCollisionError`).
    fn trigger_all(
        &self,
        reqs: &[TriggerWorkflowRequest],
        bulk: bool,
    ) -> Result<Vec<String>, Status> {
        let specs = reqs
            .iter()
            .map(trigger_spec)
            .collect::<Result<Vec<_>, _>>()?;
        self.0.mutate(|state, now| {
            if let Some(missing) = specs
                .iter()
                .find(|s| !state.workflows.contains_key(&s.workflow))
            {
                return Err(trigger_status(&TriggerError::UnknownWorkflow(
                    missing.workflow.clone(),
                )));
            }
            // As Hatchet: the runs that could be created are, and collisions are reported together.
            let mut created = Vec::with_capacity(specs.len());
            let mut collisions = Vec::new();
            for spec in specs {
                match state.trigger(spec, now) {
                    Ok(id) => created.push(id.to_string()),
                    Err(TriggerError::IdempotencyCollision {
                        existing,
                        colliding,
                    }) => collisions.push((existing, colliding)),
                    Err(e) => return Err(trigger_status(&e)),
                }
            }
            match (collisions.len(), bulk) {
                (0, _) => Ok(created),
                (_, false) => Err(crate::engine::idempotency::collision_status(
                    collisions[0].0,
                    collisions[0].1,
                )),
                _ => Err(crate::engine::idempotency::bulk_collision_status(
                    created, collisions,
                )),
            }
        })
    }
}

#[tonic::async_trait]
impl WorkflowService for WorkflowSvc {
    async fn put_workflow(
        &self,
        _: Request<PutWorkflowRequest>,
    ) -> Result<Response<WorkflowVersion>, Status> {
        Err(Status::unimplemented(
            "v0 PutWorkflow is not supported; use v1.AdminService/PutWorkflow",
        ))
    }

    async fn schedule_workflow(
        &self,
        request: Request<ScheduleWorkflowRequest>,
    ) -> Result<Response<WorkflowVersion>, Status> {
        let req = request.into_inner();
        self.0.record("WorkflowService/ScheduleWorkflow", &req);
        check_size(&req)?;
        let spec = trigger_spec(&TriggerWorkflowRequest {
            name: req.name.clone(),
            input: req.input.clone(),
            parent_id: req.parent_id.clone(),
            parent_task_run_external_id: req.parent_task_run_external_id.clone(),
            child_index: req.child_index,
            child_key: req.child_key.clone(),
            additional_metadata: req.additional_metadata.clone(),
            priority: req.priority,
            ..Default::default()
        })?;
        let (workflow_id, version_id) = {
            let state = self.0.lock();
            let w = state.workflows.get(&spec.workflow).ok_or_else(|| {
                trigger_status(&TriggerError::UnknownWorkflow(spec.workflow.clone()))
            })?;
            (w.workflow_id, w.version_id)
        };
        let mut scheduled = Vec::new();
        for at in &req.schedules {
            let when = SystemTime::try_from(*at)
                .map_err(|_| Status::invalid_argument("Invalid request: bad schedule timestamp"))?;
            let id = Uuid::new_v4();
            let run = ScheduledRun {
                id,
                workflow: spec.workflow.clone(),
                trigger_at: when,
                input: spec.input.clone(),
                metadata: spec.metadata.clone(),
                priority: spec.priority,
                created: SystemTime::now(),
                method: Method::Api,
                origin: spec.origin.clone(),
                run_id: None,
                fired: false,
            };
            self.0.lock().scheduled.insert(id, run);
            scheduled.push(ScheduledWorkflow {
                id: id.to_string(),
                trigger_at: Some(*at),
            });
        }
        let now = Some(timestamp(SystemTime::now()));
        Ok(Response::new(WorkflowVersion {
            id: version_id.to_string(),
            created_at: now,
            updated_at: now,
            version: String::new(),
            order: 0,
            workflow_id: workflow_id.to_string(),
            scheduled_workflows: scheduled,
        }))
    }

    async fn trigger_workflow(
        &self,
        request: Request<TriggerWorkflowRequest>,
    ) -> Result<Response<TriggerWorkflowResponse>, Status> {
        let req = request.into_inner();
        self.0.record("WorkflowService/TriggerWorkflow", &req);
        check_size(&req)?;
        let mut ids = self.trigger_all(std::slice::from_ref(&req), false)?;
        Ok(Response::new(TriggerWorkflowResponse {
            workflow_run_id: ids.pop().unwrap_or_default(),
        }))
    }

    async fn bulk_trigger_workflow(
        &self,
        request: Request<BulkTriggerWorkflowRequest>,
    ) -> Result<Response<BulkTriggerWorkflowResponse>, Status> {
        let req = request.into_inner();
        self.0.record("WorkflowService/BulkTriggerWorkflow", &req);
        check_size(&req)?;
        if req.workflows.is_empty() || req.workflows.len() > MAX_BULK {
            return Err(Status::invalid_argument(format!(
                "Invalid request: workflows must hold 1..{MAX_BULK} entries"
            )));
        }
        let workflow_run_ids = self.trigger_all(&req.workflows, true)?;
        Ok(Response::new(BulkTriggerWorkflowResponse {
            workflow_run_ids,
        }))
    }

    async fn put_rate_limit(
        &self,
        request: Request<PutRateLimitRequest>,
    ) -> Result<Response<PutRateLimitResponse>, Status> {
        let req = request.into_inner();
        if req.key.is_empty() {
            return Err(Status::invalid_argument("Invalid request: key is required"));
        }
        if req.limit < 0 {
            return Err(Status::invalid_argument(
                "Invalid request: limit must be >= 0",
            ));
        }
        let window = crate::engine::model::rate_window(req.duration);
        self.0.mutate(|state, _| {
            state
                .rate_limits
                .declare(req.key.clone(), i64::from(req.limit), window);
        });
        Ok(Response::new(PutRateLimitResponse {}))
    }

    async fn pause_rate_limit(
        &self,
        request: Request<PauseRateLimitRequest>,
    ) -> Result<Response<PauseRateLimitResponse>, Status> {
        Ok(Response::new(PauseRateLimitResponse {
            paused_until: request.into_inner().paused_until,
        }))
    }
}
