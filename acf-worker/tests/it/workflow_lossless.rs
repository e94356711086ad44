//! Issue 9 regressions, one per finding: a store that lost its data, a stale recovery, pending messages without a
//! run, a re-acquired lease after a failing step, a hung brain. Data loss runs on a private `redis-server`
//! restarted without persistence; the rest on both backends.

use crate::support;
use crate::workflow_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use acf_sdk::testing::TestContext;
use acf_worker::brain::{Brain, BrainError, BrainResult, TurnContext};
use acf_worker::config::LivenessSettings;
use acf_worker::liveness::{RunTrigger, Sweeper, metrics};
use acf_worker::models::{TurnOutcome, now_utc};
use acf_worker::stores::{
    Backend, MessageStatus, RedisConnectOptions, StoreSettings, StoredMessage,
};
use acf_worker::workflow::{LogicalTurnWorkflow, TurnInput, WorkflowOptions};
use async_trait::async_trait;
use support::RedisServer;
use uuid::Uuid;
use workflow_support::{
    Behaviour, Conversation, Kind, Steps, TestBrain, accept, assert_failed_by, assert_processed_by,
    backend, failure_record, hold_lock, payload, responses_of, run_turn, settings, stored_message,
    workflow,
};

use workflow_support::on_both_backends;

on_both_backends!(
    a_stale_recovery_includes_the_triggering_message,
    a_message_left_pending_is_retriggered_by_the_sweep_within_the_bound,
    a_run_that_cannot_get_the_lock_hands_its_message_on,
    a_step_failing_after_reacquiring_the_lock_releases_it,
    on_failure_fails_the_runs_own_message_visibly,
    a_hung_custom_brain_is_bounded_by_the_brain_timeout,
    a_message_a_duplicate_accumulate_absorbed_is_not_stranded_by_the_commit,
);

async fn redis_on(server: &RedisServer) -> Backend {
    Backend::redis(
        &server.url(),
        StoreSettings::default(),
        &RedisConnectOptions::default(),
    )
    .await
    .expect("private redis")
}

