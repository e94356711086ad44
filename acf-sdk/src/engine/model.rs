//! The engine's validated, proto-free view of a registered workflow (built by `validation`).

use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// Engine default execution timeout when a task's `timeout` is empty.
pub(crate) const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(300);
/// Engine default schedule timeout.
pub(crate) const DEFAULT_SCHEDULE_TIMEOUT: Duration = Duration::from_secs(300);
/// Engine default slot type.
pub(crate) const DEFAULT_SLOT_TYPE: &str = "default";

/// One registered workflow version.
#[derive(Debug, Clone)]
pub(crate) struct WorkflowDef {
    /// Exact (case-preserved) workflow name.
    pub(crate) name: String,
    /// Stable workflow id (kept across versions).
    pub(crate) workflow_id: Uuid,
    /// Version id of this definition.
    pub(crate) version_id: Uuid,
    /// When this version was registered.
    pub(crate) registered_at: SystemTime,
    /// Event keys that trigger the workflow.
    pub(crate) event_triggers: Vec<String>,
    /// Tasks in registration order; `parents` index into this vector.
    pub(crate) tasks: Vec<TaskDef>,
    /// Runs when the run failed.
    pub(crate) on_failure: Option<TaskDef>,
    /// Run-level concurrency limits.
    pub(crate) concurrency: Vec<ConcurrencyDef>,
    /// Default priority 1..3.
    pub(crate) default_priority: i32,
    /// Event filters (scope, CEL expression, payload).
    pub(crate) filters: Vec<FilterDef>,
    /// How strictly runs stay on the trigger's `desired_worker_id`.
    pub(crate) sticky: Option<Sticky>,
    /// Trigger deduplication by a CEL key.
    pub(crate) idempotency: Option<crate::engine::idempotency::IdempotencyDef>,
}

/// `StickyStrategy`: how a run's tasks use the trigger's `desired_worker_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sticky {
    /// Prefer the desired worker, fall back to any.
    Soft,
    /// Only the desired worker (tasks wait for it).
    Hard,
}

/// One task definition.
#[derive(Debug, Clone)]
pub(crate) struct TaskDef {
    /// Step id (`AssignedAction.task_id` / `job_id`).
    pub(crate) step_id: Uuid,
    /// Readable id (task name).
    pub(crate) readable_id: String,
    /// Lower-cased action id.
    pub(crate) action: String,
    /// Execution timeout.
    pub(crate) timeout: Duration,
    /// The timeout as the user wrote it (error text).
    pub(crate) timeout_text: String,
    /// Schedule timeout.
    pub(crate) schedule_timeout: Duration,
    /// Indexes of parent tasks in `WorkflowDef::tasks`.
    pub(crate) parents: Vec<usize>,
    /// Application retries.
    pub(crate) retries: i32,
    /// Exponential backoff factor.
    pub(crate) backoff_factor: Option<f64>,
    /// Backoff cap in seconds.
    pub(crate) backoff_max_seconds: Option<i32>,
    /// Task-level concurrency limits.
    pub(crate) concurrency: Vec<ConcurrencyDef>,
    /// `wait_for` / `skip_if` / `cancel_if` conditions.
    pub(crate) conditions: Vec<ConditionDef>,
    /// Durable task.
    pub(crate) is_durable: bool,
    /// Slot units by slot type.
    pub(crate) slot_requests: Vec<(String, i32)>,
    /// Desired worker labels (affinity).
    pub(crate) worker_labels: Vec<DesiredLabel>,
    /// Rate limits.
    pub(crate) rate_limits: Vec<RateLimitDef>,
}

impl TaskDef {
    /// Delay before retry attempt `next_retry` (1-based), Hatchet's `factor ^ attempt` capped.
    pub(crate) fn backoff(&self, next_retry: i32) -> Duration {
        match self.backoff_factor {
            None => Duration::ZERO,
            Some(factor) => {
                let cap = f64::from(self.backoff_max_seconds.unwrap_or(86_400));
                let secs = factor.powi(next_retry).min(cap).max(0.0);
                Duration::from_secs_f64(secs)
            }
        }
    }
}

