//! Scheduled runs (create, list, get, update, delete, bulk delete) and crons (create, list, get,
//! delete) under `/api/v1/tenants/{tenant}/workflows/...`.

use super::query::{Query, parse_time};
use super::runs::check_priority;
use super::views;
use super::{
    ApiError, ApiResult, Ctx, OrNotFound, body, check_tenant, parse_uuid, tenant_resource_id,
};
use crate::engine::Shared;
use crate::engine::schedules::{CronSchedule, Method, ScheduledRun, parse_cron};
use crate::engine::state::{RunOrigin, State};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::SystemTime;
use uuid::Uuid;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}/workflows/{workflow}/scheduled",
            post(create_scheduled),
        )
        .route(
            "/api/v1/tenants/{tenant}/workflows/scheduled",
            get(list_scheduled),
        )
        .route(
            "/api/v1/tenants/{tenant}/workflows/scheduled/bulk-delete",
            post(bulk_delete_scheduled),
        )
        .route(
            "/api/v1/tenants/{tenant}/workflows/scheduled/{scheduled}",
            get(get_scheduled)
                .patch(update_scheduled)
                .delete(delete_scheduled),
        )
        .route(
            "/api/v1/tenants/{tenant}/workflows/{workflow}/crons",
            post(create_cron),
        )
        .route("/api/v1/tenants/{tenant}/workflows/crons", get(list_crons))
        .route(
            "/api/v1/tenants/{tenant}/workflows/crons/{cron}",
            get(get_cron).delete(delete_cron),
        )
}

/// The exact name of the workflow a create call names. The SDKs send names (TypeScript lower-cases
/// them), so an exact match wins and a unique case-insensitive match is accepted.
fn known_workflow(state: &State, name: &str) -> Result<String, ApiError> {
    if state.workflows.contains_key(name) {
        return Ok(name.to_owned());
    }
    let mut matches = state
        .workflows
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name));
    match (matches.next(), matches.next()) {
        (Some(found), None) => Ok(found.clone()),
        (Some(_), Some(_)) => Err(ApiError::field(
            "workflow",
            format!("{name:?} matches several workflows that differ only in case"),
        )),
        _ => Err(ApiError::not_found(format!("workflow {name:?}"))),
    }
}

/// `ScheduleWorkflowRunRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScheduleRequest {
    input: Map<String, Value>,
    additional_metadata: Map<String, Value>,
    trigger_at: String,
    priority: Option<i32>,
}

async fn create_scheduled(
    ctx: Ctx,
    Path((tenant, workflow)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: ScheduleRequest = body(&bytes)?;
    let trigger_at = parse_time("triggerAt", &req.trigger_at)?;
    let priority = check_priority(req.priority)?;
    let mut state = ctx.0.lock();
    let workflow = known_workflow(&state, &workflow)?;
    let s = ScheduledRun {
        id: Uuid::new_v4(),
        workflow,
        trigger_at,
        input: Value::Object(req.input),
        metadata: Value::Object(req.additional_metadata),
        priority,
        created: SystemTime::now(),
        method: Method::Api,
        origin: RunOrigin::default(),
        run_id: None,
        fired: false,
    };
    let out = views::scheduled(&state, &s);
    tracing::info!(schedule = %s.id, workflow = %s.workflow, "scheduled_run_created");
    state.scheduled.insert(s.id, s);
    Ok(Json(out))
}

/// `ScheduledWorkflows` status filter values.
const SCHEDULED_STATUSES: &[&str] = &[
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
    "QUEUED",
    "BACKOFF",
];

fn scheduled_status(state: &State, s: &ScheduledRun) -> &'static str {
    match s.run_id.and_then(|r| state.run_status(r)) {
        Some(status) => views::legacy_status(status),
        None => "PENDING",
    }
}

fn sort_direction(q: &Query) -> Result<bool, ApiError> {
    Ok(q.enums("orderByDirection", &["ASC", "DESC"])?
        .first()
        .map(String::as_str)
        == Some("DESC"))
}

