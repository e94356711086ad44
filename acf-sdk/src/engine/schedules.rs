//! Time-based triggers and REST-managed event filters: one-off scheduled runs, cron schedules
//! (REST-created and declared through `PutWorkflow`'s `cron_triggers`), and `v1` filters.
//!
//! The timer loop calls [`State::fire_schedules`] every tick; due entries trigger runs exactly as
//! an API trigger would. Cron expressions are the standard 5-field form (minute hour day-of-month
//! month day-of-week, UTC) that Hatchet accepts; `@hourly`-style aliases are accepted too.

use crate::engine::lifecycle::TriggerSpec;
use crate::engine::state::{RunOrigin, State};
use serde_json::Value;
use std::str::FromStr as _;
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Who created a schedule (Hatchet's `method`): declared on the workflow or created through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Declared by the workflow definition (`PutWorkflow`).
    Default,
    /// Created through the REST or gRPC API.
    Api,
}

impl Method {
    /// Hatchet's wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::Api => "API",
        }
    }
}

/// A one-off run scheduled for a point in time.
#[derive(Debug, Clone)]
pub(crate) struct ScheduledRun {
    /// Schedule id.
    pub(crate) id: Uuid,
    /// Exact workflow name.
    pub(crate) workflow: String,
    /// When the run is due.
    pub(crate) trigger_at: SystemTime,
    /// Run input.
    pub(crate) input: Value,
    /// Run metadata object.
    pub(crate) metadata: Value,
    /// Priority override.
    pub(crate) priority: Option<i32>,
    /// Creation time.
    pub(crate) created: SystemTime,
    /// Origin of the schedule.
    pub(crate) method: Method,
    /// Child-run origin (gRPC `ScheduleWorkflow` from a parent task).
    pub(crate) origin: RunOrigin,
    /// The run once triggered (`None` while pending, or when the trigger was refused).
    pub(crate) run_id: Option<Uuid>,
    /// Whether it has fired (a refused trigger also counts as fired; the error is logged).
    pub(crate) fired: bool,
}

/// A cron schedule.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    /// Schedule id.
    pub(crate) id: Uuid,
    /// Exact workflow name.
    pub(crate) workflow: String,
    /// Name (unique per workflow), if given.
    pub(crate) name: Option<String>,
    /// The expression as written.
    pub(crate) expression: String,
    /// Parsed expression.
    pub(crate) cron: croner::Cron,
    /// Run input.
    pub(crate) input: Value,
    /// Run metadata object.
    pub(crate) metadata: Value,
    /// Priority override.
    pub(crate) priority: Option<i32>,
    /// Creation time.
    pub(crate) created: SystemTime,
    /// Origin of the schedule.
    pub(crate) method: Method,
    /// Disabled schedules do not fire.
    pub(crate) enabled: bool,
    /// Next due time.
    pub(crate) next: Option<SystemTime>,
}

/// An event filter created through the REST API (`/api/v1/stable/tenants/{tenant}/filters`).
#[derive(Debug, Clone)]
pub(crate) struct ApiFilter {
    /// Filter id.
    pub(crate) id: Uuid,
    /// Workflow id it applies to.
    pub(crate) workflow_id: Uuid,
    /// Event scope.
    pub(crate) scope: String,
    /// CEL expression over `input`, `additional_metadata`, `payload`.
    pub(crate) expression: String,
    /// Payload handed to triggered runs as `filter_payload`.
    pub(crate) payload: Value,
    /// Creation time.
    pub(crate) created: SystemTime,
    /// Last update time.
    pub(crate) updated: SystemTime,
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression:?} is not a valid cron expression: {reason}")]
pub(crate) struct CronError {
    /// The expression.
    pub(crate) expression: String,
    /// What is wrong.
    pub(crate) reason: String,
}

