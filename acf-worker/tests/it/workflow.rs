//! The logical-turn workflow run directly (no engine), on the in-memory stores and on the shared Redis.

use crate::support;
use crate::workflow_support;

use std::time::{Duration, Instant};

use acf_worker::models::TurnOutcome;
use acf_worker::stores::MessageStatus;
use acf_worker::workflow::{Accumulated, Acquired, WorkflowOptions};
use serde_json::json;
use uuid::Uuid;
use workflow_support::{
    Behaviour, Conversation, Kind, TestBrain, accept, assert_failed_by, assert_processed_by,
    backend, failure_record, hold_lock, payload, responses_of, run_turn, stored_message, workflow,
};

use workflow_support::on_both_backends;

on_both_backends!(
    single_message_is_answered_committed_and_unlocked,
    a_burst_becomes_one_turn_and_later_runs_end_absorbed,
    messages_arriving_during_the_window_are_absorbed,
    a_retried_commit_sends_nothing_twice,
    a_failing_brain_commits_a_failed_turn,
    a_retryable_brain_failure_ends_in_on_failure_with_a_failure_entry,
    malformed_input_fails_once_naming_the_field,
    the_brain_sees_pending_messages_live,
    a_run_waits_for_the_lock_and_fails_retryably_when_it_stays_taken,
    a_turn_whose_messages_were_taken_over_sends_no_response,
);

async fn single_message_is_answered_committed_and_unlocked(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("hello");
    // Triggered without intake: the run records the message itself.
    let run = run_turn(&wf, &payload(&input)).await;
    let output = run.result.expect("the run succeeds");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(output.response.as_deref(), Some("Echo: hello"));
    assert_eq!(output.message_count, 1);
    assert_eq!(brain.calls(), 1);

    let session = conversation.session_key();
    assert!(
        !backend.mutex.is_locked(&session).await.unwrap(),
        "the lock is released"
    );
    let record = backend
        .stores
        .audit
        .get_turn(&session, output.turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.turn_number, 1);
    assert_eq!(
        record.message_ids,
        vec![input.message_id.parse::<Uuid>().unwrap()]
    );
    assert_processed_by(&backend, &input, output.turn_id).await;
    let ours = responses_of(&backend, &session).await;
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].1.response, "Echo: hello");
    assert_eq!(ours[0].1.turn_id, output.turn_id);
    // The turn id minted by acquire_mutex is the one every step used.
    let acquired: Acquired = serde_json::from_value(run.outputs["acquire_mutex"].clone()).unwrap();
    assert_eq!(acquired.turn_id, output.turn_id);
}

async fn a_burst_becomes_one_turn_and_later_runs_end_absorbed(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let burst: Vec<_> = ["hi", "I need help", "order 123"]
        .iter()
        .map(|text| conversation.message(text))
        .collect();
    for message in &burst {
        accept(&backend, message).await;
    }
    let mut outputs = Vec::new();
    for message in &burst {
        outputs.push(run_turn(&wf, &payload(message)).await.result.expect("run"));
    }
    assert_eq!(outputs[0].status, TurnOutcome::Complete);
    assert_eq!(
        outputs[0].response.as_deref(),
        Some("Echo: hi / I need help / order 123")
    );
    assert_eq!(outputs[0].message_count, 3);
    assert_eq!(outputs[1].status, TurnOutcome::Absorbed);
    assert_eq!(outputs[2].status, TurnOutcome::Absorbed);
    assert_eq!(brain.calls(), 1, "absorbed runs never call the brain");
    let turns = backend
        .stores
        .audit
        .session_turns(&conversation.session_key())
        .await
        .unwrap();
    assert_eq!(turns.len(), 1);
    assert!(
        !backend
            .mutex
            .is_locked(&conversation.session_key())
            .await
            .unwrap()
    );
}

