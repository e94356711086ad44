//! Helpers for the ruche-worker end-to-end tests: the embedded engine, the shared Redis (unique key prefix per
//! test), the logical-turn worker started as `ruche-worker run` starts it, a brain that records when it ran, and
//! message submission through intake.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acf_sdk::Client;
use acf_sdk::engine::EngineHandle;
use acf_worker::brain::{Brain, BrainError, BrainResult, TurnContext};
use acf_worker::config::Settings;
use acf_worker::intake::{self, Submitted};
use acf_worker::models::{TurnLimits, WorkflowInput, WorkflowOutput};
use acf_worker::mutex::LockOptions;
use acf_worker::run::{RunningWorker, start_with_options};
use acf_worker::stores::{Backend, RedisConnectOptions, StoreSettings};
use acf_worker::turn_manager::TurnManager;
use acf_worker::workflow::{LogicalTurnWorkflow, TurnSettings, WorkflowOptions};
use async_trait::async_trait;
use uuid::Uuid;

pub use crate::sdk_support::client;

/// The shared Redis every e2e test uses (each test under its own key prefix).
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// One brain call as the brain saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The session the turn belongs to.
    pub session_key: String,
    /// The turn id the worker minted.
    pub turn_id: Uuid,
    /// The message texts the brain was given.
    pub messages: Vec<String>,
    /// When the call began.
    pub started: Instant,
    /// When the call returned.
    pub ended: Instant,
}

/// What the recording brain does.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Echo after the delay.
    Echo(Duration),
    /// Refuse every turn (non-retryable).
    Refuse,
    /// Never answer (until the process or runtime dies).
    Hang,
}

/// Echoes (or fails, or hangs) and records every call with its start and end.
pub struct RecordingBrain {
    mode: Mode,
    calls: Mutex<Vec<Call>>,
    started: tokio::sync::Notify,
}

impl RecordingBrain {
    /// A brain acting as `mode`, with no calls recorded yet.
    pub fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            calls: Mutex::new(Vec::new()),
            started: tokio::sync::Notify::new(),
        })
    }

    /// Every call so far, in start order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Resolves once a call has started.
    pub async fn wait_started(&self) {
        self.started.notified().await;
    }
}

#[async_trait]
impl Brain for RecordingBrain {
    fn name(&self) -> &str {
        "recording"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let started = Instant::now();
        self.started.notify_one();
        let messages: Vec<String> = ctx.messages().iter().map(|m| m.content.clone()).collect();
        let result = match self.mode {
            Mode::Echo(delay) => {
                tokio::time::sleep(delay).await;
                Ok(BrainResult::text(format!("Echo: {}", messages.join(" / "))))
            }
            Mode::Refuse => Err(BrainError::Failed("the agent refused".into())),
            Mode::Hang => {
                std::future::pending::<()>().await;
                unreachable!("pending never resolves")
            }
        };
        self.calls.lock().unwrap().push(Call {
            session_key: ctx.session_key().to_owned(),
            turn_id: ctx.turn().id(),
            messages,
            started,
            ended: Instant::now(),
        });
        result
    }
}

/// Fast turn settings: a fixed `window_ms` window on `web`, a 5 s lock.
pub fn turn_settings(window_ms: u64) -> TurnSettings {
    TurnSettings {
        lock: LockOptions::new(Duration::from_secs(5), Duration::from_secs(2)),
        heartbeat_interval: Duration::from_millis(500),
        turn_manager: TurnManager::new(window_ms, window_ms, [("web", window_ms)]),
        limits: TurnLimits {
            max_messages: 50,
            max_window_ms: 20_000,
        },
        max_message_chars: 16_000,
        brain_timeout: Duration::from_secs(30),
        pending_grace: Duration::from_secs(60),
    }
}

/// A fresh Redis backend with its own key prefix.
pub async fn redis_backend() -> Backend {
    redis_backend_at(&unique_prefix()).await
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("test-e2e-{}", Uuid::new_v4().simple())
}

