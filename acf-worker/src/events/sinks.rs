//! The built-in listeners, chosen by `[events] sinks`: the log, the events stream in the store, and the run's
//! Hatchet stream.

use std::sync::Arc;

use async_trait::async_trait;

use super::AcfEvent;
use super::router::{EventListener, EventScope, ListenerError};
use crate::stores::EventStream;

/// Logs each event as `acf_event_emitted` (type, turn, session, routing ids, payload keys): the worker's
/// behaviour before routing existed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

#[async_trait]
impl EventListener for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    async fn handle(&self, event: &AcfEvent, _scope: &EventScope<'_>) -> Result<(), ListenerError> {
        log_event(event);
        Ok(())
    }
}

/// The `acf_event_emitted` log line.
pub(crate) fn log_event(event: &AcfEvent) {
    let payload_keys: Vec<&str> = event.payload.keys().map(String::as_str).collect();
    tracing::info!(
        event_type = event.event_type.as_str(),
        turn_id = %event.logical_turn_id,
        session_key = %event.session_key,
        tenant_id = event.tenant_id.map(|id| id.to_string()),
        agent_id = event.agent_id.map(|id| id.to_string()),
        payload_keys = ?payload_keys,
        "acf_event_emitted"
    );
}

/// Appends each event to the store's events stream (`{key_prefix}:events` on Redis), trimmed to its last
/// `max_len` entries.
pub struct StreamSink {
    stream: Arc<dyn EventStream>,
    max_len: u64,
}

impl StreamSink {
    /// A sink appending to `stream`.
    pub fn new(stream: Arc<dyn EventStream>, max_len: u64) -> Self {
        Self { stream, max_len }
    }
}

#[async_trait]
impl EventListener for StreamSink {
    fn name(&self) -> &str {
        "redis_stream"
    }

    async fn handle(&self, event: &AcfEvent, _scope: &EventScope<'_>) -> Result<(), ListenerError> {
        self.stream.append_event(event, self.max_len).await?;
        Ok(())
    }
}

/// Streams each event, as its JSON form, on the Hatchet stream of the run that emitted it
/// ([`acf_sdk::Context::put_stream`], `PutStreamEvent`), so a client subscribed to the run sees them live. Events
/// routed outside a step have no run and are skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct HatchetStreamSink;

#[async_trait]
impl EventListener for HatchetStreamSink {
    fn name(&self) -> &str {
        "hatchet_stream"
    }

    async fn handle(&self, event: &AcfEvent, scope: &EventScope<'_>) -> Result<(), ListenerError> {
        let Some(ctx) = scope.step_context() else {
            return Ok(());
        };
        ctx.put_stream(serde_json::to_vec(event)?).await?;
        Ok(())
    }
}