async fn messages_arriving_during_the_window_are_absorbed(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 400);
    let conversation = Conversation::new();
    let first = conversation.message("first");
    let second = conversation.message("second");
    accept(&backend, &first).await;
    let started = Instant::now();
    let late = {
        let backend = backend.clone();
        let second = second.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            accept(&backend, &second).await;
        })
    };
    let run = run_turn(&wf, &payload(&first)).await;
    late.await.unwrap();
    let output = run.result.expect("run");
    assert_eq!(output.response.as_deref(), Some("Echo: first / second"));
    // The window restarts at the absorbed message, accepted ≥ 150 ms after `started`: the turn cannot close before
    // 150 + 400 ms (a lower bound load cannot break; the step's own `waited_ms` starts whenever the step did).
    let accumulated: Accumulated =
        serde_json::from_value(run.outputs["accumulate"].clone()).unwrap();
    assert!(
        accumulated.waited_ms < 1_500,
        "waited {} ms",
        accumulated.waited_ms
    );
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    // The late message's own run finds it answered.
    let again = run_turn(&wf, &payload(&second)).await.result.expect("run");
    assert_eq!(again.status, TurnOutcome::Absorbed);
    assert_eq!(brain.calls(), 1);
}

async fn a_retried_commit_sends_nothing_twice(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("once");
    let run = run_turn(&wf, &payload(&input)).await;
    let first = run.result.expect("run");
    // Replay the commit step with the same parent output, as the engine would after a lost COMPLETED event.
    let ctx = acf_sdk::testing::TestContext::new(payload(&input))
        .step("commit_and_respond")
        .retry_count(1)
        .parent_output("accumulate", &run.outputs["accumulate"])
        .parent_output("run_agent", &run.outputs["run_agent"])
        .build();
    let replay = acf_sdk::Workflow::dispatch(&wf, "commit_and_respond", ctx)
        .await
        .expect("replay");
    let replay: acf_worker::models::WorkflowOutput = serde_json::from_value(replay).unwrap();
    assert_eq!(replay, first);
    let session = conversation.session_key();
    assert_eq!(responses_of(&backend, &session).await.len(), 1);
    assert_eq!(
        backend
            .stores
            .audit
            .session_turns(&session)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_failing_brain_commits_a_failed_turn(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Fail);
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("help");
    let output = run_turn(&wf, &payload(&input))
        .await
        .result
        .expect("a brain refusal is an outcome");
    assert_eq!(output.status, TurnOutcome::Failed);
    assert!(
        output
            .error
            .as_deref()
            .unwrap()
            .contains("the agent refused"),
        "{output:?}"
    );
    assert_eq!(output.response, None);
    assert_eq!(brain.calls(), 1, "a non-retryable failure is not retried");
    let entry = assert_failed_by(&backend, &input, output.turn_id).await;
    assert!(
        entry
            .error
            .as_deref()
            .is_some_and(|e| e.contains("the agent refused"))
    );
    let session = conversation.session_key();
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
}

async fn a_retryable_brain_failure_ends_in_on_failure_with_a_failure_entry(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Timeout);
    let wf = WorkflowOptions {
        retries: Some(1),
        ..WorkflowOptions::default()
    }
    .configure(workflow(&backend, brain.clone(), 200));
    let conversation = Conversation::new();
    let input = conversation.message("are you there?");
    let run = run_turn(&wf, &payload(&input)).await;
    let failure = run.result.expect_err("the run fails");
    assert_eq!(failure.step, "run_agent");
    assert_eq!(brain.calls(), 2, "one retry");
    let report = failure.report.expect("on_failure ran");
    assert_eq!(report.messages_recovered, 1);
    assert!(report.error.contains("brain_failed"), "{report:?}");
    let session = conversation.session_key();
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
    let turn_id = report.turn_id.expect("the run had a turn");
    // The failure is visible: one failure entry on the response stream, and the durable record.
    let entry = assert_failed_by(&backend, &input, turn_id).await;
    assert_eq!(entry.error.as_deref(), Some(report.error.as_str()));
    let message = stored_message(&backend, &input).await;
    let record = failure_record(&backend, &input, turn_id).await;
    assert_eq!(record.session_key, session);
    assert_eq!(record.message_ids, vec![message.id]);
    assert_eq!(record.reason, report.error);
    assert_eq!(record.failed_step.as_deref(), Some("run_agent"));

    // The session's next run answers its own message only.
    let healthy = workflow(
        &backend,
        TestBrain::new(Behaviour::Echo(Duration::ZERO)),
        200,
    );
    let next = conversation.message("hello?");
    let output = run_turn(&healthy, &payload(&next))
        .await
        .result
        .expect("run");
    assert_eq!(output.response.as_deref(), Some("Echo: hello?"));
}