/// Parses a standard 5-field cron expression (or an `@` alias), evaluated in UTC.
pub(crate) fn parse_cron(expression: &str) -> Result<croner::Cron, CronError> {
    let fail = |reason: String| CronError {
        expression: expression.to_owned(),
        reason,
    };
    let trimmed = expression.trim();
    let fields = trimmed.split_whitespace().count();
    if !trimmed.starts_with('@') && fields != 5 {
        return Err(fail(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {fields}"
        )));
    }
    croner::Cron::from_str(trimmed).map_err(|e| fail(e.to_string()))
}

/// The first occurrence strictly after `after`.
pub(crate) fn next_occurrence(cron: &croner::Cron, after: SystemTime) -> Option<SystemTime> {
    let at: chrono::DateTime<chrono::Utc> = after.into();
    cron.find_next_occurrence(&at, false)
        .ok()
        .map(SystemTime::from)
}

impl State {
    /// Triggers every due scheduled run and cron occurrence.
    pub(crate) fn fire_schedules(&mut self, wall: SystemTime, now: Instant) {
        let due: Vec<Uuid> = self
            .scheduled
            .values()
            .filter(|s| !s.fired && s.trigger_at <= wall)
            .map(|s| s.id)
            .collect();
        for id in due {
            let Some(s) = self.scheduled.get_mut(&id) else {
                continue;
            };
            s.fired = true;
            let spec = TriggerSpec {
                workflow: s.workflow.clone(),
                input: s.input.clone(),
                metadata: s.metadata.clone(),
                priority: s.priority,
                origin: s.origin.clone(),
            };
            match self.trigger(spec, now) {
                Ok(run) => {
                    if let Some(s) = self.scheduled.get_mut(&id) {
                        s.run_id = Some(run);
                    }
                }
                Err(e) => tracing::warn!(schedule = %id, error = %e, "scheduled_run_refused"),
            }
        }
        let due: Vec<Uuid> = self
            .crons
            .values()
            .filter(|c| c.enabled && c.next.is_some_and(|n| n <= wall))
            .map(|c| c.id)
            .collect();
        for id in due {
            let Some(c) = self.crons.get_mut(&id) else {
                continue;
            };
            c.next = next_occurrence(&c.cron, wall);
            let spec = TriggerSpec {
                workflow: c.workflow.clone(),
                input: c.input.clone(),
                metadata: c.metadata.clone(),
                priority: c.priority,
                origin: RunOrigin::default(),
            };
            if let Err(e) = self.trigger(spec, now) {
                tracing::warn!(cron = %id, error = %e, "cron_run_refused");
            }
        }
    }

    /// Adds a cron schedule; fails when the workflow already has one with the same name.
    pub(crate) fn add_cron(&mut self, mut cron: CronSchedule) -> Result<Uuid, String> {
        if let Some(name) = &cron.name
            && self
                .crons
                .values()
                .any(|c| c.workflow == cron.workflow && c.name.as_ref() == Some(name))
        {
            return Err(format!(
                "a cron named {name:?} already exists for workflow {:?}",
                cron.workflow
            ));
        }
        cron.next = next_occurrence(&cron.cron, SystemTime::now());
        let id = cron.id;
        self.crons.insert(id, cron);
        Ok(id)
    }

