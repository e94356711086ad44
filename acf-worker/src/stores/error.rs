//! Store errors.
//!
//! A backend or encoder failure is printed in the message (with its own causes) rather than exposed as
//! `source()`: store errors are logged and turned into step failures by their `Display`, and each error
//! prints its cause exactly once either way.

use acf_sdk::error::Report;

/// Errors of every store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or answered with an error.
    #[error("store backend unavailable during {operation}: {}", Report(.error))]
    Unavailable {
        /// The store operation.
        operation: &'static str,
        /// The backend error.
        error: redis::RedisError,
    },
    /// The writer's lease is no longer current: a later holder acquired the session (or a foreign holder has it).
    #[error("stale lock holder for session `{session_key}` (fence {fence}): write refused")]
    StaleFence {
        /// The session.
        session_key: String,
        /// The writer's fence.
        fence: u64,
    },
    /// A commit found one of its turn's messages closed by another turn (or gone): the session's next lock holder
    /// answered it, so this turn's answer must not be delivered. Nothing was written.
    #[error(
        "turn {turn_id} of session `{session_key}` was taken over: one of its messages is closed by another turn"
    )]
    TakenOver {
        /// The session.
        session_key: String,
        /// The turn whose commit was refused.
        turn_id: uuid::Uuid,
    },
    /// Stored data could not be decoded.
    #[error("corrupt stored {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The request contradicts itself (e.g. a commit for another session than its lease's).
    #[error("invalid store request: {0}")]
    InvalidRequest(String),
    /// A record could not be encoded.
    #[error("cannot encode {what}: {}", Report(.error))]
    Encode {
        /// What was being written.
        what: &'static str,
        /// The encoder error.
        error: serde_json::Error,
    },
}

impl StoreError {
    /// True when retrying later can succeed (an unreachable backend).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn unavailable(operation: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| {
            tracing::error!(operation, error = %source, "store_backend_unavailable");
            Self::Unavailable {
                operation,
                error: source,
            }
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |error| Self::Encode { what, error }
    }
}
