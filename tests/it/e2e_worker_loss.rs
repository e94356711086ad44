//! A worker dies in the middle of a turn (its runtime, connections and background tasks vanish at once, as when
//! the process is killed) and a replacement takes over: the engine re-assigns the interrupted step, the turn is
//! redone under the same turn id, nothing is lost and nothing is answered twice.

use acf_tests::e2e_support;
use acf_tests::sdk_support::client_from_env;

use std::time::Duration;

use acf_sdk::engine::Engine;
use acf_worker::models::Conversation;
use acf_worker::models::TurnOutcome;
use e2e_support::{
    Mode, RecordingBrain, assert_processed_by, client, is_locked, output, redis_backend_at,
    responses_of, start_worker, unique_prefix,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_interrupted_by_a_dead_worker_is_redone_by_its_replacement_exactly_once() {
    let engine = Engine::builder()
        .reassign_after(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let client = client(&engine);
    let prefix = unique_prefix();
    let backend = redis_backend_at(&prefix).await;
    let user = Conversation::new();

    // Worker A runs on its own runtime, with its own connections; its brain never answers.
    let doomed = RecordingBrain::new(Mode::Hang);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let env = engine.client_env();
    let a_brain = doomed.clone();
    let a_prefix = prefix.clone();
    let worker_a = std::thread::spawn(move || {
        let prefix = a_prefix;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = client_from_env(env);
            // The Redis stores are runtime-bound too: open a second backend on the same keys.
            let a_backend = redis_backend_at(&prefix).await;
            let _running = start_worker(&client, &a_backend, a_brain.clone(), 100, 10).await;
            ready_tx.send(()).unwrap();
            a_brain.wait_started().await;
            started_tx.send(()).unwrap();
            let _ = kill_rx.await;
        });
        // Dropping the runtime aborts every task of worker A mid-flight: no FAILED report, no lock release.
        drop(runtime);
    });

    // Worker A has registered `logical-turn` before the message is sent.
    tokio::task::spawn_blocking(move || ready_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("worker A is ready");
    let submitted = intake_send(&client, &backend, &user).await;
    tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("worker A's brain started the turn");
    kill_tx.send(()).unwrap();
    worker_a.join().unwrap();
    assert!(
        is_locked(&backend, &user.session_key()).await,
        "the dead worker still holds the session lock"
    );

    let healthy = RecordingBrain::new(Mode::Echo(Duration::ZERO));
    let worker_b = start_worker(&client, &backend, healthy.clone(), 100, 10).await;
    let out = output(&submitted, Duration::from_secs(60)).await;
    assert_eq!(out.status, TurnOutcome::Complete);
    assert_eq!(out.response.as_deref(), Some("Echo: are you there?"));
    let calls = healthy.calls();
    assert_eq!(calls.len(), 1, "the replacement ran the brain once");
    assert_eq!(
        calls[0].turn_id, out.turn_id,
        "the same turn id, minted before the crash"
    );
    assert!(
        doomed.calls().is_empty(),
        "worker A never finished a brain call"
    );

    let responses = responses_of(&backend, &user.session_key()).await;
    assert_eq!(responses.len(), 1, "answered once");
    assert_processed_by(
        &backend,
        &user.session_key(),
        submitted.message_id,
        out.turn_id,
    )
    .await;
    assert!(!is_locked(&backend, &user.session_key()).await);

    worker_b.stop().await.unwrap();
    engine.shutdown().await;
}

async fn intake_send(
    client: &acf_sdk::Client,
    backend: &acf_worker::stores::Backend,
    user: &Conversation,
) -> acf_worker::intake::Submitted {
    acf_worker::intake::submit(
        &backend.stores,
        client,
        &user.message("are you there?"),
        16_000,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_drains_the_running_step_and_the_next_worker_finishes_the_turn() {
    let engine = Engine::builder().start().await.unwrap();
    let client = client(&engine);
    let backend = redis_backend_at(&unique_prefix()).await;
    let user = Conversation::new();
    let old = RecordingBrain::new(Mode::Echo(Duration::from_millis(1_500)));
    let worker_a = start_worker(&client, &backend, old.clone(), 100, 10).await;
    let submitted = intake_send(&client, &backend, &user).await;
    tokio::time::timeout(Duration::from_secs(30), old.wait_started())
        .await
        .expect("the brain started");
    // SIGTERM-like: stop taking work, let the running brain call finish, report it, exit cleanly.
    worker_a.stop().await.expect("a clean drain");
    assert_eq!(
        old.calls().len(),
        1,
        "the in-flight brain call finished during the drain"
    );

    let new = RecordingBrain::new(Mode::Echo(Duration::ZERO));
    let worker_b = start_worker(&client, &backend, new.clone(), 100, 10).await;
    let out = output(&submitted, Duration::from_secs(60)).await;
    assert_eq!(out.status, TurnOutcome::Complete);
    assert_eq!(out.response.as_deref(), Some("Echo: are you there?"));
    assert!(
        new.calls().is_empty(),
        "the answer drained from the old worker is the one committed"
    );
    assert_eq!(responses_of(&backend, &user.session_key()).await.len(), 1);
    assert!(!is_locked(&backend, &user.session_key()).await);
    worker_b.stop().await.unwrap();
    engine.shutdown().await;
}
