//! JSON shapes, lifecycle guards, caps and input validation of the turn models.

use acf_worker::models::{
    AccumulationHint, CompletionReason, InputError, LogicalTurn, LogicalTurnStatus, MessageShape,
    NewMessage, PhaseArtifact, ScenarioStepRef, SideEffect, SideEffectPolicy, SupersedeAction,
    SupersedeDecision, TimestampError, TurnError, TurnLimits, TurnOutcome, UserCadenceStats,
    WorkflowInput, WorkflowOutput, format_timestamp, parse_timestamp, tool_idempotency_key,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

const TURN: &str = "6f1c2b0e-3d4a-4b5c-8d9e-0a1b2c3d4e5f";
const GROUP: &str = "11111111-2222-4333-8444-555555555555";
const M1: &str = "550e8400-e29b-41d4-a716-446655440000";
const M2: &str = "550e8400-e29b-41d4-a716-446655440001";
const M3: &str = "550e8400-e29b-41d4-a716-446655440002";

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn at(secs: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, secs).unwrap()
        + chrono::Duration::microseconds(i64::from(micros))
}

fn turn() -> LogicalTurn {
    LogicalTurn::start(uuid(TURN), "t:a:i:web", uuid(M1), at(0, 0))
}

const WIDE: TurnLimits = TurnLimits {
    max_messages: 10,
    max_window_ms: 60_000,
};

// ---- timestamps ----

#[test]
fn timestamps_use_z_and_microseconds_only_when_non_zero() {
    assert_eq!(format_timestamp(&at(0, 0)), "2025-01-15T10:30:00Z");
    assert_eq!(
        format_timestamp(&at(0, 500_000)),
        "2025-01-15T10:30:00.500000Z"
    );
    assert_eq!(format_timestamp(&at(5, 7)), "2025-01-15T10:30:05.000007Z");
}

#[test]
fn timestamps_parse_z_and_offsets_into_utc() {
    assert_eq!(parse_timestamp("2025-01-15T10:30:00Z").unwrap(), at(0, 0));
    assert_eq!(
        parse_timestamp("2025-01-15T10:30:00+00:00").unwrap(),
        at(0, 0)
    );
    assert_eq!(
        parse_timestamp("2025-01-15T12:30:00.5+02:00").unwrap(),
        at(0, 500_000)
    );
    // Nanoseconds are truncated to Python's microsecond precision so the text round-trips.
    assert_eq!(
        parse_timestamp("2025-01-15T10:30:00.123456789Z").unwrap(),
        at(0, 123_456)
    );
}

#[test]
fn naive_and_garbage_timestamps_are_refused() {
    assert_eq!(
        parse_timestamp("2025-01-15T10:30:00"),
        Err(TimestampError::MissingOffset("2025-01-15T10:30:00".into()))
    );
    assert_eq!(
        parse_timestamp("yesterday"),
        Err(TimestampError::Invalid("yesterday".into()))
    );
}

// ---- LogicalTurn JSON ----

fn expected_turn_json() -> String {
    format!(
        concat!(
            r#"{{"id":"{t}","session_key":"t:a:i:web","turn_group_id":"{g}","messages":["{m1}","{m2}"],"#,
            r#""status":"processing","first_at":"2025-01-15T10:30:00Z","last_at":"2025-01-15T10:30:00.500000Z","#,
            r#""completion_confidence":0.0,"completion_reason":"timeout","phase_artifacts":{{}},"side_effects":[],"#,
            r#""scenario_states_at_start":{{}},"superseded_by":null,"superseded_from":null,"interrupt_point":null}}"#
        ),
        t = TURN,
        g = GROUP,
        m1 = M1,
        m2 = M2
    )
}

