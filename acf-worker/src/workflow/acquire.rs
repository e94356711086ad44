//! `acquire_mutex`: check the content length, record the message, lock the session, mint the turn id.

use std::time::Duration;

use acf_sdk::{Context, StepError};
use uuid::Uuid;

use super::{Acquired, LogicalTurnWorkflow};
use crate::models::{ValidatedInput, format_timestamp, now_utc};
use crate::mutex::LockOptions;

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
) -> Result<Acquired, StepError> {
    within_length(wf, input)?;
    let started = std::time::Instant::now();
    let (closed, attempt) = tokio::join!(
        record_message(wf, input),
        // One attempt at the lock beside the message's read (one round trip for both): the session is usually
        // free, as its previous run released the lock before it ended.
        wf.mutex.acquire(
            &input.session_key,
            LockOptions::new(wf.settings.lock.ttl, Duration::ZERO)
        )
    );
    if !matches!(closed, Ok(false))
        && let Ok(lease) = &attempt
    {
        // Closed already (no lock needed) or unreadable (the retry starts over): the lock goes back at once.
        wf.unlock(lease).await;
    }
    if closed? {
        // Already answered (a duplicate trigger, or a run whose burst an earlier turn took): no lock needed, which
        // keeps such runs from queueing on the session lock behind the one doing the work.
        let turn_id = Uuid::new_v4();
        tracing::info!(%turn_id, message_id = %input.message_id, session_key = %input.session_key, "message_already_absorbed");
        return Ok(Acquired {
            turn_id,
            session_key: input.session_key.clone(),
            lease: None,
            locked_at: String::new(),
        });
    }
    let lease = match attempt {
        Ok(lease) => {
            wf.lock_taken(&lease, started.elapsed());
            lease
        }
        // Held by another run (or the attempt failed): wait for it as configured.
        Err(_) => wf.lock(&input.session_key).await?,
    };
    // A fresh id per attempt of this step is harmless (nothing was written under the previous one); every later
    // step, and every retry of it, reads this one from the output.
    let turn_id = Uuid::new_v4();
    tracing::debug!(%turn_id, session_key = %input.session_key, run_id = ctx.workflow_run_id(), "turn_id_assigned");
    Ok(Acquired {
        turn_id,
        session_key: input.session_key.clone(),
        lease: Some(lease),
        locked_at: format_timestamp(&now_utc()),
    })
}

/// Refuses a message over `max_message_chars` (the rest of the payload was checked when the SDK decoded it); it
/// can never succeed, so the error is non-retryable.
fn within_length(wf: &LogicalTurnWorkflow, input: &ValidatedInput) -> Result<(), StepError> {
    input
        .check_content_length(wf.settings.max_message_chars)
        .map_err(|error| {
            tracing::warn!(field = %error.field, reason = %error.reason, "invalid_workflow_input");
            StepError::non_retryable(error)
        })
}

/// Stores the run's message when it was triggered without going through intake (e.g. straight from another
/// Hatchet client with the seed's payload, or re-triggered after the store lost it), and marks its session due.
/// Returns true when the message is already closed (answered or failed by an earlier turn).
async fn record_message(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
) -> Result<bool, StepError> {
    // The session is marked due a grace period ahead (alongside the read, no extra round trip): should this run
    // vanish without handing its message on, a sweep still re-triggers one.
    let (own, due) = tokio::join!(
        wf.own_message(input),
        wf.mark_due(input, wf.settings.pending_grace, true)
    );
    due?;
    Ok(!own?.status.is_open())
}
