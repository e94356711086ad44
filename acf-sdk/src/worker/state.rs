//! State shared by the worker's tasks (listener, heartbeat, running steps, health server).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::version::EngineVersion;
use crate::client::Client;
use crate::workflow::Workflow;

/// What the worker knows about an action id it serves.
pub(crate) struct ActionEntry {
    pub workflow: Arc<dyn Workflow>,
    pub workflow_name: String,
    pub step: String,
    pub durable: bool,
    pub slot_requests: BTreeMap<String, i32>,
}

/// A running attempt, keyed by `(task_run_external_id, retry_count)`.
pub(crate) struct Running {
    pub cancel: CancellationToken,
    pub cancelled: Arc<AtomicBool>,
    pub abort: Option<AbortHandle>,
}

/// Tunables of a worker.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub cancel_grace: Duration,
    pub drain_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_consecutive_failures: u32,
    pub handle_signals: bool,
    pub send_started: bool,
    pub workflows_registered: bool,
}

/// A snapshot of the worker's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The worker id from `Register`, if registered.
    pub worker_id: Option<String>,
    /// Whether the worker is listening: its `ListenV2` stream is requested and the engine has accepted a
    /// heartbeat since. (Hatchet sends a stream's response headers only with its first action, so an idle
    /// worker's stream is never "opened" in the HTTP/2 sense.)
    pub stream_connected: bool,
    /// Whether the worker is shutting down.
    pub draining: bool,
    /// The last connection problem, if any.
    pub last_error: Option<String>,
    /// Steps currently running.
    pub running: usize,
}

impl WorkerStatus {
    /// `None` when ready for work; otherwise why not (the `/readyz` 503 body).
    pub fn not_ready_reason(&self) -> Option<String> {
        let why = |base: &str| match &self.last_error {
            Some(e) => format!("{base}: {e}"),
            None => base.to_owned(),
        };
        if self.draining {
            Some("shutting down".to_owned())
        } else if self.worker_id.is_none() {
            Some(why("not registered"))
        } else if !self.stream_connected {
            Some(why("action stream disconnected"))
        } else {
            None
        }
    }
}

pub(crate) struct Shared {
    pub client: Client,
    pub name: String,
    pub workflows: Vec<Arc<dyn Workflow>>,
    pub actions: HashMap<String, ActionEntry>,
    pub slot_config: BTreeMap<String, i32>,
    pub slots: HashMap<String, Arc<Semaphore>>,
    pub labels: BTreeMap<String, crate::model::LabelValue>,
    pub metrics: Arc<Metrics>,
    pub options: Options,
    /// Everything but `worker_id`, which lives in [`Shared::worker_id`] (filled in by [`Shared::status`]).
    pub status: Mutex<WorkerStatus>,
    /// The id of the current registration (`None` between registrations); the durable-wait client
    /// watches it, so it needs no pointer back into this struct.
    pub worker_id: tokio::sync::watch::Sender<Option<String>>,
    pub running: Mutex<HashMap<(String, i32), Running>>,
    pub engine_version: Mutex<EngineVersion>,
    pub tasks_started: AtomicU64,
    /// Reports sent beside a running step (STARTED), which nothing awaits while the worker runs; the graceful
    /// shutdown waits for them so none is dropped with the process.
    pub reports: tokio_util::task::TaskTracker,
    /// Fired when the worker stops taking work (graceful shutdown or task limit).
    pub stop_taking_work: CancellationToken,
    pub durable: tokio::sync::OnceCell<Arc<crate::durable_client::DurableClient>>,
    /// This worker's log queue, set when log capture is on.
    pub log_lines: std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::log_layer::LogLine>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn worker_id(&self) -> Option<String> {
        self.worker_id.borrow().clone()
    }

    pub fn set_worker_id(&self, id: Option<String>) {
        self.worker_id.send_replace(id);
    }

    pub fn set_status(&self, f: impl FnOnce(&mut WorkerStatus)) {
        f(&mut lock(&self.status));
    }

    pub fn status(&self) -> WorkerStatus {
        let mut s = lock(&self.status).clone();
        s.worker_id = self.worker_id();
        s.running = lock(&self.running).len();
        s
    }

    pub fn engine_version(&self) -> EngineVersion {
        *lock(&self.engine_version)
    }

    pub fn count_started(&self) -> u64 {
        self.tasks_started.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Drop for Shared {
    /// A worker dropped without its orderly stop (its future aborted) still ends the durable streams.
    fn drop(&mut self) {
        if let Some(durable) = self.durable.get() {
            durable.close();
        }
    }
}
