//! Engine state rendered in the JSON shapes of Hatchet's OpenAPI (`V1WorkflowRunDetails`,
//! `V1TaskSummary`, `Worker`, `CronWorkflows`, ...). Field names and enum values follow the spec;
//! fields the engine has no data for are omitted (they are optional in the spec).

use crate::engine::model::LabelValue;
use crate::engine::queries::task_status;
use crate::engine::schedules::{ApiFilter, CronSchedule, ScheduledRun};
use crate::engine::state::{Run, RunState, State, StoredEvent, Task, TaskRef, TaskStatus, Worker};
use crate::proto::v1::RunStatus;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// RFC 3339 (UTC, milliseconds) as Hatchet's API writes times.
pub(crate) fn time(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An `Instant` in the past expressed as wall-clock time.
pub(crate) fn wall(at: Instant) -> SystemTime {
    SystemTime::now() - at.elapsed()
}

/// `APIResourceMeta`.
pub(crate) fn meta(id: impl std::fmt::Display, created: SystemTime, updated: SystemTime) -> Value {
    json!({ "id": id.to_string(), "createdAt": time(created), "updatedAt": time(updated) })
}

/// `PaginationResponse` for `total` rows seen through `offset`/`limit`.
pub(crate) fn pagination(total: usize, offset: usize, limit: usize) -> Value {
    let limit = limit.max(1);
    let pages = total.div_ceil(limit).max(1);
    let current = offset / limit + 1;
    json!({ "current_page": current, "next_page": (current + 1).min(pages), "num_pages": pages })
}

/// One page of a listing: `rows[offset..offset + limit]` rendered by `view`, with the pagination
/// of the whole list (`{"rows": [...], "pagination": {...}}`).
pub(crate) fn page<T>(
    rows: &[T],
    offset: usize,
    limit: usize,
    view: impl FnMut(&T) -> Value,
) -> Value {
    let out: Vec<Value> = rows.iter().skip(offset).take(limit).map(view).collect();
    json!({ "rows": out, "pagination": pagination(rows.len(), offset, limit) })
}

/// `V1TaskStatus` name (the engine's `EVICTED` is a waiting durable task: `RUNNING`).
pub(crate) fn v1_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Evicted => "RUNNING",
        other => other.as_str_name(),
    }
}

/// `WorkflowRunStatus` name (legacy API: `SUCCEEDED` instead of `COMPLETED`).
pub(crate) fn legacy_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "SUCCEEDED",
        RunStatus::Evicted => "RUNNING",
        other => other.as_str_name(),
    }
}

/// The integer `taskId` of a task: the top 48 bits of its UUID (stable and JSON-safe).
fn numeric_id(id: Uuid) -> u64 {
    (id.as_u128() >> 80) as u64
}

/// When the latest attempt was assigned, and when the task reached its final state.
pub(crate) fn task_times(task: &Task) -> (Option<SystemTime>, Option<SystemTime>) {
    let started = task
        .history
        .iter()
        .rev()
        .find(|e| e.kind == "ASSIGNED")
        .map(|e| e.at);
    let finished = if task.status().is_final() {
        task.history.last().map(|e| e.at)
    } else {
        None
    };
    (started, finished)
}

fn duration_ms(started: Option<SystemTime>, finished: Option<SystemTime>) -> Option<u64> {
    let (s, f) = (started?, finished?);
    Some(f.duration_since(s).unwrap_or_default().as_millis() as u64)
}

/// The optional fields a task or run summary ends with, each present only when known: when it
/// started and finished, how long it took, why it failed and the task that spawned it.
fn insert_outcome(
    obj: &mut Map<String, Value>,
    (started, finished): (Option<SystemTime>, Option<SystemTime>),
    error: Option<String>,
    parent: Option<Uuid>,
) {
    if let Some(s) = started {
        obj.insert("startedAt".into(), json!(time(s)));
    }
    if let Some(f) = finished {
        obj.insert("finishedAt".into(), json!(time(f)));
    }
    if let Some(d) = duration_ms(started, finished) {
        obj.insert("duration".into(), json!(d));
    }
    if let Some(e) = error {
        obj.insert("errorMessage".into(), json!(e));
    }
    if let Some(parent) = parent {
        obj.insert("parentTaskExternalId".into(), json!(parent.to_string()));
    }
}

fn object_or_empty(value: &Value) -> Value {
    if value.is_null() {
        json!({})
    } else {
        value.clone()
    }
}

