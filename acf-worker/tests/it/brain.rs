//! Brains: the echo default, the turn context's callbacks, and the HTTP brain against a real local server.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use acf_worker::brain::PendingMessages;
use acf_worker::brain::{
    Brain, BrainError, EchoBrain, EventBuffer, HttpBrain, HttpBrainConfig, NoPendingMessages,
    ResponseSegment, StorePendingMessages, TurnContext, TurnMessage,
};
use acf_worker::events::{AcfEvent, AcfEventType};
use acf_worker::models::time::now_utc;
use acf_worker::models::{AccumulationHint, LogicalTurn, TurnLimits};
use acf_worker::mutex::MemorySessionMutex;
use acf_worker::stores::{MemoryStores, MessageStore, StoreSettings, StoredMessage, TurnCommitter};
use serde_json::json;
use support::http::{HttpServer, Reply};
use support::{free_port, unique_session};
use uuid::Uuid;

fn turn_with(session: &str, contents: &[&str]) -> (LogicalTurn, Vec<TurnMessage>) {
    let messages: Vec<TurnMessage> = contents
        .iter()
        .map(|content| TurnMessage {
            id: Uuid::new_v4(),
            content: (*content).to_owned(),
            received_at: now_utc(),
        })
        .collect();
    let mut turn = LogicalTurn::start(
        Uuid::new_v4(),
        session,
        messages[0].id,
        messages[0].received_at,
    );
    for message in &messages[1..] {
        turn.absorb_message(message.id, message.received_at, &TurnLimits::default())
            .unwrap();
    }
    (turn, messages)
}

fn context(contents: &[&str], events: Arc<EventBuffer>) -> TurnContext {
    let (turn, messages) = turn_with(&unique_session("brain"), contents);
    TurnContext::new(
        turn,
        "whatsapp",
        messages,
        Arc::new(NoPendingMessages),
        events,
    )
    .with_routing(acf_worker::events::Routing {
        tenant_id: Uuid::new_v4(),
        agent_id: Uuid::new_v4(),
        interlocutor_id: Uuid::new_v4(),
    })
    .with_turn_number(1)
}

fn http_brain(url: &str, timeout_ms: u64) -> HttpBrain {
    HttpBrain::new(HttpBrainConfig {
        url: url.to_owned(),
        timeout: Duration::from_millis(timeout_ms),
        bearer_token: Some("s3cret".into()),
        headers: Vec::new(),
    })
    .unwrap()
}

#[tokio::test]
async fn echo_answers_with_the_turns_messages() {
    let ctx = context(&["hi", "I need help", "order 123"], EventBuffer::new());
    let result = EchoBrain.think(&ctx).await.unwrap();
    assert_eq!(result.response, "Echo: hi / I need help / order 123");
    assert_eq!(
        result.segments,
        [ResponseSegment::text("Echo: hi / I need help / order 123")]
    );
    assert_eq!(result.accumulation_hint, None);
    assert!(!result.expects_more_input);
    assert_eq!(EchoBrain.name(), "echo");
    // Deterministic: the same turn gives the same answer.
    assert_eq!(EchoBrain.think(&ctx).await.unwrap(), result);
}

#[tokio::test]
async fn has_pending_messages_reads_the_store_and_stays_true() {
    let mutex = MemorySessionMutex::new();
    let stores = Arc::new(MemoryStores::new(mutex.table(), StoreSettings::default()));
    let session = unique_session("pending");
    let first = StoredMessage::pending(Uuid::new_v4(), &session, "sms", "hello", now_utc());
    stores.insert(&first).await.unwrap();
    let (turn, _) = turn_with(&session, &["hello"]);
    let probe = StorePendingMessages::new(stores.clone(), session.clone(), [first.id]);
    let ctx = TurnContext::new(
        turn,
        "sms",
        vec![TurnMessage::from(&first)],
        Arc::new(probe),
        EventBuffer::new(),
    );
    assert_eq!(ctx.session_key(), session);
    assert_eq!(ctx.channel(), "sms");
    assert!(
        !ctx.has_pending_messages().await,
        "the turn's own message is not pending"
    );

    let second = StoredMessage::pending(Uuid::new_v4(), &session, "sms", "also", now_utc());
    stores.insert(&second).await.unwrap();
    assert!(ctx.has_pending_messages().await);
    // Once seen, pending stays true for the turn even if the store changes (the documented monotonic contract).
    let lease = acf_worker::mutex::SessionMutex::acquire(
        &mutex,
        &session,
        acf_worker::mutex::LockOptions::new(Duration::from_secs(5), Duration::ZERO),
    )
    .await
    .unwrap();
    // Another turn answers the second message, so the store no longer has it open.
    let commit = support::answer_commit(&lease, Uuid::new_v4(), "sms", &[second.id], "answered");
    stores.commit(&lease, &commit).await.unwrap();
    let fresh = StorePendingMessages::new(stores.clone(), session.clone(), [first.id]);
    assert!(
        !fresh.has_pending().await,
        "the store has nothing pending any more"
    );
    assert!(
        ctx.has_pending_messages().await,
        "but the turn already saw a pending message"
    );
}

