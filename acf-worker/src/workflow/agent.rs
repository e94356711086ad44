//! `run_agent`: the brain answers the turn while the lock and the step's timeout are kept alive.

use std::sync::Arc;
use std::time::Instant;

use acf_sdk::{Context, StepError};

use super::accumulate::routing;
use super::lease::millis;
use super::{Accumulated, AgentOutcome, AgentStatus, Gathered, LogicalTurnWorkflow, TurnInput};
use crate::brain::{BrainError, BrainResult, StorePendingMessages, TurnContext};
use crate::events::AcfEvent;
use crate::models::ValidatedInput;
use crate::mutex::Lease;

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &TurnInput,
    accumulated: Accumulated,
) -> Result<AgentOutcome, StepError> {
    let input = super::acquire::validated(wf, input)?;
    let Accumulated {
        status,
        turn_id,
        turn,
        messages,
        lease,
        ..
    } = accumulated;
    let mut outcome = AgentOutcome {
        status: AgentStatus::Skipped,
        gathered: status,
        turn_id,
        turn: None,
        messages,
        response: None,
        segments: Vec::new(),
        next_hint: None,
        error: None,
        lease,
        brain_ms: 0,
    };
    let (Gathered::Ready, Some(turn), Some(lease)) = (status, turn, outcome.lease.clone()) else {
        return Ok(outcome);
    };
    let lease = wf.revalidate(&lease).await?;
    outcome.lease = Some(lease.clone());
    let result = think(wf, ctx, &input, &lease, outcome, turn).await;
    if result.is_err() {
        // The retry re-acquires; holding the lock meanwhile would only stall the session until the TTL.
        wf.unlock(&lease).await;
    }
    result
}

async fn think(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    lease: &Lease,
    mut outcome: AgentOutcome,
    mut turn: crate::models::LogicalTurn,
) -> Result<AgentOutcome, StepError> {
    let turn_id = outcome.turn_id;
    let session_key = input.session_key.as_str();
    let routing = routing(input);
    tracing::info!(
        %turn_id,
        session_key,
        message_count = turn.message_count(),
        tenant_id = %input.tenant_id,
        agent_id = %input.agent_id,
        brain = wf.brain.name(),
        "brain_starting"
    );
    wf.events
        .emit(AcfEvent::turn_started(
            turn_id,
            session_key,
            &routing,
            turn.message_count(),
            &input.channel,
        ))
        .await;

    // The commit numbers the turn `turn_count + 1` under the same lock, so the brain is told that number now.
    let turn_number = wf.stores.sessions.get(session_key).await?.turn_count + 1;
    let pending = StorePendingMessages::new(
        Arc::clone(&wf.stores.messages),
        session_key,
        turn.messages().iter().copied(),
    );
    let brain_ctx = TurnContext::new(
        turn.clone(),
        input.channel.clone(),
        outcome.messages.clone(),
        Arc::new(pending),
        Arc::clone(&wf.events),
    )
    .with_routing(routing)
    .with_turn_number(turn_number);
    // `brain.timeout_ms` bounds every brain, built-in or custom, here at the call site; the keep-alive never
    // extends the step past it.
    let limit = wf.settings.brain_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let keep_alive = wf.keep_alive(ctx, lease, Some(deadline));
    let started = Instant::now();
    let result = tokio::select! {
        result = tokio::time::timeout_at(deadline, wf.brain.think(&brain_ctx)) => {
            Some(result.unwrap_or(Err(BrainError::Timeout { timeout: limit })))
        }
        () = ctx.cancellation_token().cancelled() => None,
    };
    outcome.brain_ms = millis(started.elapsed());
    let lost = keep_alive.stop().await.lost;
    let Some(result) = result else {
        return Err(StepError::msg("cancelled while the brain was running"));
    };
    if lost {
        // Fencing would refuse this run's commit anyway; retrying re-takes the lock and runs the turn again.
        return Err(StepError::msg(
            "session lock lost while the brain was running",
        ));
    }
    match result {
        Ok(answer) => {
            turn.mark_complete()?;
            complete(wf, input, &mut outcome, answer).await;
            outcome.turn = Some(turn);
            Ok(outcome)
        }
        Err(error) => {
            failed(wf, input, &mut outcome, &error).await;
            if error.is_retryable() {
                // A timeout or an unreachable endpoint may pass: the engine retries this step with backoff, and
                // after the last attempt `on_failure` puts the messages back to pending.
                return Err(StepError::msg(format!("brain_failed: {error}")));
            }
            outcome.turn = Some(turn);
            Ok(outcome)
        }
    }
}

async fn complete(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    outcome: &mut AgentOutcome,
    answer: BrainResult,
) {
    tracing::info!(
        turn_id = %outcome.turn_id,
        session_key = %input.session_key,
        response_length = answer.response.chars().count(),
        brain_ms = outcome.brain_ms,
        "brain_complete"
    );
    wf.events
        .emit(AcfEvent::turn_completed(
            outcome.turn_id,
            &input.session_key,
            &routing(input),
            &answer.response,
            answer.segments.len(),
        ))
        .await;
    outcome.status = AgentStatus::Complete;
    outcome.response = Some(answer.response);
    outcome.segments = answer.segments;
    outcome.next_hint = answer.accumulation_hint;
}

async fn failed(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    outcome: &mut AgentOutcome,
    error: &BrainError,
) {
    let text = error.to_string();
    tracing::error!(
        turn_id = %outcome.turn_id,
        session_key = %input.session_key,
        error = %text,
        error_type = error.kind(),
        retryable = error.is_retryable(),
        "brain_failed"
    );
    wf.events
        .emit(AcfEvent::turn_failed(
            outcome.turn_id,
            &input.session_key,
            &routing(input),
            &text,
            error.kind(),
        ))
        .await;
    outcome.status = AgentStatus::Failed;
    outcome.error = Some(text);
}
