//! Submitting a message as an API layer or channel gateway would: store it, wake the session's accumulating run
//! through the inbox, and trigger the message's own `logical-turn` run with the seed's payload. Gateways built for
//! the Python worker push follow-up messages as Hatchet `new_message` events instead; [`NewMessageIntake`] takes
//! those and does exactly the same.

use acf_sdk::{Client, Context, StepError, TriggerOptions, WorkflowRunRef, step, workflow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::models::{InputError, WorkflowInput, now_utc, parse_timestamp};
use crate::stores::{StoreError, StoredMessage, Stores};
use crate::workflow::{TurnInput, WORKFLOW_NAME};

/// Why a message could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The message does not follow the payload contract.
    #[error(transparent)]
    Invalid(#[from] InputError),
    /// The message could not be stored.
    #[error("cannot store the message")]
    Store(#[from] StoreError),
    /// The run could not be triggered (the message is stored and will be taken by the session's next run).
    #[error("cannot trigger the logical-turn run")]
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
    submit_traced(stores, client, input, max_message_chars, None)
        .instrument(span)
        .await
}

async fn submit_traced(
    stores: &Stores,
    client: &Client,
    input: &WorkflowInput,
    max_message_chars: usize,
    received_at: Option<DateTime<Utc>>,
) -> Result<Submitted, IntakeError> {
    let payload = TurnInput::new(input);
    let valid = payload.validate(max_message_chars)?;
    let message = StoredMessage::pending(
        valid.message_id,
        valid.session_key.clone(),
        valid.channel.clone(),
        valid.message_content.clone(),
        received_at.unwrap_or_else(now_utc),
    );
    let newly_stored = stores.accept_message(&message).await?;
    // The run's steps join this trace through the `traceparent` in its metadata (the official SDKs' key).
    let options = crate::telemetry::trace_headers().into_iter().fold(
        TriggerOptions::default()
            .metadata("session_key", valid.session_key.clone())
            .metadata("message_id", valid.message_id.to_string()),
        |options, (key, value)| options.metadata(&key, value),
    );
    let run = client.trigger(WORKFLOW_NAME, &payload, options).await;
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            // The message is stored: make its session due at once so a sweep triggers the run that was lost.
            let due = stores
                .pending
                .mark_due(
                    &valid.session_key,
                    &crate::liveness::route_json(&valid),
                    crate::liveness::now_ms(),
                    true,
                )
                .await;
            tracing::warn!(message_id = %valid.message_id, error = %acf_sdk::error::Report(&error), handed_on = due.is_ok(), "message_trigger_failed");
            return Err(IntakeError::Trigger(error));
        }
    };
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

/// The Hatchet event key gateways built for the Python worker push follow-up messages under.
pub const NEW_MESSAGE_EVENT: &str = "new_message";

/// The name of the workflow [`NewMessageIntake`] registers.
pub const NEW_MESSAGE_WORKFLOW: &str = "new-message-intake";

/// What the event intake did with one `new_message` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventIntake {
    /// The message id.
    pub message_id: Uuid,
    /// The session it was routed to.
    pub session_key: String,
    /// False when the id was already stored (a re-delivery).
    pub newly_stored: bool,
    /// The `logical-turn` run triggered for it.
    pub run_id: String,
}

/// Accepts `new_message` events as [`submit`] accepts a gateway's message: stores the message, signals the
/// session's inbox (an accumulating run absorbs it) and triggers its `logical-turn` run.
///
/// The event's payload is `{"message_id", "content", "timestamp"}` as the Python worker's gateway documented
/// (`message_content` is accepted for `content`; `timestamp`, ISO-8601 with an offset, defaults to the arrival
/// time), plus the session's routing: `tenant_id`, `agent_id`, `interlocutor_id`, `channel` and optionally
/// `session_key`, each read from the payload or else from the event's `additional_metadata`. An event that
/// cannot be routed or parsed fails its run without retries, naming the field, and changes nothing.
#[derive(Clone)]
pub struct NewMessageIntake {
    stores: Stores,
    client: Client,
    max_message_chars: usize,
}

impl std::fmt::Debug for NewMessageIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMessageIntake")
            .field("max_message_chars", &self.max_message_chars)
            .finish_non_exhaustive()
    }
}

impl NewMessageIntake {
    /// An intake storing into `stores` and triggering runs through `client`.
    pub fn new(stores: Stores, client: Client, max_message_chars: usize) -> Self {
        Self {
            stores,
            client,
            max_message_chars,
        }
    }
}

#[workflow(name = "new-message-intake", on_events = ["new_message"])]
impl NewMessageIntake {
    /// Routes the event's message to its session and submits it.
    #[step(retries = 2, backoff_factor = 2.0, backoff_max = "30s")]
    async fn intake(&self, ctx: &Context, input: &Value) -> Result<EventIntake, StepError> {
        let span = tracing::info_span!(
            "ruche.intake",
            otel.name = "ruche.intake",
            source = NEW_MESSAGE_EVENT
        );
        // A gateway instrumented like the official SDKs put its trace context in the event's metadata.
        crate::telemetry::continue_trace(&span, ctx.additional_metadata());
        async {
            let (message, received_at) = event_message(input, ctx.additional_metadata())
                .map_err(|error| {
                    tracing::warn!(field = %error.field, reason = %error.reason, "new_message_refused");
                    StepError::non_retryable(error)
                })?;
            let submitted = submit_traced(
                &self.stores,
                &self.client,
                &message,
                self.max_message_chars,
                received_at,
            )
            .await
            .map_err(|error| match error {
                IntakeError::Invalid(invalid) => StepError::non_retryable(invalid),
                other => StepError::new(other),
            })?;
            Ok(EventIntake {
                message_id: submitted.message_id,
                session_key: submitted.session_key,
                newly_stored: submitted.newly_stored,
                run_id: submitted.run.run_id,
            })
        }
        .instrument(span)
        .await
    }
}

/// Reads a `new_message` event into the workflow input [`submit`] takes, and the message's arrival time.
fn event_message(
    payload: &Value,
    metadata: &Map<String, Value>,
) -> Result<(WorkflowInput, Option<DateTime<Utc>>), InputError> {
    let payload = payload
        .as_object()
        .ok_or_else(|| InputError::new("input", "the new_message payload must be a JSON object"))?;
    let text = |field: &'static str| -> Result<Option<String>, InputError> {
        match payload
            .get(field)
            .filter(|v| !v.is_null())
            .or_else(|| metadata.get(field))
        {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(InputError::new(field, "must be a string")),
        }
    };
    let routed = |field: &'static str| {
        text(field)?.filter(|v| !v.is_empty()).ok_or_else(|| {
            InputError::new(
                field,
                "is required to route the message to its session (in the payload or the event's additional_metadata)",
            )
        })
    };
    let content = match text("content")? {
        Some(content) => content,
        None => text("message_content")?.unwrap_or_default(),
    };
    let received_at = text("timestamp")?
        .map(|at| parse_timestamp(&at).map_err(|err| InputError::new("timestamp", err.to_string())))
        .transpose()?;
    let message = WorkflowInput {
        tenant_id: routed("tenant_id")?,
        agent_id: routed("agent_id")?,
        interlocutor_id: routed("interlocutor_id")?,
        channel: routed("channel")?,
        message_id: routed("message_id")?,
        message_content: content,
        session_key: text("session_key")?,
    };
    Ok((message, received_at))
}
