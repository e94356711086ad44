//! Message store and session state, on Redis and in memory with shared test bodies.

use crate::on_every_backend;
use crate::support;

use std::time::Duration;

use acf_worker::models::time::now_utc;
use acf_worker::mutex::LockOptions;
use acf_worker::stores::{MessageStatus, StoreError, StoredMessage};
use chrono::{DateTime, Utc};
use support::backends::Backend;
use support::unique_session;
use uuid::Uuid;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-15T10:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::milliseconds(ms)
}

fn message(session: &str, content: &str, received_at: DateTime<Utc>) -> StoredMessage {
    StoredMessage::pending(Uuid::new_v4(), session, "webchat", content, received_at)
}

fn lock(ttl_ms: u64) -> LockOptions {
    LockOptions::new(Duration::from_millis(ttl_ms), Duration::from_secs(5))
}

on_every_backend!(
    insert_is_idempotent_and_round_trips,
    open_messages_are_ordered_by_arrival_and_per_session,
    absorb_is_fenced_and_skips_closed_messages,
    release_absorbed_only_touches_the_turns_own_messages,
    a_dead_turns_absorbed_messages_pass_to_the_next_holder,
    cadence_is_learned_from_message_gaps,
    unknown_session_has_default_state,
    accept_message_stores_learns_and_signals_once,
);

async fn insert_is_idempotent_and_round_trips(b: Backend) {
    let session = unique_session("insert");
    let original = message(&session, "hello, I need help with order #123", now_utc());
    assert!(b.stores.messages.insert(&original).await.unwrap());
    let duplicate = StoredMessage {
        content: "changed".into(),
        ..original.clone()
    };
    assert!(
        !b.stores.messages.insert(&duplicate).await.unwrap(),
        "a re-delivered id is accepted once"
    );
    assert_eq!(
        b.stores.messages.get(&session, original.id).await.unwrap(),
        Some(original.clone())
    );
    assert_eq!(
        b.stores
            .messages
            .get(&session, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );
    let unknown = Uuid::new_v4();
    assert_eq!(
        b.stores.messages.status(&session, unknown).await.unwrap(),
        None,
        "an unknown message has no status"
    );
}

async fn open_messages_are_ordered_by_arrival_and_per_session(b: Backend) {
    let session = unique_session("order");
    let other = unique_session("order-other");
    let third = message(&session, "third", at(300));
    let first = message(&session, "first", at(100));
    let second = message(&session, "second", at(200));
    for m in [
        &third,
        &first,
        &second,
        &message(&other, "elsewhere", at(150)),
    ] {
        assert!(b.stores.messages.insert(m).await.unwrap());
    }
    let open = b.stores.messages.open_messages(&session).await.unwrap();
    let contents: Vec<&str> = open.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["first", "second", "third"]);
    assert_eq!(b.open_count(&other).await, 1);
}

