//! Interop: the embedded engine judged by the official TypeScript SDK
//! (`@hatchet-dev/typescript-sdk@1.33.2`, the committed node project in `tests/ts`), as a worker
//! and as a trigger client, next to a Rust (acf-sdk) worker triggered from TypeScript.
//!
//! One TypeScript worker serves every scenario's workflow (`tests/ts/workflows.mjs`) and one client
//! process (`tests/ts/client.mjs`) runs all scenarios at once, so the whole suite costs one worker
//! start-up plus the longest scenario:
//! simple task; DAG with parent outputs and a retry; non-retryable error; event trigger; durable
//! task sleeping then waiting for an event; `GROUP_ROUND_ROBIN`; `max_runs_expression`; a named
//! tenant-scoped limit shared by two workflows; `CANCEL_QUEUED_EXCEPT_NEWEST` and
//! `CANCEL_QUEUED_EXCEPT_OLDEST`; execution and schedule timeouts; a Rust worker's workflow
//! triggered and awaited from TypeScript.
//!
//! What goes over REST in this SDK is driven from Rust here: cancelling (`runRef.cancel()`,
//! `hatchet.runs.cancel`), replays, run lists and pausing a worker on `stop()` call Hatchet's REST
//! API, which this engine does not serve (that API is covered by its own tests). Cancellation is
//! therefore requested over gRPC (`v1.AdminService/CancelTasks`) and the test checks that the
//! TypeScript task observes its abort signal.
//!
//! The TypeScript SDK lower-cases workflow names when it registers and triggers them, so the Rust
//! workflow it triggers has a lower-case name.

use acf_tests::{engine_support, sdk_support};