async fn malformed_input_fails_once_naming_the_field(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 200);
    let mut input = serde_json::to_value(Conversation::new().message("x")).unwrap();
    input["tenant_id"] = json!("not-a-uuid");
    let run = run_turn(&wf, &acf_worker::workflow::TurnInput::from_json(input)).await;
    let failure = run.result.expect_err("invalid input");
    assert_eq!(failure.step, "acquire_mutex");
    assert!(failure.error.is_non_retryable());
    assert!(
        failure.error.to_report().contains("`tenant_id`"),
        "{}",
        failure.error.to_report()
    );
    assert_eq!(run.attempts["acquire_mutex"], 1);
    let report = failure.report.expect("on_failure ran");
    assert!(!report.lock_released);
    assert!(report.error.contains("tenant_id"));
    assert_eq!(brain.calls(), 0);

    let missing = json!({ "tenant_id": Uuid::new_v4().to_string() });
    let failure = run_turn(&wf, &acf_worker::workflow::TurnInput::from_json(missing))
        .await
        .result
        .expect_err("missing fields");
    assert!(
        failure.error.to_report().contains("`agent_id`"),
        "{}",
        failure.error.to_report()
    );

    // Over `max_message_chars` (1000 here): decoded, then refused by `acquire_mutex`, never stored or handed on.
    let long = Conversation::new().message(&"x".repeat(1_001));
    let run = run_turn(&wf, &payload(&long)).await;
    let failure = run.result.expect_err("too long");
    assert_eq!(failure.step, "acquire_mutex");
    assert!(failure.error.is_non_retryable());
    assert!(
        failure.error.to_report().contains("`message_content`"),
        "{}",
        failure.error.to_report()
    );
    let report = failure.report.expect("on_failure ran");
    assert_eq!(report.session_key, None, "nothing to settle");
    let id: Uuid = long.message_id.parse().unwrap();
    assert!(
        backend
            .stores
            .messages
            .get(&long.session_key(), id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(brain.calls(), 0);
}

async fn the_brain_sees_pending_messages_live(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::WatchPending(Duration::from_secs(5)));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let first = conversation.message("first");
    let during = conversation.message("typed while the brain runs");
    let late = {
        let backend = backend.clone();
        let during = during.clone();
        tokio::spawn(async move {
            // After the 200 ms window closed: the brain is running.
            tokio::time::sleep(Duration::from_millis(600)).await;
            accept(&backend, &during).await;
        })
    };
    let output = run_turn(&wf, &payload(&first)).await.result.expect("run");
    late.await.unwrap();
    assert_eq!(output.response.as_deref(), Some("pending=true"));
    assert_eq!(
        output.message_count, 1,
        "the late message is not part of this turn"
    );
    // The message that arrived after the window closed is answered by its own run.
    let echo = workflow(
        &backend,
        TestBrain::new(Behaviour::Echo(Duration::ZERO)),
        200,
    );
    let own = run_turn(&echo, &payload(&during))
        .await
        .result
        .expect("run");
    assert_eq!(own.status, TurnOutcome::Complete);
    assert_eq!(
        own.response.as_deref(),
        Some("Echo: typed while the brain runs")
    );
}

