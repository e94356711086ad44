//! The error type of the client, the worker and the context's engine calls.

use std::collections::BTreeMap;

use crate::config::ConfigError;
use crate::model::DefinitionError;

/// Errors from talking to the engine (clients, worker, context methods).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A workflow definition is invalid.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// The channel could not be built or connected.
    #[error("cannot connect to the engine: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// An RPC failed with a status (after retries where the policy allows them).
    #[error("{rpc} failed: {status}")]
    Status {
        /// The RPC (`Service/Method`).
        rpc: &'static str,
        /// The final status.
        status: tonic::Status,
    },
    /// A payload could not be encoded or decoded.
    #[error("invalid JSON payload: {0}")]
    Json(#[from] serde_json::Error),
    /// A run finished with failed tasks (task readable id → error text).
    #[error("run {run_id} failed: {}", render_errors(.errors))]
    RunFailed {
        /// The workflow run id.
        run_id: String,
        /// Failure text per task.
        errors: BTreeMap<String, String>,
    },
    /// A run was cancelled.
    #[error("run {0} was cancelled")]
    RunCancelled(String),
    /// A durable operation was called from a step that is not durable.
    #[error("step `{0}` is not durable: declare it durable to use sleep/wait operations")]
    NotDurable(String),
    /// The engine reported that a durable replay diverged from the recorded history.
    #[error("non-determinism detected in durable step: {0}")]
    Nondeterminism(String),
    /// The step (or the wait) was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A stream or background task is gone (worker shut down, engine connection lost for good).
    #[error("{0}")]
    Closed(String),
    /// The worker stopped because it could not reach the engine.
    #[error("worker failed: {0}")]
    Worker(String),
}

impl Error {
    /// The gRPC status code, when this is an RPC failure.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Status { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

fn render_errors(errors: &BTreeMap<String, String>) -> String {
    errors
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result alias for [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
