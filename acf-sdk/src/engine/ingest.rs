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
    pub fn push_event(
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
            let filter_payload = if workflow.filters.is_empty() {
                None
            } else {
                let matched = workflow.filters.iter().find(|f| {
                    Some(f.scope.as_str()) == event.scope.as_deref()
                        && expr::eval_bool(
                            &f.expression,
                            &[
                                ("input", &event.payload),
                                ("additional_metadata", &event.metadata),
                                ("payload", &f.payload),
                            ],
                        )
                        .unwrap_or(false)
                });
                match matched {
                    Some(f) => Some(f.payload.clone()),
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
