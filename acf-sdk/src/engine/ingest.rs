//! Pushed events: remembered for lookbacks, offered to waits, and turned into runs of every workflow
//! listening on the key (subject to its default filters).

use crate::engine::expr;
use crate::engine::lifecycle::TriggerSpec;
use crate::engine::state::{RunOrigin, State, StoredEvent};
use serde_json::Value;
use std::time::Instant;
use uuid::Uuid;

impl State {
    /// Ingests an event; returns the ids of the runs it triggered.
    pub(crate) fn push_event(
        &mut self,
        event: &StoredEvent,
        priority: Option<i32>,
        now: Instant,
    ) -> Vec<Uuid> {
        self.remember_event(event.clone());
        self.offer_event_to_waits(event, now);
        let mut listening: Vec<_> = self
            .workflows
            .values()
            .filter(|w| w.event_triggers.contains(&event.key))
            .cloned()
            .collect();
        listening.sort_by(|a, b| a.name.cmp(&b.name));
        let mut runs = Vec::new();
        for workflow in listening {
            // Declared filters and those created through the REST API gate the workflow alike.
            let filters: Vec<(&str, &str, &Value)> = workflow
                .filters
                .iter()
                .map(|f| (f.scope.as_str(), f.expression.as_str(), &f.payload))
                .chain(
                    self.api_filters
                        .values()
                        .filter(|f| f.workflow_id == workflow.workflow_id)
                        .map(|f| (f.scope.as_str(), f.expression.as_str(), &f.payload)),
                )
                .collect();
            let filter_payload = if filters.is_empty() {
                None
            } else {
                let matched = filters.iter().find(|(scope, expression, payload)| {
                    Some(*scope) == event.scope.as_deref()
                        && expr::eval_bool(
                            expression,
                            &[
                                ("input", &event.payload),
                                ("additional_metadata", &event.metadata),
                                ("payload", payload),
                            ],
                        )
                        .unwrap_or(false)
                });
                match matched {
                    Some((_, _, payload)) => Some((*payload).clone()),
                    None => continue,
                }
            };
            let spec = TriggerSpec {
                workflow: workflow.name.clone(),
                input: event.payload.clone(),
                metadata: event.metadata.clone(),
                priority,
                origin: RunOrigin {
                    event: Some((event.id, event.key.clone())),
                    filter_payload: Some(filter_payload.unwrap_or(Value::Null))
                        .filter(|v| !v.is_null()),
                    ..RunOrigin::default()
                },
            };
            if let Ok(id) = self.trigger(spec, now) {
                runs.push(id);
            }
        }
        runs
    }
}
