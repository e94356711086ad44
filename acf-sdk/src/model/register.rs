//! Conversion of a [`WorkflowDefinition`] into the `v1.AdminService/PutWorkflow` request, field for field as the
//! Python SDK fills it (`Workflow.to_proto` / `Task.to_proto`).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::condition::{Condition, ConditionAction};
use super::options::{
    Concurrency, ConcurrencyLimitStrategy, DesiredWorkerLabel, IdempotencyMethod, IntOrExpr,
    LabelValue, RateLimit, RateLimitDuration, StickyStrategy, WorkerLabelComparator,
    WorkflowConcurrency,
};
use super::task::TaskDefinition;
use super::workflow::{DefinitionError, WorkflowDefinition};
use crate::proto::v1;
use crate::{duration, namespace};

impl WorkflowDefinition {
    /// The namespaced workflow name (`namespace + name`, case kept, not prefixed twice), as triggers must spell it.
    pub fn namespaced_name(&self, namespace: &str) -> String {
        namespace::apply(namespace, &self.name)
    }

    /// The action service: `apply_namespace(lower(name))`.
    pub fn service_name(&self, namespace: &str) -> String {
        namespace::apply(namespace, &self.name.to_lowercase())
    }

    /// Action ids (`service:task`) of every task, including the on-failure task.
    pub fn action_ids(&self, namespace: &str) -> Vec<String> {
        let service = self.service_name(namespace);
        self.all_tasks()
            .map(|t| format!("{service}:{}", t.name))
            .collect()
    }

    /// Validates and builds the registration request (`namespace` already normalised, see
    /// [`namespace::normalize`]).
    pub fn to_proto(
        &self,
        namespace: &str,
    ) -> Result<v1::CreateWorkflowVersionRequest, DefinitionError> {
        self.validate()?;
        let service = self.service_name(namespace);
        let (concurrency, concurrency_arr) = match &self.concurrency {
            None => (None, Vec::new()),
            Some(WorkflowConcurrency::Single(c)) => (Some(concurrency_proto(c)), Vec::new()),
            Some(WorkflowConcurrency::List(list)) => {
                (None, list.iter().map(concurrency_proto).collect())
            }
        };
        Ok(v1::CreateWorkflowVersionRequest {
            name: self.namespaced_name(namespace),
            description: self.description.clone().unwrap_or_default(),
            version: self.version.clone().unwrap_or_default(),
            event_triggers: self
                .on_events
                .iter()
                .map(|e| namespace::apply(namespace, e))
                .collect(),
            cron_triggers: self.on_crons.clone(),
            tasks: self
                .tasks
                .iter()
                .map(|t| task_proto(t, &service, namespace))
                .collect(),
            concurrency,
            // Python sends nothing for a falsy cron input.
            cron_input: self
                .cron_input
                .as_ref()
                .filter(|v| !(v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty)))
                .map(serde_json::Value::to_string),
            on_failure_task: self
                .on_failure
                .as_ref()
                .map(|t| task_proto(t, &service, namespace)),
            sticky: self.sticky.map(|s| match s {
                StickyStrategy::Soft => v1::StickyStrategy::Soft as i32,
                StickyStrategy::Hard => v1::StickyStrategy::Hard as i32,
            }),
            default_priority: Some(self.default_priority.as_i32()),
            concurrency_arr,
            default_filters: self
                .default_filters
                .iter()
                .map(|f| v1::DefaultFilter {
                    expression: f.expression.clone(),
                    scope: f.scope.clone(),
                    payload: Some(
                        serde_json::Value::Object(f.payload.clone())
                            .to_string()
                            .into_bytes(),
                    ),
                })
                .collect(),
            input_json_schema: self
                .input_json_schema
                .as_ref()
                .map(|s| s.to_string().into_bytes()),
            idempotency: self.idempotency.as_ref().map(|i| v1::IdempotencyConfig {
                expression: i.expression.clone(),
                ttl_ms: i64::try_from(i.ttl.as_millis()).unwrap_or(i64::MAX),
                method: i.method.map(|m| match m {
                    IdempotencyMethod::Ttl => v1::IdempotencyMethod::Ttl as i32,
                    IdempotencyMethod::Status => v1::IdempotencyMethod::Status as i32,
                }),
            }),
        })
    }
}

