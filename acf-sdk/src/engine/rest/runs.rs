//! Runs and tasks: details, status, legacy shape, list, external ids, trigger, cancel, replay and
//! task get (`/api/v1/stable/...` and the legacy shape under `/api/v1/tenants/...`).

use super::query::{Query, TASK_STATUSES, parse_time};
use super::views::{self, child_counts};
use super::{ApiError, ApiResult, Ctx, OrNotFound, body, check_tenant, parse_uuid};
use crate::engine::Shared;
use crate::engine::lifecycle::{TriggerError, TriggerSpec};
use crate::engine::queries::RunFilter;
use crate::engine::state::{RunOrigin, State, TaskStatus};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/stable/workflow-runs/{run}", get(get_run))
        .route("/api/v1/stable/workflow-runs/{run}/status", get(get_status))
        .route(
            "/api/v1/tenants/{tenant}/workflow-runs/{run}/shape",
            get(get_shape),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/workflow-runs",
            get(list_runs),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/workflow-runs/external-ids",
            get(list_external_ids),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/workflow-runs/trigger",
            post(trigger),
        )
        .route("/api/v1/stable/tenants/{tenant}/tasks/cancel", post(cancel))
        .route("/api/v1/stable/tenants/{tenant}/tasks/replay", post(replay))
        .route("/api/v1/stable/tasks/{task}", get(get_task))
}

fn run_id(state: &State, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_uuid("v1-workflow-run", raw)?;
    state
        .runs
        .contains_key(&id)
        .then_some(id)
        .or_not_found("workflow run", id)
}

async fn get_run(ctx: Ctx, Path(run): Path<String>) -> ApiResult {
    let state = ctx.0.lock();
    let id = run_id(&state, &run)?;
    Ok(Json(views::run_details(&state, &state.runs[&id])))
}

async fn get_status(ctx: Ctx, Path(run): Path<String>) -> ApiResult {
    let state = ctx.0.lock();
    let id = run_id(&state, &run)?;
    let status = state
        .run_status(id)
        .unwrap_or(crate::proto::v1::RunStatus::Queued);
    Ok(Json(json!(views::v1_status(status))))
}

async fn get_shape(ctx: Ctx, Path((tenant, run)): Path<(String, String)>) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let state = ctx.0.lock();
    let id = run_id(&state, &run)?;
    Ok(Json(views::legacy_shape(&state, &state.runs[&id])))
}

/// The query parameters [`run_filter`] reads.
const RUN_FILTER_PARAMS: &[&str] = &[
    "since",
    "until",
    "statuses",
    "additional_metadata",
    "workflow_ids",
];

/// The run filter of a list / external-ids query (`since` is required, as in Hatchet).
fn run_filter(q: &Query) -> Result<RunFilter, ApiError> {
    let since = q
        .time("since")?
        .ok_or_else(|| ApiError::field("since", "is required"))?;
    Ok(RunFilter {
        since: Some(since),
        until: q.time("until")?,
        workflow_ids: q.all("workflow_ids"),
        additional_metadata: q.metadata("additional_metadata")?,
        statuses: q.enums("statuses", TASK_STATUSES)?,
    })
}

async fn list_runs(ctx: Ctx, Path(tenant): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(
        &[
            RUN_FILTER_PARAMS,
            &[
                "worker_id",
                "only_tasks",
                "parent_task_external_id",
                "triggering_event_external_id",
                "include_payloads",
                "include_num_pages",
                "offset",
                "limit",
            ],
        ]
        .concat(),
    )?;
    let filter = run_filter(&q)?;
    let only_tasks = q.bool("only_tasks", false)?;
    let payloads = q.bool("include_payloads", true)?;
    q.bool("include_num_pages", true)?;
    let (offset, limit) = q.page()?;
    let worker = q.uuid("worker_id")?;
    let parent = q.uuid("parent_task_external_id")?;
    let event = q.uuid("triggering_event_external_id")?;
    let state = ctx.0.lock();
    let ran_on = |task: Uuid, worker: Uuid| {
        state.tasks.get(&task).is_some_and(|t| {
            matches!(t.status(), TaskStatus::Running(a) if a.worker == worker)
                || t.history.iter().any(|e| e.worker == Some(worker))
        })
    };
    let mut runs: Vec<_> = state
        .runs
        .values()
        .filter(|r| state.run_matches(r.id, &filter))
        .filter(|r| parent.is_none_or(|p| r.origin.parent_task == Some(p)))
        .filter(|r| event.is_none_or(|e| r.origin.event.as_ref().is_some_and(|(id, _)| *id == e)))
        .collect();
    runs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let children = child_counts(&state);
    let page = if only_tasks {
        let mut tasks: Vec<_> = runs
            .iter()
            .flat_map(|r| r.tasks.iter().chain(&r.on_failure))
            .filter(|t| worker.is_none_or(|w| ran_on(**t, w)))
            .filter_map(|t| state.tasks.get(t))
            .collect();
        tasks.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        views::page(&tasks, offset, limit, |t| {
            views::task_summary(&state, t, &children, payloads)
        })
    } else {
        runs.retain(|r| worker.is_none_or(|w| r.tasks.iter().any(|t| ran_on(*t, w))));
        views::page(&runs, offset, limit, |r| {
            views::run_summary(&state, r, &children, payloads)
        })
    };
    Ok(Json(page))
}

