//! Inputs to the accumulation window: brain hints, message shapes, learned cadence, and per-turn caps.

use serde::{Deserialize, Serialize};

/// Hint from turn N's brain about the input expected in turn N+1.
///
/// Missing JSON fields take their defaults, as in the original model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccumulationHint {
    /// The brain asked a question and waits for the answer (widens the window by 1000 ms).
    pub awaiting_required_field: bool,
    /// A multi-part answer is likely (widens the window by 500 ms).
    pub expects_followup: bool,
    /// The brain's confidence that the input is already complete, 0.0 to 1.0 (above 0.8 narrows by 200 ms).
    pub input_complete_confidence: f64,
    /// What the brain waits for (`order_number`, `confirmation`, ...).
    pub expected_input_type: Option<String>,
}

impl AccumulationHint {
    /// Checks the range the original model enforced on `input_complete_confidence`.
    pub fn validate(&self) -> Result<(), String> {
        if (0.0..=1.0).contains(&self.input_complete_confidence) {
            Ok(())
        } else {
            Err(format!(
                "input_complete_confidence {} is outside 0.0..=1.0",
                self.input_complete_confidence
            ))
        }
    }
}

/// How complete a message looks, which widens or keeps the accumulation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageShape {
    /// A bare greeting, likely followed by the actual request.
    GreetingOnly,
    /// Text ending in `...`, `,`, `-` or `:`.
    Fragment,
    /// Text ending with an entity word waiting for its value (`order #`).
    IncompleteEntity,
    /// Fewer than three words without an explicit completion.
    PossiblyIncomplete,
    /// Anything else.
    LikelyComplete,
}

impl MessageShape {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreetingOnly => "greeting_only",
            Self::Fragment => "fragment",
            Self::IncompleteEntity => "incomplete_entity",
            Self::PossiblyIncomplete => "possibly_incomplete",
            Self::LikelyComplete => "likely_complete",
        }
    }

    /// Milliseconds added to the channel's base window for this shape.
    pub fn wait_adjustment_ms(self) -> i64 {
        match self {
            Self::GreetingOnly => 500,
            Self::Fragment => 400,
            Self::IncompleteEntity => 600,
            Self::PossiblyIncomplete => 200,
            Self::LikelyComplete => 0,
        }
    }
}

impl std::fmt::Display for MessageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's learned typing cadence (gaps between consecutive messages).
///
/// Missing JSON fields default to 0; fewer than 5 samples means the stats are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserCadenceStats {
    /// Median gap between messages, in ms.
    pub inter_message_p50_ms: u64,
    /// 95th percentile gap between messages, in ms.
    pub inter_message_p95_ms: u64,
    /// Number of gaps observed.
    pub sample_count: u64,
}

/// Caps on one logical turn, so a steady stream of messages cannot hold a session forever.
///
/// The original had none (defect 18); values come from `[accumulation]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnLimits {
    /// Most messages a turn may hold, the first included. At least 1.
    pub max_messages: usize,
    /// Longest time, in ms, between the turn's first message and an absorbed one.
    pub max_window_ms: u64,
}

impl Default for TurnLimits {
    /// The `[accumulation]` defaults (`max_messages_per_turn`, `max_window_ms`).
    fn default() -> Self {
        crate::config::AccumulationSettings::default().turn_limits()
    }
}
