//! The worker: registers workflows, listens for assignments, runs steps within slot limits, reports results,
//! survives engine outages, and shuts down gracefully.
//!
//! ```no_run
//! # async fn demo(wf: acf_sdk::FnWorkflow) -> acf_sdk::Result<()> {
//! let client = acf_sdk::Client::from_env()?;
//! client.worker("my-worker").slots(50).workflow(wf).build()?.run().await
//! # }
//! ```

mod backend;
mod dispatch;
mod health;
mod logs;
mod metrics;
mod session;
mod shutdown;
mod state;
mod version;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics, Outcome};
pub(crate) use state::Shared;
pub use state::WorkerStatus;
pub use version::EngineVersion;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::{DEFAULT_SLOT, DURABLE_SLOT, LabelValue};
use crate::workflow::Workflow;

/// Configures a [`Worker`]. Created by [`Client::worker`].
pub struct WorkerBuilder {
    client: Client,
    name: String,
    workflows: Vec<Arc<dyn Workflow>>,
    slot_config: BTreeMap<String, i32>,
    labels: BTreeMap<String, LabelValue>,
    cancel_grace: Duration,
    drain_timeout: Duration,
    heartbeat_interval: Duration,
    max_consecutive_failures: u32,
    handle_signals: bool,
    send_started: bool,
    workflows_registered: bool,
    health_addr: Option<SocketAddr>,
}

impl Client {
    /// A worker builder; `name` is namespaced like Python's.
    pub fn worker(&self, name: &str) -> WorkerBuilder {
        let health = &self.config().healthcheck;
        let health_addr = health.enabled.then(|| {
            let ip = if health.bind_address.is_empty() {
                "0.0.0.0"
            } else {
                health.bind_address.as_str()
            };
            format!("{ip}:{}", health.port).parse().ok()
        });
        WorkerBuilder {
            client: self.clone(),
            name: self.config().apply_namespace(name),
            workflows: Vec::new(),
            slot_config: BTreeMap::new(),
            labels: BTreeMap::new(),
            cancel_grace: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(4),
            max_consecutive_failures: 15,
            handle_signals: true,
            send_started: true,
            workflows_registered: false,
            health_addr: health_addr.flatten(),
        }
    }
}

impl WorkerBuilder {
    /// Adds a workflow.
    #[must_use]
    pub fn workflow(mut self, workflow: impl Workflow) -> Self {
        self.workflows.push(Arc::new(workflow));
        self
    }

    /// Adds a workflow whose registration definition `configure` adjusts (e.g. retries, backoff and
    /// concurrency read from configuration); see [`Workflow::configured`]. The adjusted definition is
    /// validated by [`build`](Self::build).
    #[must_use]
    pub fn workflow_with<W, F>(self, workflow: W, configure: F) -> Self
    where
        W: Workflow,
        F: Fn(&mut crate::model::WorkflowDefinition) + Send + Sync + 'static,
    {
        self.workflow(workflow.configured(configure))
    }

    /// Adds a shared workflow.
    #[must_use]
    pub fn workflow_arc(mut self, workflow: Arc<dyn Workflow>) -> Self {
        self.workflows.push(workflow);
        self
    }

    /// Slots for normal steps (default 100 when the worker has normal steps).
    #[must_use]
    pub fn slots(self, slots: i32) -> Self {
        self.slot_type(DEFAULT_SLOT, slots)
    }

    /// Slots for durable steps (default 1000 when the worker has durable steps).
    #[must_use]
    pub fn durable_slots(self, slots: i32) -> Self {
        self.slot_type(DURABLE_SLOT, slots)
    }

    /// Capacity of a custom slot type.
    #[must_use]
    pub fn slot_type(mut self, slot: &str, capacity: i32) -> Self {
        self.slot_config.insert(slot.to_owned(), capacity);
        self
    }

    /// A worker label (affinity target of desired labels).
    #[must_use]
    pub fn label(mut self, key: &str, value: impl Into<LabelValue>) -> Self {
        self.labels.insert(key.to_owned(), value.into());
        self
    }

    /// How long a cancelled step may keep running after its token fired before it is aborted (default 1 s).
    #[must_use]
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// How long a graceful shutdown waits for running steps (default 30 s).
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Heartbeat period (default 4 s; the engine needs one at least every 5 s).
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Consecutive failed reconnects before [`Worker::run`] returns an error (default 15, as Python).
    #[must_use]
    pub fn max_consecutive_failures(mut self, n: u32) -> Self {
        self.max_consecutive_failures = n;
        self
    }