#[tokio::test]
async fn emit_event_reaches_the_emitter() {
    let events = EventBuffer::new();
    let ctx = context(&["hi"], events.clone());
    let event = AcfEvent::new(
        AcfEventType::ToolExecuted,
        ctx.turn().id(),
        ctx.session_key(),
    );
    ctx.emit_event(event.clone()).await.unwrap();
    assert_eq!(events.take(), [event]);
    assert!(events.take().is_empty());
}

#[tokio::test]
async fn http_brain_posts_the_turn_and_reads_the_contract() {
    let server = HttpServer::start(Reply::json(
        200,
        &json!({
            "response": "Sure. What is your order number?",
            "segments": [
                {"content": "Sure. "},
                {"content": "What is your order number?", "segment_type": "question", "metadata": {"quick_replies": []}}
            ],
            "accumulation_hint": {"awaiting_required_field": true, "expected_input_type": "order_number"},
            "expects_more_input": true,
            "events": [{"type": "tool.executed", "payload": {"tool_name": "lookup", "policy": "idempotent"}}],
            "ignored_extra": 1
        }),
    ))
    .await;
    let events = EventBuffer::new();
    let ctx = context(&["hi", "where is my order"], events.clone());
    let result = http_brain(&server.url, 5_000).think(&ctx).await.unwrap();

    assert_eq!(result.response, "Sure. What is your order number?");
    assert_eq!(result.segments.len(), 2);
    assert_eq!(result.segments[0].segment_type, "text");
    assert_eq!(result.segments[1].segment_type, "question");
    assert_eq!(
        result.accumulation_hint,
        Some(AccumulationHint {
            awaiting_required_field: true,
            expected_input_type: Some("order_number".into()),
            ..Default::default()
        })
    );
    assert!(result.expects_more_input);
    let emitted = events.take();
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0].event_type, AcfEventType::ToolExecuted);
    assert_eq!(emitted[0].logical_turn_id, ctx.turn().id());
    assert_eq!(emitted[0].payload["tool_name"], "lookup");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/brain")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    let body = request.json();
    assert_eq!(body["session_key"], ctx.session_key());
    assert_eq!(body["channel"], "whatsapp");
    assert_eq!(body["has_pending_messages"], false);
    assert_eq!(body["turn"]["id"], ctx.turn().id().to_string());
    assert_eq!(body["turn"]["messages"].as_array().unwrap().len(), 2);
    assert_eq!(body["messages"][1]["content"], "where is my order");
    assert_eq!(body["messages"][1]["id"], ctx.messages()[1].id.to_string());
    // The turn travels in the original JSON form and reads back as the same turn.
    let echoed: LogicalTurn = serde_json::from_value(body["turn"].clone()).unwrap();
    assert_eq!(&echoed, ctx.turn());
}

#[tokio::test]
async fn http_brain_accepts_response_or_segments_alone() {
    let only_response = HttpServer::start(Reply::json(200, &json!({"response": "ok"}))).await;
    let result = http_brain(&only_response.url, 5_000)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .unwrap();
    assert_eq!(
        (result.response.as_str(), result.segments.clone()),
        ("ok", vec![ResponseSegment::text("ok")])
    );
    assert!(!result.expects_more_input);

    let only_segments = HttpServer::start(Reply::json(
        200,
        &json!({"segments": [{"content": "a"}, {"content": "b"}]}),
    ))
    .await;
    let result = http_brain(&only_segments.url, 5_000)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .unwrap();
    assert_eq!(result.response, "ab");
}

