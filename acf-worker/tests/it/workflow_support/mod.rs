//! Helpers for the logical-turn workflow tests: both backends (memory, and the shared Redis with a unique key
//! prefix), a scriptable brain that counts its calls, fast test settings and payload builders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use acf_sdk::testing::TestContext;
use acf_worker::brain::{Brain, BrainError, BrainResult, TurnContext};
use acf_worker::models::WorkflowOutput;
use acf_worker::models::{TurnLimits, WorkflowInput, now_utc};
use acf_worker::mutex::LockOptions;
use acf_worker::stores::{Backend, RedisConnectOptions, StoreSettings, StoredMessage};
use acf_worker::turn_manager::TurnManager;
use acf_worker::workflow::{LogicalTurnWorkflow, TurnInput, TurnSettings};
use async_trait::async_trait;
use serde_json::Value;
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

/// A conversation: fixed tenant/agent/interlocutor (unique per call), channel `web`.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub tenant_id: String,
    pub agent_id: String,
    pub interlocutor_id: String,
}

impl Conversation {
    pub fn new() -> Self {
        Self {
            tenant_id: Uuid::new_v4().to_string(),
            agent_id: Uuid::new_v4().to_string(),
            interlocutor_id: Uuid::new_v4().to_string(),
        }
    }

    /// The payload of a new message.
    pub fn message(&self, text: &str) -> WorkflowInput {
        WorkflowInput {
            tenant_id: self.tenant_id.clone(),
            agent_id: self.agent_id.clone(),
            interlocutor_id: self.interlocutor_id.clone(),
            channel: "web".into(),
            message_id: Uuid::new_v4().to_string(),
            message_content: text.into(),
            session_key: None,
        }
    }

    pub fn session_key(&self) -> String {
        self.message("").session_key()
    }
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

pub fn payload(input: &WorkflowInput) -> TurnInput {
    TurnInput::new(input)
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

    pub async fn step(&self, name: &str, parent: Option<(&str, &Value)>) -> Result<Value, String> {
        let mut ctx = self.base.clone().step(name);
        if let Some((parent, output)) = parent {
            ctx = ctx.parent_output(parent, output);
        }
        acf_sdk::Workflow::dispatch(self.wf, name, ctx.build())
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs `acquire_mutex`, `accumulate`, `run_agent`, `commit_and_respond`; `between` runs after the step named.
    pub async fn all(&self, after: &str, between: impl AsyncFnOnce()) -> WorkflowOutput {
        let mut between = Some(between);
        let mut last: Option<(&str, Value)> = None;
        for name in [
            "acquire_mutex",
            "accumulate",
            "run_agent",
            "commit_and_respond",
        ] {
            let parent = last.as_ref().map(|(n, v)| (*n, v));
            // Retried like the engine does: the first command after a Redis restart fails while reconnecting.
            let mut attempt = 0;
            let output = loop {
                match self.step(name, parent).await {
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
            last = Some((name, output));
        }
        serde_json::from_value(last.unwrap().1).unwrap()
    }
}

/// The response stream's entries (id, entry) for `session`, oldest first.
pub async fn responses_of(
    backend: &Backend,
    session: &str,
) -> Vec<(String, acf_worker::stores::ResponseEntry)> {
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
