//! `accumulate`: take the session's open messages, wait on the session inbox for more with the TurnManager's
//! window (timed locally, to a few milliseconds), and close the turn.

use std::time::Duration;

use acf_sdk::{Context, StepError};
use chrono::Utc;
use tokio::time::Instant;
use uuid::Uuid;

use super::lease::millis;
use super::{Accumulated, Acquired, Gathered, LogicalTurnWorkflow};
use crate::brain::TurnMessage;
use crate::events::{AcfEvent, Routing};
use crate::models::{CompletionReason, LogicalTurn, TurnError, TurnLimits, ValidatedInput};
use crate::mutex::Lease;
use crate::stores::{InboxEntry, SessionState, StoreError, StoredMessage};

pub(super) async fn run(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    acquired: Acquired,
) -> Result<Accumulated, StepError> {
    let Some(lease) = acquired.lease else {
        // `acquire_mutex` found the message answered already and took no lock.
        return Ok(Accumulated {
            status: Gathered::Absorbed,
            turn_id: acquired.turn_id,
            turn: None,
            messages: Vec::new(),
            lease: None,
            waited_ms: 0,
            waited_us: 0,
            window_late_us: 0,
        });
    };
    // The run now works on the session: a sweep need not look at it for a grace period (and will, should the run
    // end without taking the message). The lock check, the mark and every read the step makes before it gathers go
    // out together, in this order, on the shared connection: one round trip where five took one each.
    let ((lease, reads), due) = tokio::join!(
        wf.revalidate_beside(&lease, || Reads::take(wf, input, acquired.turn_id)),
        wf.mark_due(input, wf.settings.pending_grace, false)
    );
    let lease = lease?;
    let result = match due {
        Ok(()) => accumulate(wf, ctx, input, &lease, acquired.turn_id, reads).await,
        Err(error) => Err(error),
    };
    if result.is_err() {
        // The retry re-acquires; holding the lock meanwhile would only stall the session until the TTL.
        wf.unlock(&lease).await;
    }
    result
}

/// What the step reads before it gathers, read at once (one round trip on the shared connection): whether the
/// turn is committed, the run's own message, then, in this order, the session inbox drained (wake-ups queued
/// before now are for messages the open list read right after it already contains), the session's open messages
/// and its state. The state cannot change meanwhile: only the lock holder (this run) writes it.
struct Reads {
    committed: Result<bool, StepError>,
    stored: Result<Option<StoredMessage>, StoreError>,
    drained: Result<Vec<InboxEntry>, StoreError>,
    open: Result<Vec<StoredMessage>, StoreError>,
    state: Result<SessionState, StoreError>,
}

impl Reads {
    async fn take(wf: &LogicalTurnWorkflow, input: &ValidatedInput, turn_id: Uuid) -> Self {
        let session_key = input.session_key.as_str();
        let (committed, stored, drained, open, state) = tokio::join!(
            wf.is_committed(input, turn_id),
            wf.stores.messages.get(session_key, input.message_id),
            wf.stores.inbox.drain(session_key),
            wf.stores.messages.open_messages(session_key),
            wf.stores.sessions.get(session_key)
        );
        Self {
            committed,
            stored,
            drained,
            open,
            state,
        }
    }
}

async fn accumulate(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    lease: &Lease,
    turn_id: Uuid,
    reads: Reads,
) -> Result<Accumulated, StepError> {
    let nothing_to_do = |status| Accumulated {
        status,
        turn_id,
        turn: None,
        messages: Vec::new(),
        lease: Some(lease.clone()),
        waited_ms: 0,
        waited_us: 0,
        window_late_us: 0,
    };
    if reads.committed? {
        tracing::info!(%turn_id, session_key = %input.session_key, "turn_already_committed");
        return Ok(nothing_to_do(Gathered::Committed));
    }
    let stored = reads.stored?;
    let recorded_again = stored.is_none();
    if answered_elsewhere(wf, input, turn_id, stored).await? {
        return Ok(nothing_to_do(Gathered::Absorbed));
    }
    reads.drained?;
    let (open, state) = if recorded_again {
        // The store had lost the run's message, recorded again just now: the open list read beside it predates it.
        let session_key = input.session_key.as_str();
        let (open, state) = tokio::join!(
            wf.stores.messages.open_messages(session_key),
            wf.stores.sessions.get(session_key)
        );
        (open?, state?)
    } else {
        (reads.open?, reads.state?)
    };

    let keep_alive = wf.keep_alive(ctx, lease, None);
    let gathered = gather(wf, ctx, input, lease, turn_id, &open, &state).await;
    if keep_alive.stop().await.lost {
        // Another holder may have taken the session's messages; the retry re-validates the lock and gathers again.
        return Err(StepError::msg("session lock lost while accumulating"));
    }
    let Some((turn, messages, waited, late)) = gathered? else {
        // The run's own message was open a moment ago and the run holds the lock: only a store that lost its data
        // again can get here. Never end without the message: retry.
        return Err(StepError::msg(
            "the run's own message could not be taken into its turn",
        ));
    };
    Ok(Accumulated {
        status: Gathered::Ready,
        turn_id,
        turn: Some(turn),
        messages,
        lease: Some(lease.clone()),
        waited_ms: millis(waited),
        waited_us: micros(waited),
        window_late_us: micros(late),
    })
}