#[test]
fn turn_json_matches_the_original_exactly_and_round_trips() {
    let parsed: LogicalTurn = serde_json::from_str(&expected_turn_json()).unwrap();
    assert_eq!(parsed.id(), uuid(TURN));
    assert_eq!(parsed.turn_group_id(), uuid(GROUP));
    assert_eq!(parsed.messages(), &[uuid(M1), uuid(M2)]);
    assert_eq!(parsed.status(), LogicalTurnStatus::Processing);
    assert_eq!(parsed.last_at(), at(0, 500_000));
    assert_eq!(parsed.completion_reason(), Some(CompletionReason::Timeout));
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        expected_turn_json()
    );
}

#[test]
fn turn_built_in_rust_serialises_to_the_same_shape() {
    let mut turn = turn();
    turn.absorb_message(uuid(M2), at(0, 500_000), &WIDE)
        .unwrap();
    turn.mark_processing(CompletionReason::Timeout).unwrap();
    // The group id is random per turn; pin it to compare the rest verbatim.
    let text = serde_json::to_string(&turn)
        .unwrap()
        .replace(&turn.turn_group_id().to_string(), GROUP);
    assert_eq!(text, expected_turn_json());
}

#[test]
fn turn_json_missing_optional_fields_take_defaults() {
    let text = json!({"session_key": "k", "first_at": "2025-01-15T10:30:00Z", "last_at": "2025-01-15T10:30:00Z"});
    let turn: LogicalTurn = serde_json::from_value(text).unwrap();
    assert_eq!(turn.status(), LogicalTurnStatus::Accumulating);
    assert!(turn.messages().is_empty());
    assert_eq!(turn.completion_confidence(), 0.0);
    assert_ne!(turn.id(), turn.turn_group_id());
}

#[test]
fn turn_json_with_artifacts_effects_and_scenarios_matches_exactly() {
    let scenario = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let step = "ffffffff-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let text = format!(
        concat!(
            r#"{{"id":"{t}","session_key":"k","turn_group_id":"{g}","messages":[],"status":"superseded","#,
            r#""first_at":"2025-01-15T10:30:00Z","last_at":"2025-01-15T10:30:00Z","completion_confidence":0.75,"#,
            r#""completion_reason":"no_accumulation","#,
            r#""phase_artifacts":{{"3":{{"phase_number":3,"phase_name":"retrieval","artifact_data":{{"k":[1,2]}},"#,
            r#""created_at":"2025-01-15T10:30:05Z","input_hash":null}}}},"#,
            r#""side_effects":[{{"effect_type":"tool_call","policy":"irreversible","#,
            r#""executed_at":"2025-01-15T10:30:00.000007Z","tool_name":"send_email","idempotency_key":"x","#,
            r#""details":{{"to":"a"}}}}],"#,
            r#""scenario_states_at_start":{{"{s}":{{"scenario_id":"{s}","scenario_version":2,"step_id":"{st}","#,
            r#""step_name":null}}}},"superseded_by":"{m1}","superseded_from":"{m2}","interrupt_point":"phase_3"}}"#
        ),
        t = TURN,
        g = GROUP,
        s = scenario,
        st = step,
        m1 = M1,
        m2 = M2
    );
    let turn: LogicalTurn = serde_json::from_str(&text).unwrap();
    assert_eq!(turn.phase_artifacts()[&3].phase_name, "retrieval");
    assert!(turn.side_effects()[0].is_irreversible());
    assert_eq!(
        turn.scenario_states_at_start()[&uuid(scenario)].scenario_version,
        2
    );
    assert_eq!(turn.interrupt_point(), Some("phase_3"));
    assert_eq!(serde_json::to_string(&turn).unwrap(), text);
}

#[test]
fn turn_json_refuses_duplicate_messages_and_bad_confidence() {
    let base = json!({"session_key": "k", "first_at": "2025-01-15T10:30:00Z", "last_at": "2025-01-15T10:30:00Z"});
    let mut dup = base.clone();
    dup["messages"] = json!([M1, M2, M1]);
    let err = serde_json::from_value::<LogicalTurn>(dup)
        .unwrap_err()
        .to_string();
    assert!(err.contains(M1) && err.contains("already part"), "{err}");

    let mut bad = base.clone();
    bad["completion_confidence"] = json!(1.5);
    let err = serde_json::from_value::<LogicalTurn>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.5"), "{err}");

    let mut naive = base;
    naive["first_at"] = json!("2025-01-15T10:30:00");
    let err = serde_json::from_value::<LogicalTurn>(naive)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no UTC offset"), "{err}");
}

