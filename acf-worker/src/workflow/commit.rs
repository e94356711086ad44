//! `commit_and_respond`: commit the turn at most once per turn id, under the fence, deliver the response to the
//! response stream, release the lock by token.

use acf_sdk::{Context, StepError};
use uuid::Uuid;

use super::{Accumulated, AgentOutcome, AgentStatus, Gathered, LogicalTurnWorkflow};
use crate::brain::TurnMessage;
use crate::models::{LogicalTurn, TurnOutcome, ValidatedInput, WorkflowOutput, now_utc};
use crate::mutex::Lease;
use crate::stores::{StoreError, StoredMessage, TurnCommit, TurnRecord};

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    _ctx: &Context,
    input: &ValidatedInput,
    accumulated: Accumulated,
    outcome: AgentOutcome,
) -> Result<WorkflowOutput, StepError> {
    let turn_id = accumulated.turn_id;
    let (already, stored, revalidated) = match accumulated.status {
        Gathered::Absorbed => {
            wf.unlock_opt(outcome.lease.as_ref()).await;
            wf.settle_own_message(input, "absorbed").await?;
            return Ok(output(turn_id, TurnOutcome::Absorbed, None, None, 0));
        }
        Gathered::Committed => (true, Vec::new(), None),
        Gathered::Ready => {
            // The turn's messages and the lock check go out beside the committed check (one round trip, not
            // three): the claim below needs both unless the turn turns out to be committed already.
            let read = || async {
                tokio::join!(
                    wf.is_committed(input, turn_id),
                    read_messages(wf, input, &accumulated.messages)
                )
            };
            let (revalidated, (committed, stored)) = match outcome.lease.as_ref() {
                Some(lease) => {
                    let (revalidated, reads) = wf.revalidate_beside(lease, read).await;
                    (Some(revalidated), reads)
                }
                None => (None, read().await),
            };
            (committed?, stored?, revalidated)
        }
    };
    if already {
        // A replay of a run whose commit went through: answer with what was committed, deliver nothing again.
        let result = committed_output(wf, &input.session_key, turn_id).await;
        // The lease the check above may have taken again, else the one the run brought.
        let held = match &revalidated {
            Some(Ok(lease)) => Some(lease),
            _ => outcome.lease.as_ref(),
        };
        wf.unlock_opt(held).await;
        wf.settle_own_message(input, "replayed").await?;
        return result;
    }
    let Some(turn) = outcome.turn.as_ref() else {
        return Err(StepError::non_retryable(format!(
            "turn {turn_id} reached commit without its turn data"
        )));
    };
    let Some(revalidated) = revalidated else {
        return Err(StepError::non_retryable(format!(
            "turn {turn_id} reached commit without a lease"
        )));
    };
    let lease = revalidated?;
    let result = commit(
        wf,
        input,
        turn,
        &accumulated.messages,
        stored,
        &outcome,
        &lease,
    )
    .await;
    // The release and the end-of-run check go out together: the check reads the run's own message, which the
    // commit (done) settled and the lock no longer guards.
    let settle = async {
        match &result {
            Ok(output) => {
                // A turn capped by `max_messages_per_turn` may have left the run's own message for the next turn.
                let (strays, own) = tokio::join!(
                    release_strays(wf, input, turn),
                    wf.settle_own_message(input, output.status.as_str())
                );
                strays.and(own)
            }
            Err(_) => Ok(()),
        }
    };
    let (_released, settled) = tokio::join!(wf.unlock(&lease), settle);
    let output = result?;
    settled?;
    Ok(output)
}