async fn absorb_is_fenced_and_skips_closed_messages(b: Backend) {
    let session = unique_session("absorb");
    let m1 = message(&session, "one", at(0));
    let m2 = message(&session, "two", at(10));
    b.stores.messages.insert(&m1).await.unwrap();
    b.stores.messages.insert(&m2).await.unwrap();
    let unknown = Uuid::new_v4();

    let stale = b.mutex.acquire(&session, lock(100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();

    let turn = Uuid::new_v4();
    let err = b
        .stores
        .messages
        .absorb(&stale, Uuid::new_v4(), &[m1.id])
        .await
        .expect_err("stale lease");
    assert!(
        matches!(err, StoreError::StaleFence { fence, .. } if fence == stale.fence),
        "got {err:?}"
    );
    assert_eq!(
        b.stores.messages.status(&session, m1.id).await.unwrap(),
        Some(MessageStatus::Pending),
        "refused write changed nothing"
    );

    let absorbed = b
        .stores
        .messages
        .absorb(&lease, turn, &[m2.id, unknown, m1.id])
        .await
        .unwrap();
    assert_eq!(absorbed, [m2.id, m1.id]);
    for id in [m1.id, m2.id] {
        let stored = b.stores.messages.get(&session, id).await.unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Absorbed { turn_id: turn });
        assert!(stored.updated_at >= stored.received_at);
    }
    // Absorbed messages are still open until their turn commits.
    assert_eq!(b.open_count(&session).await, 2);
    b.mutex.release(&lease).await.unwrap();
}

async fn release_absorbed_only_touches_the_turns_own_messages(b: Backend) {
    let session = unique_session("release");
    let mine = message(&session, "mine", at(0));
    let theirs = message(&session, "theirs", at(1));
    b.stores.messages.insert(&mine).await.unwrap();
    b.stores.messages.insert(&theirs).await.unwrap();
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let (my_turn, their_turn) = (Uuid::new_v4(), Uuid::new_v4());
    b.stores
        .messages
        .absorb(&lease, my_turn, &[mine.id])
        .await
        .unwrap();
    b.stores
        .messages
        .absorb(&lease, their_turn, &[theirs.id])
        .await
        .unwrap();

    assert_eq!(
        b.stores
            .messages
            .release_absorbed(&session, my_turn, &[mine.id, theirs.id])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.stores.messages.status(&session, mine.id).await.unwrap(),
        Some(MessageStatus::Pending)
    );
    assert_eq!(
        b.stores.messages.status(&session, theirs.id).await.unwrap(),
        Some(MessageStatus::Absorbed {
            turn_id: their_turn
        })
    );
    assert_eq!(
        b.stores
            .messages
            .release_absorbed(&session, my_turn, &[])
            .await
            .unwrap(),
        0
    );
    b.mutex.release(&lease).await.unwrap();
}

async fn a_dead_turns_absorbed_messages_pass_to_the_next_holder(b: Backend) {
    let session = unique_session("takeover");
    let m = message(&session, "are you there?", at(0));
    b.stores.messages.insert(&m).await.unwrap();
    let dead = b.mutex.acquire(&session, lock(100)).await.unwrap();
    let dead_turn = Uuid::new_v4();
    b.stores
        .messages
        .absorb(&dead, dead_turn, &[m.id])
        .await
        .unwrap();
    // The worker dies; its lock expires and the next run takes the session.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let open = b.stores.messages.open_messages(&session).await.unwrap();
    assert_eq!(
        open.iter().map(|m| m.id).collect::<Vec<_>>(),
        [m.id],
        "the absorbed message is recoverable"
    );
    let new_turn = Uuid::new_v4();
    assert_eq!(
        b.stores
            .messages
            .absorb(&next, new_turn, &[m.id])
            .await
            .unwrap(),
        [m.id]
    );
    assert_eq!(
        b.stores.messages.status(&session, m.id).await.unwrap(),
        Some(MessageStatus::Absorbed { turn_id: new_turn })
    );
    // The dead turn can no longer claim it, nor put it back.
    assert!(
        b.stores
            .messages
            .absorb(&dead, dead_turn, &[m.id])
            .await
            .is_err()
    );
    assert_eq!(
        b.stores
            .messages
            .release_absorbed(&session, dead_turn, &[m.id])
            .await
            .unwrap(),
        0
    );
    b.mutex.release(&next).await.unwrap();
}

async fn cadence_is_learned_from_message_gaps(b: Backend) {
    let session = unique_session("cadence");
    let sessions = &b.stores.sessions;
    let first = sessions.record_arrival(&session, at(0)).await.unwrap();
    assert_eq!(first.sample_count, 0, "the first message has no gap");
    // Gaps 400, 800, 1200, 1600, 2000 ms, then a long pause that is not typing rhythm, then 600 ms.
    let mut t = 0;
    for gap in [400, 800, 1_200, 1_600, 2_000] {
        t += gap;
        sessions.record_arrival(&session, at(t)).await.unwrap();
    }
    t += 120_000;
    let after_pause = sessions.record_arrival(&session, at(t)).await.unwrap();
    assert_eq!(
        after_pause.sample_count, 5,
        "a 2-minute pause is not sampled"
    );
    t += 600;
    let stats = sessions.record_arrival(&session, at(t)).await.unwrap();
    assert_eq!(stats.sample_count, 6);
    assert_eq!(stats.inter_message_p50_ms, 800);
    assert_eq!(stats.inter_message_p95_ms, 2_000);
    // An arrival recorded late (older than the latest) is not a gap and does not move the reference.
    let late = sessions.record_arrival(&session, at(t - 50)).await.unwrap();
    assert_eq!(late.sample_count, 6);

    let state = sessions.get(&session).await.unwrap();
    assert_eq!(state.cadence, stats);
    assert_eq!(state.last_message_at, Some(at(t)));
    assert_eq!(state.turn_count, 0);

    // Only the most recent `max_samples` gaps are kept.
    for _ in 0..b.settings.cadence.max_samples {
        t += 100;
        sessions.record_arrival(&session, at(t)).await.unwrap();
    }
    let state = sessions.get(&session).await.unwrap();
    assert_eq!(
        state.cadence.sample_count,
        b.settings.cadence.max_samples as u64
    );
    assert_eq!(state.cadence.inter_message_p95_ms, 100);
}

async fn unknown_session_has_default_state(b: Backend) {
    let state = b
        .stores
        .sessions
        .get(&unique_session("unknown"))
        .await
        .unwrap();
    assert_eq!(state, Default::default());
    assert_eq!(b.open_count(&unique_session("unknown")).await, 0);
}

async fn accept_message_stores_learns_and_signals_once(b: Backend) {
    let session = unique_session("accept");
    let first = message(&session, "hi", at(0));
    let second = message(&session, "I need help", at(700));
    assert!(b.stores.accept_message(&first).await.unwrap());
    assert!(b.stores.accept_message(&second).await.unwrap());
    assert!(
        !b.stores.accept_message(&second).await.unwrap(),
        "re-delivery is ignored"
    );

    let open = b.stores.messages.open_messages(&session).await.unwrap();
    assert_eq!(
        open.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(
        state.cadence.sample_count, 1,
        "one gap between two arrivals; the re-delivery added none"
    );
    assert_eq!(state.cadence.inter_message_p50_ms, 700);
    let signalled: Vec<Uuid> = b
        .stores
        .inbox
        .drain(&session)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(signalled, [first.id, second.id]);
}