// ---- lifecycle ----

#[test]
fn start_creates_an_accumulating_turn_with_one_message() {
    let turn = turn();
    assert_eq!(turn.status(), LogicalTurnStatus::Accumulating);
    assert_eq!(turn.messages(), &[uuid(M1)]);
    assert_eq!(turn.first_at(), turn.last_at());
    assert_eq!(turn.completion_reason(), None);
    assert_eq!(turn.superseded_from(), None);
}

#[test]
fn lifecycle_accumulating_processing_complete() {
    let mut turn = turn();
    turn.mark_processing(CompletionReason::NoAccumulation)
        .unwrap();
    assert_eq!(turn.status(), LogicalTurnStatus::Processing);
    assert_eq!(
        turn.completion_reason(),
        Some(CompletionReason::NoAccumulation)
    );
    turn.mark_complete().unwrap();
    assert_eq!(turn.status(), LogicalTurnStatus::Complete);
}

#[test]
fn illegal_transitions_are_typed_errors() {
    let mut accumulating = turn();
    assert_eq!(
        accumulating.mark_complete(),
        Err(TurnError::IllegalTransition {
            from: LogicalTurnStatus::Accumulating,
            to: LogicalTurnStatus::Complete
        })
    );
    let mut processing = turn();
    processing
        .mark_processing(CompletionReason::Timeout)
        .unwrap();
    assert_eq!(
        processing.mark_processing(CompletionReason::Timeout),
        Err(TurnError::IllegalTransition {
            from: LogicalTurnStatus::Processing,
            to: LogicalTurnStatus::Processing
        })
    );
    processing.mark_complete().unwrap();
    for result in [
        processing.mark_complete(),
        processing.mark_superseded(None, None),
        processing.mark_processing(CompletionReason::Timeout),
    ] {
        assert!(matches!(
            result,
            Err(TurnError::IllegalTransition {
                from: LogicalTurnStatus::Complete,
                ..
            })
        ));
    }
    assert_eq!(processing.status(), LogicalTurnStatus::Complete);
    let mut superseded = turn();
    superseded.mark_superseded(None, None).unwrap();
    assert!(superseded.mark_superseded(None, None).is_err());
    assert!(superseded.mark_complete().is_err());
    assert_eq!(
        processing.mark_complete().unwrap_err().to_string(),
        "illegal turn transition from `complete` to `complete`"
    );
}

#[test]
fn superseded_records_replacing_turn_and_point() {
    let mut turn = turn();
    turn.mark_processing(CompletionReason::Timeout).unwrap();
    turn.mark_superseded(Some(uuid(M3)), Some("phase_2".into()))
        .unwrap();
    assert_eq!(turn.status(), LogicalTurnStatus::Superseded);
    assert_eq!(turn.superseded_by(), Some(uuid(M3)));
    assert_eq!(turn.interrupt_point(), Some("phase_2"));
}

#[test]
fn supersede_starts_a_new_turn_in_the_same_group() {
    let mut old = turn();
    let new_id = Uuid::new_v4();
    let next = old
        .supersede(new_id, uuid(M2), at(3, 0), Some("phase_1".into()))
        .unwrap();
    assert_eq!(old.status(), LogicalTurnStatus::Superseded);
    assert_eq!(old.superseded_by(), Some(new_id));
    assert_eq!(next.id(), new_id);
    assert_eq!(next.turn_group_id(), old.turn_group_id());
    assert_eq!(next.superseded_from(), Some(old.id()));
    assert_eq!(next.messages(), &[uuid(M2)]);
    assert_eq!(next.first_at(), at(3, 0));
    assert_eq!(next.session_key(), old.session_key());
    assert_eq!(next.status(), LogicalTurnStatus::Accumulating);
}

