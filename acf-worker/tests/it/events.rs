//! ACF event values, JSON shape, pattern rules and the payloads the worker emits.

use acf_worker::events::{AcfEvent, AcfEventType, Routing};
use acf_worker::models::SideEffectPolicy;
use serde_json::json;
use uuid::Uuid;

const TURN: &str = "6f1c2b0e-3d4a-4b5c-8d9e-0a1b2c3d4e5f";
const TENANT: &str = "550e8400-e29b-41d4-a716-446655440000";
const AGENT: &str = "550e8400-e29b-41d4-a716-446655440001";
const USER: &str = "550e8400-e29b-41d4-a716-446655440002";

fn routing() -> Routing {
    Routing {
        tenant_id: Uuid::parse_str(TENANT).unwrap(),
        agent_id: Uuid::parse_str(AGENT).unwrap(),
        interlocutor_id: Uuid::parse_str(USER).unwrap(),
    }
}

fn turn_id() -> Uuid {
    Uuid::parse_str(TURN).unwrap()
}

#[test]
fn every_type_has_the_original_value_and_round_trips() {
    let expected = [
        "turn.started",
        "turn.message_absorbed",
        "turn.completed",
        "turn.failed",
        "turn.superseded",
        "supersede.requested",
        "supersede.decision",
        "supersede.executed",
        "commit.reached",
        "tool.authorized",
        "tool.executed",
        "tool.failed",
        "enforcement.violation",
        "session.created",
        "session.resumed",
        "session.closed",
        "mutex.acquired",
        "mutex.released",
        "mutex.extended",
    ];
    for (kind, value) in AcfEventType::ALL.iter().zip(expected) {
        assert_eq!(kind.as_str(), value);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(value));
        assert_eq!(
            serde_json::from_value::<AcfEventType>(json!(value)).unwrap(),
            *kind
        );
        assert_eq!(kind.to_string(), value);
    }
    assert!(serde_json::from_value::<AcfEventType>(json!("turn.exploded")).is_err());
}

#[test]
fn category_and_name_split_on_the_first_dot() {
    assert_eq!(AcfEventType::MessageAbsorbed.category(), "turn");
    assert_eq!(
        AcfEventType::MessageAbsorbed.event_name(),
        "message_absorbed"
    );
    assert_eq!(AcfEventType::CommitPointReached.category(), "commit");
    assert_eq!(AcfEventType::CommitPointReached.event_name(), "reached");
}

#[test]
fn pattern_rules() {
    let kind = AcfEventType::ToolExecuted;
    assert!(kind.matches_pattern("*"));
    assert!(kind.matches_pattern("tool.*"));
    assert!(kind.matches_pattern("tool.executed"));
    assert!(!kind.matches_pattern("turn.*"));
    assert!(!kind.matches_pattern("tool.failed"));
    assert!(!kind.matches_pattern("tool"));
    assert!(!kind.matches_pattern(""));
    assert!(!kind.matches_pattern(".*"));
}

#[test]
fn event_json_matches_the_original_exactly() {
    let text = format!(
        concat!(
            r#"{{"type":"turn.started","logical_turn_id":"{t}","session_key":"k","#,
            r#""timestamp":"2025-01-15T10:30:00.250000Z","payload":{{"channel":"web","message_count":1}},"#,
            r#""tenant_id":"{a}","agent_id":"{b}","interlocutor_id":"{c}"}}"#
        ),
        t = TURN,
        a = TENANT,
        b = AGENT,
        c = USER
    );
    let event: AcfEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(event.event_type, AcfEventType::TurnStarted);
    assert_eq!(event.tenant_id, Some(routing().tenant_id));
    assert_eq!(serde_json::to_string(&event).unwrap(), text);
}

#[test]
fn event_json_defaults_for_missing_fields() {
    let event: AcfEvent = serde_json::from_value(
        json!({"type": "tool.executed", "logical_turn_id": TURN, "session_key": "k"}),
    )
    .unwrap();
    assert!(event.payload.is_empty());
    assert_eq!(
        (event.tenant_id, event.agent_id, event.interlocutor_id),
        (None, None, None)
    );
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["tenant_id"], json!(null));
    assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn message_absorbed_payload_carries_routing_ids() {
    let message = Uuid::new_v4();
    let event = AcfEvent::message_absorbed(turn_id(), "k", &routing(), message, 2, "whatsapp");
    assert_eq!(event.event_type, AcfEventType::MessageAbsorbed);
    assert_eq!(
        serde_json::Value::Object(event.payload.clone()),
        json!({"message_id": message.to_string(), "message_count": 2, "channel": "whatsapp"})
    );
    assert_eq!(event.agent_id, Some(routing().agent_id));
    assert_eq!(event.logical_turn_id, turn_id());
}

#[test]
fn turn_started_completed_failed_payloads() {
    let started = AcfEvent::turn_started(turn_id(), "k", &routing(), 3, "web");
    assert_eq!(
        serde_json::Value::Object(started.payload),
        json!({"message_count": 3, "channel": "web"})
    );
    let completed = AcfEvent::turn_completed(turn_id(), "k", &routing(), "héllo", 2);
    assert_eq!(
        serde_json::Value::Object(completed.payload),
        json!({"status": "complete", "response_length": 5, "response_segments_count": 2})
    );
    let failed = AcfEvent::turn_failed(turn_id(), "k", &routing(), "Brain failed", "brain_error");
    assert_eq!(failed.event_type, AcfEventType::TurnFailed);
    assert_eq!(
        serde_json::Value::Object(failed.payload),
        json!({"error": "Brain failed", "error_type": "brain_error"})
    );
    assert_eq!(failed.interlocutor_id, Some(routing().interlocutor_id));
}

#[test]
fn with_payload_ignores_non_objects() {
    let event =
        AcfEvent::new(AcfEventType::SessionCreated, turn_id(), "k").with_payload(json!([1, 2]));
    assert!(event.payload.is_empty());
    assert!(event.matches_pattern("session.*"));
    assert_eq!(
        (event.category(), event.event_name()),
        ("session", "created")
    );
}

#[test]
fn tool_executed_becomes_a_side_effect() {
    let event = AcfEvent::new(AcfEventType::ToolExecuted, turn_id(), "k").with_payload(json!({
        "tool_name": "send_email", "policy": "reversible", "idempotency_key": "send_email:1:turn_group:g", "extra": 1
    }));
    let effect = event.tool_side_effect().unwrap();
    assert_eq!(effect.effect_type, "tool_call");
    assert_eq!(effect.policy, SideEffectPolicy::Reversible);
    assert_eq!(effect.tool_name.as_deref(), Some("send_email"));
    assert_eq!(
        effect.idempotency_key.as_deref(),
        Some("send_email:1:turn_group:g")
    );
    assert_eq!(effect.executed_at, event.timestamp);
    assert_eq!(effect.details, event.payload);
}

#[test]
fn unknown_or_missing_tool_policy_is_treated_as_irreversible() {
    for payload in [json!({"policy": "maybe"}), json!({})] {
        let event = AcfEvent::new(AcfEventType::ToolExecuted, turn_id(), "k").with_payload(payload);
        assert_eq!(
            event.tool_side_effect().unwrap().policy,
            SideEffectPolicy::Irreversible
        );
    }
    let other = AcfEvent::new(AcfEventType::ToolFailed, turn_id(), "k");
    assert_eq!(other.tool_side_effect(), None);
}