async fn a_run_waits_for_the_lock_and_fails_retryably_when_it_stays_taken(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = WorkflowOptions {
        retries: Some(1),
        ..WorkflowOptions::default()
    }
    .configure(workflow(&backend, brain.clone(), 200));
    let conversation = Conversation::new();
    let session = conversation.session_key();
    let holder = hold_lock(&backend, &session).await;
    let input = conversation.message("blocked");
    let run = run_turn(&wf, &payload(&input)).await;
    let failure = run.result.expect_err("the lock stays taken");
    assert_eq!(failure.step, "acquire_mutex");
    assert!(!failure.error.is_non_retryable());
    assert!(
        failure
            .error
            .to_string()
            .contains("mutex_acquisition_failed")
    );
    assert_eq!(run.attempts["acquire_mutex"], 2);
    assert!(
        backend.mutex.is_current(&holder).await.unwrap(),
        "the holder's lock is untouched"
    );
    let message = stored_message(&backend, &input).await;
    assert_eq!(
        message.status,
        MessageStatus::Pending,
        "the message stays for a later run"
    );

    // Released while a run is waiting: the run gets it.
    let release = {
        let mutex = backend.mutex.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            mutex.release(&holder).await.unwrap();
        })
    };
    let output = run_turn(&wf, &payload(&input)).await.result.expect("run");
    release.await.unwrap();
    assert_eq!(output.response.as_deref(), Some("Echo: blocked"));
}

async fn a_turn_whose_messages_were_taken_over_sends_no_response(kind: Kind) {
    let backend = backend(kind).await;
    let brain = TestBrain::new(Behaviour::Echo(Duration::ZERO));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("contested");
    let base = acf_sdk::testing::TestContext::new(payload(&input));
    let dispatch = |step: &'static str, parents: &[(&'static str, &serde_json::Value)]| {
        let mut ctx = base.clone().step(step);
        for (name, output) in parents {
            ctx = ctx.parent_output(name, output);
        }
        acf_sdk::Workflow::dispatch(&wf, step, ctx.build())
    };
    let acquired = dispatch("acquire_mutex", &[]).await.unwrap();
    let accumulated = dispatch("accumulate", &[("acquire_mutex", &acquired)])
        .await
        .unwrap();
    let agent = dispatch("run_agent", &[("accumulate", &accumulated)])
        .await
        .unwrap();
    // The run stalls; its lock expires; another holder takes the message into its own turn and answers it.
    let session = conversation.session_key();
    backend.mutex.force_release(&session).await.unwrap();
    let other = backend
        .mutex
        .acquire(
            &session,
            acf_worker::mutex::LockOptions::new(Duration::from_secs(5), Duration::ZERO),
        )
        .await
        .unwrap();
    let other_turn = Uuid::new_v4();
    let id: Uuid = input.message_id.parse().unwrap();
    assert_eq!(
        backend
            .stores
            .messages
            .absorb(&other, other_turn, &[id])
            .await
            .unwrap(),
        vec![id]
    );
    // The other turn commits its answer: the message is closed by it.
    let commit = support::answer_commit(&other, other_turn, "web", &[id], "the other answer");
    backend
        .stores
        .commits
        .commit(&other, &commit)
        .await
        .unwrap();
    backend.mutex.release(&other).await.unwrap();

    let output = dispatch(
        "commit_and_respond",
        &[("accumulate", &accumulated), ("run_agent", &agent)],
    )
    .await
    .unwrap();
    let output: acf_worker::models::WorkflowOutput = serde_json::from_value(output).unwrap();
    assert_eq!(output.status, TurnOutcome::Superseded);
    let responses = responses_of(&backend, &session).await;
    assert_eq!(responses.len(), 1, "only the other turn's answer");
    assert_eq!(responses[0].1.turn_id, other_turn);
    assert!(!backend.mutex.is_locked(&session).await.unwrap());
}