/// A concurrency limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConcurrencyDef {
    /// CEL expression giving the group key.
    pub(crate) expression: String,
    /// Runs per key.
    pub(crate) max_runs: i32,
    /// CEL expression giving the runs per key (overrides `max_runs`).
    pub(crate) max_runs_expression: Option<String>,
    /// What happens at the limit.
    pub(crate) strategy: Strategy,
    /// Name of a tenant-scoped limit shared by every workflow naming it (`is_tenant_scoped`); its
    /// current definition lives in `State::tenant_concurrency`.
    pub(crate) tenant_name: Option<String>,
}

/// Concurrency limit strategies supported by v1 engines (see [`crate::engine::concurrency`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Cancel the oldest running holders to admit the new one.
    CancelInProgress,
    /// Queue per key, admitting keys in turn.
    GroupRoundRobin,
    /// Cancel the newcomer.
    CancelNewest,
    /// Keep the newest `max_runs` waiting, cancel older waiting holders.
    CancelQueuedExceptNewest,
    /// Keep the oldest `max_runs` waiting, cancel newer waiting holders.
    CancelQueuedExceptOldest,
}

/// What a task condition does when its groups are satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CondAction {
    /// Durable waits (the action is ignored).
    Create,
    /// Queue the task.
    Queue,
    /// Cancel the task.
    Cancel,
    /// Skip the task.
    Skip,
}

/// One condition.
#[derive(Debug, Clone)]
pub(crate) struct ConditionDef {
    /// Key under which the satisfied data is reported.
    pub(crate) readable_data_key: String,
    /// What it does.
    pub(crate) action: CondAction,
    /// Conditions sharing an or-group are alternatives; groups are AND-ed.
    pub(crate) or_group: String,
    /// CEL filter (`input` = event payload / parent output); empty = true.
    pub(crate) expression: String,
    /// The kind-specific part.
    pub(crate) kind: CondKind,
}

/// Kinds of conditions.
#[derive(Debug, Clone)]
pub(crate) enum CondKind {
    /// Fires after a delay.
    Sleep {
        /// The delay.
        duration: Duration,
        /// The delay as written.
        text: String,
    },
    /// Fires on a matching event.
    UserEvent {
        /// Event key.
        key: String,
        /// Only events pushed with this scope.
        scope: Option<String>,
        /// Lookback start (only honoured together with a scope).
        since: Option<SystemTime>,
    },
    /// Evaluated against a parent's output.
    ParentOverride {
        /// Parent readable id.
        parent: String,
    },
}

/// A default event filter of a workflow.
#[derive(Debug, Clone)]
pub(crate) struct FilterDef {
    /// CEL over `input` (event payload), `additional_metadata`, `payload`.
    pub(crate) expression: String,
    /// Event scope this filter applies to.
    pub(crate) scope: String,
    /// JSON payload handed to runs as `filter_payload`.
    pub(crate) payload: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(factor: Option<f64>, max: Option<i32>) -> TaskDef {
        TaskDef {
            step_id: Uuid::nil(),
            readable_id: "t".into(),
            action: "w:t".into(),
            timeout: DEFAULT_EXECUTION_TIMEOUT,
            timeout_text: "5m".into(),
            schedule_timeout: DEFAULT_SCHEDULE_TIMEOUT,
            parents: vec![],
            retries: 3,
            backoff_factor: factor,
            backoff_max_seconds: max,
            concurrency: vec![],
            conditions: vec![],
            is_durable: false,
            slot_requests: vec![],
            worker_labels: vec![],
            rate_limits: vec![],
        }
    }

    #[test]
    fn backoff_is_exponential_and_capped() {
        assert_eq!(task(None, None).backoff(1), Duration::ZERO);
        let t = task(Some(2.0), Some(5));
        assert_eq!(t.backoff(1), Duration::from_secs(2));
        assert_eq!(t.backoff(2), Duration::from_secs(4));
        assert_eq!(t.backoff(3), Duration::from_secs(5));
    }
}

/// A worker label value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LabelValue {
    /// Text label.
    Str(String),
    /// Integer label.
    Int(i32),
}