/// Children runs per parent task (for `numSpawnedChildren`).
pub(crate) fn child_counts(state: &State) -> HashMap<Uuid, usize> {
    let mut counts = HashMap::new();
    for run in state.runs.values() {
        if let Some(parent) = run.origin.parent_task {
            *counts.entry(parent).or_insert(0) += 1;
        }
    }
    counts
}

/// `V1TaskSummary` of one task.
pub(crate) fn task_summary(
    state: &State,
    task: &Task,
    children: &HashMap<Uuid, usize>,
    payloads: bool,
) -> Value {
    let Some(run) = state.runs.get(&task.run_id) else {
        return Value::Null;
    };
    let status = task_status(task.status());
    let (started, finished) = task_times(task);
    let def = state.task_def(task);
    let mut out = json!({
        "metadata": meta(task.id, task.created, task.history.last().map_or(task.created, |e| e.at)),
        "taskExternalId": task.id.to_string(),
        "taskId": numeric_id(task.id),
        "taskInsertedAt": time(task.created),
        "createdAt": time(task.created),
        "displayName": task.readable_id,
        "actionId": task.action,
        "status": v1_status(status),
        "retryCount": task.retry_count,
        "attempt": task.retry_count + 1,
        "tenantId": state.tenant_id.to_string(),
        "type": if run.workflow.tasks.len() > 1 || task.def == TaskRef::OnFailure { "DAG" } else { "TASK" },
        "workflowId": run.workflow.workflow_id.to_string(),
        "workflowName": run.workflow.name,
        "workflowVersionId": run.workflow.version_id.to_string(),
        "workflowRunExternalId": run.id.to_string(),
        "numSpawnedChildren": children.get(&task.id).copied().unwrap_or(0),
        "additionalMetadata": run.metadata,
        "isDurable": def.is_some_and(|d| d.is_durable),
        "isEvicted": *task.status() == TaskStatus::Evicted,
        "input": if payloads { object_or_empty(&run.input) } else { json!({}) },
        "output": if payloads { task.output.clone().unwrap_or_else(|| json!({})) } else { json!({}) },
    });
    let obj = out.as_object_mut().expect("json! object");
    if let Some(def) = def {
        obj.insert("stepId".into(), json!(def.step_id.to_string()));
    }
    let error = task
        .error
        .clone()
        .filter(|_| matches!(status, RunStatus::Failed | RunStatus::Cancelled));
    insert_outcome(obj, (started, finished), error, run.origin.parent_task);
    out
}

fn run_tasks<'a>(state: &'a State, run: &'a Run) -> impl Iterator<Item = &'a Task> + 'a {
    run.tasks
        .iter()
        .chain(&run.on_failure)
        .filter_map(|id| state.tasks.get(id))
}

fn run_times(state: &State, run: &Run) -> (Option<SystemTime>, Option<SystemTime>) {
    let started = run_tasks(state, run)
        .filter_map(|t| {
            t.history
                .iter()
                .find(|e| e.kind == "ASSIGNED")
                .map(|e| e.at)
        })
        .min();
    (started, run.finished)
}

/// The run's output as Hatchet's v1 API reports it: task name → output of each completed task.
fn run_output(state: &State, run: &Run) -> Value {
    let mut out = Map::new();
    if run.state == RunState::Completed {
        for t in run_tasks(state, run) {
            if let Some(o) = &t.output {
                out.insert(t.readable_id.clone(), o.clone());
            }
        }
    }
    Value::Object(out)
}

fn run_error(state: &State, run: &Run) -> Option<String> {
    run_tasks(state, run)
        .filter(|t| matches!(t.status(), TaskStatus::Failed | TaskStatus::Cancelled))
        .find_map(|t| t.error.clone())
}

/// [`insert_outcome`] for a whole run: its first assignment, its end and its first failed task's
/// error.
fn insert_run_outcome(obj: &mut Map<String, Value>, state: &State, run: &Run) {
    let error = run_error(state, run);
    insert_outcome(obj, run_times(state, run), error, run.origin.parent_task);
}

