//! The logical-turn workflow: `acquire_mutex → accumulate → run_agent → commit_and_respond`, plus the on-failure handler `recover`.
//!
//! Every incoming message triggers its own run; runs of one session are serialised by the workflow's concurrency
//! key (the session) and, across systems, by the fenced session mutex. A run:
//! 1. `acquire_mutex` receives the input decoded by the SDK (a payload off the contract is a non-retryable decode
//!    error naming the field) and checks its length, stores the message if intake did not already, takes the
//!    session lock and mints the turn id that every later step and retry reuses;
//! 2. `accumulate` takes the session's open messages, waits for more on the session inbox with the TurnManager's
//!    window (timed locally), and closes the turn; if an earlier turn already answered the run's message it ends
//!    the run as `absorbed` (no brain call);
//! 3. `run_agent` calls the brain with a live `has_pending_messages` and the side effects earlier attempts of the
//!    turn recorded, keeping the lock and the step's timeout alive meanwhile; it emits `turn.started` then
//!    `turn.completed` / `turn.failed`, and records the side effect of every `tool.executed` event the brain
//!    emits, under the fence, before routing it (see [`crate::events`]);
//! 4. `commit_and_respond` (parents `accumulate` and `run_agent`) commits once per turn id under the fence
//!    (record, state, statuses, the response on the response stream) and releases the lock by token;
//! 5. `recover` (the on-failure handler) releases by token and gives the run's message its ending: a failed turn
//!    delivered as a failure entry, or, when the run never had a turn, a hand-on to the liveness sweep.
//!
//! Invariant: a run ends only when its own message is answered, absorbed into a committed turn, or recorded as
//! failed; otherwise it fails (and is retried) or hands the message on (see `ownership.rs` and [`crate::liveness`]).
//!
//! Each step lives in its own file; this one only declares the workflow. What the macros declare here (retries,
//! backoff, concurrency) is what registers unless the operator configured otherwise: [`WorkflowOptions`] holds
//! the `[jobs.hatchet]` values that were set, applied through the SDK's registration hook
//! ([`acf_sdk::Workflow::configured`]). To run a turn in-process, without Hatchet, use the SDK's harness,
//! [`acf_sdk::testing::run_workflow`].

mod accumulate;
mod acquire;
mod agent;
mod commit;
mod failure;
mod input;
mod lease;
mod ownership;
mod registration;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_sdk::{Context, StepError, on_failure, step, workflow};

use crate::brain::Brain;
use crate::config::Settings;
use crate::events::{AcfEvent, EventRouter, EventScope};
use crate::metrics::{MeasuredBrain, RunEnd, TurnMetrics};
use crate::models::{TurnLimits, ValidatedInput, WorkflowOutput};
use crate::mutex::{LockOptions, SessionMutex};
use crate::stores::{Backend, Stores};
use crate::telemetry::step_span;
use crate::turn_manager::TurnManager;
use tracing::Instrument as _;

pub use self::input::TurnInput;
pub use self::registration::{ConcurrencyOptions, ConcurrencyOverride, WorkflowOptions};
pub use self::types::{Accumulated, Acquired, AgentOutcome, AgentStatus, FailureReport, Gathered};

/// The registered workflow name.
pub const WORKFLOW_NAME: &str = "logical-turn";

/// The workflow's default concurrency key: the explicit `session_key` when non-empty, otherwise
/// `{tenant_id}:{agent_id}:{interlocutor_id}:{channel}` (the same rule as [`crate::models::WorkflowInput::session_key`]).
pub const SESSION_KEY_EXPRESSION: &str = "has(input.session_key) && input.session_key != null && input.session_key != '' ? input.session_key : input.tenant_id + ':' + input.agent_id + ':' + input.interlocutor_id + ':' + input.channel";

/// The per-run knobs taken from configuration.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// Lock TTL and blocking wait (`[session.lock]`).
    pub lock: LockOptions,
    /// How often a running step extends its lease and timeout.
    pub heartbeat_interval: Duration,
    /// The accumulation window algorithm (`[accumulation]`).
    pub turn_manager: TurnManager,
    /// Caps on messages per turn and window length.
    pub limits: TurnLimits,
    /// Longest message text accepted, in characters.
    pub max_message_chars: usize,
    /// Bound on one brain call (`brain.timeout_ms`), whatever the brain; a timeout is retryable.
    pub brain_timeout: Duration,
    /// How long a session with open messages is left to its runs before a sweep re-triggers one
    /// (`liveness.pending_grace_ms`).
    pub pending_grace: Duration,
}

impl TurnSettings {
    /// The settings `[session.lock]` and `[accumulation]` describe.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            lock: LockOptions::from(&settings.session.lock),
            heartbeat_interval: settings.session.lock.heartbeat_interval(),
            turn_manager: settings.accumulation.turn_manager(),
            limits: settings.accumulation.turn_limits(),
            max_message_chars: settings.accumulation.max_message_chars,
            brain_timeout: settings.brain.timeout(),
            pending_grace: settings.liveness.pending_grace(),
        }
    }
}

/// The logical-turn workflow and what its steps use: the session mutex, the stores, the brain, the settings.
pub struct LogicalTurnWorkflow {
    mutex: Arc<dyn SessionMutex>,
    stores: Stores,
    brain: Arc<dyn Brain>,
    events: Arc<EventRouter>,
    settings: TurnSettings,
    metrics: Arc<TurnMetrics>,
}

