//! Server-side validation of `PutWorkflow` and durable conditions (reference §7), producing the
//! engine's [`model`](crate::engine::model). Every error names the offending field.

use crate::duration;
use crate::engine::expr;
use crate::engine::model::{
    ConcurrencyDef, CondAction, CondKind, ConditionDef, DEFAULT_EXECUTION_TIMEOUT,
    DEFAULT_SCHEDULE_TIMEOUT, FilterDef, Sticky, Strategy, TaskDef, WorkflowDef,
};
use crate::proto::v1::{
    Concurrency, CreateTaskOpts, CreateWorkflowVersionRequest, DurableEventListenerConditions,
    TaskConditions,
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// A rejected request: `INVALID_ARGUMENT` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct ValidationError {
    /// The offending field path, e.g. `tasks[1].parents`.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        message: message.into(),
    }
}

/// `^[a-zA-Z0-9.\-_]+$`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{name:?} must match ^[a-zA-Z0-9.\\-_]+$"),
        ))
    }
}

/// Action ids are `service:verb` or `service:verb:extra`; stored lower-cased.
fn parse_action(field: &str, action: &str) -> Result<String, ValidationError> {
    let parts: Vec<&str> = action.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().take(2).any(|p| p.is_empty()) {
        return Err(invalid(
            field,
            format!("invalid action id {action:?}: expected \"service:verb\""),
        ));
    }
    Ok(action.to_lowercase())
}

fn duration_or(
    field: &str,
    text: &str,
    default: Duration,
) -> Result<(Duration, String), ValidationError> {
    if text.is_empty() {
        return Ok((default, duration::precise_expr(default)));
    }
    duration::parse(text)
        .map(|d| (d, text.to_owned()))
        .map_err(|e| invalid(field, e.to_string()))
}

fn concurrency(field: &str, c: &Concurrency) -> Result<ConcurrencyDef, ValidationError> {
    if c.expression.trim().is_empty() {
        return Err(invalid(
            format!("{field}.expression"),
            "must be a non-empty CEL expression",
        ));
    }
    expr::check(&c.expression)
        .map_err(|e| invalid(format!("{field}.expression"), e.to_string()))?;
    let strategy = match c.limit_strategy.unwrap_or(0) {
        0 => Strategy::CancelInProgress,
        3 => Strategy::GroupRoundRobin,
        4 => Strategy::CancelNewest,
        5 => Strategy::CancelQueuedExceptNewest,
        6 => Strategy::CancelQueuedExceptOldest,
        other => {
            return Err(invalid(
                format!("{field}.limit_strategy"),
                format!(
                    "{other} is not one of CANCEL_IN_PROGRESS, GROUP_ROUND_ROBIN, CANCEL_NEWEST, \
                     CANCEL_QUEUED_EXCEPT_NEWEST, CANCEL_QUEUED_EXCEPT_OLDEST"
                ),
            ));
        }
    };
    let max_runs = c.max_runs.unwrap_or(1);
    if max_runs < 1 {
        return Err(invalid(format!("{field}.max_runs"), "must be at least 1"));
    }
    let max_runs_expression = match c.max_runs_expression.as_deref() {
        None => None,
        Some(e) if e.trim().is_empty() => {
            return Err(invalid(
                format!("{field}.max_runs_expression"),
                "must be a non-empty CEL expression when set",
            ));
        }
        Some(e) => {
            expr::check(e)
                .map_err(|err| invalid(format!("{field}.max_runs_expression"), err.to_string()))?;
            Some(e.to_owned())
        }
    };
    // A name without `is_tenant_scoped` only labels the entry, as in Hatchet.
    if let Some(name) = c.name.as_deref().filter(|n| !n.is_empty()) {
        check_name(&format!("{field}.name"), name)?;
    }
    let tenant_name = if c.is_tenant_scoped.unwrap_or(false) {
        match c.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => Some(name.to_owned()),
            None => {
                return Err(invalid(
                    format!("{field}.name"),
                    "is required when is_tenant_scoped is true",
                ));
            }
        }
    } else {
        None
    };
    Ok(ConcurrencyDef {
        expression: c.expression.clone(),
        max_runs,
        max_runs_expression,
        strategy,
        tenant_name,
    })
}

/// A chain may name a tenant-scoped limit once (its holders would collide with themselves).
fn check_chain(field: &str, chain: &[ConcurrencyDef]) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for c in chain {
        if let Some(name) = &c.tenant_name
            && !seen.insert(name.as_str())
        {
            return Err(invalid(
                field,
                format!("tenant-scoped concurrency limit {name:?} is referenced more than once"),
            ));
        }
    }
    Ok(())
}

