//! The emitter a workflow step hands out (to the brain, and to its own `turn.*` events): it records the side
//! effect of every `tool.executed` event on the turn, durably and under the lease's fence, before routing the
//! event to the listeners, whether or not any listener matches.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use super::router::{EventRouter, EventScope};
use super::{AcfEvent, EventError};
use crate::brain::EventEmitter;
use crate::models::SideEffect;
use crate::mutex::Lease;
use crate::stores::SideEffectLog;

/// Where a turn's side effects are recorded.
struct Recorder {
    log: Arc<dyn SideEffectLog>,
    lease: Lease,
    turn_id: Uuid,
}

/// Routes a step's events, recording the side effects of its turn's `tool.executed` events first.
pub(crate) struct StepEvents {
    router: Arc<EventRouter>,
    step: Option<acf_sdk::Context>,
    recorder: Option<Recorder>,
    recorded: Mutex<Vec<SideEffect>>,
    failed: Mutex<Option<String>>,
}

impl StepEvents {
    /// Routes to `router` from the step attempt `step`; records nothing.
    pub(crate) fn new(router: Arc<EventRouter>, step: Option<acf_sdk::Context>) -> Self {
        Self {
            router,
            step,
            recorder: None,
            recorded: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
        }
    }

    /// Also records the side effects of `turn_id`'s `tool.executed` events in `log`, under `lease`.
    pub(crate) fn recording(
        mut self,
        log: Arc<dyn SideEffectLog>,
        lease: Lease,
        turn_id: Uuid,
    ) -> Self {
        self.recorder = Some(Recorder {
            log,
            lease,
            turn_id,
        });
        self
    }

    /// The side effects recorded through this emitter, in order.
    pub(crate) fn recorded(&self) -> Vec<SideEffect> {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first recording failure, if any: the step must not complete as if the effect were on record.
    pub(crate) fn recording_failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn record(&self, event: &AcfEvent) -> Result<(), EventError> {
        let (Some(recorder), Some(effect)) = (&self.recorder, event.tool_side_effect()) else {
            return Ok(());
        };
        if event.logical_turn_id != recorder.turn_id {
            // A brain may only act for the turn it answers; an effect filed under another turn would be lost to it.
            tracing::warn!(
                turn_id = %recorder.turn_id,
                event_turn_id = %event.logical_turn_id,
                "side_effect_for_another_turn"
            );
        }
        match recorder
            .log
            .record_effect(&recorder.lease, recorder.turn_id, &effect)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    turn_id = %recorder.turn_id,
                    session_key = %recorder.lease.session_key,
                    tool_name = effect.tool_name.as_deref(),
                    policy = effect.policy.as_str(),
                    idempotency_key = effect.idempotency_key.as_deref(),
                    "side_effect_recorded"
                );
                self.recorded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(effect);
                Ok(())
            }
            Err(source) => {
                tracing::error!(
                    turn_id = %recorder.turn_id,
                    session_key = %recorder.lease.session_key,
                    tool_name = effect.tool_name.as_deref(),
                    error = %source,
                    "side_effect_not_recorded"
                );
                self.failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| source.to_string());
                Err(EventError::SideEffectNotRecorded { source })
            }
        }
    }
}

#[async_trait]
impl EventEmitter for StepEvents {
    async fn emit(&self, event: AcfEvent) -> Result<(), EventError> {
        let recorded = self.record(&event).await;
        let scope = self
            .step
            .as_ref()
            .map_or_else(EventScope::detached, EventScope::step);
        self.router.route(&event, &scope).await;
        recorded
    }
}
