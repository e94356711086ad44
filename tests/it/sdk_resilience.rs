//! The worker survives engine trouble: dropped streams, an engine restart on the same port (in-memory state
//! lost: the worker registers again), a heartbeat `FAILED_PRECONDITION` on a silently stalled stream, and it
//! exits with an error after too many consecutive failures.

use acf_tests::sdk_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use acf_sdk::engine::Engine;
use acf_sdk::proto::*;
use acf_sdk::{Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use sdk_support::{
    BoxStream, ScriptedDispatcher, client, eventually, fake_dispatcher_server, fake_engine_client,
    ready, serve, spawn, within,
};
use serde_json::{Value, json};
use tonic::Status;

fn echo() -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("echo")
        .task(
            TaskDefinition::new("echo"),
            |v: Value, _ctx: Context| async move { Ok::<_, StepError>(v) },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_streams_and_engine_restart_on_the_same_port() {
    let engine = Engine::builder()
        .token_secret(b"restart-secret".to_vec())
        .start()
        .await
        .unwrap();
    let addr = engine.addr();
    let client = client(&engine);
    let worker = serve(client.worker("resilient").workflow(echo())).await;
    let out = within(
        30,
        client.run("echo", json!({"n": 1}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["echo"], json!({"n": 1}));

    // 1. The engine ends every worker stream: the worker reconnects and keeps serving.
    engine.drop_worker_streams();
    eventually(Duration::from_secs(20), || async {
        worker.handle.metrics().reconnects() >= 1
    })
    .await;
    ready(&worker.handle).await;
    let out = within(
        30,
        client.run("echo", json!({"n": 2}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["echo"], json!({"n": 2}));

    // 2. The engine restarts on the same port with empty state: the worker registers its workflows and
    //    itself again, and serves new runs.
    engine.shutdown().await;
    drop(engine);
    eventually(Duration::from_secs(20), || async {
        worker.handle.status().not_ready_reason().is_some()
    })
    .await;
    let engine = Engine::builder()
        .bind(addr)
        .token_secret(b"restart-secret".to_vec())
        .start()
        .await
        .unwrap();
    eventually(Duration::from_secs(30), || async {
        !engine.registered_workflows().is_empty()
    })
    .await;
    ready(&worker.handle).await;
    let out = within(
        30,
        client.run("echo", json!({"n": 3}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["echo"], json!({"n": 3}));

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_consecutive_failures() {
    let engine = Engine::builder().start().await.unwrap();
    let client = client(&engine);
    let (handle, join) = spawn(
        client
            .worker("quitter")
            .workflow(echo())
            .max_consecutive_failures(2),
    );
    ready(&handle).await;
    engine.shutdown().await;
    drop(engine);
    let result = within(60, join).await.unwrap();
    let err = result.expect_err("the worker must fail once the engine is gone for good");
    assert!(err.to_string().contains("consecutive"), "{err}");
}

/// A dispatcher whose `ListenV2` stream stays open but silent (a "zombie" stream) and whose heartbeat then
/// answers `FAILED_PRECONDITION`, as Hatchet does when it no longer sees the stream.
#[derive(Default)]
struct Counters {
    listens: AtomicU32,
    heartbeats: AtomicU32,
}

struct ZombieDispatcher(Arc<Counters>);

#[tonic::async_trait]
impl ScriptedDispatcher for ZombieDispatcher {
    async fn register(&self, _: WorkerRegisterRequest) -> Result<WorkerRegisterResponse, Status> {
        Ok(WorkerRegisterResponse {
            tenant_id: uuid::Uuid::nil().to_string(),
            worker_id: uuid::Uuid::new_v4().to_string(),
            worker_name: "zombie".into(),
        })
    }
    async fn listen_v2(&self) -> Result<BoxStream<AssignedAction>, Status> {
        self.0.listens.fetch_add(1, Ordering::SeqCst);
        Ok(Box::pin(tokio_stream::pending()))
    }
    async fn heartbeat(&self) -> Result<HeartbeatResponse, Status> {
        self.0.heartbeats.fetch_add(1, Ordering::SeqCst);
        Err(Status::failed_precondition(
            "Heartbeat rejected: worker stream is not active",
        ))
    }
    fn version(&self) -> &'static str {
        "v0.94.16"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_failed_precondition_reopens_a_silent_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Counters::default());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(fake_dispatcher_server(ZombieDispatcher(Arc::clone(&fake))))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = fake_engine_client(addr);
    // No workflows: nothing to PutWorkflow, only the dispatcher is needed.
    let (handle, join) = spawn(
        client
            .worker("zombie")
            .heartbeat_interval(Duration::from_millis(200)),
    );
    // The stream never ends by itself: only the heartbeat rejection can make the worker reopen it.
    let counts = || {
        (
            fake.listens.load(Ordering::SeqCst),
            fake.heartbeats.load(Ordering::SeqCst),
        )
    };
    for _ in 0..200 {
        if counts().0 >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counts().0 >= 3,
        "listens/heartbeats {:?}, status {:?}",
        counts(),
        handle.status()
    );
    assert!(fake.heartbeats.load(Ordering::SeqCst) >= 2);
    assert!(handle.metrics().reconnects() >= 2);
    handle.shutdown();
    within(30, join).await.unwrap().unwrap();
    server.abort();
}
