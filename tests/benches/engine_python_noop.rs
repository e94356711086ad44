//! Benchmark (not a test): no-op task throughput through the embedded engine with official Python
//! SDK workers. Triggers runs of `BenchNoop` in bulk and waits for every result on one
//! `SubscribeToWorkflowRuns` stream; prints runs/s per worker count. A second measurement replaces
//! the Python workers by minimal raw-gRPC workers in this process, which shows the engine's own
//! ceiling.
//!
//! ```sh
//! cargo bench -p acf-tests --bench engine_python_noop
//! BENCH_RUNS=5000 BENCH_WORKERS=1,2,4 BENCH_SLOTS=100 cargo bench -p acf-tests --bench engine_python_noop
//! ```

use acf_tests::engine_support;

use acf_sdk::proto::dispatcher_client::DispatcherClient;
use acf_sdk::proto::v1::CreateTaskOpts;
use acf_sdk::proto::v1::CreateWorkflowVersionRequest;
use acf_sdk::proto::v1::TriggerWorkflowRequest;
use acf_sdk::proto::v1::admin_service_client::AdminServiceClient;
use acf_sdk::proto::workflow_service_client::WorkflowServiceClient;
use acf_sdk::proto::{
    HeartbeatRequest, StepActionEvent, StepActionEventType, SubscribeToWorkflowRunsRequest,
    WorkerListenRequest,
};
use acf_tests::env_or;
use engine_support::{Authed, Harness, connect, register_worker};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Triggers `n` runs in bulk (chunks of 500) and waits for all of them; returns the elapsed time.
async fn run_batch(ch: &Authed, n: usize) -> Duration {
    let mut wf = WorkflowServiceClient::new(ch.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    // The engine answers the open only with the first result (as Hatchet does), so it is awaited after the
    // triggers.
    let mut subscriber = DispatcherClient::new(ch.clone());
    let opening = tokio::spawn(async move {
        subscriber
            .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
            .await
    });
    let start = Instant::now();
    let mut pending = HashSet::new();
    let mut left = n;
    while left > 0 {
        let chunk = left.min(500);
        left -= chunk;
        let req = acf_sdk::proto::BulkTriggerWorkflowRequest {
            workflows: (0..chunk)
                .map(|_| TriggerWorkflowRequest {
                    name: "BenchNoop".into(),
                    ..Default::default()
                })
                .collect(),
        };
        for id in wf
            .bulk_trigger_workflow(req)
            .await
            .expect("bulk trigger")
            .into_inner()
            .workflow_run_ids
        {
            tx.send(SubscribeToWorkflowRunsRequest {
                workflow_run_id: id.clone(),
            })
            .expect("subscription open");
            pending.insert(id);
        }
    }
    let mut results = opening
        .await
        .expect("subscribe task")
        .expect("subscribe")
        .into_inner();
    while !pending.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(120), results.next())
            .await
            .expect("results keep coming")
            .expect("stream open")
            .expect("result");
        assert!(
            event.results.iter().all(|r| r.error.is_none()),
            "run failed: {event:?}"
        );
        pending.remove(&event.workflow_run_id);
    }
    start.elapsed()
}

