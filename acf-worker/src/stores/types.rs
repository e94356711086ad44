//! Records the stores keep. Timestamps use the models' pydantic-compatible form.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::brain::ResponseSegment;
use crate::models::time::{serde_timestamp, serde_timestamp_opt};
use crate::models::{AccumulationHint, TurnOutcome, UserCadenceStats};

/// Where a message is in its life. A message is *open* while pending or absorbed: a turn that has not committed
/// may still lose it to the session's next lock holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MessageStatus {
    /// Stored, not yet in any turn.
    Pending,
    /// Taken into a turn that has not committed yet.
    Absorbed {
        /// The absorbing turn.
        turn_id: Uuid,
    },
    /// Its turn committed with a response.
    Processed {
        /// The turn that answered it.
        turn_id: Uuid,
    },
    /// Its turn committed as failed.
    Failed {
        /// The turn that failed.
        turn_id: Uuid,
        /// Why.
        reason: String,
    },
}

impl MessageStatus {
    /// The wire name (`pending`, `absorbed`, `processed`, `failed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Absorbed { .. } => "absorbed",
            Self::Processed { .. } => "processed",
            Self::Failed { .. } => "failed",
        }
    }

    /// Pending or absorbed: the message still needs a committed turn.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Pending | Self::Absorbed { .. })
    }

    /// The turn the message belongs to, if any.
    pub fn turn_id(&self) -> Option<Uuid> {
        match self {
            Self::Pending => None,
            Self::Absorbed { turn_id }
            | Self::Processed { turn_id }
            | Self::Failed { turn_id, .. } => Some(*turn_id),
        }
    }
}

/// One raw user message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Message id (unique across sessions).
    pub id: Uuid,
    /// The session it belongs to.
    pub session_key: String,
    /// Channel it came from.
    pub channel: String,
    /// Text.
    pub content: String,
    /// When it arrived.
    #[serde(with = "serde_timestamp")]
    pub received_at: DateTime<Utc>,
    /// Current status.
    #[serde(flatten)]
    pub status: MessageStatus,
    /// When the status last changed.
    #[serde(with = "serde_timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl StoredMessage {
    /// A new pending message with `updated_at = received_at`.
    pub fn pending(
        id: Uuid,
        session_key: impl Into<String>,
        channel: impl Into<String>,
        content: impl Into<String>,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            session_key: session_key.into(),
            channel: channel.into(),
            content: content.into(),
            received_at,
            status: MessageStatus::Pending,
            updated_at: received_at,
        }
    }
}

/// A session's learned and carried-over state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Committed turns so far (complete and failed).
    pub turn_count: u64,
    /// The last committed turn.
    pub last_turn_id: Option<Uuid>,
    /// The hint the last completed turn's brain left for the next window.
    pub last_hint: Option<AccumulationHint>,
    /// Typing cadence learned from gaps between this session's messages.
    pub cadence: UserCadenceStats,
    /// Arrival time of the latest message.
    #[serde(with = "serde_timestamp_opt")]
    pub last_message_at: Option<DateTime<Utc>>,
}

impl SessionState {
    /// The cadence when it has enough samples to be worth passing to the TurnManager (it ignores fewer than 5).
    pub fn cadence_for_window(&self) -> Option<&UserCadenceStats> {
        (self.cadence.sample_count > 0).then_some(&self.cadence)
    }
}

/// A message id handed to a session's accumulating run. The inbox only wakes the waiter; the message store
/// remains the source of truth about which messages still need a turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The new message.
    pub message_id: Uuid,
    /// When it arrived.
    #[serde(with = "serde_timestamp")]
    pub received_at: DateTime<Utc>,
}

/// The audit record of one committed turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Turn id (the idempotency key of the commit).
    pub turn_id: Uuid,
    /// Session key.
    pub session_key: String,
    /// Channel.
    pub channel: String,
    /// 1-based position among the session's committed turns; assigned by the commit.
    pub turn_number: u64,
    /// `complete` or `failed`.
    pub outcome: TurnOutcome,
    /// Messages of the turn, in order.
    pub message_ids: Vec<Uuid>,
    /// The response text, when complete.
    pub response: Option<String>,
    /// The response segments, when complete.
    pub segments: Vec<ResponseSegment>,
    /// The error, when failed.
    pub error: Option<String>,
    /// Fence of the lease that committed it.
    pub fence: u64,
    /// First message's arrival in the turn.
    #[serde(with = "serde_timestamp")]
    pub started_at: DateTime<Utc>,
    /// Commit time.
    #[serde(with = "serde_timestamp")]
    pub committed_at: DateTime<Utc>,
    /// The side effects the turn executed, in order (`tool.executed` events recorded while it ran).
    #[serde(default)]
    pub side_effects: Vec<crate::models::SideEffect>,
}

