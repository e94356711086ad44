//! ruche-worker end to end on the embedded engine and the shared Redis: messages go through intake, each
//! triggers its own `logical-turn` run, the Rust worker answers.

use acf_tests::e2e_support;

use std::time::Duration;

use acf_worker::models::Conversation;
use acf_worker::models::TurnOutcome;
use acf_worker::stores::MessageStatus;
use e2e_support::{
    Harness, Mode, assert_processed_by, is_locked, output, responses_of, stored_message,
};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_message_is_answered_on_the_response_stream() {
    let h = Harness::start(Mode::Echo(Duration::ZERO), 100, 10).await;
    let user = Conversation::new();
    let submitted = h.send(&user.message("hello")).await;
    let out = output(&submitted, LIMIT).await;
    assert_eq!(out.status, TurnOutcome::Complete);
    assert_eq!(out.response.as_deref(), Some("Echo: hello"));
    let responses = responses_of(&h.backend, &user.session_key()).await;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].message_ids, vec![submitted.message_id]);
    assert_processed_by(
        &h.backend,
        &user.session_key(),
        submitted.message_id,
        out.turn_id,
    )
    .await;
    assert!(!is_locked(&h.backend, &user.session_key()).await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_three_becomes_one_turn_with_one_response() {
    let h = Harness::start(Mode::Echo(Duration::ZERO), 600, 10).await;
    let user = Conversation::new();
    let mut runs = Vec::new();
    for text in ["hi", "I need help", "with order 123"] {
        runs.push(h.send(&user.message(text)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut outputs = Vec::new();
    for run in &runs {
        outputs.push(output(run, LIMIT).await);
    }
    assert_eq!(outputs[0].status, TurnOutcome::Complete);
    assert_eq!(
        outputs[0].response.as_deref(),
        Some("Echo: hi / I need help / with order 123")
    );
    assert_eq!(outputs[0].message_count, 3);
    assert_eq!(outputs[1].status, TurnOutcome::Absorbed);
    assert_eq!(outputs[2].status, TurnOutcome::Absorbed);
    assert_eq!(responses_of(&h.backend, &user.session_key()).await.len(), 1);
    assert_eq!(h.brain.calls().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_run_in_parallel() {
    let h = Harness::start(Mode::Echo(Duration::from_millis(1_500)), 100, 10).await;
    let (ann, ben) = (Conversation::new(), Conversation::new());
    let a = h.send(&ann.message("from ann")).await;
    let b = h.send(&ben.message("from ben")).await;
    assert_eq!(
        output(&a, LIMIT).await.response.as_deref(),
        Some("Echo: from ann")
    );
    assert_eq!(
        output(&b, LIMIT).await.response.as_deref(),
        Some("Echo: from ben")
    );
    let calls = h.brain.calls();
    assert_eq!(calls.len(), 2);
    // Each brain call lasts 1.5 s; serialised they could not overlap.
    let overlap = calls[0].ended.min(calls[1].ended) > calls[0].started.max(calls[1].started);
    assert!(
        overlap,
        "the two sessions' turns ran at the same time: {calls:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brain_failure_is_committed_as_a_failed_turn() {
    let h = Harness::start(Mode::Refuse, 100, 10).await;
    let user = Conversation::new();
    let submitted = h.send(&user.message("help")).await;
    let out = output(&submitted, LIMIT).await;
    assert_eq!(out.status, TurnOutcome::Failed);
    assert!(
        out.error
            .as_deref()
            .unwrap_or_default()
            .contains("the agent refused"),
        "{out:?}"
    );
    // The failure is delivered as a failure entry for the gateway to relay.
    let responses = responses_of(&h.backend, &user.session_key()).await;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, TurnOutcome::Failed);
    assert_eq!(responses[0].message_ids, vec![submitted.message_id]);
    let message = stored_message(&h.backend, &user.session_key(), submitted.message_id)
        .await
        .expect("intake stored the message");
    assert!(
        matches!(message.status, MessageStatus::Failed { .. }),
        "{message:?}"
    );
    assert!(!is_locked(&h.backend, &user.session_key()).await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_fails_without_retries_naming_the_field() {
    let h = Harness::start(Mode::Echo(Duration::ZERO), 100, 10).await;
    let mut payload = serde_json::to_value(Conversation::new().message("x")).unwrap();
    payload["message_id"] = json!("not-a-uuid");
    let started = std::time::Instant::now();
    let run = h
        .client
        .trigger("logical-turn", &payload, acf_sdk::TriggerOptions::default())
        .await
        .unwrap();
    let error = tokio::time::timeout(LIMIT, run.result())
        .await
        .expect("in time")
        .expect_err("the run fails");
    let text = error.to_string();
    assert!(text.contains("`message_id`"), "{text}");
    // A retry would have waited the first backoff (2 s) first.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let details = h.client.run_details(&run.run_id).await.unwrap();
    let recover = details
        .tasks
        .iter()
        .find(|(name, _)| name.contains("on-failure"))
        .map(|(_, task)| task.clone())
        .expect("the on-failure handler ran");
    let report = recover.output.expect("it recorded the failure");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("message_id"),
        "{report}"
    );
    assert!(h.brain.calls().is_empty());
    h.stop().await;
}
