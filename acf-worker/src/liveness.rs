//! Liveness of pending messages: every open message has a run that will take it, within a bound.
//!
//! Runs are triggered once per message and may end without taking it (the lock stayed contended until the run's
//! retries ran out, the run was handed a turn it could not finish, the trigger itself was lost). The
//! [`PendingIndex`](crate::stores::PendingIndex) keeps each session with messages that may need a run, scored by the time a sweep should look at
//! it: a run's first step marks its session due `liveness.pending_grace_ms` ahead (an earlier due time stands), a
//! run holding the lock pushes it a grace period ahead when it starts accumulating (so busy sessions are left
//! alone), and a run that leaves its own message open marks it due at once (it *hands the message on*). Every worker runs a [`Sweeper`]: each
//! `liveness.sweep_interval_ms` it claims the due sessions (atomically re-scored one grace period ahead, so two
//! workers never claim one session at once), skips a session whose lock is held (its holder is working on it;
//! the next claim comes a grace period later), removes a session with nothing open, and otherwise triggers a new
//! `logical-turn` run for the session's oldest open message through Hatchet. A duplicate run is harmless: it finds
//! the message answered and ends `absorbed`.
//!
//! The sweeper also watches the store's data epoch (a random value written once): a different value than the
//! one it saw before means the store lost its data (a Redis restart without persistence, a failover, an eviction).
//! It logs `store_data_loss_detected` and counts it in [`LivenessMetrics::data_losses`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::LivenessSettings;
use crate::models::{ValidatedInput, WorkflowInput};
use crate::mutex::SessionMutex;
use crate::stores::{Backend, StoreError, StoredMessage, Stores};
use crate::workflow::{TurnInput, WORKFLOW_NAME};

/// Liveness counters of this process (monotonic).
#[derive(Debug, Default)]
pub struct LivenessMetrics {
    /// Store data losses detected (the data epoch changed).
    pub data_losses: AtomicU64,
    /// Messages a run found missing from the store and recorded again from its own input.
    pub messages_re_recorded: AtomicU64,
    /// Runs that ended with their own message still open and marked its session due at once.
    pub hand_ons: AtomicU64,
    /// Runs the sweeper triggered for pending sessions.
    pub retriggers: AtomicU64,
}

