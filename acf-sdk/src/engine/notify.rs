//! Fan-out to `SubscribeToWorkflowEvents` subscribers (step lifecycle, stream chunks, final run
//! event with `hangup`).

use crate::engine::lifecycle::timestamp;
use crate::engine::state::{EventFilter, RunState, State};
use crate::proto::{ResourceEventType, ResourceType, WorkflowEvent};
use std::time::SystemTime;
use uuid::Uuid;

/// Whether a metadata value equals a filter text (strings by content, others by their JSON text).
pub(crate) fn json_matches_text(value: &serde_json::Value, text: &str) -> bool {
    match value {
        serde_json::Value::String(s) => s == text,
        other => serde_json::to_string(other).is_ok_and(|s| s == text),
    }
}

/// An event of run `run_id` about `resource_id` (the run itself or one of its tasks), stamped now;
/// the task-only fields are unset and it does not end the subscription.
fn workflow_event(
    run_id: Uuid,
    resource_type: ResourceType,
    resource_id: Uuid,
    kind: ResourceEventType,
    payload: String,
) -> WorkflowEvent {
    WorkflowEvent {
        workflow_run_id: run_id.to_string(),
        resource_type: resource_type as i32,
        event_type: kind as i32,
        resource_id: resource_id.to_string(),
        event_timestamp: Some(timestamp(SystemTime::now())),
        event_payload: payload,
        hangup: false,
        task_retries: None,
        retry_count: None,
        event_index: None,
    }
}

impl State {
    fn matches(&self, filter: &EventFilter, run_id: Uuid) -> bool {
        match filter {
            EventFilter::Run(id) => *id == run_id,
            EventFilter::Meta(key, value) => self.runs.get(&run_id).is_some_and(|r| {
                r.metadata
                    .get(key)
                    .is_some_and(|v| json_matches_text(v, value))
            }),
        }
    }

    fn publish(&mut self, run_id: Uuid, event: &WorkflowEvent) {
        let mut keep = Vec::with_capacity(self.event_subs.len());
        for sub in std::mem::take(&mut self.event_subs) {
            let alive = if self.matches(&sub.filter, run_id) {
                sub.tx.send(event.clone()).is_ok()
            } else {
                !sub.tx.is_closed()
            };
            let done = event.hangup && matches!(sub.filter, EventFilter::Run(id) if id == run_id);
            if alive && !done {
                keep.push(sub);
            }
        }
        self.event_subs = keep;
    }

    /// Publishes a step-run event.
    pub(crate) fn emit_step(&mut self, task_id: Uuid, kind: ResourceEventType, payload: String) {
        self.emit_step_indexed(task_id, kind, payload, None);
    }

    /// Publishes a step-run event with a stream index.
    pub(crate) fn emit_step_indexed(
        &mut self,
        task_id: Uuid,
        kind: ResourceEventType,
        payload: String,
        index: Option<i64>,
    ) {
        if self.event_subs.is_empty() {
            return;
        }
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let retries = self.task_def(task).map(|d| d.retries);
        let event = WorkflowEvent {
            task_retries: retries,
            retry_count: Some(task.retry_count),
            event_index: index,
            ..workflow_event(task.run_id, ResourceType::StepRun, task_id, kind, payload)
        };
        let run_id = task.run_id;
        self.publish(run_id, &event);
    }

    /// Publishes the final workflow-run event (`hangup = true`).
    pub(crate) fn emit_run_final(&mut self, run_id: Uuid, state: RunState) {
        if self.event_subs.is_empty() {
            return;
        }
        if let Some(event) = self.final_event(run_id, state) {
            self.publish(run_id, &event);
        }
    }

    /// The final event of a finished run (also sent to late subscribers).
    pub(crate) fn final_event(&self, run_id: Uuid, state: RunState) -> Option<WorkflowEvent> {
        let run = self.runs.get(&run_id)?;
        let kind = match state {
            RunState::Completed => ResourceEventType::Completed,
            RunState::Failed => ResourceEventType::Failed,
            RunState::Cancelled => ResourceEventType::Cancelled,
            _ => return None,
        };
        let payload = run
            .outcome
            .as_ref()
            .map(|o| {
                let mut map = serde_json::Map::new();
                for r in &o.results {
                    if let Some(out) = r
                        .output
                        .as_deref()
                        .and_then(|s| serde_json::from_str(s).ok())
                    {
                        map.insert(r.task_name.clone(), out);
                    }
                }
                serde_json::Value::Object(map).to_string()
            })
            .unwrap_or_default();
        Some(WorkflowEvent {
            hangup: true,
            ..workflow_event(run_id, ResourceType::WorkflowRun, run_id, kind, payload)
        })
    }
}
