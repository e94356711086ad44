//! Starting and stopping the worker: build the workflow from settings, connect to Hatchet, register, serve until a
//! signal, drain. The CLI maps [`RunError`] to exit code 1.

use std::sync::Arc;

use acf_sdk::{Client, ClientConfig, WorkerHandle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::brain::{self, BrainError};
use crate::config::Settings;
use crate::intake::NewMessageIntake;
use crate::stores::{Backend, StoreError};
use crate::workflow::{LogicalTurnWorkflow, TurnSettings, WorkflowOptions};

/// Name the worker registers under.
pub const WORKER_NAME: &str = "ruche-worker";

/// Why the worker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `jobs.hatchet.enabled` is false.
    #[error("Hatchet is disabled in configuration (jobs.hatchet.enabled = false)")]
    HatchetDisabled,
    /// No usable Hatchet client configuration.
    #[error(
        "cannot configure the Hatchet client (set HATCHET_CLIENT_TOKEN or RUCHE_JOBS__HATCHET__API_KEY, or use `run --embedded`)"
    )]
    Client(#[source] acf_sdk::Error),
    /// Hatchet did not accept the workflow (unreachable, or refused it).
    #[error("cannot register the logical-turn workflow with Hatchet at {host_port}")]
    Register {
        /// The engine address.
        host_port: String,
        /// The cause.
        #[source]
        source: acf_sdk::Error,
    },
    /// The Hatchet worker stopped with an error (lost connection, refused registration).
    #[error("the Hatchet worker stopped")]
    Worker(#[source] acf_sdk::Error),
    /// The session store could not be opened.
    #[error("cannot open the session store")]
    Store(#[from] StoreError),
    /// The brain could not be built.
    #[error("cannot build the brain")]
    Brain(#[from] BrainError),
    /// `[events]` names a pattern no event type matches.
    #[error(transparent)]
    Events(#[from] crate::events::PatternError),
    /// The embedded engine could not start.
    #[cfg(feature = "embedded")]
    #[error("cannot start the embedded engine")]
    Engine(#[from] acf_sdk::engine::EngineError),
}

/// Opens the configured backend and brain and builds the workflow on them.
pub async fn open_workflow(
    settings: &Settings,
) -> Result<(Backend, Arc<LogicalTurnWorkflow>), RunError> {
    let backend = Backend::open(&settings.storage.session).await?;
    let workflow = workflow_on(&backend, settings)?;
    Ok((backend, workflow))
}

/// The workflow on an already opened backend, with the configured brain.
pub fn workflow_on(
    backend: &Backend,
    settings: &Settings,
) -> Result<Arc<LogicalTurnWorkflow>, RunError> {
    let brain = brain::from_settings(&settings.brain)?;
    tracing::info!(brain = brain.name(), "brain_created");
    workflow_with_brain(backend, settings, brain)
}

/// The workflow on an already opened backend answering with `brain`, its events routed as `[events]` says.
pub fn workflow_with_brain(
    backend: &Backend,
    settings: &Settings,
    brain: Arc<dyn brain::Brain>,
) -> Result<Arc<LogicalTurnWorkflow>, RunError> {
    let router = crate::events::router_from_settings(&settings.events, &backend.stores)?;
    Ok(Arc::new(
        LogicalTurnWorkflow::new(backend, brain, TurnSettings::from_settings(settings))
            .with_events(Arc::new(router)),
    ))
}

/// The Hatchet client: `HATCHET_CLIENT_*` variables first; the token falls back to `jobs.hatchet.api_key`, and the
/// engine address to `jobs.hatchet.server_url` when the token does not carry one.
pub fn client_from_settings(settings: &Settings) -> Result<Client, RunError> {
    let hatchet = &settings.jobs.hatchet;
    let api_key = hatchet.api_key.as_ref().map(|key| key.expose().to_owned());
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let lookup = |name: &str, host_port: Option<&str>| match name {
        "HATCHET_CLIENT_TOKEN" => env(name).or_else(|| api_key.clone()),
        "HATCHET_CLIENT_HOST_PORT" => env(name).or_else(|| host_port.map(str::to_owned)),
        _ => env(name),
    };
    let config =
        ClientConfig::from_lookup(|name| lookup(name, None)).or_else(|error| match error {
            acf_sdk::config::ConfigError::MissingClaim { .. } => {
                let fallback = host_port_of(&hatchet.server_url);
                ClientConfig::from_lookup(|name| lookup(name, Some(&fallback)))
            }
            other => Err(other),
        });
    let client = config
        .map_err(acf_sdk::Error::from)
        .and_then(Client::new)
        .map_err(RunError::Client)?;
    tracing::info!(server_url = %client.config().host_port, namespace = %client.config().namespace, "hatchet_client_initialized");
    Ok(client)
}

/// `http://host:port/...` → `host:port`.
fn host_port_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A worker serving the logical-turn workflow in the background.
pub struct RunningWorker {
    handle: WorkerHandle,
    task: JoinHandle<acf_sdk::Result<()>>,
    /// Stops the `acf_worker_ready` watcher when the worker is gone.
    _ready_log: tokio_util::sync::DropGuard,
}

impl std::fmt::Debug for RunningWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningWorker")
            .field("status", &self.handle.status())
            .finish_non_exhaustive()
    }
}

impl RunningWorker {
    /// The SDK worker's handle (status, metrics, shutdown).
    pub fn handle(&self) -> &WorkerHandle {
        &self.handle
    }

    /// Drains (running steps finish, up to the drain timeout) and stops.
    pub async fn stop(self) -> Result<(), RunError> {
        self.handle.shutdown();
        self.join().await
    }

    /// Waits for the worker to stop on its own (shutdown requested elsewhere, or an error).
    pub async fn join(self) -> Result<(), RunError> {
        let result = match self.task.await {
            Ok(result) => result.map_err(RunError::Worker),
            Err(join) => Err(RunError::Worker(acf_sdk::Error::Worker(format!(
                "the worker task ended abnormally: {join}"
            )))),
        };
        tracing::info!(ok = result.is_ok(), "acf_worker_stopped");
        result
    }
}

/// Registers the workflow (so an unreachable or refusing Hatchet fails here, with its address), then starts a
/// worker with `settings.jobs.hatchet.worker_concurrency` slots. Signals are left to the caller.
pub async fn start_worker(
    client: &Client,
    workflow: Arc<LogicalTurnWorkflow>,
    settings: &Settings,
) -> Result<RunningWorker, RunError> {
    start_with_options(
        client,
        workflow,
        settings,
        WorkflowOptions::from_settings(&settings.jobs.hatchet),
    )
    .await
}

/// [`start_worker`] with explicit registration options.
pub async fn start_with_options(
    client: &Client,
    workflow: Arc<LogicalTurnWorkflow>,
    settings: &Settings,
    options: WorkflowOptions,
) -> Result<RunningWorker, RunError> {
    let turn_metrics = Arc::clone(workflow.metrics());
    let events = NewMessageIntake::new(
        workflow.stores().clone(),
        client.clone(),
        workflow.settings().max_message_chars,
    );
    let configured = options.configure(workflow);
    client
        .register(&configured)
        .await
        .map_err(|source| RunError::Register {
            host_port: client.config().host_port.clone(),
            source,
        })?;
    tracing::info!(
        workflow_name = crate::workflow::WORKFLOW_NAME,
        registered_class = "LogicalTurnWorkflow",
        "workflow_registered"
    );
    client
        .register(&events)
        .await
        .map_err(|source| RunError::Register {
            host_port: client.config().host_port.clone(),
            source,
        })?;
    tracing::info!(
        workflow_name = crate::intake::NEW_MESSAGE_WORKFLOW,
        event_key = crate::intake::NEW_MESSAGE_EVENT,
        "workflow_registered"
    );
    let slots = i32::try_from(settings.jobs.hatchet.worker_concurrency).unwrap_or(i32::MAX);
    let worker = client
        .worker(WORKER_NAME)
        .slots(slots)
        .handle_signals(false)
        // Registered just above (to fail early, naming the engine): the worker must not send it again.
        .workflows_registered(true)
        .workflow(configured)
        .workflow(events)
        .build()
        .map_err(RunError::Worker)?;
    let handle = worker.handle();
    // One registry: the SDK's worker metrics and the turn metrics come out of the same `/metrics` scrape.
    handle
        .metrics()
        .register(|registry| turn_metrics.register(registry));
    let task = tokio::spawn(worker.run());
    // `acf_worker_ready` means listening (what `/readyz` reports), which comes after this returns: the
    // caller must be able to handle signals meanwhile.
    let stop = CancellationToken::new();
    let ready = handle.clone();
    let watch = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = ready.ready() => tracing::info!(workflow_count = 2, slots, "acf_worker_ready"),
            () = watch.cancelled() => {}
        }
    });
    Ok(RunningWorker {
        handle,
        task,
        _ready_log: stop.drop_guard(),
    })
}

