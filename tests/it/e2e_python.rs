//! The official Python SDK triggers `logical-turn` with the seed's payload; the Rust worker processes it.

use acf_tests::e2e_support;

use std::time::Duration;

use acf_tests::python::{PythonScript, script};
use acf_worker::models::Conversation;
use acf_worker::stores::MessageStatus;
use e2e_support::{Harness, Mode, responses_of, stored_message};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_triggers_a_turn_the_rust_worker_answers() {
    let h = Harness::start(Mode::Echo(Duration::ZERO), 100, 10).await;
    let user = Conversation::new();
    let message_id = Uuid::new_v4();
    let result = PythonScript::new(script("e2e_logical_turn.py"))
        .arg(&user.tenant_id)
        .arg(&user.agent_id)
        .arg(&user.interlocutor_id)
        .arg("web")
        .arg(message_id.to_string())
        .arg("bonjour from python")
        .envs(h.engine.client_env())
        .run_async()
        .await
        .assert_success()
        .result();
    let commit = &result["commit_and_respond"];
    assert_eq!(commit["status"], "complete", "{result}");
    assert_eq!(commit["response"], "Echo: bonjour from python");
    assert_eq!(commit["message_count"], 1);

    // The run recorded the message itself (no intake was involved) and answered it on the response stream.
    let message = stored_message(&h.backend, &user.session_key(), message_id)
        .await
        .expect("the run stored the message");
    assert!(
        matches!(message.status, MessageStatus::Processed { .. }),
        "{message:?}"
    );
    let responses = responses_of(&h.backend, &user.session_key()).await;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].message_ids, vec![message_id]);
    h.stop().await;
}
