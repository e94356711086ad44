//! What a brain sees of its turn, and the two live callbacks into the worker.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::{AcfEvent, EventError, Routing, log_event};
use crate::models::time::serde_timestamp;
use crate::models::{LogicalTurn, SideEffect, tool_idempotency_key};
use crate::stores::{MessageStore, StoredMessage};

/// One message of the turn, as the brain reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnMessage {
    /// Message id.
    pub id: Uuid,
    /// Text.
    pub content: String,
    /// Arrival time.
    #[serde(with = "serde_timestamp")]
    pub received_at: DateTime<Utc>,
}

impl From<&StoredMessage> for TurnMessage {
    fn from(message: &StoredMessage) -> Self {
        Self {
            id: message.id,
            content: message.content.clone(),
            received_at: message.received_at,
        }
    }
}

/// Answers "did a new message arrive for this session during the turn?".
#[async_trait]
pub trait PendingMessages: Send + Sync {
    /// True when the session has a message that is not part of the running turn.
    async fn has_pending(&self) -> bool;
}

/// For runs without a message store (a direct run): never anything pending.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPendingMessages;

#[async_trait]
impl PendingMessages for NoPendingMessages {
    async fn has_pending(&self) -> bool {
        false
    }
}

/// Asks the message store for open messages of the session outside the running turn.
pub struct StorePendingMessages {
    messages: Arc<dyn MessageStore>,
    session_key: String,
    in_turn: HashSet<Uuid>,
}

impl StorePendingMessages {
    /// A query for `session_key`, ignoring the turn's own `in_turn` messages.
    pub fn new(
        messages: Arc<dyn MessageStore>,
        session_key: impl Into<String>,
        in_turn: impl IntoIterator<Item = Uuid>,
    ) -> Self {
        Self {
            messages,
            session_key: session_key.into(),
            in_turn: in_turn.into_iter().collect(),
        }
    }
}

#[async_trait]
impl PendingMessages for StorePendingMessages {
    async fn has_pending(&self) -> bool {
        match self.messages.open_messages(&self.session_key).await {
            Ok(open) => open
                .iter()
                .any(|message| !self.in_turn.contains(&message.id)),
            Err(error) => {
                // The brain cannot act on a store outage; "nothing pending" lets it finish its answer, and the
                // message itself is still stored and gets its own run.
                tracing::warn!(session_key = %self.session_key, error = %acf_sdk::error::Report(&error), "pending_messages_check_failed");
                false
            }
        }
    }
}

/// Receives the events a brain emits.
#[async_trait]
pub trait EventEmitter: Send + Sync {
    /// Hands one event to the worker. An error means the event did not take full effect: the side effect of a
    /// `tool.executed` event could not be recorded on the turn (listeners' failures never surface here).
    async fn emit(&self, event: AcfEvent) -> Result<(), EventError>;
}

/// Logs each event as `acf_event_emitted` (type, turn, session, routing ids, payload keys), recording nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogEvents;

#[async_trait]
impl EventEmitter for LogEvents {
    async fn emit(&self, event: AcfEvent) -> Result<(), EventError> {
        log_event(&event);
        Ok(())
    }
}

/// Logs and keeps every event, so the worker can route or record them after the brain returns.
#[derive(Debug, Default)]
pub struct EventBuffer {
    events: Mutex<Vec<AcfEvent>>,
}

impl EventBuffer {
    /// An empty buffer.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Removes and returns the events received so far, in order.
    pub fn take(&self) -> Vec<AcfEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl EventEmitter for EventBuffer {
    async fn emit(&self, event: AcfEvent) -> Result<(), EventError> {
        log_event(&event);
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Ok(())
    }
}

/// The brain's view of one turn. Rebuilt for every attempt; only the turn data crosses step boundaries.
pub struct TurnContext {
    turn: LogicalTurn,
    channel: String,
    messages: Vec<TurnMessage>,
    pending: Arc<dyn PendingMessages>,
    events: Arc<dyn EventEmitter>,
    pending_seen: AtomicBool,
    routing: Option<Routing>,
    turn_number: Option<u64>,
}

impl std::fmt::Debug for TurnContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnContext")
            .field("turn_id", &self.turn.id())
            .field("session_key", &self.turn.session_key())
            .field("channel", &self.channel)
            .field("messages", &self.messages.len())
            .field("turn_number", &self.turn_number)
            .finish_non_exhaustive()
    }
}

impl TurnContext {
    /// A context for `turn` on `channel`, with the turn's messages in order.
    pub fn new(
        turn: LogicalTurn,
        channel: impl Into<String>,
        messages: Vec<TurnMessage>,
        pending: Arc<dyn PendingMessages>,
        events: Arc<dyn EventEmitter>,
    ) -> Self {
        Self {
            turn,
            channel: channel.into(),
            messages,
            pending,
            events,
            pending_seen: AtomicBool::new(false),
            routing: None,
            turn_number: None,
        }
    }

    /// Sets the tenant, agent and interlocutor the turn belongs to (the workflow always does; the HTTP brain
    /// refuses a context without them, since a brain serving many agents needs them).
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = Some(routing);
        self
    }

    /// Sets the number this turn gets when it commits: the session's committed turns so far plus one.
    pub fn with_turn_number(mut self, turn_number: u64) -> Self {
        self.turn_number = Some(turn_number);
        self
    }

    /// The tenant, agent and interlocutor, when set.
    pub fn routing(&self) -> Option<&Routing> {
        self.routing.as_ref()
    }

    /// The turn's number within its session (1 for the first), when set.
    pub fn turn_number(&self) -> Option<u64> {
        self.turn_number
    }

    /// The logical turn.
    pub fn turn(&self) -> &LogicalTurn {
        &self.turn
    }

    /// The session key.
    pub fn session_key(&self) -> &str {
        self.turn.session_key()
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The turn's messages, in order.
    pub fn messages(&self) -> &[TurnMessage] {
        &self.messages
    }

    /// Whether a message arrived for the session during this turn. Monotonic within the turn, as documented by
    /// the original contract (and enforced here): once true, it stays true.
    pub async fn has_pending_messages(&self) -> bool {
        if self.pending_seen.load(Ordering::Acquire) {
            return true;
        }
        let pending = self.pending.has_pending().await;
        if pending {
            self.pending_seen.store(true, Ordering::Release);
        }
        pending
    }

    /// Hands an event to the worker. A `tool.executed` event's side effect is recorded on the turn before this
    /// returns (in a workflow run); an error means it could not be, and the step will fail and be retried, so a
    /// brain should stop acting for this attempt.
    pub async fn emit_event(&self, event: AcfEvent) -> Result<(), EventError> {
        self.events.emit(event).await
    }

    /// The side effects recorded for this turn by earlier attempts, oldest first. A retried attempt (after a
    /// crash, a lost lock or a transient error) finds here what the earlier ones already did.
    pub fn side_effects(&self) -> &[SideEffect] {
        self.turn.side_effects()
    }

    /// The side effect recorded earlier with `idempotency_key`, if any: the tool already ran for this turn.
    pub fn recorded_effect(&self, idempotency_key: &str) -> Option<&SideEffect> {
        self.side_effects()
            .iter()
            .find(|effect| effect.idempotency_key.as_deref() == Some(idempotency_key))
    }

    /// The idempotency key of a tool call in this turn's group (shared along a supersede chain):
    /// `{tool_name}:{business_key}:turn_group:{turn_group_id}`. A tool given this key can refuse a repeat.
    pub fn idempotency_key(&self, tool_name: &str, business_key: &str) -> String {
        tool_idempotency_key(tool_name, business_key, self.turn.turn_group_id())
    }
}
