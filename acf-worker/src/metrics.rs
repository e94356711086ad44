//! Turn metrics, on the same `prometheus-client` registry as the SDK's worker metrics (`/metrics` of the worker's
//! health server): turns by channel and outcome, accumulation window wait, brain latency, lock wait, commit
//! latency, messages waiting for an answer, lock losses.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use acf_sdk::prometheus_client;
use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::brain::{Brain, BrainError, BrainResult, TurnContext};

/// Buckets (seconds) of the window-wait histogram: windows are 0 to 60 s.
const WINDOW_BUCKETS: [f64; 11] = [0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 60.0];
/// Buckets (seconds) of the brain-latency histogram.
const BRAIN_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Buckets (seconds) of the lock-wait and commit-latency histograms: Redis round trips, or a blocking wait.
const STORE_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TurnLabels {
    channel: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BrainLabels {
    channel: String,
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn window_histogram() -> Histogram {
    Histogram::new(WINDOW_BUCKETS)
}
fn brain_histogram() -> Histogram {
    Histogram::new(BRAIN_BUCKETS)
}
fn store_histogram() -> Histogram {
    Histogram::new(STORE_BUCKETS)
}

/// How a run ended, as the `outcome` label of `ruche_turns_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Committed with the brain's answer.
    Complete,
    /// Committed as failed (the brain failed for good).
    Failed,
    /// The run's message had been answered by another run's turn.
    Absorbed,
    /// Another run took the turn's messages over.
    Superseded,
    /// A step failed for good and the on-failure handler put the messages back to pending.
    RunFailed,
}

impl RunEnd {
    fn label(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Absorbed => "absorbed",
            Self::Superseded => "superseded",
            Self::RunFailed => "run_failed",
        }
    }
}

impl From<crate::models::TurnOutcome> for RunEnd {
    fn from(outcome: crate::models::TurnOutcome) -> Self {
        use crate::models::TurnOutcome;
        match outcome {
            TurnOutcome::Complete => Self::Complete,
            TurnOutcome::Failed => Self::Failed,
            TurnOutcome::Absorbed => Self::Absorbed,
            TurnOutcome::Superseded => Self::Superseded,
        }
    }
}

/// The worker's turn metrics. Cheap to share: every metric is a handle onto shared counters.
#[derive(Debug)]
pub struct TurnMetrics {
    turns: Family<TurnLabels, Counter>,
    window_wait: Histograms<ChannelLabels>,
    brain_latency: Histograms<BrainLabels>,
    lock_wait: Histogram,
    commit_latency: Histograms<ChannelLabels>,
    messages_pending: Gauge,
    lock_losses: Counter<u64, AtomicU64>,
    in_flight: Mutex<HashSet<Uuid>>,
}

impl Default for TurnMetrics {
    fn default() -> Self {
        Self {
            turns: Family::default(),
            window_wait: Family::new_with_constructor(window_histogram),
            brain_latency: Family::new_with_constructor(brain_histogram),
            lock_wait: store_histogram(),
            commit_latency: Family::new_with_constructor(store_histogram),
            messages_pending: Gauge::default(),
            lock_losses: Counter::default(),
            in_flight: Mutex::default(),
        }
    }
}

impl TurnMetrics {
    /// New metrics, not yet registered anywhere.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Adds every metric to `registry` (the SDK worker's, through `acf_sdk::worker::Metrics::register`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ruche_turns",
            "Finished logical-turn runs by channel and outcome (complete, failed, absorbed, superseded, run_failed)",
            self.turns.clone(),
        );
        registry.register(
            "ruche_window_wait_seconds",
            "Time a turn waited for more messages in its accumulation window",
            self.window_wait.clone(),
        );
        registry.register(
            "ruche_brain_latency_seconds",
            "Brain call duration by channel and result (ok, or the error kind)",
            self.brain_latency.clone(),
        );
        registry.register(
            "ruche_lock_wait_seconds",
            "Time taken to acquire a session lock",
            self.lock_wait.clone(),
        );
        registry.register(
            "ruche_commit_latency_seconds",
            "Duration of the commit step (fenced commit, response delivery, lock release)",
            self.commit_latency.clone(),
        );
        registry.register(
            "ruche_messages_pending",
            "Messages whose run started on this worker and has not ended yet (waiting for their answer)",
            self.messages_pending.clone(),
        );
        registry.register(
            "ruche_lock_losses",
            "Session locks found lost by their holder (expired or taken over) while a run needed them",
            self.lock_losses.clone(),
        );
    }

    /// A run for `message_id` started (idempotent across retries of the step).
    pub fn message_started(&self, message_id: Uuid) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.insert(message_id);
        self.messages_pending
            .set(i64::try_from(in_flight.len()).unwrap_or(i64::MAX));
    }

    /// The run for `message_id` ended with `end` on `channel`.
    pub fn run_ended(&self, message_id: Option<Uuid>, channel: &str, end: RunEnd) {
        if let Some(id) = message_id {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            in_flight.remove(&id);
            self.messages_pending
                .set(i64::try_from(in_flight.len()).unwrap_or(i64::MAX));
        }
        self.turns
            .get_or_create(&TurnLabels {
                channel: channel.to_owned(),
                outcome: end.label(),
            })
            .inc();
    }

    /// A turn's accumulation window closed after `waited`.
    pub fn window_waited(&self, channel: &str, waited: Duration) {
        self.window_wait
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    /// A session lock was acquired after `waited`.
    pub fn lock_acquired(&self, waited: Duration) {
        self.lock_wait.observe(waited.as_secs_f64());
    }

    /// A commit step took `took`.
    pub fn committed(&self, channel: &str, took: Duration) {
        self.commit_latency
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A run found its session lock lost.
    pub fn lock_lost(&self) {
        self.lock_losses.inc();
    }

    fn brain_answered(&self, channel: &str, result: &'static str, took: Duration) {
        self.brain_latency
            .get_or_create(&BrainLabels {
                channel: channel.to_owned(),
                result,
            })
            .observe(took.as_secs_f64());
    }
}

/// A brain whose calls are timed into [`TurnMetrics`] (`ruche_brain_latency_seconds`).
pub struct MeasuredBrain {
    inner: Arc<dyn Brain>,
    metrics: Arc<TurnMetrics>,
}

impl MeasuredBrain {
    /// Times `inner`'s calls into `metrics`.
    pub fn new(inner: Arc<dyn Brain>, metrics: Arc<TurnMetrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Brain for MeasuredBrain {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "ruche.brain",
            otel.name = "ruche.brain",
            brain = self.inner.name(),
            turn_id = %ctx.turn().id(),
        );
        let result = self.inner.think(ctx).instrument(span).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.metrics
            .brain_answered(ctx.channel(), label, started.elapsed());
        result
    }
}
