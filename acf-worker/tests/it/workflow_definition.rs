//! What the worker registers: four chained steps and on_failure, one run at a time per session; retries, backoff
//! and concurrency as declared unless `[jobs.hatchet]` sets them (configuration wins when set).

use crate::workflow_support;

use std::sync::Arc;
use std::time::Duration;

use acf_sdk::Workflow;
use acf_sdk::engine::eval_string;
use acf_sdk::model::{ConcurrencyLimitStrategy, WorkflowConcurrency};
use acf_worker::config::HatchetSettings;
use acf_worker::config::Settings;
use acf_worker::workflow::{
    ConcurrencyOptions, ConcurrencyOverride, LogicalTurnWorkflow, SESSION_KEY_EXPRESSION,
    WORKFLOW_NAME, WorkflowOptions,
};
use serde_json::json;
use workflow_support::{Behaviour, Kind, TestBrain, backend, workflow};

/// The workflow as the macros declare it, on the memory backend.
async fn echo_workflow() -> Arc<LogicalTurnWorkflow> {
    let backend = backend(Kind::Memory).await;
    Arc::new(workflow(
        &backend,
        TestBrain::new(Behaviour::Echo(Duration::ZERO)),
        200,
    ))
}

#[tokio::test]
async fn the_definition_chains_the_steps_and_takes_retries_from_configuration() {
    let wf = echo_workflow().await;
    let hatchet = HatchetSettings {
        retry_max_attempts: Some(5),
        retry_backoff_seconds: Some(30),
        ..HatchetSettings::default()
    };
    let definition = WorkflowOptions::from_settings(&hatchet)
        .configure(wf.clone())
        .definition();
    assert_eq!(definition.name, WORKFLOW_NAME);
    let chain: Vec<(&str, Vec<&str>)> = definition
        .tasks
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.parents.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        vec![
            ("acquire_mutex", vec![]),
            ("accumulate", vec!["acquire_mutex"]),
            ("run_agent", vec!["accumulate"]),
            ("commit_and_respond", vec!["accumulate", "run_agent"]),
        ]
    );
    for task in &definition.tasks {
        assert_eq!(task.retries, 4, "{}", task.name);
        assert_eq!(task.backoff_factor, Some(2.0));
        assert_eq!(task.backoff_max_seconds, Some(30));
    }
    assert_eq!(
        definition.on_failure.as_ref().map(|t| t.name.as_str()),
        Some("recover-on-failure")
    );
    let Some(WorkflowConcurrency::Single(limit)) = &definition.concurrency else {
        panic!(
            "expected one concurrency limit: {:?}",
            definition.concurrency
        );
    };
    assert_eq!(limit.expression, SESSION_KEY_EXPRESSION);
    assert_eq!(limit.max_runs, 1);
    assert_eq!(
        limit.limit_strategy,
        ConcurrencyLimitStrategy::GroupRoundRobin
    );
    // The macro's own declaration carries the same key.
    let Some(WorkflowConcurrency::Single(declared)) = wf.definition().concurrency else {
        panic!("the macro declares the concurrency");
    };
    assert_eq!(declared.expression, SESSION_KEY_EXPRESSION);
    assert!(definition.input_json_schema.is_some());

    let custom = WorkflowOptions {
        concurrency: Some(ConcurrencyOverride::Limit(ConcurrencyOptions {
            max_runs: 3,
            ..ConcurrencyOptions::per_session()
        })),
        ..WorkflowOptions::default()
    };
    let definition = custom.configure(wf.clone()).definition();
    assert!(
        matches!(definition.concurrency, Some(WorkflowConcurrency::Single(ref c)) if c.max_runs == 3)
    );
    let off = WorkflowOptions {
        concurrency: Some(ConcurrencyOverride::Off),
        ..WorkflowOptions::default()
    };
    assert!(off.configure(wf).definition().concurrency.is_none());
}

/// With nothing configured (the shipped defaults), what registers is exactly what the macros declared: editing
/// `#[step(retries = ...)]` changes production.
#[tokio::test]
async fn unset_configuration_keeps_the_declaration() {
    let wf = echo_workflow().await;
    let declared = wf.definition();
    let shipped = WorkflowOptions::from_settings(&Settings::default().jobs.hatchet);
    assert_eq!(shipped, WorkflowOptions::default());
    assert_eq!(shipped.configure(wf.clone()).definition(), declared);
    for task in &declared.tasks {
        assert_eq!(task.retries, 2, "{}", task.name);
        assert_eq!(task.backoff_factor, Some(2.0));
        assert_eq!(task.backoff_max_seconds, Some(60));
    }
    // One setting overrides only itself.
    let only_retries = WorkflowOptions::from_settings(&HatchetSettings {
        retry_max_attempts: Some(1),
        ..HatchetSettings::default()
    });
    let definition = only_retries.configure(wf).definition();
    assert!(definition.tasks.iter().all(|t| t.retries == 0));
    assert!(
        definition
            .tasks
            .iter()
            .all(|t| t.backoff_max_seconds == Some(60))
    );
    assert_eq!(definition.concurrency, declared.concurrency);
    assert_eq!(
        LogicalTurnWorkflow::COMMIT_AND_RESPOND,
        definition.tasks[3].name
    );
}

#[test]
fn the_concurrency_key_is_the_session_key() {
    let ids = json!({
        "tenant_id": "t", "agent_id": "a", "interlocutor_id": "i", "channel": "web",
        "message_id": "m", "message_content": "hi",
    });
    let key = |input: &serde_json::Value| {
        eval_string(SESSION_KEY_EXPRESSION, &[("input", input)]).unwrap()
    };
    assert_eq!(key(&ids), "t:a:i:web");
    let mut explicit = ids.clone();
    explicit["session_key"] = json!("custom-session");
    assert_eq!(key(&explicit), "custom-session");
    let mut null = ids.clone();
    null["session_key"] = json!(null);
    assert_eq!(key(&null), "t:a:i:web");
    let mut empty = ids;
    empty["session_key"] = json!("");
    assert_eq!(key(&empty), "t:a:i:web");
}