    /// Whether `run` reacts to SIGTERM/SIGINT (default true).
    #[must_use]
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Whether to report `STARTED` for each step (default true, as Python). The engine only records it for
    /// observability, so turning it off saves one call per step on hot paths.
    #[must_use]
    pub fn send_started(mut self, on: bool) -> Self {
        self.send_started = on;
        self
    }

    /// Tells the worker that its workflows were already registered (`PutWorkflow`) by the caller, e.g. to
    /// fail early with a clear error: the start then sends no second `PutWorkflow`. Workflows are still
    /// registered again if the engine forgets the worker (a restarted engine). Default false.
    #[must_use]
    pub fn workflows_registered(mut self, registered: bool) -> Self {
        self.workflows_registered = registered;
        self
    }

    /// Serves `/livez`, `/readyz`, `/metrics` on `addr` (default from `HATCHET_CLIENT_WORKER_HEALTHCHECK_*`).
    #[must_use]
    pub fn health_server(mut self, addr: Option<SocketAddr>) -> Self {
        self.health_addr = addr;
        self
    }

    /// Python's slot rules: explicit values first; `default` (100) if any normal step, `durable` (1000) if any
    /// durable step; every slot type a step requests must be configured.
    fn resolve_slots(&self) -> Result<BTreeMap<String, i32>> {
        let mut slots = self.slot_config.clone();
        let tasks: Vec<_> = self
            .workflows
            .iter()
            .flat_map(|w| {
                let d = w.definition();
                d.all_tasks().cloned().collect::<Vec<_>>()
            })
            .collect();
        if tasks.iter().any(|t| !t.durable) {
            slots.entry(DEFAULT_SLOT.to_owned()).or_insert(100);
        }
        if tasks.iter().any(|t| t.durable) {
            slots.entry(DURABLE_SLOT.to_owned()).or_insert(1000);
        }
        for task in &tasks {
            for slot in task.effective_slot_requests().keys() {
                if !slots.contains_key(slot) {
                    return Err(Error::Worker(format!(
                        "step `{}` requests slot type `{slot}`, which the worker does not configure",
                        task.name
                    )));
                }
            }
        }
        if slots.is_empty() {
            slots.insert(DEFAULT_SLOT.to_owned(), 100);
        }
        Ok(slots)
    }

    /// Validates the workflows and builds the worker.
    pub fn build(self) -> Result<Worker> {
        if !crate::model::is_valid_name(&self.name) {
            return Err(Error::Worker(format!(
                "invalid worker name `{}`: use letters, digits, `.`, `-`, `_`",
                self.name
            )));
        }
        let namespace = self.client.config().namespace.clone();
        let mut actions = HashMap::new();
        for workflow in &self.workflows {
            let definition = workflow.definition();
            definition.validate()?;
            let service = definition.service_name(&namespace);
            for task in definition.all_tasks() {
                actions.insert(
                    format!("{service}:{}", task.name),
                    state::ActionEntry {
                        workflow: Arc::clone(workflow),
                        workflow_name: definition.namespaced_name(&namespace),
                        step: task.name.clone(),
                        durable: task.durable,
                        slot_requests: task.effective_slot_requests(),
                    },
                );
            }
        }
        let slot_config = self.resolve_slots()?;
        let metrics = Arc::new(Metrics::default());
        let slots = slot_config
            .iter()
            .map(|(k, v)| {
                metrics.set_slots_total(k, i64::from(*v));
                (
                    k.clone(),
                    Arc::new(Semaphore::new(usize::try_from(*v).unwrap_or(0))),
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            client: self.client,
            name: self.name,
            workflows: self.workflows,
            actions,
            slot_config,
            slots,
            labels: self.labels,
            metrics,
            options: state::Options {
                cancel_grace: self.cancel_grace,
                drain_timeout: self.drain_timeout,
                heartbeat_interval: self.heartbeat_interval,
                max_consecutive_failures: self.max_consecutive_failures,
                handle_signals: self.handle_signals,
                send_started: self.send_started,
                workflows_registered: self.workflows_registered,
            },
            status: Mutex::new(WorkerStatus::default()),
            worker_id: tokio::sync::watch::Sender::new(None),
            running: Mutex::new(HashMap::new()),
            engine_version: Mutex::new(EngineVersion::default()),
            tasks_started: std::sync::atomic::AtomicU64::new(0),
            reports: tokio_util::task::TaskTracker::new(),
            stop_taking_work: CancellationToken::new(),
            durable: tokio::sync::OnceCell::new(),
            log_lines: std::sync::OnceLock::new(),
        });
        let handle = WorkerHandle {
            shared: Arc::clone(&shared),
            force: CancellationToken::new(),
            health: Arc::new(Mutex::new(None)),
        };
        Ok(Worker {
            shared,
            health_addr: self.health_addr,
            handle,
        })
    }
}

/// A configured worker; [`run`](Worker::run) it.
pub struct Worker {
    shared: Arc<Shared>,
    health_addr: Option<SocketAddr>,
    handle: WorkerHandle,
}

/// Controls and observes a running worker.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    force: CancellationToken,
    health: Arc<Mutex<Option<SocketAddr>>>,
}

