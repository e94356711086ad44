//! `on_failure`: after a step failed for good, the run still owes its message an ending.
//!
//! * The run never got a turn (`acquire_mutex` failed: the lock stayed contended, or the store was unreachable):
//!   nothing was taken, the message is handed on (its session is made due at once, so a sweep triggers a new run).
//! * The run had a turn: the turn *finally fails*. Under the session lock, the messages the turn absorbed and the
//!   run's own message (recorded again if the store lost it) are committed as a failed turn, at most once per turn
//!   id: their status becomes `failed`, the response stream gets a failure entry (`status = failed`, the message
//!   ids, the reason) for the gateway to tell the user, and a [`FailureRecord`] keeps the details. When the lock
//!   cannot be had, the messages go back to pending and are handed on instead.
//!
//! The lease the run last reported is released by token first. A step that fails after re-acquiring a lost lock
//! released its own lease already (see the steps), so no lease is leaked.

use acf_sdk::{Context, StepError};
use uuid::Uuid;

use super::{Accumulated, Acquired, AgentOutcome, FailureReport, LogicalTurnWorkflow};
use crate::models::time::now_utc;
use crate::models::{TurnOutcome, ValidatedInput};
use crate::mutex::Lease;
use crate::stores::{FailureRecord, MessageStatus, TurnCommit, TurnRecord};

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: Option<&ValidatedInput>,
) -> Result<FailureReport, StepError> {
    let error = failure_text(ctx);
    // A payload that did not decode, or whose text is over the cap, was refused by `acquire_mutex` and never
    // stored: there is nothing to settle.
    let valid = input.filter(|i| {
        i.check_content_length(wf.settings.max_message_chars)
            .is_ok()
    });
    let session_key = valid.map(|v| v.session_key.clone());
    // Outputs of the steps that completed before the failure (a parent that did not run is `None`).
    let acquired: Option<Acquired> =
        ctx.completed_parent_output(LogicalTurnWorkflow::ACQUIRE_MUTEX)?;
    let accumulated: Option<Accumulated> =
        ctx.completed_parent_output(LogicalTurnWorkflow::ACCUMULATE)?;
    let agent: Option<AgentOutcome> =
        ctx.completed_parent_output(LogicalTurnWorkflow::RUN_AGENT)?;
    let turn_id = acquired.as_ref().map(|a| a.turn_id);
    // The latest lease a step reported: a step that had to re-acquire passed the new one on.
    let lease: Option<Lease> = agent
        .map(|o| o.lease)
        .or_else(|| accumulated.map(|a| a.lease))
        .or_else(|| acquired.map(|a| a.lease))
        .flatten();
    let lock_released = match &lease {
        Some(lease) => wf.unlock(lease).await,
        None => false,
    };
    let mut report = FailureReport {
        turn_id,
        session_key,
        error,
        lock_released,
        messages_recovered: 0,
    };
    match (valid, turn_id) {
        // An invalid payload was never stored: the error (and this log line) is all there is to it.
        (None, _) => {}
        (Some(input), None) => {
            wf.settle_own_message(input, "run_failed_before_turn")
                .await?
        }
        (Some(input), Some(turn_id)) => {
            report.messages_recovered = fail_turn(wf, ctx, input, turn_id, &report.error).await?;
        }
    }
    tracing::error!(
        session_key = report.session_key.as_deref(),
        turn_id = turn_id.map(|id| id.to_string()),
        error = %report.error,
        lock_released,
        messages_failed = report.messages_recovered,
        "logical_turn_workflow_failed"
    );
    Ok(report)
}