impl std::fmt::Debug for LogicalTurnWorkflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicalTurnWorkflow")
            .field("brain", &self.brain.name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LogicalTurnWorkflow {
    /// A workflow on `backend` answering with `brain`; events are logged as `acf_event_emitted`
    /// ([`EventRouter::logging`]) until [`Self::with_events`] routes them elsewhere.
    pub fn new(backend: &Backend, brain: Arc<dyn Brain>, settings: TurnSettings) -> Self {
        let metrics = TurnMetrics::new();
        Self {
            mutex: Arc::clone(&backend.mutex),
            stores: backend.stores.clone(),
            brain: Arc::new(MeasuredBrain::new(brain, Arc::clone(&metrics))),
            events: Arc::new(EventRouter::logging()),
            settings,
            metrics,
        }
    }

    /// The turn metrics this workflow records (registered on the worker's `/metrics` by [`crate::run`]).
    pub fn metrics(&self) -> &Arc<TurnMetrics> {
        &self.metrics
    }

    /// Routes the ACF events the worker and the brain emit through `router` instead of the log alone. The side
    /// effects of `tool.executed` events are recorded on their turn whatever the router's listeners.
    #[must_use]
    pub fn with_events(mut self, router: Arc<EventRouter>) -> Self {
        self.events = router;
        self
    }

    /// The router events go through (listeners can be added to it while the worker runs).
    pub fn events(&self) -> &Arc<EventRouter> {
        &self.events
    }

    /// Routes an event the worker itself emits from the step attempt `ctx`.
    async fn route(&self, ctx: &Context, event: AcfEvent) {
        self.events.route(&event, &EventScope::step(ctx)).await;
    }

    /// The stores the workflow writes to.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The settings in force.
    pub fn settings(&self) -> &TurnSettings {
        &self.settings
    }
}

#[workflow(
    name = "logical-turn",
    concurrency(
        expression = "has(input.session_key) && input.session_key != null && input.session_key != '' ? input.session_key : input.tenant_id + ':' + input.agent_id + ':' + input.interlocutor_id + ':' + input.channel",
        max_runs = 1,
        strategy = "group_round_robin"
    )
)]
impl LogicalTurnWorkflow {
    /// Checks the content length, records the message, takes the session lock and mints the turn id.
    #[step(retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn acquire_mutex(
        &self,
        ctx: &Context,
        input: &ValidatedInput,
    ) -> Result<Acquired, StepError> {
        let acquired = acquire::run(self, ctx, input)
            .instrument(step_span(Self::ACQUIRE_MUTEX, ctx.additional_metadata()))
            .await?;
        self.metrics.message_started(input.message_id);
        Ok(acquired)
    }

    /// Gathers the turn's messages within the accumulation window.
    #[step(parents = [acquire_mutex], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn accumulate(
        &self,
        ctx: &Context,
        input: &ValidatedInput,
        acquired: Acquired,
    ) -> Result<Accumulated, StepError> {
        let accumulated = accumulate::run(self, ctx, input, acquired)
            .instrument(step_span(Self::ACCUMULATE, ctx.additional_metadata()))
            .await?;
        if accumulated.status == Gathered::Ready {
            self.metrics
                .window_waited(&input.channel, Duration::from_millis(accumulated.waited_ms));
        }
        Ok(accumulated)
    }

    /// Lets the brain answer the turn.
    #[step(parents = [accumulate], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn run_agent(
        &self,
        ctx: &Context,
        input: &ValidatedInput,
        accumulated: Accumulated,
    ) -> Result<AgentOutcome, StepError> {
        agent::run(self, ctx, input, accumulated)
            .instrument(step_span(Self::RUN_AGENT, ctx.additional_metadata()))
            .await
    }

    /// Commits the turn once, delivers the response and releases the lock.
    #[step(parents = [accumulate, run_agent], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn commit_and_respond(
        &self,
        ctx: &Context,
        input: &ValidatedInput,
        accumulated: Accumulated,
        outcome: AgentOutcome,
    ) -> Result<WorkflowOutput, StepError> {
        let started = Instant::now();
        let step = step_span(Self::COMMIT_AND_RESPOND, ctx.additional_metadata());
        let commit = tracing::info_span!(parent: &step, "ruche.commit", otel.name = "ruche.commit");
        let output = commit::run(self, ctx, input, accumulated, outcome)
            .instrument(commit)
            .instrument(step)
            .await?;
        self.metrics.committed(&input.channel, started.elapsed());
        self.metrics
            .run_ended(Some(input.message_id), &input.channel, output.status.into());
        Ok(output)
    }

    /// Releases the lock and fails the turn visibly (failure entry + record), or hands the message on. Runs also
    /// when `acquire_mutex` refused the payload (`input` is then `None`).
    #[on_failure]
    async fn recover(
        &self,
        ctx: &Context,
        input: Option<ValidatedInput>,
    ) -> Result<FailureReport, StepError> {
        let report = failure::run(self, ctx, input.as_ref())
            .instrument(step_span("recover", ctx.additional_metadata()))
            .await;
        // `unknown` when the payload did not decode: its fields are not trusted as labels.
        let channel = input.as_ref().map_or("unknown", |i| i.channel.as_str());
        self.metrics.run_ended(
            input.as_ref().map(|i| i.message_id),
            channel,
            RunEnd::RunFailed,
        );
        report
    }
}