fn metadata_matches(metadata: &Value, pairs: &[String]) -> bool {
    pairs.iter().all(|kv| {
        let (k, v) = kv.split_once(':').unwrap_or((kv.as_str(), ""));
        metadata
            .get(k)
            .is_some_and(|m| crate::engine::notify::json_matches_text(m, v))
    })
}

async fn list_scheduled(
    ctx: Ctx,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(&[
        "offset",
        "limit",
        "orderByField",
        "orderByDirection",
        "workflowId",
        "parentWorkflowRunId",
        "parentStepRunId",
        "additionalMetadata",
        "statuses",
    ])?;
    let (offset, limit) = q.page()?;
    let by_created = q
        .enums("orderByField", &["triggerAt", "createdAt"])?
        .first()
        .map(String::as_str)
        == Some("createdAt");
    let desc = sort_direction(&q)?;
    let statuses = q.enums("statuses", SCHEDULED_STATUSES)?;
    let metadata = q.metadata("additionalMetadata")?;
    let workflow_id = q.uuid("workflowId")?;
    let parent_run = q.one("parentWorkflowRunId").map(str::to_owned);
    let parent_task = q.uuid("parentStepRunId")?;
    let state = ctx.0.lock();
    let mut rows: Vec<&ScheduledRun> = state
        .scheduled
        .values()
        .filter(|s| {
            workflow_id.is_none_or(|id| {
                state
                    .workflows
                    .get(&s.workflow)
                    .is_some_and(|w| w.workflow_id == id)
            })
        })
        .filter(|s| {
            parent_run
                .as_ref()
                .is_none_or(|p| s.origin.parent_run.as_ref() == Some(p))
        })
        .filter(|s| parent_task.is_none_or(|p| s.origin.parent_task == Some(p)))
        .filter(|s| metadata_matches(&s.metadata, &metadata))
        .filter(|s| {
            statuses.is_empty() || statuses.iter().any(|f| f == scheduled_status(&state, s))
        })
        .collect();
    rows.sort_by_key(|s| if by_created { s.created } else { s.trigger_at });
    if desc {
        rows.reverse();
    }
    Ok(Json(views::page(&rows, offset, limit, |s| {
        views::scheduled(&state, s)
    })))
}

/// The path id of scheduled runs, as Hatchet names it in errors.
const SCHEDULED_ID: &str = "scheduled-workflow-run";

async fn get_scheduled(ctx: Ctx, Path((tenant, id)): Path<(String, String)>) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, SCHEDULED_ID, &id)?;
    let state = ctx.0.lock();
    let s = state.scheduled.get(&id).or_not_found("scheduled run", id)?;
    Ok(Json(views::scheduled(&state, s)))
}

/// `UpdateScheduledWorkflowRunRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateScheduled {
    trigger_at: String,
}

async fn update_scheduled(
    ctx: Ctx,
    Path((tenant, id)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, SCHEDULED_ID, &id)?;
    let req: UpdateScheduled = body(&bytes)?;
    let trigger_at = parse_time("triggerAt", &req.trigger_at)?;
    let mut state = ctx.0.lock();
    let s = state
        .scheduled
        .get_mut(&id)
        .or_not_found("scheduled run", id)?;
    if s.fired {
        return Err(ApiError::bad_request(format!(
            "scheduled run {id} has already been triggered"
        )));
    }
    s.trigger_at = trigger_at;
    let s = s.clone();
    Ok(Json(views::scheduled(&state, &s)))
}