/// Commits the turn as failed (see the module docs). Returns how many messages it closed as failed.
async fn fail_turn(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    turn_id: Uuid,
    reason: &str,
) -> Result<usize, StepError> {
    let own = wf.own_message(input).await?;
    if wf.is_committed(input, turn_id).await? {
        // The turn committed before a later part of the run failed: its messages have their ending.
        wf.settle_own_message(input, "failed_after_commit").await?;
        return Ok(0);
    }
    let mut ids: Vec<Uuid> = wf
        .stores
        .messages
        .open_messages(&input.session_key)
        .await?
        .into_iter()
        .filter(|m| m.status == MessageStatus::Absorbed { turn_id })
        .map(|m| m.id)
        .collect();
    if own.status.is_open() && !ids.contains(&own.id) {
        ids.push(own.id);
    }
    let lease = match wf.lock(&input.session_key).await {
        Ok(lease) => lease,
        Err(error) => {
            // Without the lock the turn cannot be closed safely: give its messages back and hand them on.
            let released = wf
                .stores
                .messages
                .release_absorbed(&input.session_key, turn_id, &ids)
                .await?;
            tracing::warn!(%turn_id, session_key = %input.session_key, released, %error, "failed_turn_handed_on");
            wf.mark_due(input, std::time::Duration::ZERO, true).await?;
            record_failure(wf, ctx, input, turn_id, Vec::new(), reason).await;
            return Ok(0);
        }
    };
    let result = commit_failed(wf, input, turn_id, &ids, reason, &lease, own.received_at).await;
    wf.unlock(&lease).await;
    let failed = result?;
    record_failure(wf, ctx, input, turn_id, failed.clone(), reason).await;
    wf.settle_own_message(input, "turn_failed").await?;
    Ok(failed.len())
}

/// Claims `ids` under `lease` and commits them as a failed turn; returns the messages closed.
async fn commit_failed(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    turn_id: Uuid,
    ids: &[Uuid],
    reason: &str,
    lease: &Lease,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Uuid>, StepError> {
    let claimed = wf.stores.messages.absorb(lease, turn_id, ids).await?;
    if claimed.is_empty() {
        return Ok(claimed);
    }
    // What the turn did before failing stays on its record; an unreadable log must not block delivering the failure.
    let side_effects = wf
        .stores
        .side_effects
        .effects(&input.session_key, turn_id)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%turn_id, %error, "side_effects_unreadable");
            Vec::new()
        });
    let commit = TurnCommit {
        record: TurnRecord {
            turn_id,
            session_key: input.session_key.clone(),
            channel: input.channel.clone(),
            turn_number: 0,
            outcome: TurnOutcome::Failed,
            message_ids: claimed.clone(),
            response: None,
            segments: Vec::new(),
            error: Some(reason.to_owned()),
            fence: lease.fence,
            started_at,
            committed_at: now_utc(),
            side_effects,
        },
        next_hint: None,
    };
    let receipt = wf.stores.commits.commit(lease, &commit).await?;
    tracing::warn!(
        %turn_id,
        session_key = %input.session_key,
        message_count = claimed.len(),
        response_entry_id = receipt.response_entry_id.as_deref(),
        first_commit = receipt.first_commit,
        "turn_failed_delivered"
    );
    Ok(claimed)
}

/// Keeps why the run failed. A failed write is logged and never masks the rest of the handler.
async fn record_failure(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    turn_id: Uuid,
    message_ids: Vec<Uuid>,
    reason: &str,
) {
    let record = FailureRecord {
        turn_id,
        session_key: input.session_key.clone(),
        message_ids,
        reason: reason.to_owned(),
        failed_step: failed_step(ctx),
        failed_at: now_utc(),
    };
    if let Err(e) = wf.stores.audit.record_failure(&record).await {
        tracing::error!(%turn_id, session_key = %input.session_key, error = %e, "failure_record_failed");
    }
}

/// The step whose failure ended the run (the engine reports one per failed step; several are joined by `, `).
fn failed_step(ctx: &Context) -> Option<String> {
    let errors = ctx.step_run_errors();
    (!errors.is_empty()).then(|| errors.keys().cloned().collect::<Vec<_>>().join(", "))
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
