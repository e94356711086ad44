//! What to do with a message that arrives while a turn is being processed.
//!
//! The original also had an unrelated `SupersedeDecision { supersede: bool, reason }` in its brain protocol; this
//! crate keeps the name for the four-action record below only.

use serde::{Deserialize, Serialize};

/// The four-action supersede model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupersedeAction {
    /// Cancel the current turn and start a new one.
    Supersede,
    /// Add the message to the current turn.
    Absorb,
    /// Finish the current turn, then handle the message as a separate turn.
    Queue,
    /// Nearly done: finish and leave the message for later.
    ForceComplete,
}

/// A decision about a message that arrived during processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupersedeDecision {
    /// What to do.
    pub action: SupersedeAction,
    /// How to absorb, for [`SupersedeAction::Absorb`].
    #[serde(default)]
    pub absorb_strategy: Option<String>,
    /// Why the decision was made.
    pub reason: String,
    /// Phase to restart from, for [`SupersedeAction::Absorb`].
    #[serde(default)]
    pub restart_from_phase: Option<i64>,
}

/// Idempotency key for a tool call, shared by every turn of a supersede chain:
/// `{tool_name}:{business_key}:turn_group:{turn_group_id}`.
pub fn tool_idempotency_key(
    tool_name: &str,
    business_key: &str,
    turn_group_id: uuid::Uuid,
) -> String {
    format!("{tool_name}:{business_key}:turn_group:{turn_group_id}")
}
