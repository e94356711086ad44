//! Tool side effects: recorded on the turn as `tool.executed` events arrive (with and without listeners, under the
//! lease's fence), kept by the committed record, and shown to every later attempt of the turn, so that a brain cut
//! off after creating an order does not create it again. Run directly on both backends, through the HTTP brain,
//! and through the embedded engine with the events on the Redis stream and the run's Hatchet stream.

use crate::deploy_support::{self, Deployed};
use crate::support::http::{HttpServer, Reply};
use crate::workflow_support::{self, Conversation, Kind, backend, payload, run_turn};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acf_worker::brain::{Brain, BrainError, BrainResult, HttpBrain, HttpBrainConfig, TurnContext};
use acf_worker::events::{
    AcfEvent, AcfEventType, EventListener, EventRouter, EventScope, ListenerError,
};
use acf_worker::models::{SideEffectPolicy, TurnOutcome, WorkflowOutput};
use acf_worker::mutex::LockOptions;
use acf_worker::stores::{Backend, StoreError};
use acf_worker::workflow::LogicalTurnWorkflow;
use async_trait::async_trait;
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use workflow_support::on_both_backends;

on_both_backends!(
    tool_events_are_recorded_on_the_turn_without_any_listener,
    tool_events_are_recorded_and_routed_to_listeners,
    a_brain_cut_off_after_creating_an_order_does_not_create_it_again,
    a_stale_lease_cannot_record_a_side_effect,
    a_brain_whose_lock_was_taken_records_nothing_and_its_attempt_is_retried,
);

/// What one brain call saw of earlier attempts.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    side_effects: usize,
    can_absorb: bool,
    can_supersede: bool,
}

/// Creates an order through a real side channel (a Redis counter the test reads), records it with
/// `tool.executed`, and skips the creation when an earlier attempt of the turn already recorded it. The first
/// call hangs after the tool ran until the brain timeout cuts it off, like a worker killed before the commit.
struct OrderBrain {
    redis: ::redis::aio::MultiplexedConnection,
    orders_key: String,
    /// Whether the first call hangs once the order is reported (then sets `{orders_key}:reported`).
    hang_first: bool,
    calls: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

impl OrderBrain {
    async fn new() -> Arc<Self> {
        Self::counting(crate::support::unique("orders"), true).await
    }

