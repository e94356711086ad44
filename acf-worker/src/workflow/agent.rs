//! `run_agent`: the brain answers the turn while the lock and the step's timeout are kept alive.

use std::sync::Arc;
use std::time::Instant;

use acf_sdk::{Context, StepError};

use super::accumulate::routing;
use super::lease::millis;
use super::{Accumulated, AgentOutcome, AgentStatus, Gathered, LogicalTurnWorkflow};
use crate::brain::{
    BrainError, BrainResult, EventEmitter, StorePendingMessages, TurnContext, TurnMessage,
};
use crate::events::AcfEvent;
use crate::events::step::StepEvents;
use crate::models::{SideEffect, ValidatedInput};
use crate::mutex::Lease;

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    accumulated: Accumulated,
) -> Result<AgentOutcome, StepError> {
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
        turn_id,
        turn: None,
        response: None,
        segments: Vec::new(),
        next_hint: None,
        error: None,
        lease,
        brain_ms: 0,
    };
    let (Gathered::Ready, Some(turn), Some(held)) = (status, turn, outcome.lease.clone()) else {
        return Ok(outcome);
    };
    // The lock check and the two reads the brain needs go out together (one round trip, not two). What earlier
    // attempts of this turn already did (a crash, a lost lock or a transient error after a tool ran): the brain
    // sees it, and an irreversible effect puts the turn past its commit point. The commit numbers the turn
    // `turn_count + 1` under the same lock, so the brain is told that number now.
    let session_key = input.session_key.as_str();
    let (lease, (effects, state)) = wf
        .revalidate_beside(&held, || async {
            tokio::join!(
                wf.stores.side_effects.effects(session_key, turn_id),
                wf.stores.sessions.get(session_key)
            )
        })
        .await;
    let lease = lease?;
    outcome.lease = Some(lease.clone());
    let result = match (effects, state) {
        (Ok(effects), Ok(state)) => {
            let brief = Brief {
                turn,
                messages,
                effects,
                turn_count: state.turn_count,
            };
            think(wf, ctx, input, &lease, outcome, brief).await
        }
        (Err(error), _) | (_, Err(error)) => Err(error.into()),
    };
    if result.is_err() {
        // The retry re-acquires; holding the lock meanwhile would only stall the session until the TTL.
        wf.unlock(&lease).await;
    }
    result
}

/// The turn as the brain is to see it: its messages, the side effects earlier attempts recorded, and the session's
/// committed turn count.
struct Brief {
    turn: crate::models::LogicalTurn,
    messages: Vec<TurnMessage>,
    effects: Vec<SideEffect>,
    turn_count: u64,
}

async fn think(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    lease: &Lease,
    mut outcome: AgentOutcome,
    brief: Brief,
) -> Result<AgentOutcome, StepError> {
    let Brief {
        mut turn,
        messages,
        effects,
        turn_count,
    } = brief;
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
    wf.route(
        ctx,
        AcfEvent::turn_started(
            turn_id,
            session_key,
            &routing,
            turn.message_count(),
            &input.channel,
        ),
    )
    .await;
    for effect in effects {
        turn.record_side_effect(effect)?;
    }
    if !turn.side_effects().is_empty() {
        tracing::info!(
            %turn_id,
            session_key,
            side_effects = turn.side_effects().len(),
            past_commit_point = turn.has_irreversible_side_effect(),
            attempt = ctx.retry_count(),
            "side_effects_replayed"
        );
    }
    let turn_number = turn_count + 1;
    let pending = StorePendingMessages::new(
        Arc::clone(&wf.stores.messages),
        session_key,
        turn.messages().iter().copied(),
    );
    let events = Arc::new(
        StepEvents::new(Arc::clone(&wf.events), Some(ctx.clone()))
            .with_routing(routing)
            .recording(
                Arc::clone(&wf.stores.side_effects),
                lease.clone(),
                turn_id,
                turn.has_irreversible_side_effect(),
            ),
    );
    let brain_ctx = TurnContext::new(
        turn.clone(),
        input.channel.clone(),
        messages,
        Arc::new(pending),
        Arc::clone(&events) as Arc<dyn EventEmitter>,
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
    if let Some(error) = events.recording_failure() {
        // A tool ran but is not on record: completing would hide it from the retry that a failure of the store or
        // lock calls for anyway.
        return Err(StepError::msg(format!(
            "a side effect could not be recorded: {error}"
        )));
    }
    for effect in events.recorded() {
        turn.record_side_effect(effect)?;
    }
    match result {
        Ok(answer) => {
            turn.mark_complete()?;
            complete(wf, ctx, input, &mut outcome, answer).await;
            outcome.turn = Some(turn);
            Ok(outcome)
        }
        Err(error) => {
            failed(wf, ctx, input, &mut outcome, &error).await;
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
    ctx: &Context,
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
    wf.route(
        ctx,
        AcfEvent::turn_completed(
            outcome.turn_id,
            &input.session_key,
            &routing(input),
            &answer.response,
            answer.segments.len(),
        ),
    )
    .await;
    outcome.status = AgentStatus::Complete;
    outcome.response = Some(answer.response);
    outcome.segments = answer.segments;
    outcome.next_hint = answer.accumulation_hint;
}

async fn failed(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
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
    wf.route(
        ctx,
        AcfEvent::turn_failed(
            outcome.turn_id,
            &input.session_key,
            &routing(input),
            &text,
            error.kind(),
        ),
    )
    .await;
    outcome.status = AgentStatus::Failed;
    outcome.error = Some(text);
}
