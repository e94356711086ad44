//! SDK benchmark: no-op task throughput and latency (p50/p99) of the Rust worker vs the official Python SDK
//! worker, on the same embedded engine and machine, with a raw tonic unary round trip as the floor.
//!
//! `cargo run --release -p acf-examples --example sdk_benchmark -- [runs] [concurrency]`
//! (the Python part needs `scripts/ensure-venv`, or `ACF_PYTHON` pointing at a Python with `hatchet-sdk`).

use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_sdk::proto::GetVersionRequest;
use acf_sdk::{Client, Context, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const PY_WORKER: &str = r#"
from hatchet_sdk import Context, EmptyModel, Hatchet

hatchet = Hatchet()
wf = hatchet.workflow(name="bench-py")

@wf.task()
async def noop(input: EmptyModel, ctx: Context) -> dict:
    return {"ok": True}

if __name__ == "__main__":
    hatchet.worker("bench-py-worker", slots=100, workflows=[wf]).start()
"#;

struct Stats {
    runs: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    }

    fn line(&self, name: &str, inflight: usize) -> String {
        format!(
            "| {name} | {inflight} | {} | {:.0} | {:.2} | {:.2} |",
            self.runs,
            self.runs as f64 / self.elapsed.as_secs_f64(),
            self.pct(0.5).as_secs_f64() * 1000.0,
            self.pct(0.99).as_secs_f64() * 1000.0
        )
    }
}

