//! The logical-turn workflow: `acquire_mutex → accumulate → run_agent → commit_and_respond`, plus the on-failure handler `recover`.
//!
//! Every incoming message triggers its own run; runs of one session are serialised by the workflow's concurrency
//! key (the session) and, across systems, by the fenced session mutex. A run:
//! 1. `acquire_mutex` validates the input (a non-retryable error naming the field), stores the message if intake
//!    did not already, takes the session lock and mints the turn id that every later step and retry reuses;
//! 2. `accumulate` takes the session's open messages, waits for more on the session inbox with the TurnManager's
//!    window (timed locally), and closes the turn; if an earlier turn already answered the run's message it ends
//!    the run as `absorbed` (no brain call);
//! 3. `run_agent` calls the brain with a live `has_pending_messages`, keeping the lock and the step's timeout
//!    alive meanwhile, and emits `turn.started` then `turn.completed` / `turn.failed`;
//! 4. `commit_and_respond` commits once per turn id under the fence (record, state, statuses, the response on the
//!    response stream) and releases the lock by token;
//! 5. `recover` (the on-failure handler) releases by token and gives the run's message its ending: a failed turn
//!    delivered as a failure entry, or, when the run never had a turn, a hand-on to the liveness sweep.
//!
//! Invariant: a run ends only when its own message is answered, absorbed into a committed turn, or recorded as
//! failed; otherwise it fails (and is retried) or hands the message on (see `ownership.rs` and [`crate::liveness`]).
//!
//! Each step lives in its own file; this one only declares the workflow. Retries, backoff and concurrency can be
//! overridden from configuration with [`ConfiguredWorkflow`]; [`direct::run_direct`] runs a turn in-process.

mod accumulate;
mod acquire;
mod agent;
mod commit;
pub mod direct;
mod failure;
mod input;
mod lease;
mod ownership;
mod registration;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_sdk::{Context, StepError, on_failure, step, workflow};

use crate::brain::{Brain, EventEmitter, LogEvents};
use crate::config::Settings;
use crate::metrics::{MeasuredBrain, RunEnd, TurnMetrics};
use crate::models::{TurnLimits, WorkflowOutput};
use crate::mutex::{LockOptions, SessionMutex};
use crate::stores::{Backend, Stores};
use crate::telemetry::step_span;
use crate::turn_manager::TurnManager;
use tracing::Instrument as _;

pub use self::input::{InvalidInput, TurnInput};
pub use self::registration::{ConcurrencyOptions, ConfiguredWorkflow, WorkflowOptions};
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
    events: Arc<dyn EventEmitter>,
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
    /// A workflow on `backend` answering with `brain`; events are logged as `acf_event_emitted`.
    pub fn new(backend: &Backend, brain: Arc<dyn Brain>, settings: TurnSettings) -> Self {
        let metrics = TurnMetrics::new();
        Self {
            mutex: Arc::clone(&backend.mutex),
            stores: backend.stores.clone(),
            brain: Arc::new(MeasuredBrain::new(brain, Arc::clone(&metrics))),
            events: Arc::new(LogEvents),
            settings,
            metrics,
        }
    }

    /// The turn metrics this workflow records (registered on the worker's `/metrics` by [`crate::run`]).
    pub fn metrics(&self) -> &Arc<TurnMetrics> {
        &self.metrics
    }

    /// Routes the ACF events the worker and the brain emit to `events` instead of the log.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn EventEmitter>) -> Self {
        self.events = events;
        self
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
    /// Validates the input, records the message, takes the session lock and mints the turn id.
    #[step(retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn acquire_mutex(&self, ctx: &Context, input: &TurnInput) -> Result<Acquired, StepError> {
        let acquired = acquire::run(self, ctx, input)
            .instrument(step_span("acquire_mutex", ctx.additional_metadata()))
            .await?;
        if let Some(id) = message_id(input) {
            self.metrics.message_started(id);
        }
        Ok(acquired)
    }

    /// Gathers the turn's messages within the accumulation window.
    #[step(parents = [acquire_mutex], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn accumulate(
        &self,
        ctx: &Context,
        input: &TurnInput,
        acquired: Acquired,
    ) -> Result<Accumulated, StepError> {
        let accumulated = accumulate::run(self, ctx, input, acquired)
            .instrument(step_span("accumulate", ctx.additional_metadata()))
            .await?;
        if accumulated.status == Gathered::Ready {
            self.metrics.window_waited(
                &channel(input),
                Duration::from_millis(accumulated.waited_ms),
            );
        }
        Ok(accumulated)
    }

    /// Lets the brain answer the turn.
    #[step(parents = [accumulate], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn run_agent(
        &self,
        ctx: &Context,
        input: &TurnInput,
        accumulated: Accumulated,
    ) -> Result<AgentOutcome, StepError> {
        agent::run(self, ctx, input, accumulated)
            .instrument(step_span("run_agent", ctx.additional_metadata()))
            .await
    }

    /// Commits the turn once, delivers the response and releases the lock.
    #[step(parents = [run_agent], retries = 2, backoff_factor = 2.0, backoff_max = "60s")]
    async fn commit_and_respond(
        &self,
        ctx: &Context,
        input: &TurnInput,
        outcome: AgentOutcome,
    ) -> Result<WorkflowOutput, StepError> {
        let started = Instant::now();
        let step = step_span("commit_and_respond", ctx.additional_metadata());
        let commit = tracing::info_span!(parent: &step, "ruche.commit", otel.name = "ruche.commit");
        let output = commit::run(self, ctx, input, outcome)
            .instrument(commit)
            .instrument(step)
            .await?;
        let channel = channel(input);
        self.metrics.committed(&channel, started.elapsed());
        self.metrics
            .run_ended(message_id(input), &channel, output.status.into());
        Ok(output)
    }

    /// Releases the lock and fails the turn visibly (failure entry + record), or hands the message on.
    #[on_failure]
    async fn recover(&self, ctx: &Context, input: &TurnInput) -> Result<FailureReport, StepError> {
        let report = failure::run(self, ctx, input)
            .instrument(step_span("recover", ctx.additional_metadata()))
            .await;
        self.metrics
            .run_ended(message_id(input), &channel(input), RunEnd::RunFailed);
        report
    }
}

/// The run's message id, for metrics (`None` when the payload has no valid one).
fn message_id(input: &TurnInput) -> Option<uuid::Uuid> {
    input.as_json()["message_id"].as_str()?.parse().ok()
}

/// The run's channel label, for metrics (`unknown` when the payload has none).
fn channel(input: &TurnInput) -> String {
    input.as_json()["channel"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned()
}