/// `V1TaskSummary` of a whole run (a row of the runs list when `only_tasks` is false).
pub(crate) fn run_summary(
    state: &State,
    run: &Run,
    children: &HashMap<Uuid, usize>,
    payloads: bool,
) -> Value {
    let status = state.run_status(run.id).unwrap_or(RunStatus::Queued);
    let single = (run.workflow.tasks.len() == 1)
        .then(|| run.tasks.first().and_then(|t| state.tasks.get(t)))
        .flatten();
    let task_external = single.map_or(run.id, |t| t.id);
    let mut out = json!({
        "metadata": meta(run.id, run.created, run.finished.unwrap_or(run.created)),
        "taskExternalId": task_external.to_string(),
        "taskId": numeric_id(task_external),
        "taskInsertedAt": time(run.created),
        "createdAt": time(run.created),
        "displayName": run.workflow.name,
        "status": v1_status(status),
        "tenantId": state.tenant_id.to_string(),
        "type": if single.is_some() { "TASK" } else { "DAG" },
        "workflowId": run.workflow.workflow_id.to_string(),
        "workflowName": run.workflow.name,
        "workflowVersionId": run.workflow.version_id.to_string(),
        "workflowRunExternalId": run.id.to_string(),
        "numSpawnedChildren": run.tasks.iter().map(|t| children.get(t).copied().unwrap_or(0)).sum::<usize>(),
        "additionalMetadata": run.metadata,
        "input": if payloads { object_or_empty(&run.input) } else { json!({}) },
        "output": if payloads { run_output(state, run) } else { json!({}) },
    });
    let obj = out.as_object_mut().expect("json! object");
    if let Some(t) = single {
        obj.insert("actionId".into(), json!(t.action));
        obj.insert("retryCount".into(), json!(t.retry_count));
        obj.insert("attempt".into(), json!(t.retry_count + 1));
    }
    insert_run_outcome(obj, state, run);
    out
}

/// `V1WorkflowRun`.
fn workflow_run(state: &State, run: &Run) -> Value {
    let status = state.run_status(run.id).unwrap_or(RunStatus::Queued);
    let mut out = json!({
        "metadata": meta(run.id, run.created, run.finished.unwrap_or(run.created)),
        "status": v1_status(status),
        "tenantId": state.tenant_id.to_string(),
        "displayName": run.workflow.name,
        "workflowId": run.workflow.workflow_id.to_string(),
        "workflowVersionId": run.workflow.version_id.to_string(),
        "createdAt": time(run.created),
        "additionalMetadata": run.metadata,
        "input": object_or_empty(&run.input),
        "output": run_output(state, run),
    });
    let obj = out.as_object_mut().expect("json! object");
    insert_run_outcome(obj, state, run);
    out
}

/// `V1WorkflowRunDetails`: the run, its tasks, their events and the DAG shape.
pub(crate) fn run_details(state: &State, run: &Run) -> Value {
    let children = child_counts(state);
    let tasks: Vec<Value> = run_tasks(state, run)
        .map(|t| task_summary(state, t, &children, true))
        .collect();
    let mut events: Vec<Value> = run_tasks(state, run)
        .flat_map(|t| {
            t.history.iter().map(move |e| {
                let mut ev = json!({
                    "id": e.id,
                    "taskId": t.id.to_string(),
                    "timestamp": time(e.at),
                    "eventType": e.kind,
                    "message": e.message,
                    "taskDisplayName": t.readable_id,
                    "retryCount": e.retry_count,
                    "attempt": e.retry_count + 1,
                });
                let obj = ev.as_object_mut().expect("json! object");
                if let Some(w) = e.worker {
                    obj.insert("workerId".into(), json!(w.to_string()));
                }
                if matches!(e.kind, "FAILED" | "RETRYING" | "CANCELLED" | "TIMED_OUT") {
                    obj.insert("errorMessage".into(), json!(e.message));
                }
                ev
            })
        })
        .collect();
    events.sort_by(|a, b| b["id"].as_u64().cmp(&a["id"].as_u64()));
    let shape: Vec<Value> = run
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let def = run.workflow.tasks.get(i)?;
            let children: Vec<String> = run
                .workflow
                .tasks
                .iter()
                .filter(|c| c.parents.contains(&i))
                .map(|c| c.step_id.to_string())
                .collect();
            Some(json!({
                "taskExternalId": id.to_string(),
                "stepId": def.step_id.to_string(),
                "childrenStepIds": children,
                "taskName": def.readable_id,
            }))
        })
        .collect();
    json!({
        "run": workflow_run(state, run),
        "taskEvents": events,
        "shape": shape,
        "tasks": tasks,
    })
}