/// Everything a turn's commit writes, atomically and at most once per turn id.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnCommit {
    /// The audit record; its `turn_number` is ignored and assigned by the commit.
    pub record: TurnRecord,
    /// For a complete turn: the hint to keep for the next window (`None` clears the previous one).
    /// Ignored for a failed turn, which leaves the previous hint in place.
    pub next_hint: Option<AccumulationHint>,
}

impl TurnCommit {
    /// The response entry this commit delivers: a complete turn with a response, or a failure entry for a failed
    /// turn (`status = failed`, empty response, the reason in `error`). Its `turn_number` is 0 here; the commit
    /// fills it in.
    pub fn response_entry(&self) -> Option<ResponseEntry> {
        let record = &self.record;
        let (status, response, error) = match record.outcome {
            TurnOutcome::Complete => (TurnOutcome::Complete, record.response.clone()?, None),
            // A failed turn is delivered too, so the gateway can tell the user: nothing is only logged.
            TurnOutcome::Failed => (
                TurnOutcome::Failed,
                String::new(),
                Some(
                    record
                        .error
                        .clone()
                        .unwrap_or_else(|| "the turn failed".to_owned()),
                ),
            ),
            _ => return None,
        };
        Some(ResponseEntry {
            turn_id: record.turn_id,
            session_key: record.session_key.clone(),
            channel: record.channel.clone(),
            turn_number: 0,
            status,
            response,
            segments: record.segments.clone(),
            message_ids: record.message_ids.clone(),
            error,
            committed_at: record.committed_at,
        })
    }
}

/// What a commit did (or, for a retried commit, what the first commit did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReceipt {
    /// The turn's number within its session.
    pub turn_number: u64,
    /// Id of the response stream entry, when a response was delivered.
    pub response_entry_id: Option<String>,
    /// False when this call found the turn already committed and changed nothing.
    pub first_commit: bool,
}

/// One entry of the response stream, as a channel gateway reads it.
///
/// Redis stream fields (all strings): `turn_id`, `session_key`, `channel`, `turn_number` (decimal), `status`
/// (`complete` or `failed`), `response` (empty for a failure), `segments` (JSON array of
/// `{content, segment_type, metadata}`), `message_ids` (JSON array of UUID strings), `error` (the failure reason,
/// empty for a complete turn), `committed_at` (ISO-8601 UTC). An entry without `status` (written before the field
/// existed) is `complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEntry {
    /// The answered turn.
    pub turn_id: Uuid,
    /// Session key (the gateway maps it back to the conversation).
    pub session_key: String,
    /// Channel to deliver on.
    pub channel: String,
    /// The turn's number within its session.
    pub turn_number: u64,
    /// `complete` (an answer) or `failed` (a failure notice for the gateway to relay).
    pub status: TurnOutcome,
    /// Full response text (empty for a failure).
    pub response: String,
    /// The response in deliverable parts.
    pub segments: Vec<ResponseSegment>,
    /// The messages this response answers.
    pub message_ids: Vec<Uuid>,
    /// Why the turn failed, for a failure entry.
    pub error: Option<String>,
    /// Commit time.
    #[serde(with = "serde_timestamp")]
    pub committed_at: DateTime<Utc>,
}

/// The audit record of a run that failed for good (written by the workflow's `on_failure` handler next to the
/// failed turn's commit, which closes its messages and delivers the failure entry). Writing the record itself
/// changes no message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The failed run's turn id. Recording the same turn again replaces its record.
    pub turn_id: Uuid,
    /// Session key.
    pub session_key: String,
    /// The messages closed as failed by the failed turn (empty when they were handed on instead).
    pub message_ids: Vec<Uuid>,
    /// Why the run failed (each failed step and its last error).
    pub reason: String,
    /// The step that failed, when known.
    pub failed_step: Option<String>,
    /// When the failure was recorded.
    #[serde(with = "serde_timestamp")]
    pub failed_at: DateTime<Utc>,
}
