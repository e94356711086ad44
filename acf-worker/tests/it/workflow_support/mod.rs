//! Helpers for the logical-turn workflow tests: both backends (memory, and the shared Redis with a unique key
//! prefix), a scriptable brain that counts its calls, fast test settings and payload builders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acf_sdk::testing::{TestContext, TestRunFailure, run_workflow};
use acf_sdk::{StepError, Workflow};
use acf_worker::brain::{Brain, BrainError, BrainResult, TurnContext};
pub use acf_worker::models::Conversation;
use acf_worker::models::{TurnLimits, WorkflowInput, now_utc};
use acf_worker::models::{TurnOutcome, WorkflowOutput};
use acf_worker::mutex::{Lease, LockOptions};
use acf_worker::stores::{
    Backend, FailureRecord, MessageStatus, RedisConnectOptions, ResponseEntry, StoreSettings,
    StoredMessage,
};
use acf_worker::turn_manager::TurnManager;
use acf_worker::workflow::{FailureReport, LogicalTurnWorkflow, TurnInput, TurnSettings};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Declares `memory::$case` and `redis::$case` tests running `$case(kind)` on each backend (the calling module
/// imports `Kind`).
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case(super::Kind::Memory).await } )*
        }
        mod redis {
            $( #[tokio::test] async fn $case() { super::$case(super::Kind::Redis).await } )*
        }
    };
}
pub(crate) use on_both_backends;

/// The Redis every test may use, with unique key prefixes.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
}

/// Opens a fresh backend of `kind` (Redis: a unique key prefix).
pub async fn backend(kind: Kind) -> Backend {
    let settings = StoreSettings {
        key_prefix: format!("test-wf-{}", Uuid::new_v4().simple()),
        ..StoreSettings::default()
    };
    match kind {
        Kind::Memory => Backend::memory(settings),
        Kind::Redis => Backend::redis(REDIS_URL, settings, &RedisConnectOptions::default())
            .await
            .expect("the shared Redis at 127.0.0.1:6379"),
    }
}

/// Settings with short locks and a fixed window of `window_ms` on every channel.
pub fn settings(window_ms: u64) -> TurnSettings {
    TurnSettings {
        lock: LockOptions::new(Duration::from_secs(5), Duration::from_millis(500)),
        heartbeat_interval: Duration::from_millis(200),
        turn_manager: TurnManager::new(window_ms, window_ms, [("web", window_ms)]),
        limits: TurnLimits {
            max_messages: 50,
            max_window_ms: 20_000,
        },
        max_message_chars: 1_000,
        brain_timeout: Duration::from_secs(30),
        pending_grace: Duration::from_secs(60),
    }
}

/// What the test brain does.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Echo after a delay.
    Echo(Duration),
    /// Fail with a non-retryable error.
    Fail,
    /// Fail with a retryable timeout.
    Timeout,
    /// Wait up to the duration for `has_pending_messages` to turn true, then answer `pending=<bool>`.
    WatchPending(Duration),
}

/// A brain whose behaviour the test chooses, counting its calls.
pub struct TestBrain {
    pub behaviour: Behaviour,
    pub calls: AtomicUsize,
}