// ---- 1. Redis data loss ----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_acquire_re_records_its_message_after_a_data_loss_and_answers_it() {
    let mut server = RedisServer::start();
    let backend = redis_on(&server).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let input = conversation.message("still there?");
    accept(&backend, &input).await;
    let before = metrics().messages_re_recorded.load(Ordering::Relaxed);
    let output = Steps::new(&wf, &payload(&input))
        .all("acquire_mutex", async || server.restart())
        .await;
    assert_eq!(output.status, TurnOutcome::Complete, "{output:?}");
    assert_eq!(output.response.as_deref(), Some("Echo: still there?"));
    assert!(metrics().messages_re_recorded.load(Ordering::Relaxed) > before);
    assert_processed_by(&backend, &input, output.turn_id).await;
    assert_eq!(
        responses_of(&backend, &conversation.session_key())
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_accumulate_delivers_its_answer_after_a_data_loss() {
    let mut server = RedisServer::start();
    let backend = redis_on(&server).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let first = conversation.message("one");
    let second = conversation.message("two");
    accept(&backend, &first).await;
    accept(&backend, &second).await;
    let output = Steps::new(&wf, &payload(&first))
        .all("run_agent", async || server.restart())
        .await;
    assert_eq!(output.status, TurnOutcome::Complete, "{output:?}");
    assert_eq!(output.response.as_deref(), Some("Echo: one / two"));
    let session = conversation.session_key();
    assert_eq!(responses_of(&backend, &session).await.len(), 1);
    // Both messages are re-recorded as answered, so the second message's own run does not answer it again.
    let second_run = run_turn(&wf, &payload(&second)).await.result.unwrap();
    assert_eq!(second_run.status, TurnOutcome::Absorbed);
    assert_eq!(responses_of(&backend, &session).await.len(), 1);
    assert_eq!(brain.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_detects_and_counts_a_data_loss() {
    let mut server = RedisServer::start();
    let backend = redis_on(&server).await;
    let sweeper = Sweeper::new(&backend, Arc::new(NoTrigger), fast_liveness());
    assert!(!sweeper.sweep_once().await.unwrap().data_loss);
    assert!(!sweeper.sweep_once().await.unwrap().data_loss);
    let before = metrics().data_losses.load(Ordering::Relaxed);
    server.restart();
    let mut report = None;
    for _ in 0..50 {
        if let Ok(r) = sweeper.sweep_once().await {
            report = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(report.expect("a sweep after the restart").data_loss);
    assert!(metrics().data_losses.load(Ordering::Relaxed) > before);
    assert!(
        !sweeper.sweep_once().await.unwrap().data_loss,
        "counted once"
    );
}

// ---- 2. Stale recovery -----------------------------------------------------------------------------------------

async fn a_stale_recovery_includes_the_triggering_message(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    // A message left open a minute ago (longer than max_window_ms = 20 s in the test settings).
    let old = conversation.message("old question");
    let stale = StoredMessage::pending(
        old.message_id.parse().unwrap(),
        conversation.session_key(),
        "web",
        "old question",
        now_utc() - chrono::TimeDelta::seconds(60),
    );
    assert!(backend.stores.accept_message(&stale).await.unwrap());
    let new = conversation.message("new question");
    let output = run_turn(&wf, &payload(&new)).await.result.unwrap();
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(
        output.response.as_deref(),
        Some("Echo: old question / new question")
    );
    for input in [&old, &new] {
        assert_processed_by(&backend, input, output.turn_id).await;
    }
}

// ---- 3. Liveness -----------------------------------------------------------------------------------------------

fn fast_liveness() -> LivenessSettings {
    LivenessSettings {
        sweep_interval_ms: 100,
        pending_grace_ms: 500,
        sweep_batch: 100,
    }
}

struct NoTrigger;

#[async_trait]
impl RunTrigger for NoTrigger {
    async fn trigger(&self, _: &TurnInput) -> Result<String, acf_sdk::Error> {
        Err(acf_sdk::Error::Worker("no engine in this test".into()))
    }
}

/// Runs each triggered run in-process.
struct DirectTrigger {
    wf: Arc<LogicalTurnWorkflow>,
    triggered: std::sync::Mutex<Vec<TurnInput>>,
}

#[async_trait]
impl RunTrigger for DirectTrigger {
    async fn trigger(&self, input: &TurnInput) -> Result<String, acf_sdk::Error> {
        self.triggered.lock().unwrap().push(input.clone());
        let wf = Arc::clone(&self.wf);
        let input = input.clone();
        tokio::spawn(async move { run_turn(wf.as_ref(), &input).await });
        Ok(Uuid::new_v4().to_string())
    }
}

async fn a_message_left_pending_is_retriggered_by_the_sweep_within_the_bound(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let mut turn_settings = settings(100);
    turn_settings.pending_grace = Duration::from_millis(500);
    let wf = Arc::new(LogicalTurnWorkflow::new(
        &backend,
        brain.clone(),
        turn_settings,
    ));
    let trigger = Arc::new(DirectTrigger {
        wf: Arc::clone(&wf),
        triggered: std::sync::Mutex::new(Vec::new()),
    });
    let liveness = fast_liveness();
    let sweeper = Sweeper::new(&backend, trigger.clone(), liveness.clone()).spawn();
    let conversation = Conversation::new();
    let input = conversation.message("anyone?");
    // The message's run takes the lock and then dies before accumulating (its retries never come): the message
    // stays pending, with its session marked due a grace period ahead.
    let steps = Steps::new(&wf, &payload(&input));
    let acquired: acf_worker::workflow::Acquired =
        serde_json::from_value(steps.step("acquire_mutex", &[]).await.unwrap()).unwrap();
    backend
        .mutex
        .release(acquired.lease.as_ref().unwrap())
        .await
        .unwrap();
    let pending_since = Instant::now();
    let session = conversation.session_key();
    let limit = Duration::from_millis(liveness.pending_grace_ms + liveness.sweep_interval_ms)
        + Duration::from_secs(3); // slack: the triggered run's window and a loaded machine
    loop {
        if !responses_of(&backend, &session).await.is_empty() {
            break;
        }
        assert!(
            pending_since.elapsed() < limit,
            "the pending message was not answered within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(trigger.triggered.lock().unwrap().len(), 1);
    let message = stored_message(&backend, &input).await;
    assert!(matches!(message.status, MessageStatus::Processed { .. }));
    // Once nothing is open, a sweep removes the session from the index.
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend
        .stores
        .pending
        .due_at(&session)
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the session stays indexed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(trigger.triggered.lock().unwrap().len(), 1, "no extra run");
    sweeper.stop().await;
}

async fn a_run_that_cannot_get_the_lock_hands_its_message_on(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = WorkflowOptions {
        retries: Some(0),
        ..WorkflowOptions::default()
    }
    .configure(workflow(&backend, brain.clone(), 100));
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let holder = hold_lock(&backend, &session).await;
    let input = conversation.message("blocked");
    let failure = run_turn(&wf, &payload(&input)).await.result.unwrap_err();
    assert_eq!(failure.step, "acquire_mutex");
    failure.report.expect("on_failure ran");
    let message = stored_message(&backend, &input).await;
    assert_eq!(message.status, MessageStatus::Pending);
    let due = backend.stores.pending.due_at(&session).await.unwrap();
    assert!(
        due.is_some_and(|at| at <= chrono::Utc::now().timestamp_millis()),
        "handed on: the session is due at once ({due:?})"
    );
    backend.mutex.release(&holder).await.unwrap();
}

/// An engine that re-queues `accumulate` while the first attempt still runs (it thought the worker lost) leaves two
/// attempts holding the run's lease: the one whose output is discarded may absorb a message into the turn after the
/// kept one closed its list. The commit must not leave that message absorbed by a committed turn.
async fn a_message_a_duplicate_accumulate_absorbed_is_not_stranded_by_the_commit(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 50);
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let first = conversation.message("one");
    accept(&backend, &first).await;
    let steps = Steps::new(&wf, &payload(&first));
    let acquired = steps.step("acquire_mutex", &[]).await.unwrap();
    let accumulated = steps
        .step("accumulate", &[("acquire_mutex", &acquired)])
        .await
        .unwrap();
    // The discarded attempt absorbs a message that arrived after the kept attempt's window closed.
    let stray = conversation.message("two");
    accept(&backend, &stray).await;
    let lease: acf_worker::mutex::Lease =
        serde_json::from_value(acquired["lease"].clone()).unwrap();
    let turn_id: Uuid = serde_json::from_value(acquired["turn_id"].clone()).unwrap();
    let stray_id: Uuid = stray.message_id.parse().unwrap();
    let absorbed = backend
        .stores
        .messages
        .absorb(&lease, turn_id, &[stray_id])
        .await
        .unwrap();
    assert_eq!(absorbed, vec![stray_id]);
    let agent = steps
        .step("run_agent", &[("accumulate", &accumulated)])
        .await
        .unwrap();
    let output = steps
        .step(
            "commit_and_respond",
            &[("accumulate", &accumulated), ("run_agent", &agent)],
        )
        .await
        .unwrap();
    assert_eq!(output["status"], "complete", "{output}");
    assert_eq!(output["response"], "Echo: one");
    assert_processed_by(&backend, &first, turn_id).await;
    assert_eq!(
        stored_message(&backend, &stray).await.status,
        MessageStatus::Pending,
        "the stray is back to pending"
    );
    let due = backend.stores.pending.due_at(&session).await.unwrap();
    assert!(
        due.is_some_and(|at| at <= chrono::Utc::now().timestamp_millis()),
        "the session is due at once for the stray ({due:?})"
    );
    // Its own run answers it.
    let second = run_turn(&wf, &payload(&stray)).await.result.unwrap();
    assert_eq!(second.status, TurnOutcome::Complete);
    assert_eq!(second.response.as_deref(), Some("Echo: two"));
    assert_eq!(responses_of(&backend, &session).await.len(), 2);
}

// ---- 4. Leases -------------------------------------------------------------------------------------------------

async fn a_step_failing_after_reacquiring_the_lock_releases_it(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Timeout);
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let input = conversation.message("hello");
    let steps = Steps::new(&wf, &payload(&input));
    let acquired = steps.step("acquire_mutex", &[]).await.unwrap();
    let accumulated = steps
        .step("accumulate", &[("acquire_mutex", &acquired)])
        .await
        .unwrap();
    // The lease expires while the run is away; `run_agent` re-acquires, then the brain fails retryably.
    let session = conversation.session_key();
    backend.mutex.force_release(&session).await.unwrap();
    let error = steps
        .step("run_agent", &[("accumulate", &accumulated)])
        .await
        .unwrap_err();
    assert!(error.contains("brain_failed"), "{error}");
    assert!(
        !backend.mutex.is_locked(&session).await.unwrap(),
        "the re-acquired lease was released"
    );
    // The retry takes the lock again at once (no wait for a TTL).
    let started = Instant::now();
    let _ = steps
        .step("run_agent", &[("accumulate", &accumulated)])
        .await;
    assert!(started.elapsed() < Duration::from_millis(400));
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
}

async fn on_failure_fails_the_runs_own_message_visibly(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 100);
    let conversation = Conversation::new();
    let input = conversation.message("lost in accumulate");
    let steps = Steps::new(&wf, &payload(&input));
    let acquired = steps.step("acquire_mutex", &[]).await.unwrap();
    // `accumulate` failed for good before absorbing anything: the own message is still pending.
    let handler = acf_sdk::Workflow::definition(&wf).on_failure.unwrap().name;
    let ctx = TestContext::new(payload(&input).as_json())
        .step(&handler)
        .parent_output("acquire_mutex", &acquired)
        .step_run_error("accumulate", "store unreachable");
    let report: acf_worker::workflow::FailureReport = serde_json::from_value(
        acf_sdk::Workflow::dispatch(&wf, &handler, ctx.build())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report.messages_recovered, 1);
    let turn_id = report.turn_id.unwrap();
    let entry = assert_failed_by(&backend, &input, turn_id).await;
    let session = conversation.session_key();
    let record = failure_record(&backend, &input, turn_id).await;
    assert_eq!(record.message_ids, entry.message_ids);
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
}

// ---- 5. Brain deadline -----------------------------------------------------------------------------------------

/// A custom brain that never answers.
struct Hung;

#[async_trait]
impl Brain for Hung {
    fn name(&self) -> &str {
        "hung"
    }

    async fn think(&self, _: &TurnContext) -> Result<BrainResult, BrainError> {
        std::future::pending().await
    }
}

async fn a_hung_custom_brain_is_bounded_by_the_brain_timeout(kind: Kind) {
    let backend = backend(kind).await;
    let mut turn_settings = settings(50);
    turn_settings.brain_timeout = Duration::from_millis(300);
    let wf = WorkflowOptions {
        retries: Some(1),
        ..WorkflowOptions::default()
    }
    .configure(LogicalTurnWorkflow::new(
        &backend,
        Arc::new(Hung),
        turn_settings,
    ));
    let conversation = Conversation::new();
    let input = conversation.message("hello?");
    let started = Instant::now();
    let run = run_turn(&wf, &payload(&input)).await;
    let failure = run.result.expect_err("the brain never answers");
    assert_eq!(failure.step, "run_agent");
    assert_eq!(run.attempts["run_agent"], 2, "a timeout is retryable");
    assert!(
        failure.error.to_string().contains("300 ms"),
        "{}",
        failure.error
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let session = conversation.session_key();
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
    let entries = responses_of(&backend, &session).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.status, TurnOutcome::Failed);
}