#[test]
fn supersede_is_refused_after_an_irreversible_effect() {
    let mut turn = turn();
    turn.mark_processing(CompletionReason::Timeout).unwrap();
    turn.record_side_effect(SideEffect::new("tool_call", SideEffectPolicy::Irreversible))
        .unwrap();
    assert!(!turn.can_supersede());
    assert!(
        turn.supersede(Uuid::new_v4(), uuid(M2), at(1, 0), None)
            .is_err()
    );
    assert_eq!(turn.status(), LogicalTurnStatus::Processing);
}

// ---- absorbing ----

#[test]
fn absorb_appends_in_order_and_moves_last_at_forward_only() {
    let mut turn = turn();
    turn.absorb_message(uuid(M2), at(2, 0), &WIDE).unwrap();
    turn.absorb_message(uuid(M3), at(1, 0), &WIDE).unwrap();
    assert_eq!(turn.messages(), &[uuid(M1), uuid(M2), uuid(M3)]);
    assert_eq!(turn.last_at(), at(2, 0));
    assert_eq!(turn.status(), LogicalTurnStatus::Accumulating);
}

#[test]
fn absorb_refuses_duplicate_ids() {
    let mut turn = turn();
    assert_eq!(
        turn.absorb_message(uuid(M1), at(1, 0), &WIDE),
        Err(TurnError::DuplicateMessage(uuid(M1)))
    );
    assert_eq!(turn.message_count(), 1);
}

#[test]
fn absorb_enforces_the_message_cap() {
    let limits = TurnLimits {
        max_messages: 2,
        max_window_ms: 60_000,
    };
    let mut turn = turn();
    turn.absorb_message(uuid(M2), at(1, 0), &limits).unwrap();
    assert_eq!(
        turn.absorb_message(uuid(M3), at(2, 0), &limits),
        Err(TurnError::TooManyMessages { max: 2 })
    );
    assert_eq!(turn.message_count(), 2);
}

#[test]
fn absorb_enforces_the_window_length() {
    let limits = TurnLimits {
        max_messages: 10,
        max_window_ms: 5_000,
    };
    let mut turn = turn();
    assert_eq!(turn.window_deadline(&limits), at(5, 0));
    turn.absorb_message(uuid(M2), at(5, 0), &limits).unwrap();
    assert_eq!(
        turn.absorb_message(uuid(M3), at(5, 1_000), &limits),
        Err(TurnError::WindowExceeded {
            elapsed_ms: 5_001,
            max_window_ms: 5_000
        })
    );
}

#[test]
fn absorb_while_processing_depends_on_side_effects() {
    let mut turn = turn();
    turn.mark_processing(CompletionReason::Timeout).unwrap();
    turn.record_side_effect(SideEffect::new("tool_call", SideEffectPolicy::Reversible))
        .unwrap();
    assert!(turn.can_absorb_message());
    turn.absorb_message(uuid(M2), at(1, 0), &WIDE).unwrap();
    turn.record_side_effect(SideEffect::new("tool_call", SideEffectPolicy::Irreversible))
        .unwrap();
    assert!(!turn.can_absorb_message());
    assert_eq!(
        turn.absorb_message(uuid(M3), at(2, 0), &WIDE),
        Err(TurnError::CannotAbsorb {
            status: LogicalTurnStatus::Processing,
            irreversible: true
        })
    );
}

#[test]
fn terminal_turns_absorb_nothing_and_record_no_effects() {
    let mut turn = turn();
    turn.mark_superseded(None, None).unwrap();
    assert!(!turn.can_absorb_message());
    assert_eq!(
        turn.absorb_message(uuid(M2), at(1, 0), &WIDE),
        Err(TurnError::CannotAbsorb {
            status: LogicalTurnStatus::Superseded,
            irreversible: false
        })
    );
    assert_eq!(
        turn.record_side_effect(SideEffect::new("tool_call", SideEffectPolicy::Idempotent)),
        Err(TurnError::Terminal(LogicalTurnStatus::Superseded))
    );
}

