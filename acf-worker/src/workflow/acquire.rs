//! `acquire_mutex`: validate, record the message, lock the session, mint the turn id.

use acf_sdk::{Context, StepError};
use uuid::Uuid;

use super::{Acquired, LogicalTurnWorkflow, TurnInput};
use crate::models::{ValidatedInput, format_timestamp, now_utc};
use crate::stores::StoredMessage;

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &TurnInput,
) -> Result<Acquired, StepError> {
    let input = validated(wf, input)?;
    record_message(wf, &input).await?;
    let lease = wf.lock(&input.session_key).await?;
    // A fresh id per attempt of this step is harmless (nothing was written under the previous one); every later
    // step, and every retry of it, reads this one from the output.
    let turn_id = Uuid::new_v4();
    tracing::debug!(%turn_id, session_key = %input.session_key, run_id = ctx.workflow_run_id(), "turn_id_assigned");
    Ok(Acquired {
        turn_id,
        session_key: input.session_key,
        lease,
        locked_at: format_timestamp(&now_utc()),
    })
}

/// Validates the trigger payload; a bad payload can never succeed, so the error is non-retryable.
pub(super) fn validated(
    wf: &LogicalTurnWorkflow,
    input: &TurnInput,
) -> Result<ValidatedInput, StepError> {
    input
        .validate(wf.settings.max_message_chars)
        .map_err(|error| {
            tracing::warn!(field = %error.field, reason = %error.reason, "invalid_workflow_input");
            StepError::non_retryable(error)
        })
}

/// Stores the run's message when it was triggered without going through intake (e.g. straight from another
/// Hatchet client with the seed's payload). Intake already stored it otherwise, and storing is idempotent.
async fn record_message(wf: &LogicalTurnWorkflow, input: &ValidatedInput) -> Result<(), StepError> {
    if wf.stores.messages.get(input.message_id).await?.is_some() {
        return Ok(());
    }
    let message = StoredMessage::pending(
        input.message_id,
        input.session_key.clone(),
        input.channel.clone(),
        input.message_content.clone(),
        now_utc(),
    );
    if wf.stores.accept_message(&message).await? {
        tracing::info!(message_id = %input.message_id, session_key = %input.session_key, "message_recorded_by_run");
    }
    Ok(())
}