/// True when an earlier turn already answered (or failed) the run's message (`stored`, as just read), so the run
/// has nothing to do. A message the store no longer has is recorded again from the input first: a missing record
/// is never a reason to drop it.
async fn answered_elsewhere(
    wf: &LogicalTurnWorkflow,
    input: &ValidatedInput,
    turn_id: Uuid,
    stored: Option<StoredMessage>,
) -> Result<bool, StepError> {
    let message = match stored {
        Some(message) => message,
        None => wf.own_message(input).await?,
    };
    if message.status.is_open() || message.status.turn_id() == Some(turn_id) {
        return Ok(false);
    }
    tracing::info!(
        message_id = %input.message_id,
        session_key = %input.session_key,
        absorbed_by = ?message.status.turn_id().map(|id| id.to_string()),
        status = message.status.as_str(),
        "message_already_absorbed"
    );
    Ok(true)
}

/// The closed turn, its messages, the time spent waiting, and how late the window closed after its deadline.
type Gather = Option<(LogicalTurn, Vec<TurnMessage>, Duration, Duration)>;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn gather(
    wf: &LogicalTurnWorkflow,
    ctx: &Context,
    input: &ValidatedInput,
    lease: &Lease,
    turn_id: Uuid,
    open: &[StoredMessage],
    state: &SessionState,
) -> Result<Gather, StepError> {
    let session_key = input.session_key.as_str();
    let Some((mut turn, mut messages)) = take_open(wf, lease, turn_id, input, open).await? else {
        return Ok(None);
    };
    let routing = routing(input);
    let window = |content: &str, count: usize| {
        Duration::from_millis(wf.settings.turn_manager.suggest_wait_ms(
            content,
            &input.channel,
            state.cadence_for_window(),
            state.last_hint.as_ref(),
            count,
        ))
    };
    let started = Instant::now();
    let last = messages.last().map_or("", |m| m.content.as_str());
    let mut wait = window(last, messages.len());
    // When the window closed later than the deadline it was waiting for (timer and wake-up latency).
    let mut late = Duration::ZERO;
    let reason = loop {
        let window_left = window_left(&turn, wf);
        if messages.len() >= wf.settings.limits.max_messages {
            break CompletionReason::MaxMessages;
        }
        if window_left.is_zero() {
            break CompletionReason::MaxWindow;
        }
        let capped = wait >= window_left;
        let deadline = Instant::now() + wait.min(window_left);
        let woken = tokio::select! {
            woken = wf.stores.inbox.wait(session_key, deadline) => woken?,
            () = ctx.cancellation_token().cancelled() => {
                return Err(StepError::msg("cancelled while accumulating"));
            }
        };
        let Some(entry) = woken else {
            late = Instant::now().saturating_duration_since(deadline);
            break if capped {
                CompletionReason::MaxWindow
            } else {
                CompletionReason::Timeout
            };
        };
        if turn.messages().contains(&entry.message_id) {
            continue;
        }
        let Some(message) = wf
            .stores
            .messages
            .get(session_key, entry.message_id)
            .await?
        else {
            continue;
        };
        if !message.status.is_open() || message.session_key != session_key {
            continue;
        }
        let mut next = turn.clone();
        match next.absorb_message(message.id, message.received_at, &wf.settings.limits) {
            Ok(()) => {}
            Err(TurnError::TooManyMessages { .. }) => break CompletionReason::MaxMessages,
            Err(TurnError::WindowExceeded { .. }) => break CompletionReason::MaxWindow,
            // A duplicate or a closed turn: the message is not this turn's to take.
            Err(_) => continue,
        }
        if wf
            .stores
            .messages
            .absorb(lease, turn_id, &[message.id])
            .await?
            .is_empty()
        {
            continue;
        }
        turn = next;
        messages.push(TurnMessage::from(&message));
        wf.route(
            ctx,
            AcfEvent::message_absorbed(
                turn_id,
                session_key,
                &routing,
                message.id,
                messages.len(),
                &input.channel,
            ),
        )
        .await;
        wait = window(&message.content, messages.len());
        tracing::info!(%turn_id, message_id = %message.id, message_count = messages.len(), new_wait_ms = millis(wait), "message_absorbed");
    };
    turn.mark_processing(reason)?;
    let waited = started.elapsed();
    tracing::info!(
        %turn_id,
        session_key,
        message_count = messages.len(),
        reason = reason_name(reason),
        waited_ms = millis(waited),
        window_late_us = micros(late),
        "accumulation_complete"
    );
    Ok(Some((turn, messages, waited, late)))
}