#[test]
fn completion_confidence_is_range_checked() {
    let mut turn = turn();
    turn.set_completion_confidence(1.0).unwrap();
    assert_eq!(turn.completion_confidence(), 1.0);
    assert_eq!(
        turn.set_completion_confidence(-0.1),
        Err(TurnError::InvalidConfidence(-0.1))
    );
    assert!(turn.set_completion_confidence(f64::NAN).is_err());
    assert_eq!(turn.completion_confidence(), 1.0);
}

#[test]
fn artifacts_and_scenarios_are_keyed() {
    let mut turn = turn();
    turn.record_phase_artifact(PhaseArtifact {
        phase_number: 2,
        phase_name: "p".into(),
        artifact_data: serde_json::Map::new(),
        created_at: at(0, 0),
        input_hash: Some("h".into()),
    });
    let scenario = Uuid::new_v4();
    turn.record_scenario_state(ScenarioStepRef {
        scenario_id: scenario,
        scenario_version: 1,
        step_id: Uuid::new_v4(),
        step_name: None,
    });
    assert_eq!(turn.phase_artifacts()[&2].input_hash.as_deref(), Some("h"));
    assert!(turn.scenario_states_at_start().contains_key(&scenario));
    let json = serde_json::to_value(&turn).unwrap();
    assert_eq!(json["phase_artifacts"]["2"]["phase_name"], "p");
}

// ---- small records ----

#[test]
fn enum_wire_values() {
    let values = |v: serde_json::Value| v.to_string();
    assert_eq!(
        values(json!([
            LogicalTurnStatus::Accumulating,
            LogicalTurnStatus::Processing,
            LogicalTurnStatus::Complete,
            LogicalTurnStatus::Superseded
        ])),
        r#"["accumulating","processing","complete","superseded"]"#
    );
    assert_eq!(
        values(json!([
            MessageShape::GreetingOnly,
            MessageShape::Fragment,
            MessageShape::IncompleteEntity,
            MessageShape::PossiblyIncomplete,
            MessageShape::LikelyComplete
        ])),
        r#"["greeting_only","fragment","incomplete_entity","possibly_incomplete","likely_complete"]"#
    );
    assert_eq!(
        values(json!([
            SideEffectPolicy::Reversible,
            SideEffectPolicy::Irreversible,
            SideEffectPolicy::Idempotent
        ])),
        r#"["reversible","irreversible","idempotent"]"#
    );
    assert_eq!(
        values(json!([
            SupersedeAction::Supersede,
            SupersedeAction::Absorb,
            SupersedeAction::Queue,
            SupersedeAction::ForceComplete
        ])),
        r#"["supersede","absorb","queue","force_complete"]"#
    );
    assert_eq!(
        values(json!([
            CompletionReason::Timeout,
            CompletionReason::NoAccumulation,
            CompletionReason::CannotAbsorb
        ])),
        r#"["timeout","no_accumulation","cannot_absorb"]"#
    );
    for shape in [MessageShape::GreetingOnly, MessageShape::LikelyComplete] {
        assert_eq!(json!(shape), json!(shape.as_str()));
    }
}

#[test]
fn message_shape_adjustments() {
    assert_eq!(MessageShape::GreetingOnly.wait_adjustment_ms(), 500);
    assert_eq!(MessageShape::Fragment.wait_adjustment_ms(), 400);
    assert_eq!(MessageShape::IncompleteEntity.wait_adjustment_ms(), 600);
    assert_eq!(MessageShape::PossiblyIncomplete.wait_adjustment_ms(), 200);
    assert_eq!(MessageShape::LikelyComplete.wait_adjustment_ms(), 0);
}

