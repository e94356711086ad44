//! The HTTP brain contract: what a deployed worker sends (validated against `schemas/brain-request.schema.json` by
//! a real HTTP server), its authentication and extra headers from configuration, and agreement between
//! `schemas/brain-response.schema.json` and the answers the worker accepts.

use crate::deploy_support;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use acf_worker::brain::{
    Brain, BrainError, EventBuffer, HttpBrain, HttpBrainConfig, NoPendingMessages, TurnContext,
    TurnMessage,
};
use acf_worker::config::{BrainKind, EnvVars, load_from};
use acf_worker::events::Routing;
use acf_worker::models::Conversation;
use acf_worker::models::{LogicalTurn, TurnOutcome, now_utc};
use deploy_support::{Deployed, settings};
use serde_json::{Value, json};
use support::http::{HttpServer, Reply};
use uuid::Uuid;

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[tokio::test]
async fn a_deployed_worker_sends_schema_valid_requests_with_its_credentials() {
    let brain = HttpServer::start(Reply::json(200, &json!({"response": "noted"}))).await;
    let settings = settings(&[
        ("RUCHE_BRAIN__KIND", "http"),
        ("RUCHE_BRAIN__URL", brain.url.as_str()),
        ("RUCHE_BRAIN__API_KEY", "brain-key-7f3a"),
        (
            "RUCHE_BRAIN__HEADERS",
            r#"{"X-Deployment": "eu-1", "X-Brain-Route": "support"}"#,
        ),
    ]);
    assert_eq!(settings.brain.kind, BrainKind::Http);
    let dump = format!("{settings:?}");
    assert!(!dump.contains("brain-key-7f3a"), "{dump}");
    assert!(!dump.contains("eu-1"), "header values are redacted: {dump}");
    let deployed = Deployed::start(settings).await;

    let who = Conversation::new();
    let first = deployed.turn(&who.message("hello")).await;
    let second = deployed.turn(&who.message("where is my order?")).await;
    assert_eq!(
        (first.status, second.status),
        (TurnOutcome::Complete, TurnOutcome::Complete)
    );
    deployed.stop().await;

    let requests = brain.requests();
    assert_eq!(requests.len(), 2, "one brain call per turn");
    let validator = schema("brain-request.schema.json");
    for (request, (output, number, text)) in requests
        .iter()
        .zip([(&first, 1, "hello"), (&second, 2, "where is my order?")])
    {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.header("authorization"),
            Some("Bearer brain-key-7f3a")
        );
        assert_eq!(request.header("x-deployment"), Some("eu-1"));
        assert_eq!(request.header("x-brain-route"), Some("support"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body = request.json();
        let errors = schema_errors(&validator, &body);
        assert!(errors.is_empty(), "{errors:#?}\n{body:#}");
        assert_eq!(body["tenant_id"], who.tenant_id);
        assert_eq!(body["agent_id"], who.agent_id);
        assert_eq!(body["interlocutor_id"], who.interlocutor_id);
        assert_eq!(body["channel"], "web");
        assert_eq!(body["session_key"], who.session_key());
        assert_eq!(body["turn_id"], output.turn_id.to_string());
        assert_eq!(body["turn"]["id"], output.turn_id.to_string());
        assert_eq!(body["turn_number"], number);
        assert_eq!(body["messages"][0]["content"], text);
    }
}

#[test]
fn the_request_schema_refuses_what_a_brain_could_not_route() {
    let validator = schema("brain-request.schema.json");
    let group = Uuid::new_v4();
    let valid = json!({
        "tenant_id": Uuid::new_v4(), "agent_id": Uuid::new_v4(), "interlocutor_id": Uuid::new_v4(),
        "channel": "web", "session_key": "a:b:c:web", "turn_id": Uuid::new_v4(), "turn_number": 1,
        "messages": [{"id": Uuid::new_v4(), "content": "hi", "received_at": "2025-01-15T10:30:00Z"}],
        "has_pending_messages": false,
        "turn_group_id": group,
        "idempotency_key_format": format!("{{tool_name}}:{{business_key}}:turn_group:{group}"),
        "side_effects": [{
            "effect_type": "tool_call", "policy": "irreversible", "executed_at": "2025-01-15T10:30:01Z",
            "tool_name": "create_order", "idempotency_key": format!("create_order:cart-1:turn_group:{group}"),
            "details": {"order_id": "o-1"}
        }],
        "turn": serde_json::to_value(LogicalTurn::start(Uuid::new_v4(), "a:b:c:web", Uuid::new_v4(), now_utc())).unwrap(),
    });
    assert!(
        schema_errors(&validator, &valid).is_empty(),
        "{:#?}",
        schema_errors(&validator, &valid)
    );
    for (field, value) in [
        ("agent_id", Value::Null),
        ("tenant_id", json!("not-a-uuid")),
        ("turn_number", json!(0)),
        ("messages", json!([])),
        ("side_effects", Value::Null),
        (
            "side_effects",
            json!([{"effect_type": "tool_call", "policy": "maybe"}]),
        ),
        ("idempotency_key_format", json!("create_order:x")),
        ("turn_group_id", json!("group")),
    ] {
        let mut broken = valid.clone();
        broken[field] = value;
        assert!(!validator.is_valid(&broken), "{field} should be refused");
    }
}

fn routed_context(events: Arc<EventBuffer>) -> TurnContext {
    let message = TurnMessage {
        id: Uuid::new_v4(),
        content: "hi".into(),
        received_at: now_utc(),
    };
    let turn = LogicalTurn::start(Uuid::new_v4(), "t:a:i:web", message.id, message.received_at);
    TurnContext::new(
        turn,
        "web",
        vec![message],
        Arc::new(NoPendingMessages),
        events,
    )
    .with_routing(Routing {
        tenant_id: Uuid::new_v4(),
        agent_id: Uuid::new_v4(),
        interlocutor_id: Uuid::new_v4(),
    })
    .with_turn_number(1)
}

fn brain_for(url: &str) -> HttpBrain {
    HttpBrain::new(HttpBrainConfig {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        bearer_token: None,
        headers: Vec::new(),
    })
    .expect("the brain builds")
}

/// Every answer the response schema accepts, the worker accepts, and every answer it refuses, the worker refuses;
/// the one rule JSON Schema cannot state (`response` equals the segments' concatenation) is checked apart.
#[tokio::test]
async fn the_response_schema_agrees_with_what_the_worker_accepts() {
    let validator = schema("brain-response.schema.json");
    let cases = [
        json!({"response": "ok"}),
        json!({"segments": [{"content": "a"}, {"content": "b", "segment_type": "question", "metadata": {"k": 1}}]}),
        json!({"response": "ab", "segments": [{"content": "a"}, {"content": "b"}]}),
        json!({"response": "ok", "segments": null, "accumulation_hint": null}),
        json!({"response": "ok", "accumulation_hint": {"awaiting_required_field": true, "expected_input_type": null}}),
        json!({"response": "ok", "accumulation_hint": {"input_complete_confidence": 0.9}}),
        json!({"response": "ok", "expects_more_input": true, "extra": [1, 2]}),
        json!({"response": "ok", "events": [{"type": "tool.executed", "payload": {"tool": "x"}}, {"type": "turn.started"}]}),
        // Refused by both:
        json!({}),
        json!({"response": null}),
        json!({"response": 5}),
        json!({"segments": [{"segment_type": "text"}]}),
        json!({"segments": [{"content": "a", "metadata": null}]}),
        json!({"response": "ok", "accumulation_hint": {"input_complete_confidence": 1.5}}),
        json!({"response": "ok", "expects_more_input": "yes"}),
        json!({"response": "ok", "events": [{"type": "no.such_event"}]}),
        json!({"response": "ok", "events": [{"payload": {}}]}),
        json!({"response": "ok", "events": [{"type": "tool.failed", "payload": []}]}),
        json!({"response": "ok", "events": null}),
        json!(["ok"]),
    ];
    let mut accepted_by_both = 0;
    for body in cases {
        let server = HttpServer::start(Reply::json(200, &body)).await;
        let worker = brain_for(&server.url)
            .think(&routed_context(EventBuffer::new()))
            .await;
        let schema_ok = validator.is_valid(&body);
        assert_eq!(
            worker.is_ok(),
            schema_ok,
            "schema and worker disagree on {body}: worker {worker:?}, schema {:?}",
            schema_errors(&validator, &body)
        );
        accepted_by_both += usize::from(schema_ok);
    }
    assert_eq!(accepted_by_both, 8);

    let mismatch = json!({"response": "not the segments", "segments": [{"content": "a"}]});
    assert!(validator.is_valid(&mismatch));
    let server = HttpServer::start(Reply::json(200, &mismatch)).await;
    let refused = brain_for(&server.url)
        .think(&routed_context(EventBuffer::new()))
        .await;
    assert!(
        matches!(refused, Err(BrainError::Malformed(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_context_without_routing_ids_is_refused_not_sent() {
    let server = HttpServer::start(Reply::json(200, &json!({"response": "ok"}))).await;
    let message = TurnMessage {
        id: Uuid::new_v4(),
        content: "hi".into(),
        received_at: now_utc(),
    };
    let turn = LogicalTurn::start(Uuid::new_v4(), "t:a:i:web", message.id, message.received_at);
    let ctx = TurnContext::new(
        turn,
        "web",
        vec![message],
        Arc::new(NoPendingMessages),
        EventBuffer::new(),
    );
    let error = brain_for(&server.url).think(&ctx).await.unwrap_err();
    assert!(
        error.to_string().contains("tenant, agent and interlocutor"),
        "{error}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn brain_headers_and_api_key_are_checked_and_never_printed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let load = |pairs: &[(&str, &str)]| load_from(&dir, &EnvVars::new(pairs.iter().copied()));
    for (headers, key) in [
        (
            r#"{"Authorization": "Basic abc"}"#,
            "brain.headers.Authorization",
        ),
        (r#"{"traceparent": "00-x"}"#, "brain.headers.traceparent"),
        (r#"{"bad header": "x"}"#, "brain.headers.bad header"),
        (r#"{"X-Ok": "line\nbreak-s3cret"}"#, "brain.headers.X-Ok"),
    ] {
        let error = load(&[("RUCHE_BRAIN__HEADERS", headers)])
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{headers}: {error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
    let loaded = load(&[("RUCHE_BRAIN__API_KEY", "k-123456")]).unwrap();
    assert_eq!(
        loaded.settings.brain.api_key.as_ref().map(|k| k.expose()),
        Some("k-123456")
    );
    assert!(!format!("{:?} {:#?}", loaded, loaded.settings).contains("k-123456"));
    let config = HttpBrainConfig {
        url: "https://user:url-pw@brain/think".into(),
        timeout: Duration::from_secs(1),
        bearer_token: Some("token-abc".into()),
        headers: vec![("X-Key".into(), "header-pw".into())],
    };
    let printed = format!("{config:?} {:?}", HttpBrain::new(config.clone()).unwrap());
    for secret in ["url-pw", "token-abc", "header-pw"] {
        assert!(!printed.contains(secret), "{printed}");
    }
}