async fn list_external_ids(
    ctx: Ctx,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(RUN_FILTER_PARAMS)?;
    let filter = run_filter(&q)?;
    let state = ctx.0.lock();
    let mut runs: Vec<_> = state
        .filtered_runs(&filter)
        .into_iter()
        .filter_map(|id| state.runs.get(&id))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.created));
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    Ok(Json(json!(ids)))
}

/// `V1TriggerWorkflowRunRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TriggerRequest {
    workflow_name: String,
    input: Map<String, Value>,
    additional_metadata: Option<Map<String, Value>>,
    priority: Option<i32>,
    /// Hatchet answers with the run's details either way; accepted for wire compatibility.
    #[serde(rename = "return_only_id")]
    _return_only_id: Option<bool>,
}

/// Checks a priority 1..3.
pub(super) fn check_priority(priority: Option<i32>) -> Result<Option<i32>, ApiError> {
    match priority {
        Some(p) if !(1..=3).contains(&p) => {
            Err(ApiError::field("priority", "must be between 1 and 3"))
        }
        other => Ok(other),
    }
}

async fn trigger(ctx: Ctx, Path(tenant): Path<String>, bytes: Bytes) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: TriggerRequest = body(&bytes)?;
    if req.workflow_name.is_empty() {
        return Err(ApiError::field("workflowName", "is required"));
    }
    let spec = TriggerSpec {
        workflow: req.workflow_name,
        input: Value::Object(req.input),
        metadata: Value::Object(req.additional_metadata.unwrap_or_default()),
        priority: check_priority(req.priority)?,
        origin: RunOrigin::default(),
    };
    let id = ctx
        .0
        .mutate(|state, now| state.trigger(spec, now))
        .map_err(|e| match e {
            TriggerError::IdempotencyCollision { existing, .. } => {
                ApiError::conflict(format!("idempotency key collision with run {existing}"))
            }
            TriggerError::IdempotencyKey(_) => ApiError::bad_request(e.to_string()),
            TriggerError::UnknownWorkflow(_) => ApiError::field("workflowName", e),
        })?;
    let state = ctx.0.lock();
    let run = state.runs.get(&id).or_not_found("workflow run", id)?;
    Ok(Json(views::run_details(&state, run)))
}

/// `V1TaskFilter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TaskFilter {
    since: String,
    until: Option<String>,
    statuses: Option<Vec<String>>,
    workflow_ids: Option<Vec<String>>,
    additional_metadata: Option<Vec<String>>,
}

/// `V1CancelTaskRequest` / `V1ReplayTaskRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BulkRequest {
    external_ids: Option<Vec<String>>,
    filter: Option<TaskFilter>,
}

/// The ids a cancel / replay request acts on (validated before anything changes).
fn bulk_targets(state: &State, req: &BulkRequest) -> Result<Vec<Uuid>, ApiError> {
    let mut targets = req
        .external_ids
        .iter()
        .flatten()
        .map(|id| parse_uuid("externalIds", id))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(f) = &req.filter {
        let statuses = f.statuses.clone().unwrap_or_default();
        if let Some(bad) = statuses
            .iter()
            .find(|s| !TASK_STATUSES.contains(&s.as_str()))
        {
            return Err(ApiError::field(
                "filter.statuses",
                format!("{bad:?} is not a task status"),
            ));
        }
        let filter = RunFilter {
            since: Some(parse_time("filter.since", &f.since)?),
            until: f
                .until
                .as_deref()
                .map(|u| parse_time("filter.until", u))
                .transpose()?,
            workflow_ids: f.workflow_ids.clone().unwrap_or_default(),
            additional_metadata: f.additional_metadata.clone().unwrap_or_default(),
            statuses,
        };
        targets.extend(state.filtered_runs(&filter));
    } else if targets.is_empty() {
        return Err(ApiError::bad_request("externalIds or filter is required"));
    }
    Ok(targets)
}

async fn cancel(ctx: Ctx, Path(tenant): Path<String>, bytes: Bytes) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: BulkRequest = body(&bytes)?;
    let ids = ctx.0.mutate(|state, now| {
        let targets = bulk_targets(state, &req)?;
        Ok::<_, ApiError>(state.cancel_ids(&targets, now))
    })?;
    Ok(Json(json!({ "ids": ids })))
}

async fn replay(ctx: Ctx, Path(tenant): Path<String>, bytes: Bytes) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: BulkRequest = body(&bytes)?;
    let ids = ctx.0.mutate(|state, now| {
        let targets = bulk_targets(state, &req)?;
        Ok::<_, ApiError>(state.replay_ids(&targets, now))
    })?;
    Ok(Json(json!({ "ids": ids })))
}

async fn get_task(ctx: Ctx, Path(task): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw.as_deref());
    q.only(&["attempt"])?;
    let id = parse_uuid("task", &task)?;
    let state = ctx.0.lock();
    // A run id names its first task (single-task runs are listed under their run id).
    let task_id = state
        .runs
        .get(&id)
        .and_then(|r| r.tasks.first().copied())
        .unwrap_or(id);
    let t = state.tasks.get(&task_id).or_not_found("task", id)?;
    if let Some(attempt) = q.one("attempt") {
        let current = (t.retry_count + 1).to_string();
        if attempt != current {
            return Err(ApiError::field(
                "attempt",
                format!("only the latest attempt ({current}) is kept by the embedded engine"),
            ));
        }
    }
    Ok(Json(views::task_summary(
        &state,
        t,
        &child_counts(&state),
        true,
    )))
}