#[tokio::test]
async fn http_brain_times_out() {
    let server = HttpServer::start(Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, &json!({"response": "late"}))
    })
    .await;
    let started = Instant::now();
    let err = http_brain(&server.url, 300)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .expect_err("too slow");
    assert!(
        matches!(err, BrainError::Timeout { timeout } if timeout == Duration::from_millis(300)),
        "got {err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout was not applied"
    );
    assert!(err.is_retryable());
    assert_eq!(err.kind(), "brain_timeout");
}

#[tokio::test]
async fn http_brain_reports_non_success_statuses() {
    let server = HttpServer::start(Reply::raw(503, "overloaded, try later")).await;
    let err = http_brain(&server.url, 5_000)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BrainError::Status { status: 503, body } if body == "overloaded, try later"),
        "got {err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("503"));

    let server = HttpServer::start(Reply::raw(400, "bad turn")).await;
    let err = http_brain(&server.url, 5_000)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, BrainError::Status { status: 400, .. }));
    assert!(!err.is_retryable(), "a client error will not fix itself");
}

#[tokio::test]
async fn http_brain_refuses_malformed_answers() {
    let cases = [
        ("not json", Reply::raw(200, "<html>oops</html>")),
        (
            "no response",
            Reply::json(200, &json!({"expects_more_input": true})),
        ),
        (
            "mismatch",
            Reply::json(
                200,
                &json!({"response": "x", "segments": [{"content": "y"}]}),
            ),
        ),
        (
            "bad hint",
            Reply::json(
                200,
                &json!({"response": "x", "accumulation_hint": {"input_complete_confidence": 1.5}}),
            ),
        ),
        ("wrong type", Reply::json(200, &json!({"response": 42}))),
        (
            "unknown event",
            Reply::json(200, &json!({"response": "x", "events": [{"type": "nope"}]})),
        ),
    ];
    for (label, reply) in cases {
        let server = HttpServer::start(reply).await;
        let err = http_brain(&server.url, 5_000)
            .think(&context(&["x"], EventBuffer::new()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BrainError::Malformed(_)),
            "{label}: got {err:?}"
        );
        assert!(!err.is_retryable(), "{label}");
        assert_eq!(err.kind(), "brain_malformed_response");
    }
}

#[tokio::test]
async fn http_brain_reports_an_unreachable_endpoint() {
    let url = format!("http://127.0.0.1:{}/brain", free_port());
    let err = http_brain(&url, 5_000)
        .think(&context(&["x"], EventBuffer::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, BrainError::Transport(_)), "got {err:?}");
    assert!(err.is_retryable());
}

#[test]
fn the_bearer_token_is_not_printed() {
    let config = HttpBrainConfig {
        url: "http://x".into(),
        timeout: Duration::from_secs(1),
        bearer_token: Some("s3cret".into()),
        headers: Vec::new(),
    };
    let printed = format!("{config:?}");
    assert!(!printed.contains("s3cret"));
    assert!(printed.contains("[REDACTED]"));
}

/// A tool that ran is reported even when the answer is an error status or otherwise malformed; an answer whose
/// `events` are unreadable reports nothing.
#[tokio::test]
async fn http_brain_emits_the_events_of_failed_answers_first() {
    let tool = json!({"type": "tool.executed", "payload": {"tool_name": "send_email", "policy": "irreversible"}});
    for (status, body, retryable, emitted) in [
        (503, json!({"events": [tool.clone()]}), true, 1),
        (500, json!({"error": "boom"}), true, 0),
        (200, json!({"events": [tool.clone()]}), false, 1), // no response nor segments
        (
            200,
            json!({"response": "ok", "events": [{"type": "no.such"}]}),
            false,
            0,
        ),
    ] {
        let server = HttpServer::start(Reply::json(status, &body)).await;
        let events = EventBuffer::new();
        let ctx = context(&["x"], events.clone());
        let error = http_brain(&server.url, 5_000)
            .think(&ctx)
            .await
            .expect_err("the answer fails");
        assert_eq!(error.is_retryable(), retryable, "{body}: {error}");
        let emitted_events = events.take();
        assert_eq!(emitted_events.len(), emitted, "{body}");
        if let Some(event) = emitted_events.first() {
            assert_eq!(event.event_type, AcfEventType::ToolExecuted);
            assert_eq!(event.logical_turn_id, ctx.turn().id());
            assert_eq!(
                event.tool_side_effect().unwrap().tool_name.as_deref(),
                Some("send_email")
            );
        }
    }
}
