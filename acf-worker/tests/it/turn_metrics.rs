//! `/metrics` of a running worker: the SDK's worker metrics and the turn metrics come out of one scrape, over
//! HTTP, and change as turns happen (complete, failed, absorbed, messages waiting, lock losses).

use crate::deploy_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acf_worker::brain::{Brain, BrainError, BrainResult, TurnContext};
use acf_worker::models::Conversation;
use acf_worker::models::TurnOutcome;
use async_trait::async_trait;
use deploy_support::{Deployed, series, settings};
use tokio::sync::Notify;

/// Echoes; fails (non-retryably) on `fail`; on `hold` waits for the test's go-ahead the first time it sees the
/// message.
#[derive(Default)]
struct ScriptedBrain {
    holding: Notify,
    release: Notify,
    held: Mutex<HashSet<uuid::Uuid>>,
}

#[async_trait]
impl Brain for ScriptedBrain {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let text: Vec<&str> = ctx.messages().iter().map(|m| m.content.as_str()).collect();
        if text.contains(&"fail") {
            return Err(BrainError::Failed("scripted failure".into()));
        }
        if text.contains(&"hold") && self.held.lock().unwrap().insert(ctx.turn().id()) {
            self.holding.notify_one();
            self.release.notified().await;
        }
        Ok(BrainResult::text(text.join(" / ")))
    }
}

fn value(scrape: &str, name: &str) -> f64 {
    series(scrape, name).unwrap_or(0.0)
}

const COMPLETE: &str = r#"ruche_turns_total{channel="web",outcome="complete"}"#;
const FAILED: &str = r#"ruche_turns_total{channel="web",outcome="failed"}"#;
const ABSORBED: &str = r#"ruche_turns_total{channel="web",outcome="absorbed"}"#;
const BRAIN_OK: &str = r#"ruche_brain_latency_seconds_count{channel="web",result="ok"}"#;
const BRAIN_FAILED: &str =
    r#"ruche_brain_latency_seconds_count{channel="web",result="brain_failed"}"#;
const WINDOW: &str = r#"ruche_window_wait_seconds_count{channel="web"}"#;
const COMMIT: &str = r#"ruche_commit_latency_seconds_count{channel="web"}"#;
const LOCK_WAIT: &str = "ruche_lock_wait_seconds_count";
const PENDING: &str = "ruche_messages_pending";
const LOCK_LOSSES: &str = "ruche_lock_losses_total";

#[tokio::test]
async fn metrics_follow_the_turns_of_a_running_worker() {
    let brain = Arc::new(ScriptedBrain::default());
    let deployed = Deployed::start_with(
        settings(&[
            ("RUCHE_ACCUMULATION__CHANNEL_DEFAULTS", r#"{"web": 400}"#),
            ("RUCHE_ACCUMULATION__MAX_WAIT_MS", "400"),
        ]),
        Some(brain.clone()),
        true,
    )
    .await;

    let before = deployed.scrape().await;
    // Labelled families appear with their first series; the unlabelled metrics are there from the start.
    assert!(
        before.contains("# TYPE ruche_lock_wait_seconds histogram"),
        "{before}"
    );
    assert_eq!(series(&before, PENDING), Some(0.0));
    assert_eq!(series(&before, LOCK_LOSSES), Some(0.0));
    assert!(
        series(&before, r#"hatchet_worker_slots{slot="default"}"#).is_some(),
        "the SDK's metrics share the registry: {before}"
    );
    assert_eq!(value(&before, COMPLETE), 0.0);

    // One turn, held inside the brain: its message is pending until the run ends.
    let who = Conversation::new();
    let held = deployed.submit(&who.message("hold")).await;
    brain.holding.notified().await;
    let during = deployed.scrape().await;
    assert_eq!(series(&during, PENDING), Some(1.0), "{during}");
    assert_eq!(value(&during, COMPLETE), 0.0);
    brain.release.notify_one();
    held.result().await.expect("the held run finishes");
    let after = deployed.scrape().await;
    assert_eq!(value(&after, COMPLETE), 1.0, "{after}");
    assert_eq!(series(&after, PENDING), Some(0.0));
    assert_eq!(value(&after, BRAIN_OK), 1.0);
    assert_eq!(value(&after, WINDOW), 1.0);
    assert_eq!(value(&after, COMMIT), 1.0);
    assert!(value(&after, LOCK_WAIT) >= 1.0);
    assert!(
        after.contains("hatchet_worker_tasks_total{action=")
            && after.contains("commit_and_respond\",outcome=\"completed\"} 1"),
        "the SDK's step metrics in the same scrape: {after}"
    );

    // A failing brain: the turn is committed as failed.
    let output = deployed.turn(&Conversation::new().message("fail")).await;
    assert_eq!(output.status, TurnOutcome::Failed);
    let failed = deployed.scrape().await;
    assert_eq!(value(&failed, FAILED), 1.0, "{failed}");
    assert_eq!(value(&failed, BRAIN_FAILED), 1.0);

    // Two messages in one window: one turn answers both, the second message's run ends absorbed.
    let burst = Conversation::new();
    let first = deployed.submit(&burst.message("part one")).await;
    let second = deployed.submit(&burst.message("part two")).await;
    first.result().await.expect("the first run finishes");
    second.result().await.expect("the second run finishes");
    let absorbed = deployed.scrape().await;
    assert_eq!(value(&absorbed, ABSORBED), 1.0, "{absorbed}");
    assert_eq!(value(&absorbed, COMPLETE), 2.0);
    assert_eq!(series(&absorbed, PENDING), Some(0.0));
    deployed.stop().await;
}

#[tokio::test]
async fn a_lost_session_lock_is_counted() {
    let brain = Arc::new(ScriptedBrain::default());
    let deployed = Deployed::start_with(
        settings(&[
            ("RUCHE_SESSION__LOCK__TTL_MS", "2000"),
            ("RUCHE_SESSION__LOCK__HEARTBEAT_INTERVAL_MS", "100"),
        ]),
        Some(brain.clone()),
        true,
    )
    .await;
    let who = Conversation::new();
    let run = deployed.submit(&who.message("hold")).await;
    brain.holding.notified().await;
    // Someone else's expiry or takeover, as the holder sees it: the lock key disappears under it.
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let deleted: u32 = redis::cmd("DEL")
        .arg(format!("sesslock:{}", who.session_key()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "the run held the Python-compatible lock key");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // The heartbeat notices within an interval; the loss is counted when the step stops its keep-alive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    brain.release.notify_one();
    let output = run
        .result()
        .await
        .expect("the run recovers by re-taking the lock")
        .step::<acf_worker::models::WorkflowOutput>("commit_and_respond")
        .unwrap();
    assert_eq!(output.status, TurnOutcome::Complete);
    let scrape = loop {
        let scrape = deployed.scrape().await;
        if value(&scrape, LOCK_LOSSES) >= 1.0 || tokio::time::Instant::now() > deadline {
            break scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(value(&scrape, LOCK_LOSSES) >= 1.0, "{scrape}");
    assert_eq!(value(&scrape, COMPLETE), 1.0);
    deployed.stop().await;
}
