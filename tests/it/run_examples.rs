//! Runs the macro examples end to end (each starts its own embedded engine and worker) and checks what they
//! return.

use std::time::Duration;

use acf_examples::{macro_dag, macro_durable_wait};

/// Generous bound for a loaded CI machine; each example takes a few seconds.
const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macro_dag_returns_the_typed_receipt_and_reports_the_failed_run() {
    let outcome = tokio::time::timeout(LIMIT, macro_dag::run())
        .await
        .expect("finishes in time")
        .expect("runs");
    assert_eq!(
        outcome.receipt,
        macro_dag::Receipt {
            order_id: 1,
            items: 5,
            total_cents: 1250,
            price_retries: 1,
        }
    );
    assert!(
        outcome.failed_run_error.contains("order 2 has no lines"),
        "{}",
        outcome.failed_run_error
    );
    assert!(
        outcome
            .on_failure_report
            .starts_with("order 2: validate failed")
            && outcome.on_failure_report.contains("order 2 has no lines"),
        "{}",
        outcome.on_failure_report
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macro_durable_wait_takes_the_event_branch_then_the_timeout_branch() {
    let outcome = tokio::time::timeout(LIMIT, macro_durable_wait::run())
        .await
        .expect("finishes in time")
        .expect("runs");
    assert_eq!(
        outcome.answered,
        macro_durable_wait::Answer::Replied {
            text: "hi there".to_owned()
        }
    );
    assert_eq!(outcome.unanswered, macro_durable_wait::Answer::TimedOut);
}