/// The legacy `WorkflowRun` with its job run and step runs (`.../workflow-runs/{id}/shape`); the
/// TypeScript SDK reads results from it when they did not fit the gRPC stream.
pub(crate) fn legacy_shape(state: &State, run: &Run) -> Value {
    let status = state.run_status(run.id).unwrap_or(RunStatus::Queued);
    let tenant = state.tenant_id.to_string();
    let job_id = run.workflow.version_id;
    let steps: Vec<Value> = run
        .workflow
        .tasks
        .iter()
        .map(|d| {
            json!({
                "metadata": meta(d.step_id, run.workflow.registered_at, run.workflow.registered_at),
                "readableId": d.readable_id,
                "tenantId": tenant,
                "jobId": job_id.to_string(),
                "action": d.action,
                "nextId": "",
            })
        })
        .collect();
    let step_runs: Vec<Value> = run
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let t = state.tasks.get(id)?;
            let def = run.workflow.tasks.get(i)?;
            let ts = task_status(t.status());
            let mut sr = json!({
                "metadata": meta(t.id, t.created, t.created),
                "tenantId": tenant,
                "jobRunId": run.id.to_string(),
                "stepId": def.step_id.to_string(),
                "status": match ts {
                    RunStatus::Completed => "SUCCEEDED",
                    RunStatus::Evicted => "RUNNING",
                    other => other.as_str_name(),
                },
            });
            let obj = sr.as_object_mut().expect("json! object");
            if let Some(o) = &t.output {
                obj.insert("output".into(), json!(o.to_string()));
            }
            if matches!(ts, RunStatus::Failed | RunStatus::Cancelled)
                && let Some(e) = &t.error
            {
                obj.insert("error".into(), json!(e));
            }
            Some(sr)
        })
        .collect();
    json!({
        "metadata": meta(run.id, run.created, run.finished.unwrap_or(run.created)),
        "tenantId": tenant,
        "workflowVersionId": run.workflow.version_id.to_string(),
        "status": legacy_status(status),
        "displayName": run.workflow.name,
        "additionalMetadata": run.metadata,
        "jobRuns": [{
            "metadata": meta(run.id, run.created, run.created),
            "tenantId": tenant,
            "workflowRunId": run.id.to_string(),
            "jobId": job_id.to_string(),
            "status": legacy_status(status),
            "job": {
                "metadata": meta(job_id, run.workflow.registered_at, run.workflow.registered_at),
                "tenantId": tenant,
                "versionId": run.workflow.version_id.to_string(),
                "name": run.workflow.name,
                "steps": steps,
            },
            "stepRuns": step_runs,
        }],
    })
}