async fn commit(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    turn: &LogicalTurn,
    messages: &[TurnMessage],
    stored: Vec<Option<StoredMessage>>,
    outcome: &AgentOutcome,
    lease: &Lease,
) -> Result<WorkflowOutput, StepError> {
    let turn_id = turn.id();
    restore_lost_messages(wf, input, turn, messages, stored).await?;
    let commit = TurnCommit {
        record: record(input, turn, outcome, lease),
        next_hint: outcome.next_hint.clone(),
    };
    let receipt = match wf.stores.commits.commit(lease, &commit).await {
        Ok(receipt) => receipt,
        Err(StoreError::TakenOver { .. }) => {
            // The lock was lost at some point and the session's next holder answered some of these messages in
            // its own turn: this answer must not be delivered. The messages still ours go back to pending for the
            // next run (the run's own one is handed on by the caller).
            let released = wf
                .stores
                .messages
                .release_absorbed(&input.session_key, turn_id, turn.messages())
                .await?;
            tracing::warn!(%turn_id, session_key = %input.session_key, released, "turn_taken_over");
            if released > 0 {
                wf.mark_due(input, std::time::Duration::ZERO, true).await?;
            }
            return Ok(output(
                turn_id,
                TurnOutcome::Superseded,
                None,
                None,
                turn.message_count(),
            ));
        }
        Err(error) => return Err(error.into()),
    };
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
    Ok(output(
        turn_id,
        commit.record.outcome,
        commit.record.response,
        commit.record.error,
        turn.message_count(),
    ))
}

/// Puts back to pending the session's messages still absorbed by this turn although the commit did not take them,
/// and marks the session due so a run answers them. Only a second attempt of `accumulate` for the same run makes
/// such strays: when the engine re-queues a step whose worker it thinks lost while that attempt still runs, both
/// attempts hold the run's lease and absorb, but the turn commits the list of the one the engine kept. A message
/// left absorbed by a committed turn would otherwise wait for a run of its session that may never come.
async fn release_strays(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    turn: &LogicalTurn,
) -> Result<(), StepError> {
    let turn_id = turn.id();
    let strays: Vec<Uuid> = wf
        .stores
        .messages
        .open_messages(&input.session_key)
        .await?
        .into_iter()
        .filter(|m| m.status.turn_id() == Some(turn_id) && !turn.messages().contains(&m.id))
        .map(|m| m.id)
        .collect();
    if strays.is_empty() {
        return Ok(());
    }
    let released = wf
        .stores
        .messages
        .release_absorbed(&input.session_key, turn_id, &strays)
        .await?;
    tracing::warn!(%turn_id, session_key = %input.session_key, released, "stray_messages_released");
    if released > 0 {
        wf.mark_due(input, std::time::Duration::ZERO, true).await?;
    }
    Ok(())
}

/// The stored record of each of the turn's messages (`None` where the store lost it): one read per message, all
/// sent at once (one round trip on the shared connection).
async fn read_messages(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    messages: &[TurnMessage],
) -> Result<Vec<Option<StoredMessage>>, StepError> {
    Ok(futures::future::try_join_all(
        messages
            .iter()
            .map(|message| wf.stores.messages.get(&input.session_key, message.id)),
    )
    .await?)
}

/// Records again, from the turn's own copy, each message of the turn the store lost (`stored`, as read by
/// [`read_messages`]): a store that lost its data must not make the run drop its answer, nor let the message's own
/// run answer it a second time. The commit then closes them all, or refuses when another turn closed one.
async fn restore_lost_messages(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    turn: &LogicalTurn,
    messages: &[TurnMessage],
    stored: Vec<Option<StoredMessage>>,
) -> Result<(), StepError> {
    for (message, stored) in messages.iter().zip(stored) {
        if stored.is_none() {
            let restored = StoredMessage::pending(
                message.id,
                input.session_key.clone(),
                input.channel.clone(),
                message.content.clone(),
                message.received_at,
            );
            if wf.stores.messages.insert(&restored).await? {
                crate::liveness::count(&crate::liveness::metrics().messages_re_recorded);
                tracing::warn!(turn_id = %turn.id(), message_id = %message.id, "message_recorded_by_commit");
            }
        }
    }
    Ok(())
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
        side_effects: turn.side_effects().to_vec(),
    }
}

async fn committed_output(
    wf: &LogicalTurnWorkflow,
    session_key: &str,
    turn_id: Uuid,
) -> Result<WorkflowOutput, StepError> {
    let record = wf
        .stores
        .audit
        .get_turn(session_key, turn_id)
        .await?
        .ok_or_else(|| {
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

impl LogicalTurnWorkflow {
    /// Whether `turn_id` (a turn of the run's session) was committed.
    pub(crate) async fn is_committed(
        &self,
        input: &ValidatedInput,
        turn_id: Uuid,
    ) -> Result<bool, StepError> {
        Ok(self
            .stores
            .commits
            .receipt(&input.session_key, turn_id)
            .await?
            .is_some())
    }
}