fn task_proto(task: &TaskDefinition, service: &str, namespace: &str) -> v1::CreateTaskOpts {
    v1::CreateTaskOpts {
        readable_id: task.name.clone(),
        action: format!("{service}:{}", task.name),
        timeout: duration::python_expr(task.execution_timeout),
        inputs: "{}".to_owned(),
        parents: task.parents.clone(),
        retries: task.retries,
        rate_limits: task.rate_limits.iter().map(rate_limit_proto).collect(),
        worker_labels: task
            .desired_worker_labels
            .iter()
            .map(|(k, v)| (k.clone(), desired_label_proto(v)))
            .collect(),
        backoff_factor: task.backoff_factor,
        backoff_max_seconds: task.backoff_max_seconds,
        concurrency: task.concurrency.iter().map(concurrency_proto).collect(),
        conditions: Some(conditions_proto(task, service, namespace)),
        schedule_timeout: Some(duration::python_expr(task.schedule_timeout)),
        is_durable: task.durable,
        slot_requests: task
            .effective_slot_requests()
            .into_iter()
            .collect::<HashMap<_, _>>(),
        batch: None,
    }
}

/// Python's `_conditions_to_proto`: wait_for, then cancel_if, then skip_if, each sorted into its kind's list.
fn conditions_proto(task: &TaskDefinition, service: &str, namespace: &str) -> v1::TaskConditions {
    let mut out = v1::TaskConditions::default();
    let order = [
        ConditionAction::Queue,
        ConditionAction::Cancel,
        ConditionAction::Skip,
    ];
    for action in order {
        for (index, (_, group)) in task
            .conditions
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| *a == action)
        {
            let group_id = or_group_id(&format!("{service}:{}", task.name), index);
            let wire_action = match action {
                ConditionAction::Queue => v1::Action::Queue,
                ConditionAction::Cancel => v1::Action::Cancel,
                ConditionAction::Skip => v1::Action::Skip,
            };
            for condition in &group.conditions {
                push_condition(
                    &mut out,
                    condition,
                    wire_action as i32,
                    &group_id,
                    namespace,
                    false,
                );
            }
        }
    }
    out
}

/// Adds one condition to the list of its kind (shared by task conditions and durable waits).
pub(crate) fn push_condition(
    out: &mut v1::TaskConditions,
    condition: &Condition,
    action: i32,
    or_group_id: &str,
    namespace: &str,
    precise_sleep: bool,
) {
    let base = |key: &str, expression: Option<&String>| v1::BaseMatchCondition {
        readable_data_key: key.to_owned(),
        action,
        or_group_id: or_group_id.to_owned(),
        expression: expression.cloned().unwrap_or_default(),
    };
    match condition {
        Condition::Sleep {
            duration: d,
            readable_data_key,
        } => out.sleep_conditions.push(v1::SleepMatchCondition {
            base: Some(base(readable_data_key, None)),
            // Registration formats like Python; durable waits keep sub-second precision.
            sleep_for: if precise_sleep {
                duration::precise_expr(*d)
            } else {
                duration::python_expr(*d)
            },
        }),
        Condition::UserEvent {
            event_key,
            expression,
            readable_data_key,
            scope,
            consider_events_since,
        } => {
            out.user_event_conditions.push(v1::UserEventMatchCondition {
                base: Some(base(readable_data_key, expression.as_ref())),
                user_event_key: namespace::apply(namespace, event_key),
                event_scope: scope.clone(),
                consider_events_since: consider_events_since.map(|t| prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
                }),
            });
        }
        Condition::Parent {
            parent,
            expression,
            readable_data_key,
        } => {
            out.parent_override_conditions
                .push(v1::ParentOverrideMatchCondition {
                    base: Some(base(readable_data_key, expression.as_ref())),
                    parent_readable_id: parent.clone(),
                });
        }
    }
}

