//! Interop: the embedded engine driven by the official Python SDK (`hatchet-sdk==1.43.1`) over
//! plaintext gRPC with an engine-minted token. Each test owns an engine and its Python workers;
//! every wait is bounded and workers are SIGKILLed (whole process group) when the test ends.

use acf_tests::engine_support;

use acf_sdk::engine::Engine;
use acf_sdk::proto::v1::RunStatus;
use engine_support::{Harness, output, status};
use serde_json::{Value, json};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_triggered_and_awaited_from_python() {
    let mut h = Harness::start().await;
    h.worker("dag-worker", 5, &["dag"]);
    h.wait_registered("InteropDag").await;
    let out = h.client(&["run-dag", "4"]).await;
    assert_eq!(
        out["result"],
        json!({"first": {"value": 5}, "second": {"value": 50}, "third": {"sum": 55}}),
        "{}",
        h.logs()
    );
    let registered = h.engine.registered_workflows();
    let dag = registered
        .iter()
        .find(|w| w.name == "InteropDag")
        .expect("InteropDag registered");
    assert_eq!(dag.tasks.len(), 3);
    assert_eq!(
        dag.tasks[2].parents,
        vec!["first".to_owned(), "second".to_owned()]
    );
    assert_eq!(
        out["streamed_result"],
        json!({"first": {"value": 6}, "second": {"value": 60}, "third": {"sum": 66}}),
        "aio_result (SubscribeToWorkflowRuns) path"
    );
    let details = h.details(out["run_id"].as_str().unwrap()).await;
    assert_eq!(status(&details), RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_twice_then_succeeds_with_backoff() {
    let mut h = Harness::start().await;
    h.worker("flaky-worker", 5, &["flaky"]);
    h.wait_registered("InteropFlaky").await;
    let run = h.trigger("InteropFlaky", json!({})).await;
    let details = h.wait_run(&run, RUN_TIMEOUT).await;
    assert_eq!(
        status(&details),
        RunStatus::Completed,
        "{details:?}\n{}",
        h.logs()
    );
    assert_eq!(output(&details, "interopflaky"), json!({"succeeded_on": 2}));
    let attempts = h.records("flaky");
    let counts: Vec<i64> = attempts
        .iter()
        .map(|a| a["retry_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 1, 2]);
    // backoff_factor=2, backoff_max_seconds=1: each retry waits min(1, 2^n) = 1 s.
    for pair in attempts.windows(2) {
        let gap = f(&pair[1], "at") - f(&pair[0], "at");
        assert!(
            gap >= 0.9,
            "retry came after {gap:.3}s, expected the 1 s backoff"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_error_fails_at_once() {
    let mut h = Harness::start().await;
    h.worker("fatal-worker", 5, &["fatal"]);
    h.wait_registered("InteropFatal").await;
    let run = h.trigger("InteropFatal", json!({})).await;
    let details = h.wait_run(&run, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Failed);
    let error = details.task_runs["interopfatal"]
        .error
        .clone()
        .unwrap_or_default();
    assert!(error.contains("do not retry me"), "error was {error:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        h.records("fatal").len(),
        1,
        "a non-retryable failure must not be retried (retries=3)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_wait_for_event_or_sleep_respects_scopes() {
    let mut h = Harness::start().await;
    h.worker("durable-worker", 5, &["durable"]);
    h.wait_registered("InteropDurableWait").await;
    let woken = h
        .trigger(
            "InteropDurableWait",
            json!({"scope": "conv-a", "timeout_s": 30}),
        )
        .await;
    let sleeper = h
        .trigger(
            "InteropDurableWait",
            json!({"scope": "conv-b", "timeout_s": 3}),
        )
        .await;
    h.wait_records("durable", RUN_TIMEOUT, |r| {
        r.iter().filter(|x| x["phase"] == "waiting").count() == 2
    })
    .await;
    // The wait is registered right after the marker; the lookback (`consider_events_since`) makes
    // the push count even if it lands first.
    h.client(&["push", "interop:message", r#"{"text": "hello"}"#, "conv-a"])
        .await;
    let a = h.wait_run(&woken, Duration::from_secs(20)).await;
    assert_eq!(status(&a), RunStatus::Completed, "{}", h.logs());
    let out = output(&a, "interopdurablewait");
    assert_eq!(out["fired"], json!(["interop:message"]), "{out}");
    assert_eq!(
        out["data"]["CREATE"]["interop:message"][0],
        json!({"text": "hello"})
    );
    let b = h.wait_run(&sleeper, Duration::from_secs(20)).await;
    let out = output(&b, "interopdurablewait");
    assert_eq!(
        out["fired"],
        json!(["sleep:3s"]),
        "the scope-b waiter must time out, not be woken: {out}"
    );
    let done = h.records("durable");
    let waited_b = done
        .iter()
        .find(|r| r["phase"] == "done" && r["scope"] == "conv-b")
        .map(|r| f(r, "waited"))
        .unwrap();
    assert!(
        waited_b >= 2.5,
        "sleep fired after {waited_b:.2}s, expected ~3s"
    );
    let waited_a = done
        .iter()
        .find(|r| r["phase"] == "done" && r["scope"] == "conv-a")
        .map(|r| f(r, "waited"))
        .unwrap();
    assert!(waited_a < 20.0, "event wait took {waited_a:.2}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_push_triggers_workflow() {
    let mut h = Harness::start().await;
    h.worker("event-worker", 5, &["on_event"]);
    // Give the worker time to register its workflows before the push (events only trigger
    // workflows that exist when they arrive).
    h.wait_registered("InteropOnEvent").await;
    h.client(&["push", "interop:order", r#"{"id": 7}"#]).await;
    let records = h
        .wait_records("on_event", RUN_TIMEOUT, |r| !r.is_empty())
        .await;
    assert_eq!(records[0]["payload"]["id"], json!(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_serializes_each_key_and_runs_keys_in_parallel() {
    let mut h = Harness::start().await;
    h.worker("grouped-worker", 10, &["grouped"]);
    h.wait_registered("InteropGrouped").await;
    let mut runs = Vec::new();
    for index in 0..3 {
        for group in ["a", "b"] {
            runs.push(
                h.trigger("InteropGrouped", json!({"group": group, "index": index}))
                    .await,
            );
        }
    }
    for run in &runs {
        assert_eq!(
            status(&h.wait_run(run, RUN_TIMEOUT).await),
            RunStatus::Completed
        );
    }
    let records = h.records("grouped");
    assert_eq!(records.len(), 6);
    let span = |r: &Value| (f(r, "start"), f(r, "end"));
    for group in ["a", "b"] {
        let mut spans: Vec<(f64, f64)> = records
            .iter()
            .filter(|r| r["group"] == group)
            .map(span)
            .collect();
        spans.sort_by(|x, y| x.0.total_cmp(&y.0));
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1 - 0.01,
                "group {group} ran concurrently: {spans:?}"
            );
        }
        let order: Vec<i64> = {
            let mut rs: Vec<&Value> = records.iter().filter(|r| r["group"] == group).collect();
            rs.sort_by(|x, y| f(x, "start").total_cmp(&f(y, "start")));
            rs.iter().map(|r| r["index"].as_i64().unwrap()).collect()
        };
        assert_eq!(order, vec![0, 1, 2], "runs of one key keep their order");
    }
    let overlap = records.iter().filter(|r| r["group"] == "a").any(|a| {
        records
            .iter()
            .filter(|r| r["group"] == "b")
            .any(|b| f(a, "start") < f(b, "end") && f(b, "start") < f(a, "end"))
    });
    assert!(
        overlap,
        "different keys should run in parallel: {records:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_task_completes_on_another_worker() {
    // Python heartbeats every 4 s, so the reassignment delay must stay above that.
    let builder = Engine::builder().reassign_after(Duration::from_secs(8));
    let mut h = Harness::with(builder).await;
    let first = h.worker("w1", 5, &["slow"]);
    h.wait_registered("InteropSlow").await;
    let run = h.trigger("InteropSlow", json!({})).await;
    h.wait_records("slow", RUN_TIMEOUT, |r| {
        r.iter().any(|x| x["phase"] == "started")
    })
    .await;
    h.workers[first].kill();
    h.worker("w2", 5, &["slow"]);
    let details = h.wait_run(&run, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Completed, "{}", h.logs());
    assert_eq!(output(&details, "interopslow"), json!({"worker": "w2"}));
    let started: Vec<String> = h
        .records("slow")
        .iter()
        .filter(|r| r["phase"] == "started")
        .map(|r| r["worker"].as_str().unwrap().to_owned())
        .collect();
    // On a loaded machine a late heartbeat may make w2 start it twice; never on w1 again.
    assert_eq!(started[0], "w1");
    assert!(
        started[1..].iter().all(|w| w == "w2") && started.len() >= 2,
        "{started:?}\n{}",
        h.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_python_task() {
    let mut h = Harness::start().await;
    h.worker("cancel-worker", 5, &["cancellable"]);
    h.wait_registered("InteropCancellable").await;
    let run = h.trigger("InteropCancellable", json!({})).await;
    h.wait_records("cancellable", RUN_TIMEOUT, |r| {
        r.iter().any(|x| x["phase"] == "started")
    })
    .await;
    let cancelled = h.cancel(&run).await;
    assert_eq!(cancelled.len(), 1);
    let records = h
        .wait_records("cancellable", Duration::from_secs(15), |r| {
            r.iter().any(|x| x["phase"] == "cancelled")
        })
        .await;
    assert!(!records.iter().any(|r| r["phase"] == "finished"));
    let details = h.wait_run(&run, Duration::from_secs(5)).await;
    assert_eq!(status(&details), RunStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_worker_reconnects_after_the_engine_drops_its_streams() {
    let mut h = Harness::start().await;
    h.worker("reconnect-worker", 5, &["dag"]);
    h.wait_registered("InteropDag").await;
    let before = h.trigger("InteropDag", json!({"n": 1})).await;
    assert_eq!(
        status(&h.wait_run(&before, RUN_TIMEOUT).await),
        RunStatus::Completed
    );
    h.engine.drop_worker_streams();
    let after = h.trigger("InteropDag", json!({"n": 2})).await;
    let details = h.wait_run(&after, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Completed, "{}", h.logs());
    assert_eq!(output(&details, "third"), json!({"sum": 33}));
}

/// Waits until a task of a run reports COMPLETED in `GetRunDetails`.
async fn wait_task_completed(h: &Harness, run: &str, task: &str) {
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    loop {
        let details = h.details(run).await;
        if details
            .task_runs
            .get(task)
            .is_some_and(|t| t.status == RunStatus::Completed as i32)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{task} never completed: {details:?}\n{}",
            h.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_conditions_skip_and_on_failure_from_python() {
    let mut h = Harness::start().await;
    h.worker("gated-worker", 5, &["gated"]);
    h.wait_registered("InteropGated").await;

    // wait_for: an event OR a 30 s sleep; the CEL filter rejects the first push.
    let run = h.trigger("InteropGated", json!({"fail": false})).await;
    wait_task_completed(&h, &run, "opener").await;
    h.client(&["push", "interop:go", r#"{"ok": false}"#]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        h.records("gated").is_empty(),
        "an event failing the CEL filter must not release the task"
    );
    h.client(&["push", "interop:go", r#"{"ok": true}"#]).await;
    let details = h.wait_run(&run, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Completed, "{}", h.logs());
    assert_eq!(
        output(&details, "waiter"),
        json!({"triggers": ["filter_payload", "interop:go"]})
    );
    let waiter = h.records("gated");
    assert_eq!(waiter[0]["triggers"]["interop:go"], json!({"ok": true}));
    // skip_if on the parent's output: the task never ran and reports {"skipped": true}.
    assert_eq!(output(&details, "skipped"), json!({"skipped": true}));
    assert!(!waiter.iter().any(|r| r["task"] == "skipped"));

    // A failing task runs the on-failure task with the upstream errors.
    let run = h.trigger("InteropGated", json!({"fail": true})).await;
    wait_task_completed(&h, &run, "opener").await;
    h.client(&["push", "interop:go", r#"{"ok": true}"#]).await;
    let details = h.wait_run(&run, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Failed, "{}", h.logs());
    let records = h
        .wait_records("gated", Duration::from_secs(10), |r| {
            r.iter().any(|x| x["task"] == "on_failure")
        })
        .await;
    let handled = records.iter().find(|r| r["task"] == "on_failure").unwrap();
    let error = handled["errors"]["waiter"].as_str().unwrap_or_default();
    assert!(
        error.contains("waiter failed on purpose"),
        "on-failure saw {handled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_chunks_reach_a_python_subscriber() {
    let mut h = Harness::start().await;
    h.worker("stream-worker", 5, &["streamer"]);
    h.wait_registered("InteropStreamer").await;
    let out = h.client(&["stream"]).await;
    assert_eq!(
        out["chunks"],
        json!(["chunk-0", "chunk-1", "chunk-2"]),
        "{}",
        h.logs()
    );
    let details = h
        .wait_run(out["run_id"].as_str().unwrap(), RUN_TIMEOUT)
        .await;
    assert_eq!(status(&details), RunStatus::Completed);
}

/// A workflow declared by the Python SDK with a TTL idempotency key: a second trigger with the same key is
/// refused with the existing run named, through the status detail the SDKs decode (single and bulk), in
/// Python and in our SDK alike; a different key runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_refuse_duplicates_for_python_and_rust_clients() {
    let mut h = Harness::start().await;
    h.worker("idem-worker", 5, &["idempotent"]);
    h.wait_registered("InteropIdempotent").await;
    let out = h.client(&["idempotent", "order-1"]).await;
    let first = out["first"].as_str().expect("first run id").to_owned();
    assert_eq!(
        out["again"],
        json!({ "existing": first }),
        "Python raised IdempotencyCollisionError naming the first run: {out}"
    );
    let other = out["other"].as_str().expect("another key runs");
    assert_ne!(other, first);
    assert_eq!(out["bulk"]["existing"], json!([first]), "{out}");
    assert_eq!(
        out["bulk"]["created"].as_array().map(Vec::len),
        Some(1),
        "the bulk trigger's other run was created: {out}"
    );
    let details = h.wait_run(&first, RUN_TIMEOUT).await;
    assert_eq!(status(&details), RunStatus::Completed, "{}", h.logs());

    let client = acf_tests::sdk_support::client_with(&h.engine, &[]);
    match client
        .trigger(
            "InteropIdempotent",
            json!({ "order_id": "order-1" }),
            acf_sdk::TriggerOptions::default(),
        )
        .await
    {
        Err(acf_sdk::Error::IdempotencyCollision { existing_run_id }) => {
            assert_eq!(existing_run_id, first);
        }
        other => panic!("our SDK reports the collision as such: {other:?}"),
    }
    client
        .trigger(
            "InteropIdempotent",
            json!({ "order_id": "order-2" }),
            acf_sdk::TriggerOptions::default(),
        )
        .await
        .expect("a fresh key triggers");
}