impl TestBrain {
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            calls: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Brain for TestBrain {
    fn name(&self) -> &str {
        "test"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match &self.behaviour {
            Behaviour::Echo(delay) => {
                tokio::time::sleep(*delay).await;
                let texts: Vec<&str> = ctx.messages().iter().map(|m| m.content.as_str()).collect();
                Ok(BrainResult::text(format!("Echo: {}", texts.join(" / "))))
            }
            Behaviour::Fail => Err(BrainError::Failed("the agent refused".into())),
            Behaviour::Timeout => Err(BrainError::Timeout {
                timeout: Duration::from_millis(10),
            }),
            Behaviour::WatchPending(limit) => {
                let deadline = tokio::time::Instant::now() + *limit;
                while tokio::time::Instant::now() < deadline {
                    if ctx.has_pending_messages().await {
                        return Ok(BrainResult::text("pending=true"));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(BrainResult::text("pending=false"))
            }
        }
    }
}

/// A workflow on `backend` with `brain`.
pub fn workflow(backend: &Backend, brain: Arc<TestBrain>, window_ms: u64) -> LogicalTurnWorkflow {
    LogicalTurnWorkflow::new(backend, brain, settings(window_ms))
}

/// Intake without a trigger: stores the message and signals the inbox, as `intake::submit` does before triggering.
pub async fn accept(backend: &Backend, input: &WorkflowInput) {
    let message = StoredMessage::pending(
        input.message_id.parse().expect("uuid"),
        input.session_key(),
        input.channel.clone(),
        input.message_content.clone(),
        now_utc(),
    );
    assert!(
        backend
            .stores
            .accept_message(&message)
            .await
            .expect("accept")
    );
}

/// Takes `session`'s lock for another holder (30 s lease, no waiting), as a concurrent run would.
pub async fn hold_lock(backend: &Backend, session: &str) -> Lease {
    backend
        .mutex
        .acquire(
            session,
            LockOptions::new(Duration::from_secs(30), Duration::ZERO),
        )
        .await
        .unwrap()
}

/// The stored copy of `input`'s message (it must exist).
pub async fn stored_message(backend: &Backend, input: &WorkflowInput) -> StoredMessage {
    backend
        .stores
        .messages
        .get(
            &input.session_key(),
            input.message_id.parse().expect("uuid"),
        )
        .await
        .expect("message store")
        .expect("the message is stored")
}

/// Asserts that `input`'s message is stored as answered by `turn_id` (processed by that turn's commit).
pub async fn assert_processed_by(backend: &Backend, input: &WorkflowInput, turn_id: Uuid) {
    let message = stored_message(backend, input).await;
    assert_eq!(
        message.status,
        MessageStatus::Processed { turn_id },
        "{message:?}"
    );
}

/// Asserts that `input`'s message is closed as failed by `turn_id` and that the gateway got exactly one entry on
/// its session's stream: the failure entry for that message. Returns the entry, for checks of its error.
pub async fn assert_failed_by(
    backend: &Backend,
    input: &WorkflowInput,
    turn_id: Uuid,
) -> ResponseEntry {
    let message = stored_message(backend, input).await;
    assert!(
        matches!(&message.status, MessageStatus::Failed { turn_id: t, .. } if *t == turn_id),
        "the message is closed as failed by {turn_id}: {message:?}"
    );
    let mut entries = responses_of(backend, &input.session_key()).await;
    assert_eq!(entries.len(), 1, "one failure entry: {entries:?}");
    let (_, entry) = entries.remove(0);
    assert_eq!(entry.status, TurnOutcome::Failed);
    assert_eq!(entry.message_ids, vec![message.id]);
    entry
}

/// The durable failure record of `turn_id`, a turn of `input`'s session (it must exist).
pub async fn failure_record(
    backend: &Backend,
    input: &WorkflowInput,
    turn_id: Uuid,
) -> FailureRecord {
    backend
        .stores
        .audit
        .get_failure(&input.session_key(), turn_id)
        .await
        .expect("audit store")
        .expect("a failure record")
}

pub fn payload(input: &WorkflowInput) -> TurnInput {
    TurnInput::new(input)
}

/// A turn run in-process by the SDK's harness ([`run_workflow`]), its outputs decoded.
#[derive(Debug)]
pub struct TurnRun {
    /// The final output, or the failure.
    pub result: Result<WorkflowOutput, TurnFailure>,
    /// Every completed step's output, by step name.
    pub outputs: BTreeMap<String, Value>,
    /// Attempts per step that ran, by step name (the harness reports them for a failed run; empty otherwise).
    pub attempts: BTreeMap<String, i32>,
}

/// A turn that failed for good.
#[derive(Debug)]
pub struct TurnFailure {
    /// The step that failed.
    pub step: String,
    /// Its last error.
    pub error: StepError,
    /// What `recover` returned (its error if it failed).
    pub report: Result<FailureReport, StepError>,
}

/// Runs one logical turn for `input` on `workflow` (as declared, or [`acf_sdk::Workflow::configured`]), without
/// an engine.
pub async fn run_turn<W: Workflow + ?Sized>(workflow: &W, input: &TurnInput) -> TurnRun {
    match run_workflow(workflow, TestContext::new(input.as_json())).await {
        Ok(outputs) => TurnRun {
            result: Ok(decode(&outputs[LogicalTurnWorkflow::COMMIT_AND_RESPOND])),
            attempts: BTreeMap::new(),
            outputs,
        },
        Err(failure) => {
            let TestRunFailure {
                step,
                error,
                on_failure,
                outputs,
                attempts,
                ..
            } = *failure;
            let report = on_failure
                .expect("the workflow has an on-failure handler")
                .map(|value| decode(&value));
            TurnRun {
                result: Err(TurnFailure {
                    step,
                    error,
                    report,
                }),
                outputs,
                attempts,
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).expect("a step output of the declared type")
}

/// Steps dispatched one by one, as the engine would, on `input`.
pub struct Steps<'a> {
    wf: &'a LogicalTurnWorkflow,
    base: TestContext,
}

impl<'a> Steps<'a> {
    pub fn new(wf: &'a LogicalTurnWorkflow, input: &TurnInput) -> Self {
        Self {
            wf,
            base: TestContext::new(input.as_json()),
        }
    }

    pub async fn step(&self, name: &str, parents: &[(&str, &Value)]) -> Result<Value, String> {
        let mut ctx = self.base.clone().step(name);
        for (parent, output) in parents {
            ctx = ctx.parent_output(parent, output);
        }
        Workflow::dispatch(self.wf, name, ctx.build())
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs the steps in their declared (dependency) order, each with its parents' outputs; `between` runs after
    /// the step named.
    pub async fn all(&self, after: &str, between: impl AsyncFnOnce()) -> WorkflowOutput {
        let mut between = Some(between);
        let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
        for task in Workflow::definition(self.wf).tasks {
            let name = task.name.as_str();
            let parents: Vec<(&str, &Value)> = task
                .parents
                .iter()
                .map(|p| (p.as_str(), &outputs[p]))
                .collect();
            // Retried like the engine does: the first command after a Redis restart fails while reconnecting.
            let mut attempt = 0;
            let output = loop {
                match self.step(name, &parents).await {
                    Ok(output) => break output,
                    Err(error) if attempt < 10 => {
                        attempt += 1;
                        eprintln!("{name} attempt {attempt} failed: {error}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(error) => panic!("{name}: {error}"),
                }
            };
            if name == after
                && let Some(f) = between.take()
            {
                f().await;
            }
            outputs.insert(task.name, output);
        }
        serde_json::from_value(outputs[LogicalTurnWorkflow::COMMIT_AND_RESPOND].clone()).unwrap()
    }
}

/// The response stream's entries (id, entry) for `session`, oldest first.
pub async fn responses_of(backend: &Backend, session: &str) -> Vec<(String, ResponseEntry)> {
    backend
        .stores
        .responses
        .read_after("0", 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.session_key == session)
        .collect()
}