    /// Replaces the crons a workflow declares (`PutWorkflow` `cron_triggers`), keeping API-created ones.
    pub(crate) fn sync_declared_crons(
        &mut self,
        workflow: &str,
        expressions: &[String],
        input: &Value,
    ) {
        self.crons
            .retain(|_, c| !(c.workflow == workflow && c.method == Method::Default));
        for expression in expressions {
            let Ok(cron) = parse_cron(expression) else {
                // PutWorkflow validated the expression already; nothing to add otherwise.
                continue;
            };
            let now = SystemTime::now();
            let _ = self.add_cron(CronSchedule {
                id: Uuid::new_v4(),
                workflow: workflow.to_owned(),
                name: None,
                expression: expression.clone(),
                cron,
                input: input.clone(),
                metadata: serde_json::json!({}),
                priority: None,
                created: now,
                method: Method::Default,
                enabled: true,
                next: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::Timing;
    use crate::proto::v1::{CreateTaskOpts, CreateWorkflowVersionRequest};
    use std::sync::Arc;
    use std::time::Duration;

    fn state_with_workflow(crons: &[&str]) -> State {
        let mut state = State::new(Uuid::new_v4(), Timing::default());
        let req = CreateWorkflowVersionRequest {
            name: "wf".into(),
            tasks: vec![CreateTaskOpts {
                readable_id: "t".into(),
                action: "wf:t".into(),
                ..Default::default()
            }],
            cron_triggers: crons.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        };
        let def = crate::engine::validation::workflow(&req, Uuid::new_v4()).expect("valid");
        state.workflows.insert("wf".into(), Arc::new(def));
        state.sync_declared_crons(
            "wf",
            &req.cron_triggers,
            &serde_json::json!({"from": "cron"}),
        );
        state
    }

    #[test]
    fn declared_crons_fire_at_their_next_occurrence_and_rearm() {
        let mut state = state_with_workflow(&["* * * * *"]);
        let now = Instant::now();
        let cron = state.crons.values().next().expect("declared cron").clone();
        assert_eq!(cron.method, Method::Default);
        let next = cron.next.expect("armed");
        state.fire_schedules(next - Duration::from_secs(1), now);
        assert!(state.runs.is_empty(), "fired early");
        state.fire_schedules(next, now);
        assert_eq!(state.runs.len(), 1);
        let run = state.runs.values().next().unwrap();
        assert_eq!(run.input, serde_json::json!({"from": "cron"}));
        let rearmed = state.crons[&cron.id].next.expect("re-armed");
        assert_eq!(
            rearmed.duration_since(next).unwrap(),
            Duration::from_secs(60)
        );
        state.fire_schedules(next, now);
        assert_eq!(state.runs.len(), 1, "one run per occurrence");
        // Re-registering without the trigger removes the declared cron.
        state.sync_declared_crons("wf", &[], &serde_json::json!({}));
        assert!(state.crons.is_empty());
    }

    #[test]
    fn scheduled_runs_fire_once_when_due() {
        let mut state = state_with_workflow(&[]);
        let now = Instant::now();
        let at = SystemTime::now() + Duration::from_secs(30);
        let id = Uuid::new_v4();
        state.scheduled.insert(
            id,
            ScheduledRun {
                id,
                workflow: "wf".into(),
                trigger_at: at,
                input: serde_json::json!({}),
                metadata: serde_json::json!({"k": "v"}),
                priority: None,
                created: SystemTime::now(),
                method: Method::Api,
                origin: RunOrigin::default(),
                run_id: None,
                fired: false,
            },
        );
        state.fire_schedules(at - Duration::from_millis(1), now);
        assert!(state.runs.is_empty());
        state.fire_schedules(at, now);
        state.fire_schedules(at + Duration::from_secs(1), now);
        assert_eq!(state.runs.len(), 1);
        let run_id = state.scheduled[&id].run_id.expect("run recorded");
        assert_eq!(state.runs[&run_id].metadata, serde_json::json!({"k": "v"}));
    }

    #[test]
    fn five_field_expressions_parse_and_others_are_refused() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 9 * * 1-5").is_ok());
        assert!(parse_cron("@hourly").is_ok());
        let err = parse_cron("* * * *").unwrap_err();
        assert!(err.to_string().contains("expected 5 fields"), "{err}");
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("0 0 * * * *").is_err());
    }

    #[test]
    fn next_occurrence_is_the_next_matching_minute() {
        let cron = parse_cron("* * * * *").unwrap();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_030);
        let next = next_occurrence(&cron, base).unwrap();
        let secs = next
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs % 60, 0);
        assert!(secs > 1_700_000_030 && secs <= 1_700_000_030 + 60);
    }
}