use acf_sdk::proto::v1::{ConcurrencyLimitStrategy, RunStatus};
use acf_sdk::{Context, StepError, TaskDefinition, WorkflowBuilder};
use acf_tests::node::NodeScript;
use acf_tests::peer::Background;
use engine_support::{Harness, status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The TypeScript worker process (`tests/ts/worker.mjs`); its process group is SIGKILLed on drop.
fn ts_worker(h: &Harness) -> Background {
    NodeScript::new("worker.mjs")
        .env("ACF_TEST_DIR", h.dir.path())
        .envs(h.engine.client_env())
        .spawn(h.dir.path().join("ts-worker.log"))
}

#[derive(Deserialize)]
struct EchoIn {
    msg: String,
}

#[derive(Serialize)]
struct EchoOut {
    echo: String,
    from: &'static str,
}

/// `[start, end]` windows of the records whose `field` equals `value`.
fn windows(records: &[Value], field: &str, value: &str) -> Vec<(i64, i64)> {
    records
        .iter()
        .filter(|r| r[field] == value)
        .map(|r| (r["start"].as_i64().unwrap(), r["end"].as_i64().unwrap()))
        .collect()
}

/// The largest number of windows open at one instant.
fn max_overlap(windows: &[(i64, i64)]) -> usize {
    windows
        .iter()
        .map(|(start, _)| {
            windows
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn ok<'a>(results: &'a Value, scenario: &str) -> &'a Value {
    let r = &results[scenario];
    assert!(r.get("ok").is_some(), "{scenario} failed: {r}");
    &r["ok"]
}

/// Every run of a multi-run scenario succeeded.
fn all_ok(results: &Value, scenario: &str, runs: usize) {
    let all = results[scenario]["all"].as_array().expect("runs");
    assert_eq!(all.len(), runs, "{scenario}: {all:?}");
    assert!(
        all.iter().all(|r| r.get("ok").is_some()),
        "{scenario}: {all:?}"
    );
}

fn err<'a>(results: &'a Value, scenario: &str) -> &'a str {
    results[scenario]["err"]
        .as_str()
        .unwrap_or_else(|| panic!("{scenario} should have failed: {}", results[scenario]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_as_worker_and_client_against_the_embedded_engine() {
    let h = Harness::start().await;

    let echo = WorkflowBuilder::new("rust-echo")
        .task(
            TaskDefinition::new("echo"),
            |i: EchoIn, _ctx: Context| async move {
                Ok::<_, StepError>(EchoOut {
                    echo: i.msg,
                    from: "rust",
                })
            },
        )
        .build()
        .expect("workflow");
    let rust_worker = sdk_support::client(&h.engine)
        .worker("rust-echo-worker")
        .slots(2)
        .workflow(echo)
        .handle_signals(false)
        .build()
        .expect("rust worker builds");
    let rust_handle = rust_worker.handle();
    let rust_join = tokio::spawn(rust_worker.run());

    let ts = ts_worker(&h);
    h.wait_registered("ts-schedule-timeout").await;
    h.wait_registered("rust-echo").await;

    // The client runs every scenario while this test cancels a TypeScript task over gRPC.
    let client = NodeScript::new("client.mjs")
        .env("ACF_TEST_DIR", h.dir.path())
        .envs(h.engine.client_env())
        .timeout(Duration::from_secs(90));
    let client = tokio::task::spawn_blocking(move || client.run());

    let run = h.trigger("ts-cancellable", json!({})).await;
    h.wait_records("ts-cancellable", Duration::from_secs(30), |r| {
        r.iter()
            .any(|x| x["phase"] == "started" && x["run"] == run.as_str())
    })
    .await;
    assert!(!h.cancel(&run).await.is_empty(), "nothing cancelled");
    h.wait_records("ts-cancellable", Duration::from_secs(10), |r| {
        r.iter()
            .any(|x| x["phase"] == "aborted" && x["run"] == run.as_str())
    })
    .await;
    let cancelled = h.wait_run(&run, Duration::from_secs(10)).await;
    assert_eq!(status(&cancelled), RunStatus::Cancelled);

    let out = client.await.expect("client thread");
    assert!(
        out.success(),
        "client failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- worker ---\n{}",
        out.status,
        out.stdout,
        out.stderr,
        ts.log()
    );
    let line = out
        .result_line()
        .unwrap_or_else(|| panic!("no RESULT line\n{}\n{}", out.stdout, ts.log()));
    let results: Value = serde_json::from_str(line).expect("RESULT is JSON");
    eprintln!("scenario results: {results}");

    assert_eq!(ok(&results, "simple"), &json!({"upper": "HELLO"}));

    assert_eq!(
        ok(&results, "dag"),
        &json!({
            "first": {"value": 5},
            "second": {"value": 50, "attempt": 1},
            "third": {"sum": 55}
        })
    );
    let attempts: Vec<Value> = h
        .records("ts-dag-second")
        .iter()
        .map(|r| r["retry"].clone())
        .collect();
    assert_eq!(attempts, vec![json!(0), json!(1)]);

    assert!(
        err(&results, "non_retryable").contains("this error must not be retried"),
        "{}",
        results["non_retryable"]
    );
    assert_eq!(h.records("ts-non-retryable").len(), 1, "retried anyway");

    assert!(ok(&results, "event")["event_id"].is_string());
    let seen = h
        .wait_records("ts-on-event", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    assert_eq!(seen[0]["input"], json!({"hello": "world"}));

    let durable = ok(&results, "durable");
    assert_eq!(durable["event"], json!({"id": "d1"}));
    assert!(
        durable["slept_ms"].as_i64().unwrap() >= 950,
        "sleepFor('1s') returned early: {durable}"
    );

    all_ok(&results, "round_robin", 4);
    all_ok(&results, "max_runs_expression", 5);
    all_ok(&results, "tenant_scoped", 4);
    let rr = h.records("ts-round-robin");
    assert_eq!(rr.len(), 4, "{rr:?}");
    let a = windows(&rr, "group", "a");
    assert_eq!(max_overlap(&a), 1, "group a ran concurrently: {a:?}");
    let b = windows(&rr, "group", "b");
    let last_a_start = a.iter().map(|w| w.0).max().unwrap();
    assert!(
        b[0].0 < last_a_start,
        "group b waited behind group a: {b:?} {a:?}"
    );

    let dynamic = h.records("ts-dynamic");
    assert_eq!(dynamic.len(), 5, "{dynamic:?}");
    assert_eq!(
        max_overlap(&windows(&dynamic, "account", "p")),
        2,
        "premium limit is 2"
    );
    assert_eq!(
        max_overlap(&windows(&dynamic, "account", "b")),
        1,
        "basic limit is 1"
    );

    let shared = h.records("ts-shared");
    assert_eq!(shared.len(), 4, "{shared:?}");
    let all: Vec<(i64, i64)> = shared
        .iter()
        .map(|r| (r["start"].as_i64().unwrap(), r["end"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        max_overlap(&all),
        1,
        "two workflows sharing a tenant-scoped limit of 1 overlapped: {all:?}"
    );

    let newest = &results["except_newest"]["all"];
    assert!(newest[0].get("ok").is_some(), "{newest}");
    assert!(
        newest[1]["err"]
            .as_str()
            .is_some_and(|e| e.contains("concurrency")),
        "B (older queued) must be cancelled: {newest}"
    );
    assert!(newest[2].get("ok").is_some(), "{newest}");
    let oldest = &results["except_oldest"]["all"];
    assert!(oldest[0].get("ok").is_some(), "{oldest}");
    assert!(oldest[1].get("ok").is_some(), "{oldest}");
    assert!(
        oldest[2]["err"]
            .as_str()
            .is_some_and(|e| e.contains("concurrency")),
        "C (newer queued) must be cancelled: {oldest}"
    );

    assert!(
        err(&results, "execution_timeout").contains("timeout"),
        "{}",
        results["execution_timeout"]
    );
    h.wait_records("ts-execution-timeout", Duration::from_secs(10), |r| {
        r.iter().any(|x| x["phase"] == "aborted")
    })
    .await;
    assert!(
        err(&results, "schedule_timeout").contains("schedule timeout"),
        "{}",
        results["schedule_timeout"]
    );

    assert_eq!(
        ok(&results, "rust_worker")["echo"],
        json!({"echo": "from ts", "from": "rust"})
    );

    // The features above arrived as the SDK sends them (so none was silently dropped on the way).
    let registered = h.engine.registered_workflows();
    let find = |name: &str| {
        registered
            .iter()
            .rev()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("{name} not registered"))
            .clone()
    };
    let dynamic = find("ts-dynamic");
    let limit = &dynamic.tasks[0].concurrency[0];
    assert_eq!(
        limit.max_runs_expression.as_deref(),
        Some("input.tier == 'premium' ? 2 : 1")
    );
    let shared = find("ts-shared-b");
    let limit = &shared.tasks[0].concurrency[0];
    assert_eq!(
        (limit.name.as_deref(), limit.is_tenant_scoped),
        (Some("ts-shared-limit"), Some(true))
    );
    let strategies: Vec<Option<i32>> = ["ts-except-newest", "ts-except-oldest"]
        .iter()
        .map(|n| {
            let w = find(n);
            w.concurrency_arr
                .first()
                .or(w.concurrency.as_ref())
                .or(w.tasks[0].concurrency.first())
                .and_then(|c| c.limit_strategy)
        })
        .collect();
    assert_eq!(
        strategies,
        vec![
            Some(ConcurrencyLimitStrategy::CancelQueuedExceptNewest as i32),
            Some(ConcurrencyLimitStrategy::CancelQueuedExceptOldest as i32)
        ]
    );

    rust_handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), rust_join).await;
}