fn or_group(id: &str) -> String {
    match Uuid::parse_str(id) {
        Ok(u) if !u.is_nil() => u.to_string(),
        _ => Uuid::new_v4().to_string(),
    }
}

fn since(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    ts.and_then(|t| SystemTime::try_from(*t).ok())
}

fn task_conditions(field: &str, c: &TaskConditions) -> Result<Vec<ConditionDef>, ValidationError> {
    let mut out = Vec::new();
    let mut keys = HashSet::new();
    let mut base = |f: String,
                    b: Option<&crate::proto::v1::BaseMatchCondition>|
     -> Result<(String, CondAction, String, String), ValidationError> {
        let b = b.ok_or_else(|| invalid(format!("{f}.base"), "is required"))?;
        let action = match b.action {
            1 => CondAction::Queue,
            2 => CondAction::Cancel,
            3 => CondAction::Skip,
            other => {
                return Err(invalid(
                    format!("{f}.base.action"),
                    format!("{other} must be QUEUE, CANCEL or SKIP"),
                ));
            }
        };
        if b.readable_data_key.is_empty() {
            return Err(invalid(
                format!("{f}.base.readable_data_key"),
                "must not be empty",
            ));
        }
        if !keys.insert(b.readable_data_key.clone()) {
            return Err(invalid(
                format!("{f}.base.readable_data_key"),
                format!("{:?} is used twice", b.readable_data_key),
            ));
        }
        if !b.expression.trim().is_empty() {
            expr::check(&b.expression)
                .map_err(|e| invalid(format!("{f}.base.expression"), e.to_string()))?;
        }
        Ok((
            b.readable_data_key.clone(),
            action,
            or_group(&b.or_group_id),
            b.expression.clone(),
        ))
    };
    for (i, s) in c.sleep_conditions.iter().enumerate() {
        let f = format!("{field}.sleep_conditions[{i}]");
        let (key, action, group, expression) = base(f.clone(), s.base.as_ref())?;
        let duration = duration::parse(&s.sleep_for)
            .map_err(|e| invalid(format!("{f}.sleep_for"), e.to_string()))?;
        out.push(ConditionDef {
            readable_data_key: key,
            action,
            or_group: group,
            expression,
            kind: CondKind::Sleep {
                duration,
                text: s.sleep_for.clone(),
            },
        });
    }
    for (i, u) in c.user_event_conditions.iter().enumerate() {
        let f = format!("{field}.user_event_conditions[{i}]");
        let (key, action, group, expression) = base(f.clone(), u.base.as_ref())?;
        if u.user_event_key.is_empty() {
            return Err(invalid(format!("{f}.user_event_key"), "must not be empty"));
        }
        out.push(ConditionDef {
            readable_data_key: key,
            action,
            or_group: group,
            expression,
            kind: CondKind::UserEvent {
                key: u.user_event_key.clone(),
                scope: u.event_scope.clone(),
                since: since(u.consider_events_since.as_ref()),
            },
        });
    }
    for (i, p) in c.parent_override_conditions.iter().enumerate() {
        let f = format!("{field}.parent_override_conditions[{i}]");
        let (_, action, group, expression) = base(f, p.base.as_ref())?;
        out.push(ConditionDef {
            readable_data_key: p.parent_readable_id.clone(),
            action,
            or_group: group,
            expression,
            kind: CondKind::ParentOverride {
                parent: p.parent_readable_id.clone(),
            },
        });
    }
    Ok(out)
}

