//! What the worker registers: four chained steps and on_failure, retries and backoff from `[jobs.hatchet]`,
//! one run at a time per session.

use crate::workflow_support;

use std::sync::Arc;
use std::time::Duration;

use acf_sdk::Workflow;
use acf_sdk::engine::eval_string;
use acf_sdk::model::{ConcurrencyLimitStrategy, WorkflowConcurrency};
use acf_worker::config::HatchetSettings;
use acf_worker::workflow::{
    ConcurrencyOptions, ConfiguredWorkflow, SESSION_KEY_EXPRESSION, WORKFLOW_NAME, WorkflowOptions,
};
use serde_json::json;
use workflow_support::{Behaviour, Kind, TestBrain, backend, workflow};

#[tokio::test]
async fn the_definition_chains_the_steps_and_takes_retries_from_configuration() {
    let backend = backend(Kind::Memory).await;
    let wf = Arc::new(workflow(
        &backend,
        TestBrain::new(Behaviour::Echo(Duration::ZERO)),
        200,
    ));
    let hatchet = HatchetSettings {
        retry_max_attempts: 5,
        retry_backoff_seconds: 30,
        ..HatchetSettings::default()
    };
    let definition =
        ConfiguredWorkflow::new(wf.clone(), WorkflowOptions::from_settings(&hatchet)).definition();
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
            ("commit_and_respond", vec!["run_agent"]),
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
        concurrency: Some(ConcurrencyOptions {
            max_runs: 3,
            ..ConcurrencyOptions::per_session()
        }),
        ..WorkflowOptions::default()
    };
    let definition = ConfiguredWorkflow::new(wf.clone(), custom).definition();
    assert!(
        matches!(definition.concurrency, Some(WorkflowConcurrency::Single(ref c)) if c.max_runs == 3)
    );
    let none = WorkflowOptions {
        concurrency: None,
        ..WorkflowOptions::default()
    };
    assert!(
        ConfiguredWorkflow::new(wf, none)
            .definition()
            .concurrency
            .is_none()
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
