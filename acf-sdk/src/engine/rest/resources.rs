//! Workers (list, get, pause/unpause), workflows (list, get), events (list, get) and `v1` filters.

use super::query::Query;
use super::views;
use super::{
    ApiError, ApiResult, Ctx, OrNotFound, body, check_tenant, parse_uuid, tenant_resource_id,
};
use crate::engine::Shared;
use crate::engine::schedules::ApiFilter;
use crate::engine::state::State;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use uuid::Uuid;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/tenants/{tenant}/worker", get(list_workers))
        .route(
            "/api/v1/workers/{worker}",
            get(get_worker).patch(update_worker),
        )
        .route("/api/v1/tenants/{tenant}/workflows", get(list_workflows))
        .route("/api/v1/workflows/{workflow}", get(get_workflow))
        .route("/api/v1/stable/tenants/{tenant}/events", get(list_events))
        .route(
            "/api/v1/stable/tenants/{tenant}/events/{event}",
            get(get_event),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/filters",
            get(list_filters).post(create_filter),
        )
        .route(
            "/api/v1/stable/tenants/{tenant}/filters/{filter}",
            get(get_filter).patch(update_filter).delete(delete_filter),
        )
}

async fn list_workers(ctx: Ctx, Path(tenant): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    Query::parse(raw.as_deref()).only(&[])?;
    let state = ctx.0.lock();
    let mut workers: Vec<_> = state.workers.iter().collect();
    workers.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(b.0)));
    let rows: Vec<Value> = workers
        .into_iter()
        .map(|(id, w)| views::worker(&state, *id, w))
        .collect();
    let total = rows.len();
    Ok(Json(
        json!({ "rows": rows, "pagination": views::pagination(total, 0, total) }),
    ))
}

fn worker_json(state: &State, raw: &str) -> ApiResult {
    let id = parse_uuid("worker", raw)?;
    let w = state.workers.get(&id).or_not_found("worker", id)?;
    Ok(Json(views::worker(state, id, w)))
}

async fn get_worker(ctx: Ctx, Path(worker): Path<String>) -> ApiResult {
    worker_json(&ctx.0.lock(), &worker)
}

/// `UpdateWorkerRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateWorker {
    is_paused: Option<bool>,
}

async fn update_worker(ctx: Ctx, Path(worker): Path<String>, bytes: Bytes) -> ApiResult {
    let req: UpdateWorker = body(&bytes)?;
    let id = parse_uuid("worker", &worker)?;
    ctx.0.mutate(|state, _| {
        let w = state.workers.get_mut(&id).or_not_found("worker", id)?;
        if let Some(paused) = req.is_paused {
            w.paused = paused;
            tracing::info!(worker = %id, paused, "worker_pause_updated");
        }
        worker_json(state, &worker)
    })
}

async fn list_workflows(
    ctx: Ctx,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(&["offset", "limit", "name"])?;
    let (offset, limit) = q.page()?;
    let name = q.one("name").map(str::to_lowercase);
    let state = ctx.0.lock();
    let mut defs: Vec<_> = state
        .workflows
        .values()
        .filter(|w| {
            name.as_ref()
                .is_none_or(|n| w.name.to_lowercase().contains(n))
        })
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(views::page(&defs, offset, limit, |d| {
        views::workflow(&state, d)
    })))
}

async fn get_workflow(ctx: Ctx, Path(workflow): Path<String>) -> ApiResult {
    let id = parse_uuid("workflow", &workflow)?;
    let state = ctx.0.lock();
    let def = state
        .workflows
        .values()
        .find(|w| w.workflow_id == id)
        .or_not_found("workflow", id)?;
    Ok(Json(views::workflow(&state, def)))
}

/// Runs triggered by each event.
fn runs_by_event(state: &State) -> HashMap<Uuid, Vec<Uuid>> {
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for run in state.runs.values() {
        if let Some((event, _)) = &run.origin.event {
            map.entry(*event).or_default().push(run.id);
        }
    }
    map
}

async fn list_events(ctx: Ctx, Path(tenant): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(&[
        "offset",
        "limit",
        "keys",
        "since",
        "until",
        "workflowIds",
        "workflowRunStatuses",
        "eventIds",
        "additionalMetadata",
        "scopes",
    ])?;
    let (offset, limit) = q.page()?;
    let (since, until) = (q.time("since")?, q.time("until")?);
    let keys = q.all("keys");
    let scopes = q.all("scopes");
    let workflow_ids = q.all("workflowIds");
    let statuses = q.enums("workflowRunStatuses", super::query::TASK_STATUSES)?;
    let metadata = q.metadata("additionalMetadata")?;
    let event_ids = q
        .all("eventIds")
        .iter()
        .map(|id| parse_uuid("eventIds", id))
        .collect::<Result<Vec<_>, _>>()?;
    let state = ctx.0.lock();
    let by_event = runs_by_event(&state);
    let no_runs = Vec::new();
    let events: Vec<_> = state
        .events
        .iter()
        .rev()
        .filter(|e| since.is_none_or(|s| e.at >= s) && until.is_none_or(|u| e.at <= u))
        .filter(|e| keys.is_empty() || keys.contains(&e.key))
        .filter(|e| scopes.is_empty() || e.scope.as_ref().is_some_and(|s| scopes.contains(s)))
        .filter(|e| event_ids.is_empty() || event_ids.contains(&e.id))
        .filter(|e| {
            metadata.iter().all(|kv| {
                let (k, v) = kv.split_once(':').unwrap_or((kv.as_str(), ""));
                e.metadata
                    .get(k)
                    .is_some_and(|m| crate::engine::notify::json_matches_text(m, v))
            })
        })
        .filter(|e| {
            let runs = by_event.get(&e.id).unwrap_or(&no_runs);
            (workflow_ids.is_empty()
                || runs.iter().any(|r| {
                    state
                        .runs
                        .get(r)
                        .is_some_and(|r| workflow_ids.contains(&r.workflow.workflow_id.to_string()))
                }))
                && (statuses.is_empty()
                    || runs.iter().any(|r| {
                        state
                            .run_status(*r)
                            .is_some_and(|s| statuses.iter().any(|f| f == views::v1_status(s)))
                    }))
        })
        .collect();
    Ok(Json(views::page(&events, offset, limit, |e| {
        views::event(&state, e, by_event.get(&e.id).unwrap_or(&no_runs))
    })))
}

