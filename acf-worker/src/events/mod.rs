//! ACF events: the typed notifications a turn emits (`turn.started`, `turn.message_absorbed`, ...), with the
//! original string values and JSON shape, and their routing: an [`EventRouter`] hands each event to the listeners
//! whose pattern matches (`*`, `category.*`, an exact type), and the built-in sinks ([`LogSink`], [`StreamSink`],
//! [`HatchetStreamSink`]) are chosen by `[events] sinks` ([`router_from_settings`]).
//!
//! Independently of listeners, the workflow records the side effect of every `tool.executed` event on its turn
//! before routing it (see the README's "Events and side effects").

mod router;
mod sinks;
pub(crate) mod step;

pub use self::router::{
    EventListener, EventRouter, EventScope, ListenerError, PatternError, validate_pattern,
};
pub(crate) use self::sinks::log_event;
pub use self::sinks::{HatchetStreamSink, LogSink, StreamSink};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::models::time::{now_utc, serde_timestamp};
use crate::models::{SideEffect, SideEffectPolicy};

/// Why an emitted event did not take full effect. Routing itself never fails (listeners are isolated); recording
/// a `tool.executed` side effect can.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The side effect could not be recorded on the turn (the store is unreachable, or the lease is no longer
    /// current). The step fails and is retried; the retry does not see this effect.
    // The cause is printed here: a brain error reaches the turn's failure text through `Display`.
    #[error(
        "the side effect of this tool.executed event could not be recorded on the turn: {error}"
    )]
    SideEffectNotRecorded {
        /// The store's error.
        error: crate::stores::StoreError,
    },
}

/// Builds the router `[events]` describes: each configured sink registered on each configured pattern. The events
/// stream sink appends to `stores.events`.
pub fn router_from_settings(
    settings: &crate::config::EventsSettings,
    stores: &crate::stores::Stores,
) -> Result<EventRouter, PatternError> {
    use crate::config::EventSink;
    use std::sync::Arc;
    let router = EventRouter::new();
    for sink in &settings.sinks {
        let listener: Arc<dyn EventListener> = match sink {
            EventSink::Log => Arc::new(LogSink),
            EventSink::RedisStream => Arc::new(StreamSink::new(
                Arc::clone(&stores.events),
                settings.stream_max_len,
            )),
            EventSink::HatchetStream => Arc::new(HatchetStreamSink),
        };
        for pattern in &settings.patterns {
            router.register(pattern, Arc::clone(&listener))?;
        }
    }
    Ok(router)
}

/// Every event type, serialised as its dotted value (`category.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AcfEventType {
    /// A turn's brain run started.
    #[serde(rename = "turn.started")]
    TurnStarted,
    /// A message joined an accumulating turn.
    #[serde(rename = "turn.message_absorbed")]
    MessageAbsorbed,
    /// A turn completed.
    #[serde(rename = "turn.completed")]
    TurnCompleted,
    /// A turn failed.
    #[serde(rename = "turn.failed")]
    TurnFailed,
    /// A turn was replaced by a newer one (listed in the original's spec, missing from its code).
    #[serde(rename = "turn.superseded")]
    TurnSuperseded,
    /// A supersede was requested.
    #[serde(rename = "supersede.requested")]
    SupersedeRequested,
    /// A supersede decision was made.
    #[serde(rename = "supersede.decision")]
    SupersedeDecision,
    /// A supersede decision was carried out.
    #[serde(rename = "supersede.executed")]
    SupersedeExecuted,
    /// A commit point (first irreversible effect) was reached.
    #[serde(rename = "commit.reached")]
    CommitPointReached,
    /// A tool call was authorised.
    #[serde(rename = "tool.authorized")]
    ToolAuthorized,
    /// A tool call ran; its payload becomes a side effect of the turn.
    #[serde(rename = "tool.executed")]
    ToolExecuted,
    /// A tool call failed.
    #[serde(rename = "tool.failed")]
    ToolFailed,
    /// A policy was violated.
    #[serde(rename = "enforcement.violation")]
    EnforcementViolation,
    /// A session was created.
    #[serde(rename = "session.created")]
    SessionCreated,
    /// A session was resumed.
    #[serde(rename = "session.resumed")]
    SessionResumed,
    /// A session was closed.
    #[serde(rename = "session.closed")]
    SessionClosed,
    /// The session mutex was acquired.
    #[serde(rename = "mutex.acquired")]
    MutexAcquired,
    /// The session mutex was released.
    #[serde(rename = "mutex.released")]
    MutexReleased,
    /// The session mutex lease was extended.
    #[serde(rename = "mutex.extended")]
    MutexExtended,
}

