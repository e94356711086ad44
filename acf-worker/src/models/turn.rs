//! `LogicalTurn`: one beat of user intent made of one or more messages, and its guarded lifecycle.
//!
//! Lifecycle: `accumulating -> processing -> complete`, and `accumulating | processing -> superseded`.
//! Every other change is a [`TurnError::IllegalTransition`]; the original enforced only the first arrow.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::accumulation::TurnLimits;
use super::checkpoint::{PhaseArtifact, ScenarioStepRef};
use super::error::TurnError;
use super::side_effect::SideEffect;
use super::time::serde_timestamp;

/// Lifecycle state of a logical turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicalTurnStatus {
    /// Waiting for more messages.
    Accumulating,
    /// The brain is running.
    Processing,
    /// Finished; terminal.
    Complete,
    /// Replaced by a newer turn; terminal.
    Superseded,
}

impl LogicalTurnStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accumulating => "accumulating",
            Self::Processing => "processing",
            Self::Complete => "complete",
            Self::Superseded => "superseded",
        }
    }

    /// True for `complete` and `superseded`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Superseded)
    }
}

impl std::fmt::Display for LogicalTurnStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why accumulation ended. Serialised as the plain string the original wrote in `completion_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionReason {
    /// The window elapsed without a new message.
    Timeout,
    /// The channel or caller asked for no accumulation.
    NoAccumulation,
    /// A new message could not be absorbed.
    CannotAbsorb,
    /// The turn reached its configured message cap.
    MaxMessages,
    /// The turn reached its configured window length.
    MaxWindow,
    /// A model predicted the input complete (documented by the original, never produced there).
    AiPredicted,
    /// The user signalled completion explicitly (documented by the original, never produced there).
    ExplicitSignal,
    /// The channel signalled completion (documented by the original, never produced there).
    ChannelHint,
}

/// One beat of user intent. Fields are private so every status change goes through the guarded methods.
///
/// The JSON form is the original's, field for field and in the same order (see the crate's model tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLogicalTurn")]
pub struct LogicalTurn {
    id: Uuid,
    session_key: String,
    turn_group_id: Uuid,
    messages: Vec<Uuid>,
    status: LogicalTurnStatus,
    #[serde(with = "serde_timestamp")]
    first_at: DateTime<Utc>,
    #[serde(with = "serde_timestamp")]
    last_at: DateTime<Utc>,
    completion_confidence: f64,
    completion_reason: Option<CompletionReason>,
    phase_artifacts: BTreeMap<i64, PhaseArtifact>,
    side_effects: Vec<SideEffect>,
    scenario_states_at_start: BTreeMap<Uuid, ScenarioStepRef>,
    superseded_by: Option<Uuid>,
    superseded_from: Option<Uuid>,
    interrupt_point: Option<String>,
}

/// The unchecked wire shape; [`LogicalTurn`]'s deserialisation validates it.
#[derive(Deserialize)]
struct RawLogicalTurn {
    #[serde(default = "Uuid::new_v4")]
    id: Uuid,
    session_key: String,
    #[serde(default = "Uuid::new_v4")]
    turn_group_id: Uuid,
    #[serde(default)]
    messages: Vec<Uuid>,
    #[serde(default = "accumulating")]
    status: LogicalTurnStatus,
    #[serde(with = "serde_timestamp")]
    first_at: DateTime<Utc>,
    #[serde(with = "serde_timestamp")]
    last_at: DateTime<Utc>,
    #[serde(default)]
    completion_confidence: f64,
    #[serde(default)]
    completion_reason: Option<CompletionReason>,
    #[serde(default)]
    phase_artifacts: BTreeMap<i64, PhaseArtifact>,
    #[serde(default)]
    side_effects: Vec<SideEffect>,
    #[serde(default)]
    scenario_states_at_start: BTreeMap<Uuid, ScenarioStepRef>,
    #[serde(default)]
    superseded_by: Option<Uuid>,
    #[serde(default)]
    superseded_from: Option<Uuid>,
    #[serde(default)]
    interrupt_point: Option<String>,
}

fn accumulating() -> LogicalTurnStatus {
    LogicalTurnStatus::Accumulating
}

impl TryFrom<RawLogicalTurn> for LogicalTurn {
    type Error = TurnError;

    fn try_from(raw: RawLogicalTurn) -> Result<Self, TurnError> {
        check_confidence(raw.completion_confidence)?;
        let mut seen = std::collections::HashSet::with_capacity(raw.messages.len());
        if let Some(dup) = raw.messages.iter().find(|id| !seen.insert(**id)) {
            return Err(TurnError::DuplicateMessage(*dup));
        }
        Ok(Self {
            id: raw.id,
            session_key: raw.session_key,
            turn_group_id: raw.turn_group_id,
            messages: raw.messages,
            status: raw.status,
            first_at: raw.first_at,
            last_at: raw.last_at,
            completion_confidence: raw.completion_confidence,
            completion_reason: raw.completion_reason,
            phase_artifacts: raw.phase_artifacts,
            side_effects: raw.side_effects,
            scenario_states_at_start: raw.scenario_states_at_start,
            superseded_by: raw.superseded_by,
            superseded_from: raw.superseded_from,
            interrupt_point: raw.interrupt_point,
        })
    }
}

fn check_confidence(value: f64) -> Result<(), TurnError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(TurnError::InvalidConfidence(value))
    }
}

impl LogicalTurn {
    /// Starts an accumulating turn with its first message, in a new turn group.
    ///
    /// The id is supplied by the caller so it can be generated once per run (a retried step must not mint a new one).
    pub fn start(
        id: Uuid,
        session_key: impl Into<String>,
        first_message: Uuid,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            session_key: session_key.into(),
            turn_group_id: Uuid::new_v4(),
            messages: vec![first_message],
            status: LogicalTurnStatus::Accumulating,
            first_at: at,
            last_at: at,
            completion_confidence: 0.0,
            completion_reason: None,
            phase_artifacts: BTreeMap::new(),
            side_effects: Vec::new(),
            scenario_states_at_start: BTreeMap::new(),
            superseded_by: None,
            superseded_from: None,
            interrupt_point: None,
        }
    }

    /// Turn id.
    pub fn id(&self) -> Uuid {
        self.id
    }
    /// Session key, `{tenant}:{agent}:{interlocutor}:{channel}`.
    pub fn session_key(&self) -> &str {
        &self.session_key
    }
    /// Group id shared along a supersede chain (scopes tool idempotency keys).
    pub fn turn_group_id(&self) -> Uuid {
        self.turn_group_id
    }
    /// Message ids, in arrival order, without duplicates.
    pub fn messages(&self) -> &[Uuid] {
        &self.messages
    }
    /// Number of messages in the turn.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }
    /// Current status.
    pub fn status(&self) -> LogicalTurnStatus {
        self.status
    }
    /// When the first message arrived.
    pub fn first_at(&self) -> DateTime<Utc> {
        self.first_at
    }
    /// Latest message time seen (never moves backwards).
    pub fn last_at(&self) -> DateTime<Utc> {
        self.last_at
    }
    /// Confidence that the input is complete, 0.0 to 1.0.
    pub fn completion_confidence(&self) -> f64 {
        self.completion_confidence
    }
    /// Why accumulation ended, once it has.
    pub fn completion_reason(&self) -> Option<CompletionReason> {
        self.completion_reason
    }
    /// Cached phase outputs by phase number.
    pub fn phase_artifacts(&self) -> &BTreeMap<i64, PhaseArtifact> {
        &self.phase_artifacts
    }
    /// Executed side effects, in order.
    pub fn side_effects(&self) -> &[SideEffect] {
        &self.side_effects
    }
    /// Scenario states captured at the start of the turn.
    pub fn scenario_states_at_start(&self) -> &BTreeMap<Uuid, ScenarioStepRef> {
        &self.scenario_states_at_start
    }
    /// The turn that replaced this one.
    pub fn superseded_by(&self) -> Option<Uuid> {
        self.superseded_by
    }
    /// The turn this one replaced.
    pub fn superseded_from(&self) -> Option<Uuid> {
        self.superseded_from
    }
    /// Where processing was when the turn was superseded.
    pub fn interrupt_point(&self) -> Option<&str> {
        self.interrupt_point.as_deref()
    }

    /// True when an executed side effect cannot be undone.
    pub fn has_irreversible_side_effect(&self) -> bool {
        self.side_effects.iter().any(SideEffect::is_irreversible)
    }

    /// Whether another message may join: always while accumulating, while processing only before any
    /// irreversible side effect, never once terminal. Limits are checked separately by [`Self::absorb_message`].
    pub fn can_absorb_message(&self) -> bool {
        match self.status {
            LogicalTurnStatus::Accumulating => true,
            LogicalTurnStatus::Processing => !self.has_irreversible_side_effect(),
            LogicalTurnStatus::Complete | LogicalTurnStatus::Superseded => false,
        }
    }

    /// Whether a newer turn may replace this one (same rule as absorbing).
    pub fn can_supersede(&self) -> bool {
        self.can_absorb_message()
    }

    /// The latest time a message may arrive and still join this turn.
    pub fn window_deadline(&self, limits: &TurnLimits) -> DateTime<Utc> {
        // Saturates instead of panicking: an absurdly large window simply never ends.
        i64::try_from(limits.max_window_ms)
            .ok()
            .and_then(chrono::TimeDelta::try_milliseconds)
            .and_then(|window| self.first_at.checked_add_signed(window))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Adds a message. Refused when the turn cannot absorb, when the id is already present, when the turn is at
    /// `limits.max_messages`, or when `at` is later than the window allows.
    ///
    /// `last_at` only moves forward: message timestamps come from other clocks and may arrive out of order.
    pub fn absorb_message(
        &mut self,
        message_id: Uuid,
        at: DateTime<Utc>,
        limits: &TurnLimits,
    ) -> Result<(), TurnError> {
        if !self.can_absorb_message() {
            return Err(TurnError::CannotAbsorb {
                status: self.status,
                irreversible: self.status == LogicalTurnStatus::Processing,
            });
        }
        if self.messages.contains(&message_id) {
            return Err(TurnError::DuplicateMessage(message_id));
        }
        if self.messages.len() >= limits.max_messages {
            return Err(TurnError::TooManyMessages {
                max: limits.max_messages,
            });
        }
        if at > self.window_deadline(limits) {
            return Err(TurnError::WindowExceeded {
                elapsed_ms: (at - self.first_at).num_milliseconds(),
                max_window_ms: limits.max_window_ms,
            });
        }
        self.messages.push(message_id);
        self.last_at = self.last_at.max(at);
        Ok(())
    }

    /// Records the completion confidence (0.0 to 1.0).
    pub fn set_completion_confidence(&mut self, confidence: f64) -> Result<(), TurnError> {
        check_confidence(confidence)?;
        self.completion_confidence = confidence;
        Ok(())
    }

    /// `accumulating -> processing`, recording why accumulation ended.
    pub fn mark_processing(&mut self, reason: CompletionReason) -> Result<(), TurnError> {
        self.transition(
            LogicalTurnStatus::Processing,
            &[LogicalTurnStatus::Accumulating],
        )?;
        self.completion_reason = Some(reason);
        Ok(())
    }

    /// `processing -> complete`.
    pub fn mark_complete(&mut self) -> Result<(), TurnError> {
        self.transition(
            LogicalTurnStatus::Complete,
            &[LogicalTurnStatus::Processing],
        )
    }

    /// `accumulating | processing -> superseded`, recording the replacing turn and the interruption point.
    pub fn mark_superseded(
        &mut self,
        by_turn_id: Option<Uuid>,
        at_point: Option<String>,
    ) -> Result<(), TurnError> {
        self.transition(
            LogicalTurnStatus::Superseded,
            &[
                LogicalTurnStatus::Accumulating,
                LogicalTurnStatus::Processing,
            ],
        )?;
        self.superseded_by = by_turn_id;
        self.interrupt_point = at_point;
        Ok(())
    }

    /// Replaces this turn with a new accumulating one holding `new_message`, in the same turn group.
    ///
    /// Unlike the original, supersede is refused when [`Self::can_supersede`] is false (an irreversible side effect
    /// ran or the turn is terminal); the caller should queue the message instead.
    pub fn supersede(
        &mut self,
        new_turn_id: Uuid,
        new_message: Uuid,
        at: DateTime<Utc>,
        at_point: Option<String>,
    ) -> Result<LogicalTurn, TurnError> {
        if !self.can_supersede() {
            return Err(TurnError::IllegalTransition {
                from: self.status,
                to: LogicalTurnStatus::Superseded,
            });
        }
        self.mark_superseded(Some(new_turn_id), at_point)?;
        let mut next = LogicalTurn::start(new_turn_id, self.session_key.clone(), new_message, at);
        next.turn_group_id = self.turn_group_id;
        next.superseded_from = Some(self.id);
        Ok(next)
    }

    /// Appends an executed side effect. Refused once the turn is terminal.
    pub fn record_side_effect(&mut self, effect: SideEffect) -> Result<(), TurnError> {
        if self.status.is_terminal() {
            return Err(TurnError::Terminal(self.status));
        }
        self.side_effects.push(effect);
        Ok(())
    }

    /// Stores (or replaces) a phase's cached output.
    pub fn record_phase_artifact(&mut self, artifact: PhaseArtifact) {
        self.phase_artifacts.insert(artifact.phase_number, artifact);
    }

    /// Captures a scenario's step state at the start of the turn.
    pub fn record_scenario_state(&mut self, step: ScenarioStepRef) {
        self.scenario_states_at_start.insert(step.scenario_id, step);
    }

    fn transition(
        &mut self,
        to: LogicalTurnStatus,
        allowed_from: &[LogicalTurnStatus],
    ) -> Result<(), TurnError> {
        if !allowed_from.contains(&self.status) {
            return Err(TurnError::IllegalTransition {
                from: self.status,
                to,
            });
        }
        self.status = to;
        Ok(())
    }
}
