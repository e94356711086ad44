//! `commit_and_respond`: commit the turn at most once per turn id, under the fence, deliver the response to the
//! response stream, release the lock by token.

use acf_sdk::{Context, StepError};
use uuid::Uuid;

use super::{AgentOutcome, AgentStatus, Gathered, LogicalTurnWorkflow, TurnInput};
use crate::models::{LogicalTurn, TurnOutcome, ValidatedInput, WorkflowOutput, now_utc};
use crate::mutex::Lease;
use crate::stores::{MessageStatus, TurnCommit, TurnRecord};

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    _ctx: &Context,
    input: &TurnInput,
    outcome: AgentOutcome,
) -> Result<WorkflowOutput, StepError> {
    let input = super::acquire::validated(wf, input)?;
    let turn_id = outcome.turn_id;
    let already = match outcome.gathered {
        Gathered::Absorbed => {
            wf.unlock(&outcome.lease).await;
            return Ok(output(turn_id, TurnOutcome::Absorbed, None, None, 0));
        }
        Gathered::Committed => true,
        Gathered::Ready => wf.stores.commits.receipt(turn_id).await?.is_some(),
    };
    if already {
        // A replay of a run whose commit went through: answer with what was committed, deliver nothing again.
        let result = committed_output(wf, turn_id).await;
        wf.unlock(&outcome.lease).await;
        return result;
    }
    let Some(turn) = outcome.turn.as_ref() else {
        return Err(StepError::non_retryable(format!(
            "turn {turn_id} reached commit without its turn data"
        )));
    };
    let lease = wf.revalidate(&outcome.lease).await?;
    if !still_owns_messages(wf, turn).await? {
        // The lock was lost at some point and the session's next holder took these messages into its own turn.
        tracing::warn!(%turn_id, session_key = %input.session_key, "turn_taken_over");
        wf.unlock(&lease).await;
        return Ok(output(
            turn_id,
            TurnOutcome::Superseded,
            None,
            None,
            turn.message_count(),
        ));
    }
    let commit = TurnCommit {
        record: record(&input, turn, &outcome, &lease),
        next_hint: outcome.next_hint.clone(),
    };
    let receipt = wf.stores.commits.commit(&lease, &commit).await?;
    tracing::info!(
        %turn_id,
        session_key = %input.session_key,
        turn_number = receipt.turn_number,
        outcome = commit.record.outcome.as_str(),
        message_count = turn.message_count(),
        response_entry_id = receipt.response_entry_id.as_deref(),
        first_commit = receipt.first_commit,
        fence = lease.fence,
        "turn_committed"
    );
    wf.unlock(&lease).await;
    Ok(output(
        turn_id,
        commit.record.outcome,
        commit.record.response,
        commit.record.error,
        turn.message_count(),
    ))
}

/// Whether every message of the turn is still absorbed by it (checked under a current lease, so nobody else can
/// change that before the commit).
async fn still_owns_messages(
    wf: &LogicalTurnWorkflow,
    turn: &LogicalTurn,
) -> Result<bool, StepError> {
    for id in turn.messages() {
        let owned = wf
            .stores
            .messages
            .get(*id)
            .await?
            .is_some_and(|m| m.status == MessageStatus::Absorbed { turn_id: turn.id() });
        if !owned {
            return Ok(false);
        }
    }
    Ok(true)
}

fn record(
    input: &ValidatedInput,
    turn: &LogicalTurn,
    outcome: &AgentOutcome,
    lease: &Lease,
) -> TurnRecord {
    let complete = outcome.status == AgentStatus::Complete;
    TurnRecord {
        turn_id: turn.id(),
        session_key: input.session_key.clone(),
        channel: input.channel.clone(),
        turn_number: 0,
        outcome: if complete {
            TurnOutcome::Complete
        } else {
            TurnOutcome::Failed
        },
        message_ids: turn.messages().to_vec(),
        response: outcome.response.clone().filter(|_| complete),
        segments: if complete {
            outcome.segments.clone()
        } else {
            Vec::new()
        },
        error: if complete {
            None
        } else {
            Some(
                outcome
                    .error
                    .clone()
                    .unwrap_or_else(|| "brain failed".to_owned()),
            )
        },
        fence: lease.fence,
        started_at: turn.first_at(),
        committed_at: now_utc(),
    }
}

async fn committed_output(
    wf: &LogicalTurnWorkflow,
    turn_id: Uuid,
) -> Result<WorkflowOutput, StepError> {
    let record = wf.stores.audit.get_turn(turn_id).await?.ok_or_else(|| {
        StepError::msg(format!(
            "turn {turn_id} is committed but its record is missing"
        ))
    })?;
    Ok(output(
        turn_id,
        record.outcome,
        record.response,
        record.error,
        record.message_ids.len(),
    ))
}

fn output(
    turn_id: Uuid,
    status: TurnOutcome,
    response: Option<String>,
    error: Option<String>,
    message_count: usize,
) -> WorkflowOutput {
    WorkflowOutput {
        turn_id,
        status,
        response,
        error,
        message_count,
    }
}