impl WorkerHandle {
    /// Starts a graceful shutdown: stop taking work, drain running steps up to the drain timeout, report
    /// stragglers as failed, unsubscribe.
    pub fn shutdown(&self) {
        self.shared.stop_taking_work.cancel();
    }

    /// Stops at once: running steps are aborted without reports.
    pub fn force_shutdown(&self) {
        self.shared.stop_taking_work.cancel();
        self.force.cancel();
    }

    /// The current health status.
    pub fn status(&self) -> WorkerStatus {
        self.shared.status()
    }

    /// Resolves once the worker is ready (registered, listening, a heartbeat accepted: `/readyz` is 200).
    /// Never resolves if it does not get there; race it with the worker's `run` when that matters.
    pub async fn ready(&self) {
        while self.status().not_ready_reason().is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// The address the health server is bound to, once it is.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        *state::lock(&self.health)
    }

    /// The engine version reported by `GetVersion` (0.0.0 for legacy engines).
    pub fn engine_version(&self) -> EngineVersion {
        self.shared.engine_version()
    }
}

impl Worker {
    /// A handle to stop or observe the worker from elsewhere.
    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Runs until shutdown (a signal, [`WorkerHandle::shutdown`], or the task limit) and returns `Ok(())`
    /// after a graceful drain; returns an error if workflows cannot be registered, if the connection cannot be
    /// re-established after the configured number of attempts, or on a forced shutdown.
    pub async fn run(self) -> Result<()> {
        let shared = self.shared;
        let force = self.handle.force.clone();
        let background = CancellationToken::new();
        let _stop_background = background.clone().drop_guard();

        // Once per start, as the official SDKs do (the supervisor only sends them again to an engine that
        // forgot the worker).
        if !shared.options.workflows_registered {
            session::put_workflows(&shared).await?;
        }
        let version = session::engine_version(&shared).await;
        *state::lock(&shared.engine_version) = version;
        tracing::info!(worker = %shared.name, engine = ?version, actions = shared.actions.len(), "starting worker");

        if let Some(addr) = self.health_addr {
            let bound = health::serve(Arc::clone(&shared), addr, background.clone())
                .await
                .map_err(|e| {
                    Error::Worker(format!("cannot bind the health server on {addr}: {e}"))
                })?;
            *state::lock(&self.handle.health) = Some(bound);
        }
        if !shared.client.config().disable_log_capture {
            logs::spawn_forwarder(&shared, background.clone());
        }
        if shared.options.handle_signals {
            shutdown::watch_signals(
                shared.stop_taking_work.clone(),
                force.clone(),
                shared.client.config().force_shutdown_on_shutdown_signal,
                background.clone(),
            );
        }
        let signals = session::Signals::new();
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(session::heartbeat(
            Arc::clone(&shared),
            Arc::clone(&signals),
            heartbeat_stop.clone(),
        ));

        let supervised = tokio::select! {
            r = session::supervise(Arc::clone(&shared), signals, shared.stop_taking_work.clone()) => r,
            () = force.cancelled() => Err(Error::Worker("forced shutdown".into())),
        };
        let result = match supervised {
            Ok(()) => shutdown::drain(&shared, &force).await,
            Err(e) => {
                shutdown::abort_all(&shared);
                Err(e)
            }
        };
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        if let Some(durable) = shared.durable.get() {
            durable.close();
        }
        shutdown::unsubscribe(&shared).await;
        result
    }
}