#[test]
fn accumulation_hint_json_and_defaults() {
    let hint = AccumulationHint {
        expects_followup: true,
        ..AccumulationHint::default()
    };
    assert_eq!(
        serde_json::to_string(&hint).unwrap(),
        r#"{"awaiting_required_field":false,"expects_followup":true,"input_complete_confidence":0.0,"expected_input_type":null}"#
    );
    let parsed: AccumulationHint =
        serde_json::from_str(r#"{"input_complete_confidence":0.9}"#).unwrap();
    assert_eq!(
        parsed,
        AccumulationHint {
            input_complete_confidence: 0.9,
            ..AccumulationHint::default()
        }
    );
    assert!(parsed.validate().is_ok());
    assert!(
        AccumulationHint {
            input_complete_confidence: 1.2,
            ..parsed
        }
        .validate()
        .is_err()
    );
}

#[test]
fn cadence_json_and_defaults() {
    let stats = UserCadenceStats {
        inter_message_p50_ms: 800,
        inter_message_p95_ms: 1200,
        sample_count: 10,
    };
    assert_eq!(
        serde_json::to_string(&stats).unwrap(),
        r#"{"inter_message_p50_ms":800,"inter_message_p95_ms":1200,"sample_count":10}"#
    );
    let parsed: UserCadenceStats = serde_json::from_str(r#"{"sample_count":3}"#).unwrap();
    assert_eq!(
        parsed,
        UserCadenceStats {
            sample_count: 3,
            ..UserCadenceStats::default()
        }
    );
}

#[test]
fn side_effect_json_and_irreversible_flag() {
    let text = concat!(
        r#"{"effect_type":"tool_call","policy":"idempotent","executed_at":"2025-01-15T10:30:00Z","#,
        r#""tool_name":null,"idempotency_key":null,"details":{}}"#
    );
    let effect: SideEffect = serde_json::from_str(text).unwrap();
    assert!(!effect.is_irreversible());
    assert_eq!(serde_json::to_string(&effect).unwrap(), text);
    assert_eq!(
        SideEffectPolicy::parse("irreversible"),
        Some(SideEffectPolicy::Irreversible)
    );
    assert_eq!(SideEffectPolicy::parse("unknown"), None);
}

#[test]
fn supersede_decision_json() {
    let decision: SupersedeDecision =
        serde_json::from_str(r#"{"action":"absorb","reason":"correction"}"#).unwrap();
    assert_eq!(decision.action, SupersedeAction::Absorb);
    assert_eq!(
        serde_json::to_string(&decision).unwrap(),
        r#"{"action":"absorb","absorb_strategy":null,"reason":"correction","restart_from_phase":null}"#
    );
    assert!(
        serde_json::from_str::<SupersedeDecision>(r#"{"action":"explode","reason":"x"}"#).is_err()
    );
}

#[test]
fn idempotency_key_format() {
    let group = uuid(GROUP);
    assert_eq!(
        tool_idempotency_key("refund", "order-9", group),
        format!("refund:order-9:turn_group:{GROUP}")
    );
}

// ---- workflow input / output ----

fn input() -> WorkflowInput {
    WorkflowInput {
        tenant_id: M1.into(),
        agent_id: M2.into(),
        interlocutor_id: M3.into(),
        channel: "whatsapp".into(),
        message_id: TURN.into(),
        message_content: "hello".into(),
        session_key: None,
    }
}

#[test]
fn session_key_is_built_or_taken_from_input() {
    let mut input = WorkflowInput {
        tenant_id: "tenant-123".into(),
        agent_id: "agent-456".into(),
        interlocutor_id: "customer-789".into(),
        ..input()
    };
    assert_eq!(
        input.session_key(),
        "tenant-123:agent-456:customer-789:whatsapp"
    );
    input.session_key = Some(String::new());
    assert_eq!(
        input.session_key(),
        "tenant-123:agent-456:customer-789:whatsapp"
    );
    input.session_key = Some("custom:session:key".into());
    assert_eq!(input.session_key(), "custom:session:key");
}

#[test]
fn workflow_input_json_uses_the_original_keys() {
    let parsed: WorkflowInput = serde_json::from_value(json!({
        "tenant_id": M1, "agent_id": M2, "interlocutor_id": M3, "channel": "whatsapp",
        "message_id": TURN, "message_content": "hello"
    }))
    .unwrap();
    assert_eq!(parsed, input());
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        json!({"tenant_id": M1, "agent_id": M2, "interlocutor_id": M3, "channel": "whatsapp",
               "message_id": TURN, "message_content": "hello", "session_key": null})
    );
}

#[test]
fn validation_accepts_good_input() {
    let valid = input().validate(4096).unwrap();
    assert_eq!(valid.tenant_id, uuid(M1));
    assert_eq!(valid.message_id, uuid(TURN));
    assert_eq!(valid.session_key, format!("{M1}:{M2}:{M3}:whatsapp"));
}

#[test]
fn validation_names_the_offending_field() {
    let cases: Vec<(WorkflowInput, &str)> = vec![
        (
            WorkflowInput {
                tenant_id: "tenant-123".into(),
                ..input()
            },
            "tenant_id",
        ),
        (
            WorkflowInput {
                agent_id: String::new(),
                ..input()
            },
            "agent_id",
        ),
        (
            WorkflowInput {
                interlocutor_id: "x".into(),
                ..input()
            },
            "interlocutor_id",
        ),
        (
            WorkflowInput {
                channel: " ".into(),
                ..input()
            },
            "channel",
        ),
        (
            WorkflowInput {
                channel: "web:2".into(),
                ..input()
            },
            "channel",
        ),
        (
            WorkflowInput {
                message_id: "m-1".into(),
                ..input()
            },
            "message_id",
        ),
        (
            WorkflowInput {
                message_content: "x".repeat(11),
                ..input()
            },
            "message_content",
        ),
    ];
    for (bad, field) in cases {
        let err: InputError = bad.validate(10).unwrap_err();
        assert_eq!(err.field, field);
        assert!(
            err.to_string()
                .starts_with(&format!("invalid workflow input field `{field}`")),
            "{err}"
        );
    }
}

#[test]
fn workflow_output_json() {
    let output = WorkflowOutput {
        turn_id: uuid(TURN),
        status: TurnOutcome::Failed,
        response: None,
        error: Some("brain failed".into()),
        message_count: 2,
    };
    assert_eq!(
        serde_json::to_string(&output).unwrap(),
        format!(
            r#"{{"turn_id":"{TURN}","status":"failed","response":null,"error":"brain failed","message_count":2}}"#
        )
    );
    let parsed: WorkflowOutput =
        serde_json::from_str(&format!(r#"{{"turn_id":"{TURN}","status":"complete"}}"#)).unwrap();
    assert_eq!(parsed.message_count, 0);
    assert_eq!(parsed.status, TurnOutcome::Complete);
    assert_eq!(parsed.response, None);
}

#[test]
fn new_message_payload() {
    let parsed: NewMessage = serde_json::from_value(
        json!({"message_id": M2, "content": "more", "timestamp": "2025-01-15T10:30:01Z"}),
    )
    .unwrap();
    assert_eq!(parsed.timestamp, Some(at(1, 0)));
    let bare: NewMessage = serde_json::from_value(json!({"message_id": M2})).unwrap();
    assert_eq!((bare.content.as_str(), bare.timestamp), ("", None));
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        format!(r#"{{"message_id":"{M2}","content":"more","timestamp":"2025-01-15T10:30:01Z"}}"#)
    );
    assert!(serde_json::from_value::<NewMessage>(json!({"message_id": "nope"})).is_err());
    assert!(
        serde_json::from_value::<NewMessage>(
            json!({"message_id": M2, "timestamp": "2025-01-15T10:30:01"})
        )
        .is_err()
    );
}

#[test]
fn an_unbounded_window_saturates_instead_of_panicking() {
    let limits = TurnLimits {
        max_messages: 10,
        max_window_ms: u64::MAX,
    };
    let mut turn = turn();
    assert_eq!(turn.window_deadline(&limits), DateTime::<Utc>::MAX_UTC);
    turn.absorb_message(uuid(M2), at(59, 0), &limits).unwrap();
    assert_eq!(turn.message_count(), 2);
}