async fn delete_scheduled(
    ctx: Ctx,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = tenant_resource_id(&ctx.0, &tenant, SCHEDULED_ID, &id)?;
    ctx.0
        .lock()
        .scheduled
        .remove(&id)
        .or_not_found("scheduled run", id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `ScheduledWorkflowsBulkDeleteRequest` (ids only; the filter form is not supported).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BulkDelete {
    scheduled_workflow_run_ids: Vec<String>,
}

async fn bulk_delete_scheduled(ctx: Ctx, Path(tenant): Path<String>, bytes: Bytes) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: BulkDelete = body(&bytes)?;
    let ids = req
        .scheduled_workflow_run_ids
        .iter()
        .map(|id| parse_uuid("scheduledWorkflowRunIds", id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut state = ctx.0.lock();
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for id in ids {
        if state.scheduled.remove(&id).is_some() {
            deleted.push(id.to_string());
        } else {
            errors.push(json!({ "id": id.to_string(), "error": "not found" }));
        }
    }
    Ok(Json(json!({ "deletedIds": deleted, "errors": errors })))
}

/// `CreateCronWorkflowTriggerRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CronRequest {
    input: Map<String, Value>,
    additional_metadata: Map<String, Value>,
    cron_name: String,
    cron_expression: String,
    priority: Option<i32>,
}

async fn create_cron(
    ctx: Ctx,
    Path((tenant, workflow)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: CronRequest = body(&bytes)?;
    if req.cron_name.is_empty() {
        return Err(ApiError::field("cronName", "is required"));
    }
    let cron =
        parse_cron(&req.cron_expression).map_err(|e| ApiError::field("cronExpression", e))?;
    let priority = check_priority(req.priority)?;
    let mut state = ctx.0.lock();
    let workflow = known_workflow(&state, &workflow)?;
    let id = state
        .add_cron(CronSchedule {
            id: Uuid::new_v4(),
            workflow,
            name: Some(req.cron_name),
            expression: req.cron_expression,
            cron,
            input: Value::Object(req.input),
            metadata: Value::Object(req.additional_metadata),
            priority,
            created: SystemTime::now(),
            method: Method::Api,
            enabled: true,
            next: None,
        })
        .map_err(|e| ApiError::field("cronName", e))?;
    tracing::info!(cron = %id, "cron_created");
    Ok(Json(views::cron(&state, &state.crons[&id])))
}

async fn list_crons(ctx: Ctx, Path(tenant): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(&[
        "offset",
        "limit",
        "workflowId",
        "workflowName",
        "cronName",
        "additionalMetadata",
        "orderByField",
        "orderByDirection",
    ])?;
    let (offset, limit) = q.page()?;
    q.enums("orderByField", &["createdAt", "name"])?;
    let by_name = q.one("orderByField") == Some("name");
    let desc = sort_direction(&q)?;
    let metadata = q.metadata("additionalMetadata")?;
    let workflow_id = q.uuid("workflowId")?;
    let workflow_name = q.one("workflowName");
    let cron_name = q.one("cronName");
    let state = ctx.0.lock();
    let mut rows: Vec<&CronSchedule> = state
        .crons
        .values()
        .filter(|c| {
            workflow_id.is_none_or(|id| {
                state
                    .workflows
                    .get(&c.workflow)
                    .is_some_and(|w| w.workflow_id == id)
            })
        })
        .filter(|c| workflow_name.is_none_or(|n| c.workflow == n))
        .filter(|c| cron_name.is_none_or(|n| c.name.as_deref() == Some(n)))
        .filter(|c| metadata_matches(&c.metadata, &metadata))
        .collect();
    if by_name {
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    } else {
        rows.sort_by_key(|c| c.created);
    }
    if desc {
        rows.reverse();
    }
    Ok(Json(views::page(&rows, offset, limit, |c| {
        views::cron(&state, c)
    })))
}

/// The path id of crons, as Hatchet names it in errors.
const CRON_ID: &str = "cron-workflow";

async fn get_cron(ctx: Ctx, Path((tenant, id)): Path<(String, String)>) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, CRON_ID, &id)?;
    let state = ctx.0.lock();
    let c = state.crons.get(&id).or_not_found("cron", id)?;
    Ok(Json(views::cron(&state, c)))
}

async fn delete_cron(
    ctx: Ctx,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = tenant_resource_id(&ctx.0, &tenant, CRON_ID, &id)?;
    ctx.0.lock().crons.remove(&id).or_not_found("cron", id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
