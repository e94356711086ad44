//! `on_failure`: after a step failed for good, release the lock by token, put the turn's messages back to pending
//! (the session's next run takes them) and record why.

use acf_sdk::{Context, StepError};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{Accumulated, Acquired, AgentOutcome, FailureReport, LogicalTurnWorkflow, TurnInput};
use crate::mutex::Lease;
use crate::stores::MessageStatus;

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &TurnInput,
) -> Result<FailureReport, StepError> {
    let error = failure_text(ctx);
    let session_key = input
        .validate(wf.settings.max_message_chars)
        .ok()
        .map(|valid| valid.session_key);
    let acquired: Option<Acquired> = parent(ctx, "acquire_mutex");
    let turn_id = acquired.as_ref().map(|a| a.turn_id);
    // The latest lease a step reported: a step that had to re-acquire passed the new one on.
    let lease: Option<Lease> = parent::<AgentOutcome>(ctx, "run_agent")
        .map(|o| o.lease)
        .or_else(|| parent::<Accumulated>(ctx, "accumulate").map(|a| a.lease))
        .or_else(|| acquired.map(|a| a.lease));

    let messages_recovered = match (turn_id, session_key.as_deref()) {
        (Some(turn_id), Some(session_key)) => recover(wf, turn_id, session_key).await?,
        _ => 0,
    };
    let lock_released = match &lease {
        Some(lease) => wf.unlock(lease).await,
        None => false,
    };
    tracing::error!(
        session_key = session_key.as_deref(),
        turn_id = turn_id.map(|id| id.to_string()),
        error = %error,
        lock_released,
        messages_recovered,
        "logical_turn_workflow_failed"
    );
    Ok(FailureReport {
        turn_id,
        session_key,
        error,
        lock_released,
        messages_recovered,
    })
}

/// Puts the messages `turn_id` absorbed but never committed back to pending. Committed turns keep their
/// messages' final status (`release_absorbed` leaves closed messages alone).
async fn recover(
    wf: &LogicalTurnWorkflow,
    turn_id: Uuid,
    session_key: &str,
) -> Result<usize, StepError> {
    let ours: Vec<Uuid> = wf
        .stores
        .messages
        .open_messages(session_key)
        .await?
        .into_iter()
        .filter(|m| m.status == MessageStatus::Absorbed { turn_id })
        .map(|m| m.id)
        .collect();
    if ours.is_empty() {
        return Ok(0);
    }
    Ok(wf.stores.messages.release_absorbed(turn_id, &ours).await?)
}

fn parent<T: DeserializeOwned>(ctx: &Context, step: &str) -> Option<T> {
    ctx.parent_json(step)
        .and_then(|value| T::deserialize(value).ok())
}

fn failure_text(ctx: &Context) -> String {
    let errors = ctx.step_run_errors();
    if errors.is_empty() {
        return "Unknown error".to_owned();
    }
    errors
        .iter()
        .map(|(step, error)| format!("{step}: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}