impl AcfEventType {
    /// Every variant, in declaration order.
    pub const ALL: [Self; 19] = [
        Self::TurnStarted,
        Self::MessageAbsorbed,
        Self::TurnCompleted,
        Self::TurnFailed,
        Self::TurnSuperseded,
        Self::SupersedeRequested,
        Self::SupersedeDecision,
        Self::SupersedeExecuted,
        Self::CommitPointReached,
        Self::ToolAuthorized,
        Self::ToolExecuted,
        Self::ToolFailed,
        Self::EnforcementViolation,
        Self::SessionCreated,
        Self::SessionResumed,
        Self::SessionClosed,
        Self::MutexAcquired,
        Self::MutexReleased,
        Self::MutexExtended,
    ];

    /// The wire value, e.g. `turn.message_absorbed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TurnStarted => "turn.started",
            Self::MessageAbsorbed => "turn.message_absorbed",
            Self::TurnCompleted => "turn.completed",
            Self::TurnFailed => "turn.failed",
            Self::TurnSuperseded => "turn.superseded",
            Self::SupersedeRequested => "supersede.requested",
            Self::SupersedeDecision => "supersede.decision",
            Self::SupersedeExecuted => "supersede.executed",
            Self::CommitPointReached => "commit.reached",
            Self::ToolAuthorized => "tool.authorized",
            Self::ToolExecuted => "tool.executed",
            Self::ToolFailed => "tool.failed",
            Self::EnforcementViolation => "enforcement.violation",
            Self::SessionCreated => "session.created",
            Self::SessionResumed => "session.resumed",
            Self::SessionClosed => "session.closed",
            Self::MutexAcquired => "mutex.acquired",
            Self::MutexReleased => "mutex.released",
            Self::MutexExtended => "mutex.extended",
        }
    }

    /// The text before the first dot (`turn`).
    pub fn category(self) -> &'static str {
        let value = self.as_str();
        value
            .split_once('.')
            .map_or(value, |(category, _)| category)
    }

    /// The text after the first dot (`message_absorbed`), or the whole value when there is none.
    pub fn event_name(self) -> &'static str {
        let value = self.as_str();
        value.split_once('.').map_or(value, |(_, name)| name)
    }

    /// Listener pattern rule: `*` matches everything, `category.*` matches that category, anything else must
    /// equal the full value. An empty pattern never matches.
    pub fn matches_pattern(self, pattern: &str) -> bool {
        if pattern == "*" {
            return true;
        }
        match pattern.strip_suffix(".*") {
            Some(prefix) => !prefix.is_empty() && self.category() == prefix,
            None => pattern == self.as_str(),
        }
    }
}

impl std::fmt::Display for AcfEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tenant, agent and interlocutor a turn belongs to, attached to every event the worker emits
/// (the original left them off `turn.message_absorbed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Agent id.
    pub agent_id: Uuid,
    /// Interlocutor id.
    pub interlocutor_id: Uuid,
}

/// One event, with the original's fields in the original's order. The type field is named `type` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcfEvent {
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: AcfEventType,
    /// The logical turn the event is about.
    pub logical_turn_id: Uuid,
    /// Session key of that turn.
    pub session_key: String,
    /// When the event happened (defaults to now when missing).
    #[serde(with = "serde_timestamp", default = "now_utc")]
    pub timestamp: DateTime<Utc>,
    /// Event-specific data.
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// Tenant id, when routed.
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    /// Agent id, when routed.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// Interlocutor id, when routed.
    #[serde(default)]
    pub interlocutor_id: Option<Uuid>,
}

impl AcfEvent {
    /// A new event stamped now, with an empty payload and no routing ids.
    pub fn new(
        event_type: AcfEventType,
        logical_turn_id: Uuid,
        session_key: impl Into<String>,
    ) -> Self {
        Self {
            event_type,
            logical_turn_id,
            session_key: session_key.into(),
            timestamp: now_utc(),
            payload: Map::new(),
            tenant_id: None,
            agent_id: None,
            interlocutor_id: None,
        }
    }

