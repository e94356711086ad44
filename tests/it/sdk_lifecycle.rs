//! Step lifecycle against the embedded engine: graceful drain with a step in flight, stragglers reported at
//! the drain deadline, panics, engine cancellation, context engine calls, slot limits, the health server.

use acf_tests::sdk_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use acf_sdk::worker::Outcome;
use acf_sdk::{
    Client, Context, Error, StepError, TaskDefinition, TriggerOptions, WorkerHandle,
    WorkflowBuilder, WorkflowRunRef,
};
use futures::StreamExt;
use sdk_support::{client, engine, eventually, ready, serve, spawn, within};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sleeper(ms: u64, honour_cancel: bool) -> acf_sdk::FnWorkflow {
    WorkflowBuilder::new("sleeper")
        .task(TaskDefinition::new("sleep"), move |_: Value, ctx: Context| async move {
            if honour_cancel {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    () = ctx.cancellation_token().cancelled() => return Err(StepError::msg("cancelled")),
                }
            } else {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Ok::<_, StepError>(json!({ "slept": ms }))
        })
        .build()
        .unwrap()
}

/// Once the worker is ready, triggers `sleeper` and waits until its step is running.
async fn sleeper_running(client: &Client, handle: &WorkerHandle) -> WorkflowRunRef {
    ready(handle).await;
    let run = client
        .trigger("sleeper", json!({}), TriggerOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        handle.status().running == 1
    })
    .await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_a_step_in_flight() {
    let engine = engine().await;
    let client = client(&engine);
    let (handle, join) = spawn(client.worker("drainer").workflow(sleeper(1500, false)));
    let run = sleeper_running(&client, &handle).await;
    handle.shutdown();
    // Not ready while draining; the run still completes and `run` returns Ok after the drain.
    eventually(Duration::from_secs(5), || async {
        handle.status().draining
    })
    .await;
    assert_eq!(
        handle.status().not_ready_reason().as_deref(),
        Some("shutting down")
    );
    within(30, join).await.unwrap().unwrap();
    let out = within(30, run.result()).await.unwrap();
    assert_eq!(out.outputs["sleep"], json!({"slept": 1500}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stragglers_are_cancelled_and_reported_failed_at_the_drain_deadline() {
    let engine = engine().await;
    let client = client(&engine);
    let (handle, join) = spawn(
        client
            .worker("straggler")
            .workflow(sleeper(120_000, false))
            .drain_timeout(Duration::from_millis(300))
            .cancel_grace(Duration::from_millis(200)),
    );
    let run = sleeper_running(&client, &handle).await;
    handle.shutdown();
    within(30, join).await.unwrap().unwrap();
    let err = within(30, run.result()).await.unwrap_err();
    match err {
        Error::RunFailed { errors, .. } => {
            assert!(errors["sleep"].contains("worker shutdown"), "{errors:?}")
        }
        other => panic!("expected a failed run, got {other:?}"),
    }
    assert_eq!(
        handle.metrics().outcomes("sleeper:sleep", Outcome::Failed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_fail_the_run_and_cancellation_reports_nothing() {
    let engine = engine().await;
    let client = client(&engine);
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&saw_cancel);
    let panicky = WorkflowBuilder::new("panicky")
        .task(
            TaskDefinition::new("boom").retries(3),
            |_: Value, _ctx: Context| async move {
                if 1 + 1 == 2 {
                    panic!("kaboom");
                }
                Ok::<_, StepError>(json!({}))
            },
        )
        .build()
        .unwrap();
    let cancellable = WorkflowBuilder::new("cancellable")
        .task(
            TaskDefinition::new("wait"),
            move |_: Value, ctx: Context| {
                let seen = Arc::clone(&seen);
                async move {
                    ctx.cancellation_token().cancelled().await;
                    seen.store(true, Ordering::SeqCst);
                    Ok::<_, StepError>(json!({ "finished": "after cancel" }))
                }
            },
        )
        .build()
        .unwrap();
    let worker = serve(
        client
            .worker("edge-cases")
            .workflow(panicky)
            .workflow(cancellable),
    )
    .await;

    let err = within(
        60,
        client.run("panicky", json!({}), TriggerOptions::default()),
    )
    .await
    .unwrap_err();
    match err {
        Error::RunFailed { errors, .. } => {
            assert!(errors["boom"].contains("panicked: kaboom"), "{errors:?}")
        }
        other => panic!("expected a failed run, got {other:?}"),
    }
    // A panic is an ordinary (retryable) failure: 1 attempt + 3 retries.
    eventually(Duration::from_secs(10), || async {
        worker
            .handle
            .metrics()
            .outcomes("panicky:boom", Outcome::Failed)
            == 4
    })
    .await;

    let run = client
        .trigger("cancellable", json!({}), TriggerOptions::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async {
        worker.handle.status().running == 1
    })
    .await;
    client.cancel(&[&run.run_id]).await.unwrap();
    eventually(Duration::from_secs(20), || async {
        saw_cancel.load(Ordering::SeqCst)
    })
    .await;
    eventually(Duration::from_secs(20), || async {
        worker
            .handle
            .metrics()
            .outcomes("cancellable:wait", Outcome::Cancelled)
            == 1
    })
    .await;
    assert_eq!(
        worker
            .handle
            .metrics()
            .outcomes("cancellable:wait", Outcome::Completed),
        0,
        "nothing is reported"
    );
    let result = within(30, run.result()).await;
    assert!(
        result.is_err(),
        "a cancelled run has no successful result: {result:?}"
    );

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_engine_calls_and_metadata() {
    // Requests are recorded so the test can see when the engine holds the stream subscription.
    let engine = acf_sdk::engine::Engine::builder()
        .record_requests(true)
        .start()
        .await
        .unwrap();
    let client = client(&engine);
    // Stream chunks are fan-out only (Hatchet does not keep them), so the step waits until the test has
    // subscribed before it writes any.
    let subscribed = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::clone(&subscribed);
    let wf = WorkflowBuilder::new("ctx-calls")
        .task(
            TaskDefinition::new("calls"),
            move |_: Value, ctx: Context| {
                let gate = Arc::clone(&gate);
                async move {
                    ctx.log("hello from the step").await?;
                    gate.notified().await;
                    ctx.put_stream("chunk-0").await?;
                    ctx.put_stream("chunk-1").await?;
                    let deadline = ctx.refresh_timeout(Duration::from_secs(30)).await?;
                    ctx.release_slot().await?;
                    // Give the stream subscriber time to see the chunks before the run ends.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, StepError>(json!({
                        "deadline_in_future": deadline > chrono::Utc::now(),
                        "tenant": ctx.additional_metadata().get("tenant"),
                        "run": ctx.workflow_run_id(),
                    }))
                }
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("ctx-worker").workflow(wf)).await;
    let run = client
        .trigger(
            "ctx-calls",
            json!({}),
            TriggerOptions::default().metadata("tenant", "acme"),
        )
        .await
        .unwrap();
    let chunks = within(30, async {
        let stream = client.stream(&run.run_id).await.unwrap();
        // The engine answers the subscription only with its first event (as Hatchet does), so whether it
        // holds the subscription is read from its request log.
        eventually(Duration::from_secs(10), || async {
            engine
                .requests()
                .iter()
                .any(|r| r.rpc == "Dispatcher/SubscribeToWorkflowEvents")
        })
        .await;
        subscribed.notify_one();
        stream
            .map(|c| String::from_utf8(c.unwrap()).unwrap())
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert_eq!(chunks, ["chunk-0", "chunk-1"]);
    let out = within(30, run.result()).await.unwrap();
    assert_eq!(out.outputs["calls"]["deadline_in_future"], json!(true));
    assert_eq!(out.outputs["calls"]["tenant"], json!("acme"));
    assert_eq!(out.outputs["calls"]["run"], json!(run.run_id));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_bound_concurrency() {
    let engine = engine().await;
    let client = client(&engine);
    let (now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let wf = WorkflowBuilder::new("bounded")
        .task(
            TaskDefinition::new("work"),
            move |_: Value, _ctx: Context| {
                let (n, p) = (Arc::clone(&n), Arc::clone(&p));
                async move {
                    let current = n.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(current, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, StepError>(json!({}))
                }
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("bounded-worker").slots(2).workflow(wf)).await;
    let runs: Vec<_> = (0..8)
        .map(|_| client.run("bounded", json!({}), TriggerOptions::default()))
        .collect();
    for r in within(60, futures::future::join_all(runs)).await {
        r.unwrap();
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 2,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    eventually(Duration::from_secs(10), || async {
        worker
            .handle
            .metrics()
            .outcomes("bounded:work", Outcome::Completed)
            == 8
    })
    .await;
    worker.stop().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_server_reports_liveness_readiness_and_metrics() {
    let engine = engine().await;
    let client = client(&engine);
    let (handle, join) = spawn(
        client
            .worker("healthy")
            .workflow(sleeper(10, false))
            .health_server(Some("127.0.0.1:0".parse().unwrap())),
    );
    ready(&handle).await;
    let addr = handle.health_addr().unwrap();
    assert_eq!(http_get(addr, "/livez").await.0, 200);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    within(
        30,
        client.run("sleeper", json!({}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    // The worker counts an outcome once its report is sent, which can trail the run's result by a moment.
    let completed = "hatchet_worker_tasks_total{action=\"sleeper:sleep\",outcome=\"completed\"} 1";
    eventually(Duration::from_secs(10), || async {
        http_get(addr, "/metrics").await.1.contains(completed)
    })
    .await;
    let (code, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains(completed), "{metrics}");
    assert!(
        metrics.contains("hatchet_worker_slots{slot=\"default\"} 100"),
        "{metrics}"
    );

    // The engine goes away: still alive, no longer ready, with the reason.
    engine.shutdown().await;
    eventually(Duration::from_secs(20), || async {
        http_get(addr, "/readyz").await.0 == 503
    })
    .await;
    let (_, body) = http_get(addr, "/readyz").await;
    assert!(body.starts_with("not ready:"), "{body}");
    assert_eq!(http_get(addr, "/livez").await.0, 200);
    handle.force_shutdown();
    let _ = within(30, join).await;
}