/// Durable `wait_for` / legacy `RegisterDurableEvent` conditions (the action field is ignored).
/// `strict_groups` (legacy API) requires every `or_group_id` to be a UUID.
pub(crate) fn durable_conditions(
    c: &DurableEventListenerConditions,
    strict_groups: bool,
) -> Result<Vec<ConditionDef>, ValidationError> {
    let mut out = Vec::new();
    let group = |field: String, id: &str| -> Result<String, ValidationError> {
        if strict_groups && Uuid::parse_str(id).is_err() {
            return Err(invalid(field, format!("{id:?} is not a valid UUID")));
        }
        Ok(or_group(id))
    };
    for (i, s) in c.sleep_conditions.iter().enumerate() {
        let f = format!("sleep_conditions[{i}]");
        let b = s.base.clone().unwrap_or_default();
        let duration = duration::parse(&s.sleep_for)
            .map_err(|e| invalid(format!("{f}.sleep_for"), e.to_string()))?;
        out.push(ConditionDef {
            readable_data_key: if b.readable_data_key.is_empty() {
                format!("sleep:{}", s.sleep_for)
            } else {
                b.readable_data_key
            },
            action: CondAction::Create,
            or_group: group(format!("{f}.base.or_group_id"), &b.or_group_id)?,
            expression: b.expression,
            kind: CondKind::Sleep {
                duration,
                text: s.sleep_for.clone(),
            },
        });
    }
    for (i, u) in c.user_event_conditions.iter().enumerate() {
        let f = format!("user_event_conditions[{i}]");
        let b = u.base.clone().unwrap_or_default();
        if u.user_event_key.is_empty() {
            return Err(invalid(format!("{f}.user_event_key"), "must not be empty"));
        }
        out.push(ConditionDef {
            readable_data_key: if b.readable_data_key.is_empty() {
                u.user_event_key.clone()
            } else {
                b.readable_data_key
            },
            action: CondAction::Create,
            or_group: group(format!("{f}.base.or_group_id"), &b.or_group_id)?,
            expression: b.expression,
            kind: CondKind::UserEvent {
                key: u.user_event_key.clone(),
                scope: u.event_scope.clone(),
                since: since(u.consider_events_since.as_ref()),
            },
        });
    }
    if out.is_empty() {
        return Err(invalid(
            "conditions",
            "at least one sleep or user event condition is required",
        ));
    }
    Ok(out)
}

