//! Submitting a message as an API layer or channel gateway would: store it, wake the session's accumulating run
//! through the inbox, and trigger the message's own `logical-turn` run with the seed's payload.

use acf_sdk::{Client, TriggerOptions, WorkflowRunRef};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::models::{WorkflowInput, now_utc};
use crate::stores::{StoreError, StoredMessage, Stores};
use crate::workflow::{InvalidInput, TurnInput, WORKFLOW_NAME};

/// Why a message could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The message does not follow the payload contract.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The message could not be stored.
    #[error("cannot store the message: {0}")]
    Store(#[from] StoreError),
    /// The run could not be triggered (the message is stored and will be taken by the session's next run).
    #[error("cannot trigger the logical-turn run: {0}")]
    Trigger(#[source] acf_sdk::Error),
}

/// A submitted message.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The message id.
    pub message_id: Uuid,
    /// The session it belongs to.
    pub session_key: String,
    /// False when the id was already stored (a re-delivery): nothing was stored or signalled again.
    pub newly_stored: bool,
    /// The triggered run.
    pub run: WorkflowRunRef,
}

/// Stores `input`'s message, signals the session's inbox and triggers its run.
///
/// A re-delivered message (same id) is not stored or signalled twice, but its run is still triggered: the run is
/// harmless (it ends as `absorbed` once the message was answered) and covers a first delivery whose trigger was
/// lost after the message was stored.
pub async fn submit(
    stores: &Stores,
    client: &Client,
    input: &WorkflowInput,
    max_message_chars: usize,
) -> Result<Submitted, IntakeError> {
    let span = tracing::info_span!("ruche.intake", otel.name = "ruche.intake");
    submit_traced(stores, client, input, max_message_chars)
        .instrument(span)
        .await
}

async fn submit_traced(
    stores: &Stores,
    client: &Client,
    input: &WorkflowInput,
    max_message_chars: usize,
) -> Result<Submitted, IntakeError> {
    let payload = TurnInput::new(input);
    let valid = payload.validate(max_message_chars)?;
    let message = StoredMessage::pending(
        valid.message_id,
        valid.session_key.clone(),
        valid.channel.clone(),
        valid.message_content.clone(),
        now_utc(),
    );
    let newly_stored = stores.accept_message(&message).await?;
    // The run's steps join this trace through the `traceparent` in its metadata (the official SDKs' key).
    let options = crate::telemetry::trace_headers().into_iter().fold(
        TriggerOptions::default()
            .metadata("session_key", valid.session_key.clone())
            .metadata("message_id", valid.message_id.to_string()),
        |options, (key, value)| options.metadata(&key, value),
    );
    let run = client
        .trigger(WORKFLOW_NAME, &payload, options)
        .await
        .map_err(IntakeError::Trigger)?;
    tracing::info!(
        message_id = %valid.message_id,
        session_key = %valid.session_key,
        run_id = %run.run_id,
        newly_stored,
        "message_submitted"
    );
    Ok(Submitted {
        message_id: valid.message_id,
        session_key: valid.session_key,
        newly_stored,
        run,
    })
}