    /// Sets the routing ids.
    pub fn with_routing(mut self, routing: &Routing) -> Self {
        self.tenant_id = Some(routing.tenant_id);
        self.agent_id = Some(routing.agent_id);
        self.interlocutor_id = Some(routing.interlocutor_id);
        self
    }

    /// Replaces the payload with a JSON object's entries (any other JSON value leaves it empty).
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = match payload {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        self
    }

    /// `turn.message_absorbed`: `message_id`, `message_count` (after absorbing), `channel`.
    pub fn message_absorbed(
        turn_id: Uuid,
        session_key: &str,
        routing: &Routing,
        message_id: Uuid,
        message_count: usize,
        channel: &str,
    ) -> Self {
        Self::new(AcfEventType::MessageAbsorbed, turn_id, session_key)
            .with_routing(routing)
            .with_payload(json!({
                "message_id": message_id.to_string(),
                "message_count": message_count,
                "channel": channel,
            }))
    }

    /// `turn.started`: `message_count`, `channel`.
    pub fn turn_started(
        turn_id: Uuid,
        session_key: &str,
        routing: &Routing,
        message_count: usize,
        channel: &str,
    ) -> Self {
        Self::new(AcfEventType::TurnStarted, turn_id, session_key)
            .with_routing(routing)
            .with_payload(json!({ "message_count": message_count, "channel": channel }))
    }

    /// `turn.completed`: `status` = `complete`, `response_length` (characters), `response_segments_count`.
    pub fn turn_completed(
        turn_id: Uuid,
        session_key: &str,
        routing: &Routing,
        response: &str,
        segments: usize,
    ) -> Self {
        Self::new(AcfEventType::TurnCompleted, turn_id, session_key)
            .with_routing(routing)
            .with_payload(json!({
                "status": "complete",
                "response_length": response.chars().count(),
                "response_segments_count": segments,
            }))
    }

    /// `turn.failed`: `error` (the error text) and `error_type` (a short error kind).
    pub fn turn_failed(
        turn_id: Uuid,
        session_key: &str,
        routing: &Routing,
        error: &str,
        error_type: &str,
    ) -> Self {
        Self::new(AcfEventType::TurnFailed, turn_id, session_key)
            .with_routing(routing)
            .with_payload(json!({ "error": error, "error_type": error_type }))
    }

    /// `commit.reached`: the turn recorded its first irreversible side effect (`effect`): from now on it is
    /// neither superseded nor extended with new messages. Payload: `effect_type`, `tool_name`, `idempotency_key`.
    pub fn commit_reached(turn_id: Uuid, session_key: &str, effect: &SideEffect) -> Self {
        Self::new(AcfEventType::CommitPointReached, turn_id, session_key).with_payload(json!({
            "effect_type": effect.effect_type,
            "tool_name": effect.tool_name,
            "idempotency_key": effect.idempotency_key,
        }))
    }

    /// The side effect a `tool.executed` event records on its turn (`None` for any other type): effect type
    /// `tool_call`, `tool_name` and `idempotency_key` from the payload, the whole payload as details, executed at
    /// the event's time.
    ///
    /// A missing or unknown `policy` counts as `irreversible`. The original defaulted to `idempotent` in its router
    /// and to `reversible` in its classifier; an effect nobody classified is treated as one that cannot be undone,
    /// so the turn stops absorbing rather than risk running it twice.
    pub fn tool_side_effect(&self) -> Option<SideEffect> {
        if self.event_type != AcfEventType::ToolExecuted {
            return None;
        }
        let text = |key: &str| {
            self.payload
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let policy = text("policy")
            .as_deref()
            .and_then(SideEffectPolicy::parse)
            .unwrap_or(SideEffectPolicy::Irreversible);
        Some(SideEffect {
            effect_type: "tool_call".to_owned(),
            policy,
            executed_at: self.timestamp,
            tool_name: text("tool_name"),
            idempotency_key: text("idempotency_key"),
            details: self.payload.clone(),
        })
    }

    /// The type's category (`turn`).
    pub fn category(&self) -> &'static str {
        self.event_type.category()
    }

    /// The type's name within its category (`started`).
    pub fn event_name(&self) -> &'static str {
        self.event_type.event_name()
    }

    /// See [`AcfEventType::matches_pattern`].
    pub fn matches_pattern(&self, pattern: &str) -> bool {
        self.event_type.matches_pattern(pattern)
    }
}
