//! 50 sessions × 20 messages through intake on the embedded engine and Redis: every message is answered exactly
//! once, and the turns of one session never overlap (checked from the brain's recorded start and end times).

use acf_tests::e2e_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use acf_worker::models::Conversation;
use acf_worker::models::TurnOutcome;
use e2e_support::{Harness, Mode, assert_processed_by, output, responses_of};
use uuid::Uuid;

const SESSIONS: usize = 50;
const MESSAGES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_of_twenty_messages_never_overlap_and_lose_nothing() {
    let h = std::sync::Arc::new(Harness::start(Mode::Echo(Duration::from_millis(5)), 50, 60).await);
    let users: Vec<Conversation> = (0..SESSIONS).map(|_| Conversation::new()).collect();
    let mut senders = Vec::new();
    for (i, user) in users.clone().into_iter().enumerate() {
        let h = h.clone();
        senders.push(tokio::spawn(async move {
            let mut runs = Vec::new();
            for n in 0..MESSAGES {
                runs.push(h.send(&user.message(&format!("m{n}"))).await);
                // A spread of gaps per session: bursts (under 10 ms) mixed with pauses longer than the 50 ms window.
                let pause = (n * 37 + i * 11) % 90;
                tokio::time::sleep(Duration::from_millis(pause as u64)).await;
            }
            runs
        }));
    }
    let mut runs = Vec::new();
    for sender in senders {
        runs.extend(sender.await.unwrap());
    }
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for run in &runs {
        let out = output(run, Duration::from_secs(120)).await;
        *outcomes.entry(out.status.as_str()).or_default() += 1;
    }
    assert_eq!(outcomes.get("failed"), None, "{outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), SESSIONS * MESSAGES);

    let calls = h.brain.calls();
    let mut complete_turns = 0;
    for user in &users {
        let session = user.session_key();
        let turns = h
            .backend
            .stores
            .audit
            .session_turns(&session)
            .await
            .unwrap();
        assert!(turns.iter().all(|t| t.outcome == TurnOutcome::Complete));
        complete_turns += turns.len();
        // Every message of the session is in exactly one committed turn, and marked processed by it.
        let mut seen = BTreeSet::new();
        for turn in &turns {
            for id in &turn.message_ids {
                assert!(seen.insert(*id), "message {id} answered twice in {session}");
                assert_processed_by(&h.backend, &session, *id, turn.turn_id).await;
            }
        }
        let sent: BTreeSet<Uuid> = runs
            .iter()
            .filter(|r| r.session_key == session)
            .map(|r| r.message_id)
            .collect();
        assert_eq!(seen, sent, "every message of {session} answered");
        assert_eq!(
            responses_of(&h.backend, &session).await.len(),
            turns.len(),
            "one response per turn"
        );

        // The session's brain calls, in start order, each start after the previous one ended.
        let mut own: Vec<_> = calls.iter().filter(|c| c.session_key == session).collect();
        own.sort_by_key(|c| c.started);
        assert_eq!(own.len(), turns.len());
        for pair in own.windows(2) {
            assert!(
                pair[1].started >= pair[0].ended,
                "overlapping turns in {session}: {pair:?}"
            );
        }
    }
    assert_eq!(
        outcomes.get("complete").copied().unwrap_or(0),
        complete_turns
    );
    assert!(
        complete_turns < SESSIONS * MESSAGES,
        "bursts were accumulated into fewer turns than messages ({complete_turns})"
    );
    match std::sync::Arc::try_unwrap(h) {
        Ok(h) => h.stop().await,
        Err(_) => panic!("the harness is still shared"),
    }
}