/// `ruche-worker run`: connects to Hatchet from the environment and configuration, serves until SIGINT or SIGTERM,
/// then drains and returns `Ok`. A second signal stops at once.
pub async fn run_worker(settings: &Settings) -> Result<(), RunError> {
    log_starting(settings);
    if !settings.jobs.hatchet.enabled {
        return Err(RunError::HatchetDisabled);
    }
    let client = client_from_settings(settings)?;
    serve(&client, settings).await
}

/// Serves on `client` until a signal (see [`run_worker`]).
pub async fn serve(client: &Client, settings: &Settings) -> Result<(), RunError> {
    let (backend, workflow) = open_workflow(settings).await?;
    let running = start_worker(client, workflow, settings).await?;
    let sweeper = crate::liveness::Sweeper::new(
        &backend,
        Arc::new(client.clone()),
        settings.liveness.clone(),
    )
    .spawn();
    let stop = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(running.handle().clone(), stop.clone()));
    let result = running.join().await;
    sweeper.stop().await;
    stop.cancel();
    let _ = signals.await;
    result
}

/// Logs `acf_worker_starting` with the address and slot count.
pub fn log_starting(settings: &Settings) {
    tracing::info!(
        server_url = %settings.jobs.hatchet.server_url,
        concurrency = settings.jobs.hatchet.worker_concurrency,
        "acf_worker_starting"
    );
}

/// First SIGINT/SIGTERM: graceful drain; second: immediate stop.
pub async fn watch_signals(handle: WorkerHandle, stop: CancellationToken) {
    let mut seen = 0;
    loop {
        let signal = tokio::select! {
            () = stop.cancelled() => return,
            signal = next_signal() => signal,
        };
        seen += 1;
        tracing::info!(signal, forced = seen > 1, "shutdown_signal_received");
        if seen == 1 {
            handle.shutdown();
        } else {
            handle.force_shutdown();
            return;
        }
    }
}

/// Waits for the next SIGINT or SIGTERM and names it.
pub async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