async fn get_event(ctx: Ctx, Path((tenant, event)): Path<(String, String)>) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, "v1-event", &event)?;
    let state = ctx.0.lock();
    let e = state
        .events
        .iter()
        .find(|e| e.id == id)
        .or_not_found("event", id)?;
    let runs: Vec<Uuid> = state
        .runs
        .values()
        .filter(|r| r.origin.event.as_ref().is_some_and(|(ev, _)| *ev == id))
        .map(|r| r.id)
        .collect();
    Ok(Json(views::event(&state, e, &runs)))
}

async fn list_filters(ctx: Ctx, Path(tenant): Path<String>, RawQuery(raw): RawQuery) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let q = Query::parse(raw.as_deref());
    q.only(&["offset", "limit", "workflowIds", "scopes"])?;
    let (offset, limit) = q.page()?;
    let workflow_ids = q.all("workflowIds");
    let scopes = q.all("scopes");
    let state = ctx.0.lock();
    let mut filters: Vec<&ApiFilter> = state
        .api_filters
        .values()
        .filter(|f| workflow_ids.is_empty() || workflow_ids.contains(&f.workflow_id.to_string()))
        .filter(|f| scopes.is_empty() || scopes.contains(&f.scope))
        .collect();
    filters.sort_by_key(|f| std::cmp::Reverse(f.created));
    Ok(Json(views::page(&filters, offset, limit, |f| {
        views::filter(&state, f)
    })))
}

/// `V1CreateFilterRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFilter {
    workflow_id: String,
    expression: String,
    scope: String,
    payload: Option<Map<String, Value>>,
}

/// `V1UpdateFilterRequest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateFilter {
    expression: Option<String>,
    scope: Option<String>,
    payload: Option<Map<String, Value>>,
}

/// Refuses an expression the CEL evaluator cannot compile (events would never match it).
fn check_expression(expression: &str) -> Result<(), ApiError> {
    crate::engine::expr::check(expression)
        .map(|_| ())
        .map_err(|e| ApiError::field("expression", e))
}

async fn create_filter(ctx: Ctx, Path(tenant): Path<String>, bytes: Bytes) -> ApiResult {
    check_tenant(&ctx.0, &tenant)?;
    let req: CreateFilter = body(&bytes)?;
    let workflow_id = parse_uuid("workflowId", &req.workflow_id)?;
    if req.scope.is_empty() {
        return Err(ApiError::field("scope", "is required"));
    }
    check_expression(&req.expression)?;
    let mut state = ctx.0.lock();
    if !state
        .workflows
        .values()
        .any(|w| w.workflow_id == workflow_id)
    {
        return Err(ApiError::not_found(format!("workflow {workflow_id}")));
    }
    let now = SystemTime::now();
    let filter = ApiFilter {
        id: Uuid::new_v4(),
        workflow_id,
        scope: req.scope,
        expression: req.expression,
        payload: Value::Object(req.payload.unwrap_or_default()),
        created: now,
        updated: now,
    };
    let out = views::filter(&state, &filter);
    state.api_filters.insert(filter.id, filter);
    Ok(Json(out))
}

/// The path id of filters, as Hatchet names it in errors.
const FILTER_ID: &str = "v1-filter";

async fn get_filter(ctx: Ctx, Path((tenant, filter)): Path<(String, String)>) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, FILTER_ID, &filter)?;
    let state = ctx.0.lock();
    let f = state.api_filters.get(&id).or_not_found("filter", id)?;
    Ok(Json(views::filter(&state, f)))
}

async fn update_filter(
    ctx: Ctx,
    Path((tenant, filter)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, FILTER_ID, &filter)?;
    let req: UpdateFilter = body(&bytes)?;
    if let Some(e) = &req.expression {
        check_expression(e)?;
    }
    if req.scope.as_deref() == Some("") {
        return Err(ApiError::field("scope", "must not be empty"));
    }
    let mut state = ctx.0.lock();
    let f = state.api_filters.get_mut(&id).or_not_found("filter", id)?;
    if let Some(e) = req.expression {
        f.expression = e;
    }
    if let Some(s) = req.scope {
        f.scope = s;
    }
    if let Some(p) = req.payload {
        f.payload = Value::Object(p);
    }
    f.updated = SystemTime::now();
    let f = f.clone();
    Ok(Json(views::filter(&state, &f)))
}

async fn delete_filter(ctx: Ctx, Path((tenant, filter)): Path<(String, String)>) -> ApiResult {
    let id = tenant_resource_id(&ctx.0, &tenant, FILTER_ID, &filter)?;
    let mut state = ctx.0.lock();
    let f = state.api_filters.remove(&id).or_not_found("filter", id)?;
    Ok(Json(views::filter(&state, &f)))
}
