//! Side effects executed while a turn is processed, and their reversibility.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::time::{now_utc, serde_timestamp};

/// How safe it is to abandon or redo a turn after this effect ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffectPolicy {
    /// Can be undone; superseding stays safe.
    Reversible,
    /// Cannot be undone; new messages must be queued rather than absorbed.
    Irreversible,
    /// Safe to retry.
    Idempotent,
}

impl SideEffectPolicy {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reversible => "reversible",
            Self::Irreversible => "irreversible",
            Self::Idempotent => "idempotent",
        }
    }

    /// Parses a wire value; `None` for anything else, so the caller picks the fallback deliberately.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "reversible" => Some(Self::Reversible),
            "irreversible" => Some(Self::Irreversible),
            "idempotent" => Some(Self::Idempotent),
            _ => None,
        }
    }
}

/// Record of one executed side effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideEffect {
    /// Kind of effect, e.g. `tool_call`.
    pub effect_type: String,
    /// Reversibility classification.
    pub policy: SideEffectPolicy,
    /// When it ran (defaults to now when missing from JSON).
    #[serde(with = "serde_timestamp", default = "now_utc")]
    pub executed_at: DateTime<Utc>,
    /// Tool name when the effect is a tool call.
    #[serde(default)]
    pub tool_name: Option<String>,
    /// Key that makes a retried effect a no-op.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Effect-specific data.
    #[serde(default)]
    pub details: Map<String, Value>,
}

impl SideEffect {
    /// A new effect executed now, with no tool name, key or details.
    pub fn new(effect_type: impl Into<String>, policy: SideEffectPolicy) -> Self {
        Self {
            effect_type: effect_type.into(),
            policy,
            executed_at: now_utc(),
            tool_name: None,
            idempotency_key: None,
            details: Map::new(),
        }
    }

    /// True when the effect prevents absorbing or superseding.
    pub fn is_irreversible(&self) -> bool {
        self.policy == SideEffectPolicy::Irreversible
    }
}
