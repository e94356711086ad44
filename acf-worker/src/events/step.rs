//! The emitter a workflow step hands to the brain: it records the side effect of every `tool.executed` event on
//! the turn, durably and under the lease's fence, before routing the event to the listeners, whether or not any
//! listener matches. Events without routing ids get the turn's; the first irreversible effect of a turn is
//! followed by `commit.reached`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use super::router::{EventRouter, EventScope};
use super::{AcfEvent, EventError, Routing};
use crate::brain::EventEmitter;
use crate::models::SideEffect;
use crate::mutex::Lease;
use crate::stores::SideEffectLog;

/// Where a turn's side effects are recorded.
struct Recorder {
    log: Arc<dyn SideEffectLog>,
    lease: Lease,
    turn_id: Uuid,
    /// Whether the turn has an irreversible effect on record already.
    past_commit_point: AtomicBool,
}

/// Routes a step's events, recording the side effects of its turn's `tool.executed` events first.
pub(crate) struct StepEvents {
    router: Arc<EventRouter>,
    step: Option<acf_sdk::Context>,
    routing: Option<Routing>,
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
            routing: None,
            recorder: None,
            recorded: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
        }
    }

    /// Sets the routing ids given to events that carry none.
    pub(crate) fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = Some(routing);
        self
    }

    /// Also records the side effects of `turn_id`'s `tool.executed` events in `log`, under `lease`;
    /// `past_commit_point` says whether the turn has an irreversible effect on record already.
    pub(crate) fn recording(
        mut self,
        log: Arc<dyn SideEffectLog>,
        lease: Lease,
        turn_id: Uuid,
        past_commit_point: bool,
    ) -> Self {
        self.recorder = Some(Recorder {
            log,
            lease,
            turn_id,
            past_commit_point: AtomicBool::new(past_commit_point),
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

    /// Records `event`'s side effect, if it has one. Returns the `commit.reached` event to route after it when this
    /// effect is the turn's first irreversible one.
    async fn record(&self, event: &AcfEvent) -> Result<Option<AcfEvent>, EventError> {
        let (Some(recorder), Some(effect)) = (&self.recorder, event.tool_side_effect()) else {
            return Ok(None);
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
                let reached = (effect.is_irreversible()
                    && !recorder.past_commit_point.swap(true, Ordering::AcqRel))
                .then(|| {
                    AcfEvent::commit_reached(recorder.turn_id, &recorder.lease.session_key, &effect)
                });
                self.recorded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(effect);
                Ok(reached)
            }
            Err(error) => {
                tracing::error!(
                    turn_id = %recorder.turn_id,
                    session_key = %recorder.lease.session_key,
                    tool_name = effect.tool_name.as_deref(),
                    %error,
                    "side_effect_not_recorded"
                );
                self.failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| error.to_string());
                Err(EventError::SideEffectNotRecorded { error })
            }
        }
    }
}

#[async_trait]
impl EventEmitter for StepEvents {
    async fn emit(&self, mut event: AcfEvent) -> Result<(), EventError> {
        if let (Some(routing), None) = (&self.routing, event.tenant_id) {
            event = event.with_routing(routing);
        }
        let recorded = self.record(&event).await;
        let scope = self
            .step
            .as_ref()
            .map_or_else(EventScope::detached, EventScope::step);
        self.router.route(&event, &scope).await;
        if let Some(mut reached) = recorded? {
            if let Some(routing) = &self.routing {
                reached = reached.with_routing(routing);
            }
            tracing::info!(turn_id = %reached.logical_turn_id, session_key = %reached.session_key, "commit_point_reached");
            self.router.route(&reached, &scope).await;
        }
        Ok(())
    }
}
