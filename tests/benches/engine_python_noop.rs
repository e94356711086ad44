//! Benchmark (not a test): no-op task throughput through the embedded engine with official Python
//! SDK workers. Triggers runs of `BenchNoop` in bulk and waits for every result on one
//! `SubscribeToWorkflowRuns` stream; prints runs/s per worker count.
//!
//! ```sh
//! cargo bench -p acf-tests --bench engine_python_noop
//! BENCH_RUNS=5000 BENCH_WORKERS=1,2,4 BENCH_SLOTS=100 cargo bench -p acf-tests --bench engine_python_noop
//! ```

#[path = "../tests/engine_support/mod.rs"]
mod engine_support;

use acf_sdk::proto::SubscribeToWorkflowRunsRequest;
use acf_sdk::proto::dispatcher_client::DispatcherClient;
use acf_sdk::proto::v1::TriggerWorkflowRequest;
use acf_sdk::proto::workflow_service_client::WorkflowServiceClient;
use engine_support::{Authed, Harness, connect};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Triggers `n` runs in bulk (chunks of 500) and waits for all of them; returns the elapsed time.
async fn run_batch(ch: &Authed, n: usize) -> Duration {
    let mut wf = WorkflowServiceClient::new(ch.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut results = DispatcherClient::new(ch.clone())
        .subscribe_to_workflow_runs(UnboundedReceiverStream::new(rx))
        .await
        .expect("subscribe")
        .into_inner();
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
}