impl LivenessMetrics {
    /// A snapshot as `(name, value)` pairs, for logs and exporters.
    pub fn snapshot(&self) -> [(&'static str, u64); 4] {
        [
            (
                "store_data_losses_total",
                self.data_losses.load(Ordering::Relaxed),
            ),
            (
                "messages_re_recorded_total",
                self.messages_re_recorded.load(Ordering::Relaxed),
            ),
            (
                "message_hand_ons_total",
                self.hand_ons.load(Ordering::Relaxed),
            ),
            (
                "pending_retriggers_total",
                self.retriggers.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The process-wide liveness counters.
pub fn metrics() -> &'static LivenessMetrics {
    static METRICS: std::sync::OnceLock<LivenessMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(LivenessMetrics::default)
}

pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The routing part of a trigger payload, kept per session in the index so a sweep can build a run's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Route {
    tenant_id: String,
    agent_id: String,
    interlocutor_id: String,
    channel: String,
    session_key: String,
}

/// The route JSON of a validated input.
pub(crate) fn route_json(input: &ValidatedInput) -> String {
    let route = Route {
        tenant_id: input.tenant_id.to_string(),
        agent_id: input.agent_id.to_string(),
        interlocutor_id: input.interlocutor_id.to_string(),
        channel: input.channel.clone(),
        session_key: input.session_key.clone(),
    };
    // A struct of strings always serialises.
    serde_json::to_string(&route).unwrap_or_default()
}

/// The payload of a run for `message`, routed like `route`.
fn payload_for(route: &str, message: &StoredMessage) -> Result<TurnInput, serde_json::Error> {
    let route: Route = serde_json::from_str(route)?;
    Ok(TurnInput::new(&WorkflowInput {
        tenant_id: route.tenant_id,
        agent_id: route.agent_id,
        interlocutor_id: route.interlocutor_id,
        channel: route.channel,
        message_id: message.id.to_string(),
        message_content: message.content.clone(),
        session_key: Some(route.session_key),
    }))
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds of a duration as a score offset, saturated.
pub(crate) fn offset_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Starts a `logical-turn` run.
#[async_trait]
pub trait RunTrigger: Send + Sync {
    /// Triggers a run with `input`; returns the run id.
    async fn trigger(&self, input: &TurnInput) -> Result<String, acf_sdk::Error>;
}

#[async_trait]
impl RunTrigger for acf_sdk::Client {
    async fn trigger(&self, input: &TurnInput) -> Result<String, acf_sdk::Error> {
        let message_id = input
            .as_json()
            .get("message_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let run = acf_sdk::Client::trigger(
            self,
            WORKFLOW_NAME,
            input,
            acf_sdk::TriggerOptions::default()
                .metadata("message_id", message_id)
                .metadata("retriggered", "true"),
        )
        .await?;
        Ok(run.run_id)
    }
}

/// Detects a store that lost its data by its epoch.
#[derive(Debug, Default)]
pub struct EpochWatch {
    known: Mutex<Option<String>>,
}

impl EpochWatch {
    /// Reads (or writes) the epoch; true when it differs from the one seen before, i.e. the data was lost.
    pub async fn check(&self, stores: &Stores) -> Result<bool, StoreError> {
        // A fresh candidate each time: after a loss, even this worker's own rewrite differs from what it saw.
        let stored = stores.pending.epoch(&Uuid::new_v4().to_string()).await?;
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let lost = known.as_ref().is_some_and(|seen| *seen != stored);
        if lost {
            count(&metrics().data_losses);
            tracing::error!(
                previous_epoch = known.as_deref(),
                epoch = %stored,
                data_losses_total = metrics().data_losses.load(Ordering::Relaxed),
                "store_data_loss_detected"
            );
        }
        *known = Some(stored);
        Ok(lost)
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions claimed.
    pub claimed: usize,
    /// Runs triggered.
    pub triggered: usize,
    /// Sessions skipped because their lock is held.
    pub busy: usize,
    /// Sessions removed from the index (nothing open).
    pub settled: usize,
    /// Whether a data loss was detected.
    pub data_loss: bool,
}

/// The per-worker sweep of the due-time index.
pub struct Sweeper {
    stores: Stores,
    mutex: Arc<dyn SessionMutex>,
    trigger: Arc<dyn RunTrigger>,
    settings: LivenessSettings,
    epoch: EpochWatch,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Sweeper {
    /// A sweeper over `backend`, triggering runs with `trigger`.
    pub fn new(
        backend: &Backend,
        trigger: Arc<dyn RunTrigger>,
        settings: LivenessSettings,
    ) -> Self {
        Self {
            stores: backend.stores.clone(),
            mutex: Arc::clone(&backend.mutex),
            trigger,
            settings,
            epoch: EpochWatch::default(),
        }
    }

    /// One sweep: epoch check, claim, re-trigger.
    pub async fn sweep_once(&self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport {
            data_loss: self.epoch.check(&self.stores).await?,
            ..SweepReport::default()
        };
        let now = now_ms();
        let claimed = self
            .stores
            .pending
            .claim_due(
                now,
                now.saturating_add(offset_ms(self.settings.pending_grace())),
                self.settings.sweep_batch,
            )
            .await?;
        report.claimed = claimed.len();
        for due in claimed {
            let session_key = due.session_key.as_str();
            match self.mutex.is_locked(session_key).await {
                Ok(true) => {
                    report.busy += 1;
                    continue;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(session_key, error = %acf_sdk::error::Report(&error), "pending_sweep_lock_check_failed");
                    continue;
                }
            }
            let open = self.stores.messages.open_messages(session_key).await?;
            let Some(oldest) = open.first() else {
                if self.stores.pending.settle(session_key).await? {
                    report.settled += 1;
                }
                continue;
            };
            let Some(payload) = due
                .route
                .as_deref()
                .and_then(|route| payload_for(route, oldest).ok())
            else {
                tracing::error!(session_key, message_id = %oldest.id, "pending_session_unroutable");
                continue;
            };
            match self.trigger.trigger(&payload).await {
                Ok(run_id) => {
                    report.triggered += 1;
                    count(&metrics().retriggers);
                    tracing::info!(
                        session_key,
                        message_id = %oldest.id,
                        open_messages = open.len(),
                        run_id = %run_id,
                        "pending_session_retriggered"
                    );
                }
                Err(error) => {
                    // The claim re-scored the session one grace period ahead; make it due again at once.
                    tracing::warn!(session_key, error = %acf_sdk::error::Report(&error), "pending_retrigger_failed");
                    if let Some(route) = due.route.as_deref() {
                        self.stores
                            .pending
                            .mark_due(session_key, route, now, true)
                            .await?;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Sweeps every `sweep_interval_ms` in the background until stopped.
    pub fn spawn(self) -> SweeperHandle {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let every = self.settings.sweep_interval();
            tracing::info!(
                sweep_interval_ms = self.settings.sweep_interval_ms,
                pending_grace_ms = self.settings.pending_grace_ms,
                "pending_sweeper_started"
            );
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                match self.sweep_once().await {
                    Ok(report) if report.triggered > 0 || report.data_loss => {
                        tracing::info!(
                            claimed = report.claimed,
                            triggered = report.triggered,
                            busy = report.busy,
                            settled = report.settled,
                            "pending_sweep_done"
                        );
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(error = %acf_sdk::error::Report(&error), "pending_sweep_failed")
                    }
                }
            }
        });
        SweeperHandle { stop, task }
    }
}

/// A running [`Sweeper`].
#[derive(Debug)]
pub struct SweeperHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl SweeperHandle {
    /// Stops the sweeps and waits for the current one.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
