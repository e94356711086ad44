//! Errors raised by the turn model and by input validation.

use uuid::Uuid;

use super::turn::LogicalTurnStatus;

/// A timestamp that cannot be accepted at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text is a date-time but carries no UTC offset.
    #[error("timestamp `{0}` has no UTC offset; send `Z` or `+hh:mm`")]
    MissingOffset(String),
    /// The text is not an ISO-8601 date-time.
    #[error("timestamp `{0}` is not an ISO-8601 date-time with an offset")]
    Invalid(String),
}

/// An operation that the turn's state machine or its limits refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TurnError {
    /// The requested status change is not part of the lifecycle.
    #[error("illegal turn transition from `{from}` to `{to}`")]
    IllegalTransition {
        /// Status before the attempt.
        from: LogicalTurnStatus,
        /// Status that was requested.
        to: LogicalTurnStatus,
    },
    /// The turn cannot take another message in its current state.
    #[error("cannot absorb message in status `{status}`{}", if *.irreversible { " (an irreversible side effect was executed)" } else { "" })]
    CannotAbsorb {
        /// Current status.
        status: LogicalTurnStatus,
        /// True when the refusal comes from an executed irreversible side effect.
        irreversible: bool,
    },
    /// The message id is already part of the turn.
    #[error("message {0} is already part of the turn")]
    DuplicateMessage(Uuid),
    /// The turn already holds the configured maximum number of messages.
    #[error("turn already holds the maximum of {max} messages")]
    TooManyMessages {
        /// The configured cap.
        max: usize,
    },
    /// The message arrived after the end of the turn's accumulation window.
    #[error(
        "message arrived {elapsed_ms} ms after the turn's first message; the window is {max_window_ms} ms"
    )]
    WindowExceeded {
        /// Time since the turn's first message.
        elapsed_ms: i64,
        /// The configured window.
        max_window_ms: u64,
    },
    /// A confidence value outside 0.0..=1.0.
    #[error("completion confidence {0} is outside 0.0..=1.0")]
    InvalidConfidence(f64),
    /// The turn is terminal and cannot record more side effects.
    #[error("cannot record a side effect in status `{0}`")]
    Terminal(LogicalTurnStatus),
}

/// A workflow input field that fails validation. The message always names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid workflow input field `{field}`: {reason}")]
pub struct InputError {
    /// The offending field, by its wire name.
    pub field: &'static str,
    /// Why the value was refused.
    pub reason: String,
}

impl InputError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
