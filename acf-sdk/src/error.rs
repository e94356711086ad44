//! The error type of the client, the worker and the context's engine calls, and [`Report`], which prints an
//! error with its causes.
//!
//! Every error in the workspace prints its own message only and exposes its cause through
//! [`source()`](std::error::Error::source), so a reporter walking the chain prints each cause once.

use std::collections::BTreeMap;
use std::fmt;

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
    #[error("cannot connect to the engine")]
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
    #[error("invalid JSON payload")]
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
    /// Maps a failed `rpc`'s status to an error (see [`from_status`](Self::from_status)):
    /// `call.await.map_err(Error::rpc("Service/Method"))?`.
    pub(crate) fn rpc(rpc: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::from_status(rpc, status)
    }

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

/// Displays an error followed by its [`source()`](std::error::Error::source) chain, `message: cause: root
/// cause`: what a log line or a command-line message prints, since each error's own `Display` leaves its
/// cause to `source()`.
///
/// ```
/// use acf_sdk::error::Report;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot load the settings")]
/// struct Load(#[source] std::io::Error);
///
/// let error = Load(std::io::Error::other("disk full"));
/// assert_eq!(Report(&error).to_string(), "cannot load the settings: disk full");
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        for cause in shown_causes(self.0) {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

/// The texts of `error`'s causes, outermost first, that a report shows. Some crates (redis, for one)
/// both print their cause and return it as `source()`: a cause whose text its error already showed is
/// left out.
pub(crate) fn shown_causes(error: &dyn std::error::Error) -> impl Iterator<Item = String> + '_ {
    let mut previous = error.to_string();
    let mut source = error.source();
    std::iter::from_fn(move || {
        while let Some(cause) = source {
            source = cause.source();
            let text = cause.to_string();
            let shown = !previous.contains(&text);
            previous.clone_from(&text);
            if shown {
                return Some(text);
            }
        }
        None
    })
}

impl Report<'_> {
    /// The first message in the chain that repeats its source's message, with that source's: a cause
    /// printed twice (once in `Display`, once as `source()`), which this report would show twice. `None`
    /// when every cause is printed once.
    pub fn repeated_cause(&self) -> Option<(String, String)> {
        let mut error = self.0;
        while let Some(source) = error.source() {
            let (message, cause) = (error.to_string(), source.to_string());
            if !cause.is_empty() && message.contains(&cause) {
                return Some((message, cause));
            }
            error = source;
        }
        None
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Report};
    use crate::step_error::StepError;

    /// Every SDK error wrapping another prints each cause once through [`Report`].
    #[test]
    fn every_cause_is_printed_once() {
        let json = || serde_json::from_str::<u32>("\"x\"").unwrap_err();
        let transport = tonic::transport::Endpoint::from_shared("not a uri\n")
            .map(|_| ())
            .unwrap_err();
        let decode = StepError::decode("collect", "input", json());
        let user = StepError::new(Error::Json(json()));
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(Error::Json(json())),
            Box::new(Error::Transport(transport)),
            Box::new(decode.source_error()),
            Box::new(user.source_error()),
            #[cfg(feature = "engine")]
            Box::new(crate::engine::EngineError::Bind {
                addr: ([127, 0, 0, 1], 1).into(),
                source: std::io::Error::other("address in use"),
            }),
        ];
        for error in &errors {
            let report = Report(error.as_ref());
            assert!(error.source().is_some(), "{report} has no cause to check");
            assert_eq!(report.repeated_cause(), None, "{report}");
        }
        // A foreign error that prints its own cause and returns it from `source()` shows it once.
        let io = std::io::Error::other("disk full");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read: {0}")]
        struct Foreign(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot load")]
        struct Ours(#[source] Foreign);
        assert_eq!(
            Report(&Ours(Foreign(io))).to_string(),
            "cannot load: cannot read: disk full"
        );
        // The chain is still complete, each cause once.
        assert_eq!(
            Report(decode.source_error()).to_string(),
            format!("step `collect`: cannot decode input: {}", json())
        );
        assert!(
            decode
                .to_report()
                .ends_with(&format!("\ncaused by: {}", json()))
        );
    }

    #[test]
    fn a_cause_printed_twice_is_found() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read: {0}")]
        struct Twice(#[source] std::io::Error);
        let error = Twice(std::io::Error::other("disk full"));
        assert_eq!(
            Report(&error).repeated_cause(),
            Some(("cannot read: disk full".to_owned(), "disk full".to_owned()))
        );
    }
}