/// A desired worker label (task `worker_labels` or trigger `desired_worker_labels`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredLabel {
    /// Label key.
    pub(crate) key: String,
    /// Value compared against the worker's label.
    pub(crate) value: LabelValue,
    /// Workers without a matching label are not eligible.
    pub(crate) required: bool,
    /// `WorkerLabelComparator` (0 = EQUAL … 5 = LESS_THAN_OR_EQUAL): `worker <op> value`.
    pub(crate) comparator: i32,
    /// Preference weight of a match (default 100).
    pub(crate) weight: i32,
}

impl DesiredLabel {
    /// Whether a worker label value satisfies this desire.
    pub(crate) fn matches(&self, worker: Option<&LabelValue>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let ordering = match (worker, &self.value) {
            (Some(LabelValue::Int(w)), LabelValue::Int(d)) => w.cmp(d),
            (Some(LabelValue::Str(w)), LabelValue::Str(d)) => w.cmp(d),
            (Some(LabelValue::Int(w)), LabelValue::Str(d)) => w.to_string().cmp(d),
            (Some(LabelValue::Str(w)), LabelValue::Int(d)) => w.cmp(&d.to_string()),
            (None, _) => return false,
        };
        match self.comparator {
            1 => ordering != Equal,
            2 => ordering == Greater,
            3 => ordering != Less,
            4 => ordering == Less,
            5 => ordering != Greater,
            _ => ordering == Equal,
        }
    }
}

/// Affinity of a worker for a task: `None` when a required label is unmet, else the summed
/// weights of the satisfied desires.
pub(crate) fn label_score(
    worker: &std::collections::HashMap<String, LabelValue>,
    desired: &[DesiredLabel],
) -> Option<i64> {
    let mut score = 0i64;
    for d in desired {
        if d.matches(worker.get(&d.key)) {
            score += i64::from(d.weight);
        } else if d.required {
            return None;
        }
    }
    Some(score)
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use std::collections::HashMap;

    fn want(
        key: &str,
        value: LabelValue,
        required: bool,
        comparator: i32,
        weight: i32,
    ) -> DesiredLabel {
        DesiredLabel {
            key: key.into(),
            value,
            required,
            comparator,
            weight,
        }
    }

    #[test]
    fn required_labels_filter_and_weights_rank() {
        let gpu = HashMap::from([
            ("model".to_owned(), LabelValue::Str("fancy".into())),
            ("memory".to_owned(), LabelValue::Int(512)),
        ]);
        let cpu = HashMap::from([("memory".to_owned(), LabelValue::Int(128))]);
        let needs_fancy = [want("model", LabelValue::Str("fancy".into()), true, 0, 100)];
        assert_eq!(label_score(&gpu, &needs_fancy), Some(100));
        assert_eq!(label_score(&cpu, &needs_fancy), None);
        let prefers_memory = [want("memory", LabelValue::Int(256), false, 3, 10)];
        assert_eq!(label_score(&gpu, &prefers_memory), Some(10));
        assert_eq!(label_score(&cpu, &prefers_memory), Some(0));
        assert!(
            want("memory", LabelValue::Int(256), true, 4, 1).matches(Some(&LabelValue::Int(128)))
        );
        assert!(!want("memory", LabelValue::Int(256), true, 4, 1).matches(None));
    }
}

/// A task rate limit (`CreateTaskRateLimit`): static (`key` + `units`, limit from `PutRateLimit`)
/// or dynamic (`key_expr`, `units_expr`, `limit_values_expr` in CEL over the run input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLimitDef {
    /// Static key (also set for dynamic limits).
    pub(crate) key: String,
    /// CEL giving the key.
    pub(crate) key_expr: Option<String>,
    /// Static units.
    pub(crate) units: Option<i32>,
    /// CEL giving the units.
    pub(crate) units_expr: Option<String>,
    /// CEL giving the limit (Python sends `"-1"` for static limits: ignored).
    pub(crate) limit_expr: Option<String>,
    /// Window for dynamic limits.
    pub(crate) window: Duration,
}

/// `RateLimitDuration` → window length.
pub(crate) fn rate_window(duration: i32) -> Duration {
    const DAY: u64 = 86_400;
    Duration::from_secs(match duration {
        0 => 1,
        2 => 3_600,
        3 => DAY,
        4 => 7 * DAY,
        5 => 30 * DAY,
        6 => 365 * DAY,
        _ => 60,
    })
}