/// A minimal worker on raw gRPC: registers, heartbeats, and completes every action with `{}`.
async fn raw_worker(ch: Authed, slots: i32) {
    let mut client = DispatcherClient::new(ch);
    let id = register_worker(
        &mut client,
        "raw-bench",
        &["benchnoop:benchnoop"],
        &[("default", slots)],
    )
    .await;
    // Heartbeats first: the engine answers the ListenV2 open only with the first action.
    let mut heartbeat = client.clone();
    let hb_id = id.clone();
    tokio::spawn(async move {
        loop {
            let req = HeartbeatRequest {
                worker_id: hb_id.clone(),
                heartbeat_at: None,
            };
            if heartbeat.heartbeat(req).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
    });
    let mut actions = client
        .listen_v2(WorkerListenRequest {
            worker_id: id.clone(),
        })
        .await
        .expect("listen")
        .into_inner();
    while let Some(Ok(action)) = actions.next().await {
        let mut client = client.clone();
        let worker_id = id.clone();
        tokio::spawn(async move {
            let event = StepActionEvent {
                worker_id,
                task_run_external_id: action.task_run_external_id,
                action_id: action.action_id,
                event_type: StepActionEventType::StepEventTypeCompleted as i32,
                retry_count: Some(action.retry_count),
                ..Default::default()
            };
            client
                .send_step_action_event(event)
                .await
                .expect("completed");
        });
    }
}

/// Engine ceiling: the same measurement with in-process raw-gRPC workers.
async fn raw_measurement(runs: usize, slots: u32) {
    let engine = acf_sdk::engine::Engine::builder()
        .start()
        .await
        .expect("engine");
    let ch = connect(&engine).await;
    let task = CreateTaskOpts {
        readable_id: "benchnoop".into(),
        action: "benchnoop:benchnoop".into(),
        timeout: "1m".into(),
        ..Default::default()
    };
    let req = CreateWorkflowVersionRequest {
        name: "BenchNoop".into(),
        tasks: vec![task],
        ..Default::default()
    };
    AdminServiceClient::new(ch.clone())
        .put_workflow(req)
        .await
        .expect("register workflow");
    tokio::spawn(raw_worker(ch.clone(), i32::try_from(slots).unwrap_or(100)));
    run_batch(&ch, 200).await;
    let elapsed = run_batch(&ch, runs).await;
    let rate = runs as f64 / elapsed.as_secs_f64();
    println!(
        "raw-grpc worker (engine ceiling) runs={runs:<6} elapsed={:>7.2}s  throughput={rate:>8.1} runs/s",
        elapsed.as_secs_f64()
    );
    protocol_floor(&ch, 200).await;
    engine.shutdown().await;
}

/// The latency floor of a run with no SDK in the way: one run at a time (`TriggerWorkflow`, then its result on
/// the open `SubscribeToWorkflowRuns` stream) served by the raw-gRPC worker, against a raw unary round trip
/// (`GetVersion`) on the same channel. A run is at least four messages in sequence (trigger, its answer and the
/// assignment, the COMPLETED report, the result), so its floor is about two round trips, whatever the SDK.
async fn protocol_floor(ch: &Authed, runs: usize) {
    let p50 = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut wf = WorkflowServiceClient::new(ch.clone());
    let mut dispatcher = DispatcherClient::new(ch.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subscriber = dispatcher.clone();
    let mut opening = Some(tokio::spawn(async move {
        subscriber
            .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
            .await
    }));
    let mut results = None;
    let mut run_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let at = Instant::now();
        let id = wf
            .trigger_workflow(TriggerWorkflowRequest {
                name: "BenchNoop".into(),
                ..Default::default()
            })
            .await
            .expect("trigger")
            .into_inner()
            .workflow_run_id;
        tx.send(SubscribeToWorkflowRunsRequest {
            workflow_run_id: id.clone(),
        })
        .expect("subscription open");
        // The engine answers the open only with the first result (as Hatchet does).
        if let Some(opening) = opening.take() {
            results = Some(
                opening
                    .await
                    .expect("subscribe task")
                    .expect("subscribe")
                    .into_inner(),
            );
        }
        let stream = results.as_mut().expect("subscribed");
        let event = stream.next().await.expect("stream open").expect("result");
        assert_eq!(event.workflow_run_id, id, "one run at a time");
        run_ms.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let mut unary_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let at = Instant::now();
        dispatcher
            .get_version(acf_sdk::proto::GetVersionRequest {})
            .await
            .expect("GetVersion");
        unary_ms.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    let (run, unary) = (p50(run_ms), p50(unary_ms));
    println!(
        "protocol floor, raw-grpc worker, 1 in flight: run p50 {run:.3} ms, raw unary round trip p50 {unary:.3} ms, \
         ratio {:.1}x",
        run / unary
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = env_or("BENCH_RUNS", 2000);
    let slots: u32 = env_or("BENCH_SLOTS", 100);
    let workers: Vec<usize> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    println!(
        "no-op task throughput, Python SDK workers, {runs} runs per measurement, {slots} slots per worker"
    );
    for count in workers {
        let mut h = Harness::start().await;
        for i in 0..count {
            h.worker(&format!("bench-{i}"), slots, &["noop"]);
        }
        h.wait_registered("BenchNoop").await;
        let ch = connect(&h.engine).await;
        // Warm-up: every worker connected and the Python side imported and JIT-free paths hot.
        run_batch(&ch, 50 * count).await;
        let elapsed = run_batch(&ch, runs).await;
        let rate = runs as f64 / elapsed.as_secs_f64();
        println!(
            "workers={count:<2} runs={runs:<6} elapsed={:>7.2}s  throughput={rate:>8.1} runs/s",
            elapsed.as_secs_f64()
        );
    }
    raw_measurement(runs, slots).await;
}