/// A Redis backend on the keys under `prefix`.
pub async fn redis_backend_at(prefix: &str) -> Backend {
    let settings = StoreSettings {
        key_prefix: prefix.to_owned(),
        ..StoreSettings::default()
    };
    Backend::redis(REDIS_URL, settings, &RedisConnectOptions::default())
        .await
        .expect("the shared Redis at 127.0.0.1:6379")
}

/// Starts a logical-turn worker with `slots` slots on `client`.
pub async fn start_worker(
    client: &Client,
    backend: &Backend,
    brain: Arc<RecordingBrain>,
    window_ms: u64,
    slots: u32,
) -> RunningWorker {
    let workflow = Arc::new(LogicalTurnWorkflow::new(
        backend,
        brain,
        turn_settings(window_ms),
    ));
    let mut settings = Settings::default();
    settings.jobs.hatchet.worker_concurrency = slots;
    start_with_options(client, workflow, &settings, WorkflowOptions::default())
        .await
        .expect("the worker registers")
}

/// An engine, the shared Redis, and a worker answering with `brain`.
pub struct Harness {
    /// The embedded engine.
    pub engine: EngineHandle,
    /// A client of the engine.
    pub client: Client,
    /// The Redis backend under a fresh key prefix.
    pub backend: Backend,
    /// That key prefix.
    pub prefix: String,
    /// The brain the worker answers with.
    pub brain: Arc<RecordingBrain>,
    /// The running worker (taken by [`Harness::stop`]).
    pub worker: Option<RunningWorker>,
}

impl Harness {
    /// Starts the engine and a worker with a `window_ms` accumulation window and `slots` slots.
    pub async fn start(mode: Mode, window_ms: u64, slots: u32) -> Self {
        let engine = crate::sdk_support::engine().await;
        let client = client(&engine);
        let prefix = unique_prefix();
        let backend = redis_backend_at(&prefix).await;
        let brain = RecordingBrain::new(mode);
        let worker = start_worker(&client, &backend, brain.clone(), window_ms, slots).await;
        Self {
            engine,
            client,
            backend,
            prefix,
            brain,
            worker: Some(worker),
        }
    }

    /// Submits one message through intake.
    pub async fn send(&self, input: &WorkflowInput) -> Submitted {
        intake::submit(&self.backend.stores, &self.client, input, 16_000)
            .await
            .expect("intake")
    }

    /// Drains the worker and shuts the engine down.
    pub async fn stop(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await.expect("clean drain");
        }
        self.engine.shutdown().await;
    }
}

/// The run's final output (the commit step's), within `limit`.
pub async fn output(submitted: &Submitted, limit: Duration) -> WorkflowOutput {
    let result = tokio::time::timeout(limit, submitted.run.result())
        .await
        .expect("the run finishes in time")
        .expect("the run succeeds");
    result
        .step(LogicalTurnWorkflow::COMMIT_AND_RESPOND)
        .expect("a workflow output")
}

/// Response stream entries of `session_key`.
pub async fn responses_of(
    backend: &Backend,
    session_key: &str,
) -> Vec<acf_worker::stores::ResponseEntry> {
    backend
        .stores
        .responses
        .read_after("0", 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, entry)| entry)
        .filter(|entry| entry.session_key == session_key)
        .collect()
}

/// The message `id` of `session_key` as the message store holds it (`None` when it was never stored).
pub async fn stored_message(
    backend: &Backend,
    session_key: &str,
    id: Uuid,
) -> Option<acf_worker::stores::StoredMessage> {
    backend
        .stores
        .messages
        .get(session_key, id)
        .await
        .expect("the message store answers")
}

/// Asserts that message `id` of `session_key` is closed as processed by turn `turn_id`.
pub async fn assert_processed_by(backend: &Backend, session_key: &str, id: Uuid, turn_id: Uuid) {
    let status = backend
        .stores
        .messages
        .status(session_key, id)
        .await
        .expect("the message store answers");
    assert_eq!(
        status,
        Some(acf_worker::stores::MessageStatus::Processed { turn_id }),
        "message {id} of {session_key}"
    );
}

/// Whether the session lock of `session_key` is held.
pub async fn is_locked(backend: &Backend, session_key: &str) -> bool {
    backend
        .mutex
        .is_locked(session_key)
        .await
        .expect("the mutex answers")
}
