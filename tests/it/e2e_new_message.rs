//! Gateways built for the Python worker: follow-up messages pushed as Hatchet `new_message` events by the official
//! Python SDK are taken like `send` takes a message — stored, signalled to the session's accumulating run (which
//! absorbs them), and given their own `logical-turn` run.

use acf_tests::e2e_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

use acf_tests::python::{PythonScript, script};
use acf_worker::models::Conversation;
use acf_worker::models::{TurnOutcome, format_timestamp, now_utc};
use acf_worker::stores::{MessageStatus, ResponseEntry};
use e2e_support::{Harness, Mode, output, responses_of, stored_message};
use serde_json::{Value, json};
use uuid::Uuid;

/// Pushes one `new_message` event with the official Python SDK.
async fn push(h: &Harness, payload: &Value, metadata: &Value) {
    let out = PythonScript::new(script("push_new_message.py"))
        .arg(payload.to_string())
        .arg(metadata.to_string())
        .envs(h.engine.client_env())
        .run_async()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("PUSHED"), "{}", out.stdout);
}

/// A Python gateway process with the SDK loaded, pushing its event when told to.
struct Gateway {
    child: Child,
    stdout: Option<std::io::Lines<BufReader<ChildStdout>>>,
}

impl Gateway {
    async fn ready(h: &Harness, payload: &Value, metadata: &Value) -> Self {
        let mut command = PythonScript::new(script("push_new_message.py"))
            .arg(payload.to_string())
            .arg(metadata.to_string())
            .arg("--on-stdin")
            .envs(h.engine.client_env())
            .into_command();
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = command.spawn().expect("the Python interpreter starts");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut gateway = Self {
            child,
            stdout: Some(stdout),
        };
        gateway.expect_line("READY").await;
        gateway
    }

    async fn expect_line(&mut self, wanted: &'static str) {
        let mut lines = self.stdout.take().unwrap();
        let (lines, found) = tokio::task::spawn_blocking(move || {
            let found = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|line| line == wanted);
            (lines, found)
        })
        .await
        .unwrap();
        self.stdout = Some(lines);
        assert!(found, "the Python gateway never printed {wanted}");
    }

    /// Pushes the event with `late_fields` merged into its payload.
    async fn push(&mut self, late_fields: &Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{late_fields}\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        self.expect_line("PUSHED").await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the session has `count` responses.
async fn responses(h: &Harness, session_key: &str, count: usize) -> Vec<ResponseEntry> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = responses_of(&h.backend, session_key).await;
        if found.len() >= count || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_event_is_taken_like_send() {
    let h = Harness::start(Mode::Echo(Duration::ZERO), 3_000, 10).await;
    let user = Conversation::new();

    // The gateway triggered the first message itself, then signals the follow-up as an event, with the routing
    // in the event's additional_metadata and the documented payload. The SDK is loaded before the first message
    // is sent, so the push lands within the first turn's window.
    let follow_up = Uuid::new_v4();
    let mut gateway = Gateway::ready(
        &h,
        &json!({"message_id": follow_up, "content": "I need help with my order"}),
        &json!({
            "tenant_id": user.tenant_id, "agent_id": user.agent_id,
            "interlocutor_id": user.interlocutor_id, "channel": "web",
        }),
    )
    .await;
    let first = h.send(&user.message("hello")).await;
    // Stamped once "hello" is stored, as a gateway stamps a message when it arrives: the turn orders by it.
    let sent_at = format_timestamp(&now_utc());
    gateway.push(&json!({ "timestamp": sent_at })).await;
    let turn = output(&first, Duration::from_secs(60)).await;
    assert_eq!(turn.status, TurnOutcome::Complete);
    assert_eq!(
        turn.message_count, 2,
        "the running turn absorbed the event's message"
    );
    assert_eq!(
        turn.response.as_deref(),
        Some("Echo: hello / I need help with my order")
    );
    let stored = stored_message(&h.backend, &user.session_key(), follow_up)
        .await
        .expect("the follow-up was stored");
    assert_eq!(stored.session_key, user.session_key());
    assert!(
        matches!(stored.status, MessageStatus::Processed { .. }),
        "{stored:?}"
    );
    assert_eq!(
        format_timestamp(&stored.received_at),
        sent_at,
        "the event's timestamp is the arrival time"
    );

    // A new conversation started by an event alone (routing in the payload): it gets its own turn.
    let other = Conversation::new();
    let opener = Uuid::new_v4();
    push(
        &h,
        &json!({
            "message_id": opener, "content": "bonjour", "tenant_id": other.tenant_id,
            "agent_id": other.agent_id, "interlocutor_id": other.interlocutor_id, "channel": "web",
        }),
        &json!({}),
    )
    .await;
    let answered = responses(&h, &other.session_key(), 1).await;
    assert_eq!(answered.len(), 1, "the event's own run answered it");
    assert_eq!(answered[0].message_ids, vec![opener]);
    assert_eq!(answered[0].response, "Echo: bonjour");

    // An event that cannot be routed changes nothing.
    let unroutable = Uuid::new_v4();
    push(
        &h,
        &json!({"message_id": unroutable, "content": "lost?"}),
        &json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        stored_message(&h.backend, &user.session_key(), unroutable)
            .await
            .is_none()
    );
    assert_eq!(responses_of(&h.backend, &user.session_key()).await.len(), 1);
    h.stop().await;
}
