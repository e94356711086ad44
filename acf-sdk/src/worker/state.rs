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
}

/// A snapshot of the worker's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The worker id from `Register`, if registered.
    pub worker_id: Option<String>,
    /// Whether the `ListenV2` stream is open.
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
    pub status: Mutex<WorkerStatus>,
    pub running: Mutex<HashMap<(String, i32), Running>>,
    pub engine_version: Mutex<EngineVersion>,
    pub tasks_started: AtomicU64,
    /// Fired when the worker stops taking work (graceful shutdown or task limit).
    pub stop_taking_work: CancellationToken,
    pub durable: tokio::sync::OnceCell<Arc<crate::durable::DurableClient>>,
    /// This worker's log queue, set when log capture is on.
    pub log_lines: std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::log_layer::LogLine>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn worker_id(&self) -> Option<String> {
        lock(&self.status).worker_id.clone()
    }

    pub fn set_status(&self, f: impl FnOnce(&mut WorkerStatus)) {
        f(&mut lock(&self.status));
    }

    pub fn status(&self) -> WorkerStatus {
        let mut s = lock(&self.status).clone();
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
