//! End to end against the embedded engine: register → listen → run → report; trigger → await result.

use acf_tests::sdk_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use acf_sdk::{Context, Error, StepError, TaskDefinition, TriggerOptions, WorkflowBuilder};
use sdk_support::{client, engine, serve, within};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize)]
struct In {
    n: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Out {
    v: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_task_and_dag_run_end_to_end() {
    let engine = engine().await;
    let client = client(&engine);
    let wf = WorkflowBuilder::new("Math-Flow")
        .task(
            TaskDefinition::new("double"),
            |i: In, ctx: Context| async move {
                assert_eq!(ctx.retry_count(), 0);
                Ok::<_, StepError>(Out { v: i.n * 2 })
            },
        )
        .task(
            TaskDefinition::new("plus_one").parents(["double"]),
            |_: In, ctx: Context| async move {
                let d: Out = ctx.parent_output("double")?;
                Ok::<_, StepError>(Out { v: d.v + 1 })
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("math-worker").slots(4).workflow(wf)).await;

    let out = within(
        30,
        client.run("Math-Flow", In { n: 20 }, TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.step::<Out>("double").unwrap(), Out { v: 40 });
    assert_eq!(out.step::<Out>("plus_one").unwrap(), Out { v: 41 });

    // The registered request is exactly what the model builds.
    let registered = engine.registered_workflows();
    assert_eq!(registered.last().unwrap().name, "Math-Flow");
    assert_eq!(
        registered.last().unwrap().tasks[1].action,
        "math-flow:plus_one"
    );

    // Several runs awaited at once share one subscription stream.
    let runs: Vec<_> = (0..10)
        .map(|n| client.run("Math-Flow", In { n }, TriggerOptions::default()))
        .collect();
    let results = within(60, futures::future::join_all(runs)).await;
    for (n, r) in results.into_iter().enumerate() {
        assert_eq!(
            r.unwrap().step::<Out>("plus_one").unwrap().v,
            2 * n as i64 + 1
        );
    }
    let metrics = worker.handle.metrics();
    sdk_support::eventually(Duration::from_secs(10), || async {
        metrics.outcomes("math-flow:double", acf_sdk::worker::Outcome::Completed) == 11
    })
    .await;

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_then_fail_and_non_retryable_stops_at_once() {
    let engine = engine().await;
    let client = client(&engine);
    let flaky_calls = Arc::new(AtomicU32::new(0));
    let hard_calls = Arc::new(AtomicU32::new(0));
    let (f, h) = (Arc::clone(&flaky_calls), Arc::clone(&hard_calls));
    let wf = WorkflowBuilder::new("failing")
        .task(
            TaskDefinition::new("flaky").retries(2),
            move |_: serde_json::Value, ctx: Context| {
                let f = Arc::clone(&f);
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if ctx.retry_count() < 2 {
                        return Err(StepError::msg(format!("attempt {}", ctx.retry_count())));
                    }
                    Ok(json!({"attempt": ctx.retry_count()}))
                }
            },
        )
        .build()
        .unwrap();
    let hard = WorkflowBuilder::new("hard-fail")
        .task(
            TaskDefinition::new("declined").retries(3),
            move |_: serde_json::Value, _ctx: Context| {
                let h = Arc::clone(&h);
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    Err::<serde_json::Value, _>(StepError::non_retryable("card declined"))
                }
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("fail-worker").workflow(wf).workflow(hard)).await;

    let out = within(
        60,
        client.run("failing", json!({}), TriggerOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(out.outputs["flaky"], json!({"attempt": 2}));
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 3);

    let err = within(
        60,
        client.run("hard-fail", json!({}), TriggerOptions::default()),
    )
    .await
    .unwrap_err();
    match err {
        Error::RunFailed { errors, .. } => {
            assert!(errors["declined"].contains("card declined"), "{errors:?}")
        }
        other => panic!("expected a failed run, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hard_calls.load(Ordering::SeqCst),
        1,
        "a non-retryable failure is not retried"
    );

    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_past_the_gzip_threshold_round_trip() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Text {
        text: String,
    }
    let engine = engine().await;
    let client = client(&engine);
    // Input and output both well past `GZIP_MIN_BYTES`, so the trigger and the COMPLETED report go out compressed.
    let big = "turn ".repeat(4 * acf_sdk::channel::GZIP_MIN_BYTES);
    let wf = WorkflowBuilder::new("Big-Flow")
        .task(
            TaskDefinition::new("echo"),
            |i: Text, _ctx: Context| async move {
                Ok::<_, StepError>(Text {
                    text: format!("{} done", i.text),
                })
            },
        )
        .build()
        .unwrap();
    let worker = serve(client.worker("big-worker").workflow(wf)).await;
    let out = within(
        30,
        client.run(
            "Big-Flow",
            Text { text: big.clone() },
            TriggerOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        out.step::<Text>("echo").unwrap(),
        Text {
            text: format!("{big} done")
        }
    );
    worker.stop().await;
}