    /// A brain counting its orders at `orders_key`.
    async fn counting(orders_key: String, hang_first: bool) -> Arc<Self> {
        Arc::new(Self {
            redis: crate::support::raw_connection(crate::support::SHARED_REDIS_URL).await,
            orders_key,
            hang_first,
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// How many orders were created.
    async fn orders(&self) -> i64 {
        let count: Option<i64> = ::redis::cmd("GET")
            .arg(&self.orders_key)
            .query_async(&mut self.redis.clone())
            .await
            .unwrap();
        count.unwrap_or(0)
    }
}

#[async_trait]
impl Brain for OrderBrain {
    fn name(&self) -> &str {
        "orders"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(Seen {
            side_effects: ctx.side_effects().len(),
            can_absorb: ctx.turn().can_absorb_message(),
            can_supersede: ctx.turn().can_supersede(),
        });
        let key = ctx.idempotency_key("create_order", "cart-42");
        if let Some(done) = ctx.recorded_effect(&key) {
            return Ok(BrainResult::text(format!(
                "Your order {} is placed.",
                done.details["order_id"].as_str().unwrap_or("?")
            )));
        }
        let number: i64 = ::redis::cmd("INCR")
            .arg(&self.orders_key)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| BrainError::Failed(e.to_string()))?;
        let order_id = format!("order-{number}");
        ctx.emit_event(
            AcfEvent::new(
                AcfEventType::ToolExecuted,
                ctx.turn().id(),
                ctx.session_key(),
            )
            .with_payload(json!({
                "tool_name": "create_order",
                "policy": "irreversible",
                "idempotency_key": key,
                "order_id": order_id,
            })),
        )
        .await?;
        if call == 0 && self.hang_first {
            // Cut off here: the order exists and is on record, the turn is not committed.
            let _: () = ::redis::cmd("SET")
                .arg(format!("{}:reported", self.orders_key))
                .arg(1)
                .query_async(&mut self.redis.clone())
                .await
                .map_err(|e| BrainError::Failed(e.to_string()))?;
            std::future::pending::<()>().await;
        }
        Ok(BrainResult::text(format!(
            "Your order {order_id} is placed."
        )))
    }
}

/// Emits two tool events (one with an unknown policy) and a non-tool event, then answers.
struct ToolsBrain;

#[async_trait]
impl Brain for ToolsBrain {
    fn name(&self) -> &str {
        "tools"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let (turn, session) = (ctx.turn().id(), ctx.session_key());
        ctx.emit_event(
            AcfEvent::new(AcfEventType::ToolExecuted, turn, session).with_payload(json!({
                "tool_name": "lookup_order",
                "policy": "idempotent",
                "idempotency_key": ctx.idempotency_key("lookup_order", "123"),
            })),
        )
        .await?;
        ctx.emit_event(AcfEvent::new(AcfEventType::ToolAuthorized, turn, session))
            .await?;
        ctx.emit_event(
            AcfEvent::new(AcfEventType::ToolExecuted, turn, session)
                .with_payload(json!({"tool_name": "send_email", "policy": "maybe"})),
        )
        .await?;
        Ok(BrainResult::text("done"))
    }
}

/// On its first call, the session lock is taken over (forced out and re-acquired by another holder) before the
/// brain reports a tool: the report is refused, and the brain ignores the refusal and answers anyway.
struct OvertakenBrain {
    backend: Backend,
    calls: AtomicUsize,
    emitted: Mutex<Vec<Result<(), String>>>,
}

#[async_trait]
impl Brain for OvertakenBrain {
    fn name(&self) -> &str {
        "overtaken"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let mutex = &self.backend.mutex;
            mutex.force_release(ctx.session_key()).await.unwrap();
            let options = LockOptions::new(Duration::from_secs(5), Duration::from_millis(200));
            let thief = mutex.acquire(ctx.session_key(), options).await.unwrap();
            let event = AcfEvent::new(
                AcfEventType::ToolExecuted,
                ctx.turn().id(),
                ctx.session_key(),
            )
            .with_payload(json!({"tool_name": "send_sms", "policy": "irreversible"}));
            let outcome = ctx.emit_event(event).await.map_err(|e| e.to_string());
            self.emitted.lock().unwrap().push(outcome);
            mutex.release(&thief).await.unwrap();
        }
        Ok(BrainResult::text(format!(
            "seen {}",
            ctx.side_effects().len()
        )))
    }
}

/// Keeps every event it receives.
#[derive(Default)]
struct Collect(Mutex<Vec<AcfEvent>>);

#[async_trait]
impl EventListener for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    async fn handle(&self, event: &AcfEvent, _: &EventScope<'_>) -> Result<(), ListenerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// The committed record of `turn_id` (it must exist).
async fn record(
    backend: &Backend,
    session_key: &str,
    turn_id: Uuid,
) -> acf_worker::stores::TurnRecord {
    backend
        .stores
        .audit
        .get_turn(session_key, turn_id)
        .await
        .unwrap()
        .expect("the turn is committed")
}

fn workflow(backend: &Backend, brain: Arc<dyn Brain>, router: EventRouter) -> LogicalTurnWorkflow {
    let mut settings = workflow_support::settings(50);
    settings.brain_timeout = Duration::from_millis(700);
    LogicalTurnWorkflow::new(backend, brain, settings).with_events(Arc::new(router))
}

async fn tool_events_are_recorded_on_the_turn_without_any_listener(kind: Kind) {
    let backend = backend(kind).await;
    let wf = workflow(&backend, Arc::new(ToolsBrain), EventRouter::new());
    assert_eq!(wf.events().listener_count(AcfEventType::ToolExecuted), 0);
    let input = Conversation::new().message("where is my order?");
    let output = run_turn(&wf, &payload(&input)).await.result.expect("run");
    assert_eq!(output.status, TurnOutcome::Complete);

    let record = record(&backend, &input.session_key(), output.turn_id).await;
    let effects = &record.side_effects;
    assert_eq!(effects.len(), 2, "{effects:#?}");
    assert_eq!(effects[0].effect_type, "tool_call");
    assert_eq!(effects[0].policy, SideEffectPolicy::Idempotent);
    assert_eq!(effects[0].tool_name.as_deref(), Some("lookup_order"));
    let key = effects[0].idempotency_key.as_deref().unwrap();
    assert!(key.starts_with("lookup_order:123:turn_group:"), "{key}");
    assert_eq!(effects[0].details["idempotency_key"], key);
    // A policy nobody classified counts as irreversible.
    assert_eq!(effects[1].policy, SideEffectPolicy::Irreversible);
    assert_eq!(effects[1].tool_name.as_deref(), Some("send_email"));
    assert_eq!(effects[1].idempotency_key, None);
    assert_eq!(effects[1].details["policy"], "maybe");
    // The log the retry reads holds the same.
    assert_eq!(
        &backend
            .stores
            .side_effects
            .effects(&input.session_key(), output.turn_id)
            .await
            .unwrap(),
        effects
    );
}

async fn tool_events_are_recorded_and_routed_to_listeners(kind: Kind) {
    let backend = backend(kind).await;
    let listener = Arc::new(Collect::default());
    let router = EventRouter::new();
    router.register("tool.*", listener.clone()).unwrap();
    router.register("commit.reached", listener.clone()).unwrap();
    let wf = workflow(&backend, Arc::new(ToolsBrain), router);
    let input = Conversation::new().message("hi");
    let output = run_turn(&wf, &payload(&input)).await.result.expect("run");

    let routed: Vec<AcfEventType> = listener
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        routed,
        [
            AcfEventType::ToolExecuted,
            AcfEventType::ToolAuthorized,
            AcfEventType::ToolExecuted,
            // `send_email` with an unclassified policy is the turn's first irreversible effect.
            AcfEventType::CommitPointReached,
        ]
    );
    let routed = listener.0.lock().unwrap().clone();
    assert_eq!(routed[3].payload["tool_name"], "send_email");
    let tenant: Uuid = input.tenant_id.parse().unwrap();
    assert!(
        routed.iter().all(|e| e.tenant_id == Some(tenant)),
        "the worker fills in the routing ids: {routed:#?}"
    );
    let record = record(&backend, &input.session_key(), output.turn_id).await;
    assert_eq!(record.side_effects.len(), 2);
}

async fn a_brain_cut_off_after_creating_an_order_does_not_create_it_again(kind: Kind) {
    let backend = backend(kind).await;
    let brain = OrderBrain::new().await;
    let wf = workflow(&backend, brain.clone(), EventRouter::logging());
    let input = Conversation::new().message("buy the cart");
    let run = run_turn(&wf, &payload(&input)).await;
    let output = run.result.expect("the retry completes the turn");

    assert_eq!(brain.orders().await, 1, "the order exists exactly once");
    assert_eq!(brain.calls.load(Ordering::SeqCst), 2, "run_agent ran twice");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(
        output.response.as_deref(),
        Some("Your order order-1 is placed.")
    );
    assert_eq!(
        *brain.seen.lock().unwrap(),
        [
            Seen {
                side_effects: 0,
                can_absorb: true,
                can_supersede: true
            },
            // The retry sees the order, and the turn is past its commit point.
            Seen {
                side_effects: 1,
                can_absorb: false,
                can_supersede: false
            },
        ]
    );
    let record = record(&backend, &input.session_key(), output.turn_id).await;
    assert_eq!(record.side_effects.len(), 1);
    let effect = &record.side_effects[0];
    assert_eq!(effect.policy, SideEffectPolicy::Irreversible);
    assert_eq!(effect.tool_name.as_deref(), Some("create_order"));
    assert_eq!(effect.details["order_id"], "order-1");
    assert!(
        effect
            .idempotency_key
            .as_deref()
            .unwrap()
            .starts_with("create_order:cart-42:turn_group:")
    );
}

async fn a_stale_lease_cannot_record_a_side_effect(kind: Kind) {
    let backend = backend(kind).await;
    let session = Conversation::new().session_key();
    let options = LockOptions::new(Duration::from_secs(5), Duration::from_millis(200));
    let old = backend.mutex.acquire(&session, options).await.unwrap();
    backend.mutex.release(&old).await.unwrap();
    let current = backend.mutex.acquire(&session, options).await.unwrap();
    let turn_id = Uuid::new_v4();
    let effect = acf_worker::models::SideEffect::new("tool_call", SideEffectPolicy::Irreversible);

    let refused = backend
        .stores
        .side_effects
        .record_effect(&old, turn_id, &effect)
        .await;
    assert!(
        matches!(refused, Err(StoreError::StaleFence { .. })),
        "{refused:?}"
    );
    assert!(
        backend
            .stores
            .side_effects
            .effects(&session, turn_id)
            .await
            .unwrap()
            .is_empty()
    );
    backend
        .stores
        .side_effects
        .record_effect(&current, turn_id, &effect)
        .await
        .unwrap();
    assert_eq!(
        backend
            .stores
            .side_effects
            .effects(&session, turn_id)
            .await
            .unwrap(),
        [effect]
    );
}

async fn a_brain_whose_lock_was_taken_records_nothing_and_its_attempt_is_retried(kind: Kind) {
    let backend = backend(kind).await;
    let brain = Arc::new(OvertakenBrain {
        backend: backend.clone(),
        calls: AtomicUsize::new(0),
        emitted: Mutex::new(Vec::new()),
    });
    let wf = workflow(&backend, brain.clone(), EventRouter::logging());
    let input = Conversation::new().message("text me");
    let run = run_turn(&wf, &payload(&input)).await;
    let output = run.result.expect("the retry completes the turn");

    let emitted = brain.emitted.lock().unwrap().clone();
    assert_eq!(emitted.len(), 1);
    let refusal = emitted[0]
        .as_ref()
        .expect_err("a stale holder cannot record");
    assert!(refusal.contains("could not be recorded"), "{refusal}");
    assert!(refusal.contains("fence"), "{refusal}");
    // The first attempt's answer was not committed: the step failed and the retry answered.
    assert_eq!(brain.calls.load(Ordering::SeqCst), 2, "run_agent ran twice");
    assert_eq!(output.response.as_deref(), Some("seen 0"));
    assert!(
        record(&backend, &input.session_key(), output.turn_id)
            .await
            .side_effects
            .is_empty()
    );
}

fn request_schema() -> jsonschema::Validator {
    let path = format!(
        "{}/schemas/brain-request.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// The HTTP brain's endpoint creates the order, then fails with 503 but reports the tool in its `events`; the
/// retried request carries the recorded effect, and the endpoint answers.
#[tokio::test]
async fn the_http_brain_reports_tools_in_events_and_the_retry_request_carries_them() {
    let backend = backend(Kind::Redis).await;
    let key = "create_order:cart-7:turn_group:fixed";
    let server = HttpServer::start_sequence(vec![
        Reply::json(
            503,
            &json!({
                "error": "crashed after the tool ran",
                "events": [{"type": "tool.executed", "payload": {
                    "tool_name": "create_order", "policy": "irreversible",
                    "idempotency_key": key, "order_id": "order-9"
                }}]
            }),
        ),
        Reply::json(200, &json!({"response": "Order order-9 is placed."})),
    ])
    .await;
    let brain = HttpBrain::new(HttpBrainConfig {
        url: server.url.clone(),
        timeout: Duration::from_secs(5),
        bearer_token: None,
        headers: Vec::new(),
    })
    .unwrap();
    let wf = workflow(&backend, Arc::new(brain), EventRouter::logging());
    let input = Conversation::new().message("buy");
    let run = run_turn(&wf, &payload(&input)).await;
    let output = run.result.expect("the retry completes the turn");
    assert_eq!(output.response.as_deref(), Some("Order order-9 is placed."));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let validator = request_schema();
    for request in &requests {
        let body = request.json();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{body:#}");
        let group = body["turn"]["turn_group_id"].as_str().unwrap();
        assert_eq!(body["turn_group_id"], group);
        assert_eq!(
            body["idempotency_key_format"],
            format!("{{tool_name}}:{{business_key}}:turn_group:{group}")
        );
    }
    let first = requests[0].json();
    let second = requests[1].json();
    assert_eq!(first["side_effects"], json!([]));
    let effects = second["side_effects"].as_array().unwrap();
    assert_eq!(effects.len(), 1, "{second:#}");
    assert_eq!(effects[0]["idempotency_key"], key);
    assert_eq!(effects[0]["policy"], "irreversible");
    assert_eq!(effects[0]["tool_name"], "create_order");
    assert_eq!(effects[0]["details"]["order_id"], "order-9");
    assert_eq!(second["turn"]["side_effects"], second["side_effects"]);

    let record = record(&backend, &input.session_key(), output.turn_id).await;
    assert_eq!(record.side_effects.len(), 1);
}

/// Through the embedded engine, with every sink on: the first attempt creates the order and is cut off by the
/// brain timeout, the engine retries the step, and the retry skips the creation. The run's Hatchet stream (read by
/// a client subscribed to the run) and the Redis events stream carry the turn's events in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_reach_the_hatchet_stream_and_the_redis_stream_in_order() {
    let settings = deploy_support::settings(&[
        (
            "RUCHE_EVENTS__SINKS",
            r#"["log","redis_stream","hatchet_stream"]"#,
        ),
        ("RUCHE_BRAIN__TIMEOUT_MS", "1000"),
        // A window long enough for the test to subscribe before the turn starts.
        ("RUCHE_ACCUMULATION__MIN_WAIT_MS", "1500"),
        ("RUCHE_ACCUMULATION__MAX_WAIT_MS", "1500"),
        ("RUCHE_ACCUMULATION__CHANNEL_DEFAULTS", r#"{"web": 1500}"#),
    ]);
    let brain = OrderBrain::new().await;
    let deployed = Deployed::start_with(settings, Some(brain.clone()), false).await;
    let input = Conversation::new().message("buy the cart");
    let run = deployed.submit(&input).await;
    let stream = deployed
        .client
        .stream(&run.run_id)
        .await
        .expect("subscribed");
    let chunks: Vec<Vec<u8>> = tokio::time::timeout(
        Duration::from_secs(60),
        stream.map(|chunk| chunk.expect("a stream chunk")).collect(),
    )
    .await
    .expect("the run's stream ends when the run finishes");
    let output: WorkflowOutput = run
        .result()
        .await
        .expect("the run finishes")
        .step("commit_and_respond")
        .expect("a commit output");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(brain.orders().await, 1, "the order exists exactly once");

    let live: Vec<AcfEvent> = chunks
        .iter()
        .map(|chunk| serde_json::from_slice(chunk).expect("each chunk is one event's JSON"))
        .collect();
    // The first attempt reaches the commit point with the order; the retry does not reach it again.
    let expected = [
        AcfEventType::TurnStarted,
        AcfEventType::ToolExecuted,
        AcfEventType::CommitPointReached,
        AcfEventType::TurnFailed,
        AcfEventType::TurnStarted,
        AcfEventType::TurnCompleted,
    ];
    assert_eq!(
        live.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        expected,
        "{live:#?}"
    );
    assert!(live.iter().all(|e| e.logical_turn_id == output.turn_id));
    assert_eq!(live[1].payload["order_id"], "order-1");
    assert_eq!(live[2].payload["tool_name"], "create_order");
    assert_eq!(live[3].payload["error_type"], "brain_timeout");
    // The brain's event carried no routing ids; the worker filled in the turn's.
    let tenant: Uuid = input.tenant_id.parse().unwrap();
    assert!(
        live.iter().all(|e| e.tenant_id == Some(tenant)),
        "{live:#?}"
    );

    let stored: Vec<AcfEvent> = deployed
        .backend
        .stores
        .events
        .read_events_after("0", 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, event)| event)
        .filter(|event| event.logical_turn_id == output.turn_id)
        .collect();
    assert_eq!(
        stored, live,
        "the Redis stream holds the same events in the same order"
    );

    let record = deployed
        .backend
        .stores
        .audit
        .get_turn(&input.session_key(), output.turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.side_effects.len(), 1);
    deployed.stop().await;
}

/// Environment of the worker process [`a_worker_killed_after_creating_an_order_is_replaced_and_the_order_is_not_repeated`]
/// starts: the key prefix and the orders counter (the engine's `HATCHET_CLIENT_*` variables come along).
const CHILD_PREFIX: &str = "ACF_TEST_CHILD_KEY_PREFIX";
const CHILD_ORDERS: &str = "ACF_TEST_CHILD_ORDERS_KEY";

/// The marker key prefix of the worker process serving `prefix`.
fn brain_key(prefix: &str) -> String {
    format!("{prefix}:test-worker")
}

/// A child process killed when dropped, so a failing test leaves no worker behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to a minute for `key` to exist, while `child` runs.
async fn wait_for_key(child: &mut std::process::Child, key: &str) {
    let mut redis = crate::support::raw_connection(crate::support::SHARED_REDIS_URL).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found: Option<i64> = ::redis::cmd("GET")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if found.is_some() {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker process exited before setting {key}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker process never set {key}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The worker process the kill test SIGKILLs: this test binary re-run on this one test, serving the workflow with
/// an [`OrderBrain`] that hangs after reporting its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process started (and killed) by a_worker_killed_after_creating_an_order_is_replaced_and_the_order_is_not_repeated"]
async fn order_worker_process() {
    let prefix =
        std::env::var(CHILD_PREFIX).expect("started by the kill test, which sets the key prefix");
    let orders_key = std::env::var(CHILD_ORDERS).expect("started by the kill test");
    let settings = deploy_support::settings(&[("RUCHE_STORAGE__SESSION__KEY_PREFIX", &prefix)]);
    assert_eq!(settings.storage.session.key_prefix, prefix);
    let backend = Backend::open(&settings.storage.session).await.unwrap();
    let client = acf_sdk::ClientConfig::from_lookup(|name| std::env::var(name).ok())
        .map_err(acf_sdk::Error::from)
        .and_then(acf_sdk::Client::new)
        .expect("the engine's client variables");
    let brain = OrderBrain::counting(orders_key, true).await;
    let workflow = acf_worker::run::workflow_with_brain(&backend, &settings, brain).unwrap();
    let _worker = acf_worker::run::start_worker(&client, workflow, &settings)
        .await
        .unwrap();
    // Registered: the kill test may submit now.
    let mut redis = crate::support::raw_connection(crate::support::SHARED_REDIS_URL).await;
    let _: () = ::redis::cmd("SET")
        .arg(format!("{}:up", brain_key(&prefix)))
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    // The kill test SIGKILLs this process within seconds; an orphan ends on its own.
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("the kill test never killed this worker process");
}

/// A real worker process creates the order, reports it, and is SIGKILLed before the commit. The engine hands the
/// step to another worker, whose brain finds the order on record: it exists once and the turn completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_creating_an_order_is_replaced_and_the_order_is_not_repeated() {
    let engine = acf_sdk::engine::Engine::builder()
        .reassign_after(Duration::from_secs(2))
        .start()
        .await
        .expect("the embedded engine starts");
    let settings = deploy_support::settings(&[]);
    let prefix = settings.storage.session.key_prefix.clone();
    let orders_key = crate::support::unique("orders");
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "side_effects::order_worker_process",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .envs(engine.client_env())
        .env(CHILD_PREFIX, &prefix)
        .env(CHILD_ORDERS, &orders_key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the worker process starts");
    let mut child = KillOnDrop(child);
    let client = deploy_support::client_with(&engine, &[]);
    let backend = Backend::open(&settings.storage.session).await.unwrap();
    wait_for_key(&mut child.0, &format!("{}:up", brain_key(&prefix))).await;
    let input = Conversation::new().message("buy the cart");
    let run = acf_worker::intake::submit(&backend.stores, &client, &input, 1_000)
        .await
        .expect("submitted")
        .run;
    wait_for_key(&mut child.0, &format!("{orders_key}:reported")).await;
    // SIGKILL: the process gets no chance to finish anything.
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let brain = OrderBrain::counting(orders_key, false).await;
    let workflow =
        acf_worker::run::workflow_with_brain(&backend, &settings, brain.clone()).unwrap();
    let worker = acf_worker::run::start_worker(&client, workflow, &settings)
        .await
        .unwrap();
    let output: WorkflowOutput = tokio::time::timeout(Duration::from_secs(60), run.result())
        .await
        .expect("the run finishes after the step is handed over")
        .expect("the run succeeds")
        .step("commit_and_respond")
        .expect("a commit output");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(
        output.response.as_deref(),
        Some("Your order order-1 is placed.")
    );
    assert_eq!(brain.orders().await, 1, "the order exists exactly once");
    assert_eq!(
        *brain.seen.lock().unwrap(),
        [Seen {
            side_effects: 1,
            can_absorb: false,
            can_supersede: false
        }]
    );
    assert_eq!(
        record(&backend, &input.session_key(), output.turn_id)
            .await
            .side_effects
            .len(),
        1
    );
    worker.stop().await.unwrap();
    engine.shutdown().await;
}