/// A deterministic or-group UUID per (action, group index). Python draws a random UUID4; a stable id makes
/// re-registration of unchanged content idempotent (the engine versions workflows by checksum).
fn or_group_id(action: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("acf-or-group\0{action}\0{index}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

pub(crate) fn concurrency_proto(c: &Concurrency) -> v1::Concurrency {
    v1::Concurrency {
        expression: c.expression.clone(),
        max_runs: Some(c.max_runs),
        limit_strategy: Some(match c.limit_strategy {
            ConcurrencyLimitStrategy::CancelInProgress => {
                v1::ConcurrencyLimitStrategy::CancelInProgress
            }
            ConcurrencyLimitStrategy::GroupRoundRobin => {
                v1::ConcurrencyLimitStrategy::GroupRoundRobin
            }
            ConcurrencyLimitStrategy::CancelNewest => v1::ConcurrencyLimitStrategy::CancelNewest,
        } as i32),
        name: None,
        is_tenant_scoped: None,
        max_runs_expression: None,
    }
}

/// Python's `RateLimit.to_proto`, including its `limit_values_expr = "-1"` quirk for static keys.
fn rate_limit_proto(r: &RateLimit) -> v1::CreateTaskRateLimit {
    let (units, units_expr) = match &r.units {
        IntOrExpr::Int(n) => (Some(*n), None),
        IntOrExpr::Expr(e) => (None, Some(e.clone())),
    };
    let limit = match &r.limit {
        Some(IntOrExpr::Int(n)) => n.to_string(),
        Some(IntOrExpr::Expr(e)) => e.clone(),
        None => "-1".to_owned(),
    };
    v1::CreateTaskRateLimit {
        key: r.key.clone(),
        units,
        key_expr: r.dynamic.then(|| r.key.clone()),
        units_expr,
        // Python drops a falsy limit (0 or empty) entirely.
        limit_values_expr: (limit != "0" && !limit.is_empty()).then_some(limit),
        duration: Some(rate_limit_duration_proto(r.duration) as i32),
    }
}

pub(crate) fn rate_limit_duration_proto(d: RateLimitDuration) -> v1::RateLimitDuration {
    match d {
        RateLimitDuration::Second => v1::RateLimitDuration::Second,
        RateLimitDuration::Minute => v1::RateLimitDuration::Minute,
        RateLimitDuration::Hour => v1::RateLimitDuration::Hour,
        RateLimitDuration::Day => v1::RateLimitDuration::Day,
        RateLimitDuration::Week => v1::RateLimitDuration::Week,
        RateLimitDuration::Month => v1::RateLimitDuration::Month,
        RateLimitDuration::Year => v1::RateLimitDuration::Year,
    }
}

pub(crate) fn desired_label_proto(l: &DesiredWorkerLabel) -> v1::DesiredWorkerLabels {
    let (str_value, int_value) = match &l.value {
        LabelValue::Str(s) => (Some(s.clone()), None),
        LabelValue::Int(i) => (None, Some(*i)),
    };
    v1::DesiredWorkerLabels {
        str_value,
        int_value,
        required: Some(l.required),
        comparator: l.comparator.map(|c| {
            (match c {
                WorkerLabelComparator::Equal => v1::WorkerLabelComparator::Equal,
                WorkerLabelComparator::NotEqual => v1::WorkerLabelComparator::NotEqual,
                WorkerLabelComparator::GreaterThan => v1::WorkerLabelComparator::GreaterThan,
                WorkerLabelComparator::GreaterThanOrEqual => {
                    v1::WorkerLabelComparator::GreaterThanOrEqual
                }
                WorkerLabelComparator::LessThan => v1::WorkerLabelComparator::LessThan,
                WorkerLabelComparator::LessThanOrEqual => {
                    v1::WorkerLabelComparator::LessThanOrEqual
                }
            }) as i32
        }),
        weight: l.weight,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{Concurrency, ConditionGroup, DesiredWorkerLabel, Priority};

    fn def() -> WorkflowDefinition {
        WorkflowDefinition::new("Order-Flow")
            .on_event("order:created")
            .on_cron("0 * * * *")
            .concurrency(WorkflowConcurrency::Single(Concurrency::max_runs(3)))
            .default_priority(Priority::Medium)
            .task(TaskDefinition::new("Validate").retries(2).backoff(2.0, 60))
            .task(
                TaskDefinition::new("charge")
                    .parents(["validate"])
                    .execution_timeout(Duration::from_secs(90))
                    .rate_limit(RateLimit::fixed("payments", 1))
                    .desired_label("zone", DesiredWorkerLabel::new("eu").required())
                    .wait_for(ConditionGroup::any([
                        Condition::event("payment:ok").scope("s1"),
                        Condition::sleep(Duration::from_secs(30)),
                    ])),
            )
            .task(TaskDefinition::new("wait").durable(true))
            .on_failure(TaskDefinition::new("cleanup"))
    }

    #[test]
    fn fills_the_request_like_python() {
        let req = def().to_proto("ns_").unwrap();
        assert_eq!(req.name, "ns_Order-Flow");
        assert_eq!(req.event_triggers, ["ns_order:created"]);
        assert_eq!(req.cron_triggers, ["0 * * * *"]);
        assert_eq!(req.default_priority, Some(2));
        let c = req.concurrency.as_ref().unwrap();
        assert_eq!((c.expression.as_str(), c.max_runs), ("'constant'", Some(3)));
        assert_eq!(
            c.limit_strategy,
            Some(v1::ConcurrencyLimitStrategy::GroupRoundRobin as i32)
        );
        assert!(req.concurrency_arr.is_empty());
        assert_eq!(req.cron_input, None);

        let v = &req.tasks[0];
        assert_eq!(
            (v.readable_id.as_str(), v.action.as_str()),
            ("validate", "ns_order-flow:validate")
        );
        assert_eq!(
            (v.timeout.as_str(), v.schedule_timeout.as_deref()),
            ("1m", Some("5m"))
        );
        assert_eq!(v.inputs, "{}");
        assert_eq!(
            (v.retries, v.backoff_factor, v.backoff_max_seconds),
            (2, Some(2.0), Some(60))
        );
        assert_eq!(v.slot_requests, HashMap::from([("default".to_owned(), 1)]));
        assert_eq!(v.conditions, Some(v1::TaskConditions::default()));
        assert!(!v.is_durable);

        let charge = &req.tasks[1];
        assert_eq!(charge.parents, ["validate"]);
        assert_eq!(charge.timeout, "90s");
        let rl = &charge.rate_limits[0];
        assert_eq!(
            (rl.key.as_str(), rl.units, rl.key_expr.as_deref()),
            ("payments", Some(1), None)
        );
        assert_eq!(rl.limit_values_expr.as_deref(), Some("-1"));
        assert_eq!(rl.duration, Some(v1::RateLimitDuration::Minute as i32));
        let label = &charge.worker_labels["zone"];
        assert_eq!(
            (label.str_value.as_deref(), label.required),
            (Some("eu"), Some(true))
        );
        let conds = charge.conditions.as_ref().unwrap();
        let ev = &conds.user_event_conditions[0];
        let sl = &conds.sleep_conditions[0];
        assert_eq!(ev.user_event_key, "ns_payment:ok");
        assert_eq!(ev.event_scope.as_deref(), Some("s1"));
        let (eb, sb) = (ev.base.as_ref().unwrap(), sl.base.as_ref().unwrap());
        assert_eq!(eb.readable_data_key, "payment:ok");
        assert_eq!(sb.readable_data_key, "sleep:30s");
        assert_eq!(sl.sleep_for, "30s");
        assert_eq!(eb.action, v1::Action::Queue as i32);
        // One or-group: event OR timeout.
        assert_eq!(eb.or_group_id, sb.or_group_id);
        assert!(uuid::Uuid::parse_str(&eb.or_group_id).is_ok());

        let wait = &req.tasks[2];
        assert!(wait.is_durable);
        assert_eq!(
            wait.slot_requests,
            HashMap::from([("durable".to_owned(), 1)])
        );
        let fail = req.on_failure_task.as_ref().unwrap();
        assert_eq!(fail.action, "ns_order-flow:cleanup");
        assert_eq!(def().action_ids("ns_").len(), 4);
    }

    #[test]
    fn registration_is_deterministic_and_validates() {
        assert_eq!(def().to_proto("").unwrap(), def().to_proto("").unwrap());
        assert!(WorkflowDefinition::new("empty").to_proto("").is_err());
    }

    #[test]
    fn separate_groups_get_separate_or_group_ids() {
        let d = WorkflowDefinition::new("w").task(
            TaskDefinition::new("t")
                .wait_for(Condition::event("a"))
                .skip_if(Condition::event("b").key("bee")),
        );
        let req = d.to_proto("").unwrap();
        let c = &req.tasks[0]
            .conditions
            .as_ref()
            .unwrap()
            .user_event_conditions;
        assert_ne!(
            c[0].base.as_ref().unwrap().or_group_id,
            c[1].base.as_ref().unwrap().or_group_id
        );
        assert_eq!(c[1].base.as_ref().unwrap().action, v1::Action::Skip as i32);
    }
}
