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
    /// A trigger was refused (`ALREADY_EXISTS`): an earlier run of the workflow still holds the trigger's
    /// idempotency key (the workflow's `idempotency` option).
    #[error("idempotency key collision: run {existing_run_id} holds the key")]
    IdempotencyCollision {
        /// The run holding the key.
        existing_run_id: String,
    },
    /// A bulk trigger met idempotency collisions; its other runs were created.
    #[error(
        "{} bulk-triggered runs collided on idempotency keys ({} created)",
        existing_run_ids.len(),
        created_run_ids.len()
    )]
    BulkIdempotencyCollision {
        /// The runs that were created.
        created_run_ids: Vec<String>,
        /// For each refused trigger, the run holding its key.
        existing_run_ids: Vec<String>,
    },
}

/// `google.rpc.Status`: what the `grpc-status-details-bin` trailer carries (Hatchet puts typed error details
/// there, e.g. `v1.IdempotencyCollisionError`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<prost_types::Any>,
}

/// The `Any` type URL of a `v1` detail message.
pub(crate) fn detail_type_url(message: &str) -> String {
    format!("type.googleapis.com/v1.{message}")
}

impl Error {
    /// An RPC's final status as an error; the idempotency collisions Hatchet reports as status details become
    /// their own variants, as the official SDKs raise `IdempotencyCollisionError`.
    pub(crate) fn from_status(rpc: &'static str, status: tonic::Status) -> Self {
        use prost::Message as _;
        if status.code() == tonic::Code::AlreadyExists && !status.details().is_empty() {
            let details = RpcStatus::decode(status.details()).map(|s| s.details);
            for any in details.iter().flatten() {
                let value = &*any.value;
                if any.type_url == detail_type_url("IdempotencyCollisionError")
                    && let Ok(d) = crate::proto::v1::IdempotencyCollisionError::decode(value)
                {
                    return Self::IdempotencyCollision {
                        existing_run_id: d.existing_run_external_id,
                    };
                }
                if any.type_url == detail_type_url("BulkTriggerIdempotencyCollisionError")
                    && let Ok(d) =
                        crate::proto::v1::BulkTriggerIdempotencyCollisionError::decode(value)
                {
                    return Self::BulkIdempotencyCollision {
                        created_run_ids: d.successful_workflow_run_external_ids,
                        existing_run_ids: d
                            .collisions
                            .into_iter()
                            .map(|c| c.existing_run_external_id)
                            .collect(),
                    };
                }
            }
        }
        Self::Status { rpc, status }
    }

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
