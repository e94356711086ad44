//! Brain failures.

use std::time::Duration;

/// Why a brain could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    /// The HTTP brain's endpoint did not answer in time.
    #[error("brain endpoint did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The configured limit.
        timeout: Duration,
    },
    /// The endpoint answered with a non-success status.
    #[error("brain endpoint answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The endpoint could not be reached or the exchange broke off.
    // reqwest keeps the reason (refused, reset, TLS) in its `source()` chain: printed here, since a brain
    // error reaches the turn's failure text through `Display`.
    #[error("brain endpoint unreachable: {}", acf_sdk::error::Report(.0))]
    Transport(reqwest::Error),
    /// The endpoint's answer does not follow the contract.
    #[error("brain answer is malformed: {0}")]
    Malformed(String),
    /// The brain itself reported a failure.
    #[error("brain failed: {0}")]
    Failed(String),
    /// An event the brain emitted did not take effect: a tool's side effect could not be recorded on the turn.
    #[error(transparent)]
    Event(#[from] crate::events::EventError),
}

impl BrainError {
    /// A short kind for the `turn.failed` event's `error_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "brain_timeout",
            Self::Status { .. } => "brain_http_status",
            Self::Transport(_) => "brain_transport",
            Self::Malformed(_) => "brain_malformed_response",
            Self::Failed(_) => "brain_failed",
            Self::Event(_) => "side_effect_not_recorded",
        }
    }

    /// True when the same turn may succeed if tried again: timeouts, unreachable endpoints, 5xx/429 answers, and
    /// side effects that could not be recorded (the store or the lock may come back).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport(_) | Self::Event(_) => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Malformed(_) | Self::Failed(_) => false,
        }
    }
}
