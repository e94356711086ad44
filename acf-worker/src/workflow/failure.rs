//! `on_failure`: after a step failed for good, release the lock by token, put the turn's messages back to pending
//! (the session's next run takes them) and record why: in the log line, in the handler's output and, durably, as a
//! [`FailureRecord`] in the audit store. A failed write of that record is logged and never masks the release.

use acf_sdk::{Context, StepError};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{Accumulated, Acquired, AgentOutcome, FailureReport, LogicalTurnWorkflow, TurnInput};
use crate::models::time::now_utc;
use crate::mutex::Lease;
use crate::stores::{FailureRecord, MessageStatus};

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

    let (recovered, messages_recovered) = match (turn_id, session_key.as_deref()) {
        (Some(turn_id), Some(session_key)) => recover(wf, turn_id, session_key).await?,
        _ => (Vec::new(), 0),
    };
    let lock_released = match &lease {
        Some(lease) => wf.unlock(lease).await,
        None => false,
    };
    // Without a turn id the run never held the lock nor absorbed anything: the log line is the record.
    if let (Some(turn_id), Some(session_key)) = (turn_id, session_key.as_deref()) {
        let record = FailureRecord {
            turn_id,
            session_key: session_key.to_owned(),
            message_ids: recovered,
            reason: error.clone(),
            failed_step: failed_step(ctx),
            failed_at: now_utc(),
        };
        if let Err(e) = wf.stores.audit.record_failure(&record).await {
            tracing::error!(turn_id = %turn_id, session_key, error = %e, "failure_record_failed");
        }
    }
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
/// messages' final status (`release_absorbed` leaves closed messages alone). Returns the turn's absorbed message
/// ids and how many of them were put back.
async fn recover(
    wf: &LogicalTurnWorkflow,
    turn_id: Uuid,
    session_key: &str,
) -> Result<(Vec<Uuid>, usize), StepError> {
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
        return Ok((ours, 0));
    }
    let released = wf.stores.messages.release_absorbed(turn_id, &ours).await?;
    Ok((ours, released))
}

/// The step whose failure ended the run (the engine reports one per failed step; several are joined by `, `).
fn failed_step(ctx: &Context) -> Option<String> {
    let errors = ctx.step_run_errors();
    (!errors.is_empty()).then(|| errors.keys().cloned().collect::<Vec<_>>().join(", "))
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