/// `Worker`.
pub(crate) fn worker(state: &State, id: Uuid, w: &Worker) -> Value {
    let heartbeat = wall(w.last_heartbeat);
    let alive = w.last_heartbeat.elapsed() < state.timing.eligibility;
    let status = if w.paused {
        "PAUSED"
    } else if alive {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    let mut actions: Vec<&String> = w.actions.iter().collect();
    actions.sort();
    let slot_config: Map<String, Value> = w
        .slots
        .iter()
        .map(|(kind, limit)| {
            let available = w.free(kind).unwrap_or(0);
            (
                kind.clone(),
                json!({ "available": available, "limit": limit }),
            )
        })
        .collect();
    let running: Vec<Value> = state
        .tasks
        .values()
        .filter(|t| matches!(t.status(), TaskStatus::Running(a) if a.worker == id))
        .map(|t| {
            let mut slot = json!({
                "stepRunId": t.id.to_string(),
                "actionId": t.action,
                "workflowRunId": t.run_id.to_string(),
                "status": "RUNNING",
            });
            if let Some(s) = task_times(t).0 {
                slot["startedAt"] = json!(time(s));
            }
            slot
        })
        .collect();
    let labels: Vec<Value> = w
        .labels
        .iter()
        .map(|(k, v)| {
            json!({
                "metadata": meta(label_id(id, k), w.registered_at, w.registered_at),
                "key": k,
                "value": match v { LabelValue::Str(s) => s.clone(), LabelValue::Int(i) => i.to_string() },
            })
        })
        .collect();
    json!({
        "metadata": meta(id, w.registered_at, heartbeat),
        "name": w.name,
        "type": "SELFHOSTED",
        "lastHeartbeatAt": time(heartbeat),
        "actions": actions,
        "status": status,
        "slotConfig": slot_config,
        "slots": running,
        "labels": labels,
    })
}

/// A stable id for a worker label (the engine keeps labels as a map, Hatchet gives them ids).
fn label_id(worker: Uuid, key: &str) -> Uuid {
    // FNV-1a over the key, mixed into the worker id.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Uuid::from_u128(worker.as_u128() ^ u128::from(hash))
}

/// `Workflow`.
pub(crate) fn workflow(state: &State, def: &crate::engine::model::WorkflowDef) -> Value {
    json!({
        "metadata": meta(def.workflow_id, def.registered_at, def.registered_at),
        "name": def.name,
        "tenantId": state.tenant_id.to_string(),
        "isPaused": false,
        "versions": [{
            "metadata": meta(def.version_id, def.registered_at, def.registered_at),
            "version": def.version_id.to_string(),
            "order": 0,
            "workflowId": def.workflow_id.to_string(),
        }],
    })
}

fn workflow_ids(state: &State, name: &str) -> (String, String) {
    state.workflows.get(name).map_or_else(
        || (Uuid::nil().to_string(), Uuid::nil().to_string()),
        |w| (w.workflow_id.to_string(), w.version_id.to_string()),
    )
}

/// `ScheduledWorkflows`.
pub(crate) fn scheduled(state: &State, s: &ScheduledRun) -> Value {
    let (workflow_id, version_id) = workflow_ids(state, &s.workflow);
    let mut out = json!({
        "metadata": meta(s.id, s.created, s.created),
        "tenantId": state.tenant_id.to_string(),
        "workflowVersionId": version_id,
        "workflowId": workflow_id,
        "workflowName": s.workflow,
        "triggerAt": time(s.trigger_at),
        "input": object_or_empty(&s.input),
        "additionalMetadata": s.metadata,
        "method": s.method.as_str(),
    });
    let obj = out.as_object_mut().expect("json! object");
    if let Some(p) = s.priority {
        obj.insert("priority".into(), json!(p));
    }
    if let Some(run_id) = s.run_id
        && let Some(run) = state.runs.get(&run_id)
    {
        obj.insert("workflowRunId".into(), json!(run_id.to_string()));
        obj.insert("workflowRunCreatedAt".into(), json!(time(run.created)));
        obj.insert("workflowRunName".into(), json!(run.workflow.name));
        let status = state.run_status(run_id).unwrap_or(RunStatus::Queued);
        obj.insert("workflowRunStatus".into(), json!(legacy_status(status)));
    }
    out
}

/// `CronWorkflows`.
pub(crate) fn cron(state: &State, c: &CronSchedule) -> Value {
    let (workflow_id, version_id) = workflow_ids(state, &c.workflow);
    let mut out = json!({
        "metadata": meta(c.id, c.created, c.created),
        "tenantId": state.tenant_id.to_string(),
        "workflowVersionId": version_id,
        "workflowId": workflow_id,
        "workflowName": c.workflow,
        "cron": c.expression,
        "enabled": c.enabled,
        "method": c.method.as_str(),
        "input": object_or_empty(&c.input),
        "additionalMetadata": c.metadata,
    });
    let obj = out.as_object_mut().expect("json! object");
    if let Some(n) = &c.name {
        obj.insert("name".into(), json!(n));
    }
    if let Some(p) = c.priority {
        obj.insert("priority".into(), json!(p));
    }
    out
}

/// `V1Filter`.
pub(crate) fn filter(state: &State, f: &ApiFilter) -> Value {
    json!({
        "metadata": meta(f.id, f.created, f.updated),
        "tenantId": state.tenant_id.to_string(),
        "workflowId": f.workflow_id.to_string(),
        "scope": f.scope,
        "expression": f.expression,
        "payload": f.payload,
        "isDeclarative": false,
    })
}

/// `V1Event`, with the runs it triggered.
pub(crate) fn event(state: &State, e: &StoredEvent, runs: &[Uuid]) -> Value {
    let mut counts = [0usize; 5];
    for run in runs {
        let slot = match state.run_status(*run) {
            Some(RunStatus::Queued) => 1,
            Some(RunStatus::Completed) => 2,
            Some(RunStatus::Failed) => 3,
            Some(RunStatus::Cancelled) => 4,
            _ => 0,
        };
        counts[slot] += 1;
    }
    let mut out = json!({
        "metadata": meta(e.id, e.at, e.at),
        "key": e.key,
        "tenantId": state.tenant_id.to_string(),
        "payload": e.payload,
        "additionalMetadata": e.metadata,
        "seenAt": time(e.at),
        "workflowRunSummary": {
            "running": counts[0], "queued": counts[1], "succeeded": counts[2],
            "failed": counts[3], "cancelled": counts[4],
        },
        "triggeredRuns": runs.iter().map(|r| json!({ "workflowRunId": r.to_string() })).collect::<Vec<_>>(),
    });
    if let Some(scope) = &e.scope {
        out["scope"] = json!(scope);
    }
    out
}