/// `runs` calls of `op`, at most `concurrency` in flight; latency per call.
async fn drive<F, Fut>(runs: usize, concurrency: usize, op: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(runs);
    for i in 0..runs {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("semaphore");
        let op = Arc::clone(&op);
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            op(i).await;
            drop(permit);
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(runs);
    for h in handles {
        latencies.push(h.await.expect("task"));
    }
    Stats {
        runs,
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn workflow_runs(
    client: &Client,
    workflow: &'static str,
    runs: usize,
    concurrency: usize,
) -> Stats {
    // Warm-up (connections, registration visible to the scheduler).
    for _ in 0..20 {
        client
            .run(workflow, json!({}), TriggerOptions::default())
            .await
            .expect("warm-up run");
    }
    let client = client.clone();
    drive(runs, concurrency, move |_| {
        let client = client.clone();
        async move {
            client
                .run(workflow, json!({}), TriggerOptions::default())
                .await
                .expect("run");
        }
    })
    .await
}

/// Triggers `runs` runs with `BulkTriggerWorkflow` (chunks of 500) and awaits every result on the client's one
/// `SubscribeToWorkflowRuns` stream: the method of the engine section of BENCHMARKS.md. Latency here is
/// each run's completion time since the first trigger.
async fn bulk_runs(client: &Client, workflow: &str, runs: usize) -> Stats {
    let start = Instant::now();
    let mut waits = Vec::with_capacity(runs);
    for chunk in (0..runs).collect::<Vec<_>>().chunks(500) {
        let batch = chunk
            .iter()
            .map(|_| (workflow.to_owned(), json!({}), TriggerOptions::default()))
            .collect();
        for run in client.bulk_trigger(batch).await.expect("bulk trigger") {
            waits.push(tokio::spawn(async move {
                run.result().await.expect("run");
                start.elapsed()
            }));
        }
    }
    let mut latencies = Vec::with_capacity(runs);
    for w in waits {
        latencies.push(w.await.expect("task"));
    }
    Stats {
        runs,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn python() -> PathBuf {
    std::env::var_os("ACF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

async fn start_rust_worker(
    client: &Client,
    tuned: bool,
) -> Result<acf_sdk::WorkerHandle, Box<dyn std::error::Error>> {
    let name = if tuned { "bench-rs-tuned" } else { "bench-rs" };
    let wf = WorkflowBuilder::new(name)
        .task(
            TaskDefinition::new("noop"),
            |_: Value, _ctx: Context| async move { Ok::<_, StepError>(json!({ "ok": true })) },
        )
        .build()?;
    let worker = client
        .worker(&format!("{name}-worker"))
        .slots(100)
        .send_started(!tuned)
        .handle_signals(false)
        .workflow(wf)
        .build()?;
    let handle = worker.handle();
    tokio::spawn(worker.run());
    while handle.status().not_ready_reason().is_some() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(handle)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let serial = (runs / 10).max(50);
    let (engine, client) = acf_examples::local_engine().await?;
    let mut rows = Vec::new();

    // Floor: a raw tonic unary round trip (GetVersion) over the same channel settings.
    let get_version = |client: &Client| {
        let dispatcher = client.connection().dispatcher();
        move |_| {
            let mut d = dispatcher.clone();
            async move {
                d.get_version(GetVersionRequest {})
                    .await
                    .expect("GetVersion");
            }
        }
    };
    rows.push((
        "raw tonic unary round trip (GetVersion)",
        1,
        drive(serial, 1, get_version(&client)).await,
    ));
    rows.push((
        "raw tonic unary round trip (GetVersion)",
        concurrency,
        drive(runs, concurrency, get_version(&client)).await,
    ));

    // Rust worker, defaults (gzip, STARTED reported, as Python does).
    let handle = start_rust_worker(&client, false).await?;
    rows.push((
        "Rust worker, no-op (defaults)",
        1,
        workflow_runs(&client, "bench-rs", serial, 1).await,
    ));
    rows.push((
        "Rust worker, no-op (defaults)",
        concurrency,
        workflow_runs(&client, "bench-rs", runs, concurrency).await,
    ));
    rows.push((
        "Rust worker, no-op (defaults), bulk-triggered",
        0,
        bulk_runs(&client, "bench-rs", runs * 2).await,
    ));
    handle.shutdown();

    // Rust worker, tuned: no gzip on tiny messages, no STARTED report.
    let tuned_client = Client::new(acf_examples::client_config(&engine)?.with_gzip(false))?;
    let handle = start_rust_worker(&tuned_client, true).await?;
    rows.push((
        "Rust worker, no-op (no gzip, no STARTED)",
        1,
        workflow_runs(&tuned_client, "bench-rs-tuned", serial, 1).await,
    ));
    rows.push((
        "Rust worker, no-op (no gzip, no STARTED)",
        concurrency,
        workflow_runs(&tuned_client, "bench-rs-tuned", runs, concurrency).await,
    ));
    rows.push((
        "Rust worker, no-op (no gzip, no STARTED), bulk-triggered",
        0,
        bulk_runs(&tuned_client, "bench-rs-tuned", runs * 2).await,
    ));
    handle.shutdown();

    // Python SDK worker on the same engine.
    let dir = std::env::temp_dir().join(format!("acf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("bench_worker.py");
    std::fs::write(&script, PY_WORKER)?;
    let mut cmd = Command::new(python());
    cmd.arg("-u")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in engine.client_env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let ready = Instant::now();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            client.run("bench-py", json!({}), TriggerOptions::default()),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            break;
        }
        if ready.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("the Python worker did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    rows.push((
        "Python SDK 1.43.1 worker, no-op",
        1,
        workflow_runs(&client, "bench-py", serial, 1).await,
    ));
    rows.push((
        "Python SDK 1.43.1 worker, no-op",
        concurrency,
        workflow_runs(&client, "bench-py", (runs / 4).max(100), concurrency).await,
    ));
    rows.push((
        "Python SDK 1.43.1 worker, no-op, bulk-triggered",
        0,
        bulk_runs(&client, "bench-py", runs).await,
    ));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!("| path | in flight (0 = bulk) | calls | throughput (/s) | p50 (ms) | p99 (ms) |");
    println!("|---|---|---|---|---|---|");
    for (name, inflight, stats) in &rows {
        println!("{}", stats.line(name, *inflight));
    }
    let tput = |name: &str, inflight: usize| {
        rows.iter()
            .find(|(n, i, _)| *n == name && *i == inflight)
            .map(|(_, _, st)| st.runs as f64 / st.elapsed.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let p50 = |name: &str| {
        rows.iter()
            .find(|(n, i, _)| *n == name && *i == 1)
            .map(|(_, _, st)| st.pct(0.5).as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let (raw, rs, tuned, py) = (
        "raw tonic unary round trip (GetVersion)",
        "Rust worker, no-op (defaults)",
        "Rust worker, no-op (no gzip, no STARTED)",
        "Python SDK 1.43.1 worker, no-op",
    );
    println!(
        "Rust/Python throughput: {:.1}x bulk-triggered, {:.1}x at {concurrency} in flight; \
         Rust p50 / raw round trip p50 at 1 in flight: {:.1}x (defaults), {:.1}x (no STARTED)",
        tput("Rust worker, no-op (defaults), bulk-triggered", 0)
            / tput("Python SDK 1.43.1 worker, no-op, bulk-triggered", 0),
        tput(rs, concurrency) / tput(py, concurrency),
        p50(rs) / p50(raw),
        p50(tuned) / p50(raw),
    );
    Ok(())
}
