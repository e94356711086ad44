//! Redis restarts in the middle of a turn (a persistent Redis: append-only file, fsync always): the lease
//! heartbeat rides over the outage, the connections come back, and the turn is answered once.

use crate::support;
use crate::workflow_support;

use std::time::Duration;

use acf_worker::models::TurnOutcome;
use acf_worker::stores::{Backend, RedisConnectOptions, StoreSettings};
use support::RedisServer;
use workflow_support::{
    Behaviour, Conversation, TestBrain, accept, assert_processed_by, payload, responses_of,
    run_turn, workflow,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_survives_a_redis_restart_while_the_brain_runs() {
    let mut redis = RedisServer::persistent();
    let backend = Backend::redis(
        &redis.url(),
        StoreSettings::default(),
        &RedisConnectOptions::default(),
    )
    .await
    .unwrap();
    let brain = TestBrain::new(Behaviour::Echo(Duration::from_millis(2_000)));
    let wf = workflow(&backend, brain.clone(), 200);
    let conversation = Conversation::new();
    let input = conversation.message("still there?");
    accept(&backend, &input).await;
    let run = {
        let input = input.clone();
        tokio::spawn(async move { run_turn(&wf, &payload(&input)).await })
    };
    // The window (200 ms) has closed and the brain is thinking when Redis goes away for half a second.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(brain.calls(), 1);
    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();

    let run = run.await.unwrap();
    let output = run.result.expect("the run completes");
    assert_eq!(output.status, TurnOutcome::Complete);
    assert_eq!(output.response.as_deref(), Some("Echo: still there?"));
    assert_eq!(brain.calls(), 1, "the brain ran once");
    let session = conversation.session_key();
    assert_eq!(responses_of(&backend, &session).await.len(), 1);
    assert_processed_by(&backend, &input, output.turn_id).await;
    assert!(!backend.mutex.is_locked(&session).await.unwrap());

    // The next message after the restart is a normal turn.
    let next = conversation.message("and now?");
    let output = run_turn(&workflow(&backend, brain.clone(), 200), &payload(&next))
        .await
        .result
        .expect("run");
    assert_eq!(output.response.as_deref(), Some("Echo: and now?"));
}