/// Starts the turn with the session's open messages, oldest first, as far as the turn's caps allow, and claims
/// them under the lease. `None` when nothing could be claimed.
async fn take_open(
    wf: &LogicalTurnWorkflow,
    lease: &Lease,
    turn_id: Uuid,
    input: &ValidatedInput,
    open: &[StoredMessage],
) -> Result<Option<(LogicalTurn, Vec<TurnMessage>)>, StepError> {
    let session_key = input.session_key.as_str();
    let accepted = accepted_prefix(wf, turn_id, input, open);
    let ids: Vec<Uuid> = accepted.iter().map(|m| m.id).collect();
    let claimed = wf.stores.messages.absorb(lease, turn_id, &ids).await?;
    let claimed: Vec<&StoredMessage> = accepted
        .into_iter()
        .filter(|m| claimed.contains(&m.id))
        .collect();
    let Some(first) = claimed.first() else {
        return Ok(None);
    };
    let limits = taking_limits(wf);
    let mut turn = LogicalTurn::start(turn_id, session_key, first.id, first.received_at);
    for message in &claimed[1..] {
        turn.absorb_message(message.id, message.received_at, &limits)?;
    }
    Ok(Some((
        turn,
        claimed.into_iter().map(TurnMessage::from).collect(),
    )))
}

/// The caps for messages already waiting when the turn starts: the message cap only. The window bounds how long a
/// turn waits for *new* messages; a stale recovery (the oldest open message older than `max_window_ms`, e.g. after
/// a brain outage) must still take the message that triggered it.
fn taking_limits(wf: &LogicalTurnWorkflow) -> TurnLimits {
    TurnLimits {
        max_window_ms: u64::MAX,
        ..wf.settings.limits
    }
}

/// The prefix of `open` one turn takes: every open message up to and including the run's own one (oldest first,
/// within the message cap), then later ones while the window allows.
fn accepted_prefix<'a>(
    wf: &LogicalTurnWorkflow,
    turn_id: Uuid,
    input: &ValidatedInput,
    open: &'a [StoredMessage],
) -> Vec<&'a StoredMessage> {
    let Some(first) = open.first() else {
        return Vec::new();
    };
    let through_own = open
        .iter()
        .position(|m| m.id == input.message_id)
        .map_or(1, |at| at + 1);
    let relaxed = taking_limits(wf);
    let mut probe = LogicalTurn::start(turn_id, &input.session_key, first.id, first.received_at);
    let mut accepted = vec![first];
    for (at, message) in open.iter().enumerate().skip(1) {
        let limits = if at < through_own {
            &relaxed
        } else {
            &wf.settings.limits
        };
        if probe
            .absorb_message(message.id, message.received_at, limits)
            .is_err()
        {
            break;
        }
        accepted.push(message);
    }
    accepted
}

/// Time left before the turn's window (first message + `max_window_ms`) closes.
fn window_left(turn: &LogicalTurn, wf: &LogicalTurnWorkflow) -> Duration {
    (turn.window_deadline(&wf.settings.limits) - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
}

pub(super) fn routing(input: &ValidatedInput) -> Routing {
    Routing {
        tenant_id: input.tenant_id,
        agent_id: input.agent_id,
        interlocutor_id: input.interlocutor_id,
    }
}

fn reason_name(reason: CompletionReason) -> &'static str {
    match reason {
        CompletionReason::Timeout => "timeout",
        CompletionReason::NoAccumulation => "no_accumulation",
        CompletionReason::CannotAbsorb => "cannot_absorb",
        CompletionReason::MaxMessages => "max_messages",
        CompletionReason::MaxWindow => "max_window",
        CompletionReason::AiPredicted => "ai_predicted",
        CompletionReason::ExplicitSignal => "explicit_signal",
        CompletionReason::ChannelHint => "channel_hint",
    }
}