/// Converts `DesiredWorkerLabels` (task `worker_labels`, trigger `desired_worker_labels`).
pub(crate) fn desired_labels(
    labels: &HashMap<String, crate::proto::v1::DesiredWorkerLabels>,
) -> Vec<crate::engine::model::DesiredLabel> {
    use crate::engine::model::{DesiredLabel, LabelValue};
    let mut out: Vec<DesiredLabel> = labels
        .iter()
        .map(|(key, l)| DesiredLabel {
            key: key.clone(),
            value: match (l.int_value, &l.str_value) {
                (Some(i), _) => LabelValue::Int(i),
                (None, s) => LabelValue::Str(s.clone().unwrap_or_default()),
            },
            required: l.required.unwrap_or(false),
            comparator: l.comparator.unwrap_or(0),
            weight: l.weight.unwrap_or(100),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn task(
    field: &str,
    t: &CreateTaskOpts,
    index_of: &HashMap<&str, usize>,
) -> Result<TaskDef, ValidationError> {
    if t.readable_id.is_empty() {
        return Err(invalid(format!("{field}.readable_id"), "is required"));
    }
    check_name(&format!("{field}.readable_id"), &t.readable_id)?;
    if t.action.is_empty() {
        return Err(invalid(format!("{field}.action"), "is required"));
    }
    let action = parse_action(&format!("{field}.action"), &t.action)?;
    let (timeout, timeout_text) = duration_or(
        &format!("{field}.timeout"),
        &t.timeout,
        DEFAULT_EXECUTION_TIMEOUT,
    )?;
    let (schedule_timeout, _) = duration_or(
        &format!("{field}.schedule_timeout"),
        t.schedule_timeout.as_deref().unwrap_or(""),
        DEFAULT_SCHEDULE_TIMEOUT,
    )?;
    let mut parents = Vec::new();
    for p in &t.parents {
        check_name(&format!("{field}.parents"), p)?;
        let i = index_of.get(p.as_str()).ok_or_else(|| {
            invalid(
                format!("{field}.parents"),
                format!("parent {p:?} is not a task of this workflow"),
            )
        })?;
        parents.push(*i);
    }
    if t.retries < 0 {
        return Err(invalid(format!("{field}.retries"), "must be >= 0"));
    }
    if let Some(f) = t.backoff_factor
        && !(1.0..=1000.0).contains(&f)
    {
        return Err(invalid(
            format!("{field}.backoff_factor"),
            "must be between 1 and 1000",
        ));
    }
    if let Some(m) = t.backoff_max_seconds
        && !(1..=86_400).contains(&m)
    {
        return Err(invalid(
            format!("{field}.backoff_max_seconds"),
            "must be between 1 and 86400",
        ));
    }
    let mut slot_requests: Vec<(String, i32)> = t
        .slot_requests
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    slot_requests.sort();
    if let Some((k, _)) = slot_requests.iter().find(|(_, v)| *v <= 0) {
        return Err(invalid(
            format!("{field}.slot_requests[{k}]"),
            "must be > 0",
        ));
    }
    for (i, r) in t.rate_limits.iter().enumerate() {
        if r.key.is_empty() {
            return Err(invalid(
                format!("{field}.rate_limits[{i}].key"),
                "is required",
            ));
        }
        if r.units.is_none() && r.units_expr.is_none() {
            return Err(invalid(
                format!("{field}.rate_limits[{i}].units"),
                "units or units_expr is required",
            ));
        }
    }
    if t.batch.is_some() {
        return Err(invalid(
            format!("{field}.batch"),
            "batch tasks are not supported by the embedded engine",
        ));
    }
    let concurrency = t
        .concurrency
        .iter()
        .enumerate()
        .map(|(i, c)| concurrency(&format!("{field}.concurrency[{i}]"), c))
        .collect::<Result<Vec<_>, _>>()?;
    check_chain(&format!("{field}.concurrency"), &concurrency)?;
    let conditions = match &t.conditions {
        Some(c) => task_conditions(&format!("{field}.conditions"), c)?,
        None => Vec::new(),
    };
    for c in &conditions {
        if let CondKind::ParentOverride { parent } = &c.kind
            && !index_of.contains_key(parent.as_str())
        {
            return Err(invalid(
                format!("{field}.conditions.parent_override_conditions"),
                format!("unknown parent {parent:?}"),
            ));
        }
    }
    Ok(TaskDef {
        step_id: Uuid::new_v4(),
        readable_id: t.readable_id.clone(),
        action,
        timeout,
        timeout_text,
        schedule_timeout,
        parents,
        retries: t.retries,
        backoff_factor: t.backoff_factor.map(f64::from),
        backoff_max_seconds: t.backoff_max_seconds,
        concurrency,
        conditions,
        is_durable: t.is_durable,
        slot_requests,
        worker_labels: desired_labels(&t.worker_labels),
        rate_limits: t
            .rate_limits
            .iter()
            .map(|r| crate::engine::model::RateLimitDef {
                key: r.key.clone(),
                key_expr: r.key_expr.clone().filter(|e| !e.trim().is_empty()),
                units: r.units,
                units_expr: r.units_expr.clone().filter(|e| !e.trim().is_empty()),
                limit_expr: r.limit_values_expr.clone(),
                window: crate::engine::model::rate_window(r.duration.unwrap_or(1)),
            })
            .collect(),
    })
}

fn check_acyclic(tasks: &[TaskDef]) -> Result<(), ValidationError> {
    // Kahn's algorithm: anything left over sits on a cycle.
    let mut indegree: Vec<usize> = tasks.iter().map(|t| t.parents.len()).collect();
    let mut ready: Vec<usize> = (0..tasks.len()).filter(|i| indegree[*i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = ready.pop() {
        seen += 1;
        for (j, t) in tasks.iter().enumerate() {
            for p in &t.parents {
                if *p == i {
                    indegree[j] -= 1;
                    if indegree[j] == 0 {
                        ready.push(j);
                    }
                }
            }
        }
    }
    if seen == tasks.len() {
        Ok(())
    } else {
        let on_cycle: Vec<&str> = (0..tasks.len())
            .filter(|i| indegree[*i] > 0)
            .map(|i| tasks[i].readable_id.as_str())
            .collect();
        Err(invalid(
            "tasks.parents",
            format!("cycle between tasks {on_cycle:?}"),
        ))
    }
}

fn check_cron(field: &str, cron: &str) -> Result<(), ValidationError> {
    crate::engine::schedules::parse_cron(cron)
        .map(|_| ())
        .map_err(|e| invalid(field, e.to_string()))
}

/// Validates a `PutWorkflow` request. `workflow_id` is kept across versions of the same name.
pub(crate) fn workflow(
    req: &CreateWorkflowVersionRequest,
    workflow_id: Uuid,
) -> Result<WorkflowDef, ValidationError> {
    check_name("name", &req.name)?;
    if req.tasks.is_empty() {
        return Err(invalid("tasks", "at least one task is required"));
    }
    let mut index_of = HashMap::new();
    for (i, t) in req.tasks.iter().enumerate() {
        if !t.readable_id.is_empty() && index_of.insert(t.readable_id.as_str(), i).is_some() {
            return Err(invalid(
                format!("tasks[{i}].readable_id"),
                format!("{:?} is used twice", t.readable_id),
            ));
        }
    }
    let mut tasks = req
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| task(&format!("tasks[{i}]"), t, &index_of))
        .collect::<Result<Vec<_>, _>>()?;
    check_acyclic(&tasks)?;
    let on_failure = match &req.on_failure_task {
        Some(t) => {
            let def = task("on_failure_task", t, &HashMap::new())?;
            Some(def)
        }
        None => None,
    };
    for (i, c) in req.cron_triggers.iter().enumerate() {
        check_cron(&format!("cron_triggers[{i}]"), c)?;
    }
    for (i, e) in req.event_triggers.iter().enumerate() {
        if e.is_empty() {
            return Err(invalid(format!("event_triggers[{i}]"), "must not be empty"));
        }
    }
    let sticky = match req.sticky {
        None => None,
        Some(0) => Some(Sticky::Soft),
        Some(1) => Some(Sticky::Hard),
        Some(s) => return Err(invalid("sticky", format!("{s} must be SOFT or HARD"))),
    };
    let default_priority = req.default_priority.unwrap_or(1);
    if !(1..=3).contains(&default_priority) {
        return Err(invalid("default_priority", "must be between 1 and 3"));
    }
    let mut concurrency_defs = Vec::new();
    if let Some(c) = &req.concurrency {
        concurrency_defs.push(concurrency("concurrency", c)?);
    }
    for (i, c) in req.concurrency_arr.iter().enumerate() {
        concurrency_defs.push(concurrency(&format!("concurrency_arr[{i}]"), c)?);
    }
    check_chain("concurrency_arr", &concurrency_defs)?;
    if tasks.len() == 1 && on_failure.is_none() {
        // Hatchet runs a one-task workflow as a standalone task: workflow-level limits become the
        // task's, ahead of its own.
        let own = std::mem::take(&mut tasks[0].concurrency);
        tasks[0].concurrency = std::mem::take(&mut concurrency_defs);
        tasks[0].concurrency.extend(own);
        check_chain("tasks[0].concurrency", &tasks[0].concurrency)?;
    } else {
        // Workflow-scoped limits gate a run before tenant-scoped ones (Hatchet's DAG operator).
        concurrency_defs.sort_by_key(|c| c.tenant_name.is_some());
    }
    let mut filters = Vec::new();
    for (i, f) in req.default_filters.iter().enumerate() {
        expr::check(&f.expression)
            .map_err(|e| invalid(format!("default_filters[{i}].expression"), e.to_string()))?;
        let payload = match &f.payload {
            None => serde_json::json!({}),
            Some(bytes) if bytes.is_empty() => serde_json::json!({}),
            Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => {
                    return Err(invalid(
                        format!("default_filters[{i}].payload"),
                        "must be a JSON object",
                    ));
                }
            },
        };
        filters.push(FilterDef {
            expression: f.expression.clone(),
            scope: f.scope.clone(),
            payload,
        });
    }
    let idempotency = req
        .idempotency
        .as_ref()
        .map(crate::engine::idempotency::IdempotencyDef::from_proto)
        .transpose()
        .map_err(|(field, message)| invalid(field, message))?;
    Ok(WorkflowDef {
        name: req.name.clone(),
        workflow_id,
        version_id: Uuid::new_v4(),
        registered_at: SystemTime::now(),
        event_triggers: req.event_triggers.clone(),
        tasks,
        on_failure,
        concurrency: concurrency_defs,
        default_priority,
        filters,
        sticky,
        idempotency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{BaseMatchCondition, SleepMatchCondition};

    fn task_opts(name: &str, parents: &[&str]) -> CreateTaskOpts {
        CreateTaskOpts {
            readable_id: name.into(),
            action: format!("wf:{name}"),
            timeout: "1m".into(),
            parents: parents.iter().map(|p| (*p).to_string()).collect(),
            ..Default::default()
        }
    }

    fn req(tasks: Vec<CreateTaskOpts>) -> CreateWorkflowVersionRequest {
        CreateWorkflowVersionRequest {
            name: "Wf".into(),
            tasks,
            ..Default::default()
        }
    }

    fn err(r: &CreateWorkflowVersionRequest) -> ValidationError {
        workflow(r, Uuid::new_v4()).expect_err("must be rejected")
    }

    #[test]
    fn accepts_a_dag_and_lowercases_actions() {
        let mut r = req(vec![
            task_opts("a", &[]),
            task_opts("b", &["a"]),
            task_opts("c", &["a", "b"]),
        ]);
        r.tasks[0].action = "WF:A".into();
        let w = workflow(&r, Uuid::nil()).unwrap();
        assert_eq!(w.tasks[0].action, "wf:a");
        assert_eq!(w.tasks[2].parents, vec![0, 1]);
        assert_eq!(w.tasks[0].timeout, Duration::from_secs(60));
        assert_eq!(w.tasks[0].schedule_timeout, DEFAULT_SCHEDULE_TIMEOUT);
        assert_eq!(w.default_priority, 1);
    }

    #[test]
    fn rejects_bad_names_and_missing_parents_and_cycles() {
        let mut r = req(vec![task_opts("a", &[])]);
        r.name = "has space".into();
        assert_eq!(err(&r).field, "name");
        assert_eq!(err(&req(vec![])).field, "tasks");
        assert_eq!(
            err(&req(vec![task_opts("a", &["zz"])])).field,
            "tasks[0].parents"
        );
        let e = err(&req(vec![task_opts("a", &["b"]), task_opts("b", &["a"])]));
        assert_eq!(e.field, "tasks.parents");
        assert!(e.message.contains("cycle"));
        assert_eq!(
            err(&req(vec![task_opts("a", &["a"])])).field,
            "tasks.parents"
        );
        assert_eq!(
            err(&req(vec![task_opts("a", &[]), task_opts("a", &[])])).field,
            "tasks[1].readable_id"
        );
    }

    #[test]
    fn rejects_bad_durations_backoff_and_strategies() {
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].timeout = "5 minutes".into();
        assert_eq!(err(&r).field, "tasks[0].timeout");
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].backoff_factor = Some(0.5);
        assert_eq!(err(&r).field, "tasks[0].backoff_factor");
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].backoff_max_seconds = Some(90_000);
        assert_eq!(err(&r).field, "tasks[0].backoff_max_seconds");
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].action = "noverb".into();
        assert_eq!(err(&r).field, "tasks[0].action");
        let mut r = req(vec![task_opts("a", &[])]);
        r.concurrency = Some(Concurrency {
            expression: "input.k".into(),
            limit_strategy: Some(1),
            ..Default::default()
        });
        assert_eq!(err(&r).field, "concurrency.limit_strategy");
        let mut r = req(vec![task_opts("a", &[])]);
        r.concurrency = Some(Concurrency {
            expression: String::new(),
            ..Default::default()
        });
        assert_eq!(err(&r).field, "concurrency.expression");
        let mut r = req(vec![task_opts("a", &[])]);
        r.default_priority = Some(4);
        assert_eq!(err(&r).field, "default_priority");
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].retries = -1;
        assert_eq!(err(&r).field, "tasks[0].retries");
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].slot_requests.insert("default".into(), 0);
        assert_eq!(err(&r).field, "tasks[0].slot_requests[default]");
    }

    #[test]
    fn task_conditions_need_an_explicit_action() {
        let mut r = req(vec![task_opts("a", &[])]);
        r.tasks[0].conditions = Some(TaskConditions {
            sleep_conditions: vec![SleepMatchCondition {
                base: Some(BaseMatchCondition {
                    readable_data_key: "sleep:1s".into(),
                    action: 0,
                    ..Default::default()
                }),
                sleep_for: "1s".into(),
            }],
            ..Default::default()
        });
        assert_eq!(
            err(&r).field,
            "tasks[0].conditions.sleep_conditions[0].base.action"
        );
        r.tasks[0].conditions.as_mut().unwrap().sleep_conditions[0]
            .base
            .as_mut()
            .unwrap()
            .action = 1;
        let w = workflow(&r, Uuid::nil()).unwrap();
        assert_eq!(w.tasks[0].conditions[0].action, CondAction::Queue);
    }

    #[test]
    fn legacy_durable_conditions_need_uuid_groups() {
        let c = DurableEventListenerConditions {
            sleep_conditions: vec![SleepMatchCondition {
                base: Some(BaseMatchCondition {
                    or_group_id: "not-a-uuid".into(),
                    ..Default::default()
                }),
                sleep_for: "1s".into(),
            }],
            ..Default::default()
        };
        assert!(durable_conditions(&c, true).is_err());
        let conds = durable_conditions(&c, false).unwrap();
        assert_eq!(conds[0].readable_data_key, "sleep:1s");
    }
}
