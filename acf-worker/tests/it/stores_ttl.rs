//! Lifetimes: every store entry expires after its TTL in memory exactly as on Redis (same TTL, restarted by the
//! same writes), and the in-memory stores free what expired. Each body runs on the shared Redis and in memory,
//! with short TTLs and real time.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use acf_worker::models::time::now_utc;
use acf_worker::models::{SideEffect, SideEffectPolicy, TurnOutcome};
use acf_worker::mutex::{Lease, LockOptions, MemorySessionMutex};
use acf_worker::stores::{
    FailureRecord, InboxEntry, MemoryStores, StoreSettings, StoredMessage, TurnCommit, TurnRecord,
};
use support::backends::Backend;
use support::unique_session;
use tokio::time::{Instant, sleep};
use uuid::Uuid;

/// The TTL of every kind of entry in these tests: long enough for a few store calls, short enough to wait out.
const TTL: Duration = Duration::from_millis(400);

fn settings() -> StoreSettings {
    StoreSettings {
        message_ttl: TTL,
        session_ttl: TTL,
        record_ttl: TTL,
        inbox_ttl: TTL,
        ..support::backends::unique_settings()
    }
}

/// In-memory stores with short TTLs, also returned as themselves for counting their entries.
fn memory() -> (Backend, MemoryStores) {
    let settings = settings();
    let mutex = MemorySessionMutex::new();
    let stores = MemoryStores::new(mutex.table(), settings.clone());
    let backend = Backend {
        mutex: Arc::new(mutex),
        stores: acf_worker::stores::Stores::from_backend(Arc::new(stores.clone())),
        settings,
    };
    (backend, stores)
}

/// One test per body on the shared Redis and one in memory, both with the short TTLs.
macro_rules! on_redis_and_in_memory {
    ($($body:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let url = crate::support::SHARED_REDIS_URL;
                    let backend = crate::support::backends::redis_at(url, super::settings()).await;
                    super::$body(backend).await;
                }
            )*
        }
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::memory().0).await;
                }
            )*
        }
    };
}

on_redis_and_in_memory!(
    a_message_and_its_open_index_expire_after_the_message_ttl,
    session_state_expires_after_the_latest_arrival_or_commit,
    an_inbox_expires_after_its_latest_push,
    records_markers_and_effects_expire_after_the_record_ttl,
);

async fn lease(b: &Backend, session: &str) -> Lease {
    let options = LockOptions::new(Duration::from_secs(10), Duration::from_secs(5));
    b.mutex.acquire(session, options).await.unwrap()
}

fn pending(session: &str) -> StoredMessage {
    StoredMessage::pending(Uuid::new_v4(), session, "webchat", "hello", now_utc())
}

/// Sleeps until `fraction` of [`TTL`] after `from`.
async fn until(from: Instant, fraction: f64) {
    sleep(TTL.mul_f64(fraction).saturating_sub(from.elapsed())).await;
}

async fn a_message_and_its_open_index_expire_after_the_message_ttl(b: Backend) {
    let session = unique_session("ttl-msg");
    let message = pending(&session);
    let start = Instant::now();
    assert!(b.stores.messages.insert(&message).await.unwrap());
    assert_eq!(
        b.stores.messages.get(&session, message.id).await.unwrap(),
        Some(message.clone())
    );
    // An absorb changes the message without extending its lifetime.
    let lease = lease(&b, &session).await;
    let turn_id = Uuid::new_v4();
    until(start, 0.5).await;
    let absorbed = b
        .stores
        .messages
        .absorb(&lease, turn_id, &[message.id])
        .await
        .unwrap();
    assert_eq!(absorbed, [message.id]);
    assert_eq!(b.open_count(&session).await, 1);

    until(start, 1.5).await;
    assert_eq!(
        b.stores.messages.get(&session, message.id).await.unwrap(),
        None,
        "gone after the message TTL"
    );
    assert_eq!(b.open_count(&session).await, 0);
    assert_eq!(
        b.stores
            .messages
            .release_absorbed(&session, turn_id, &[message.id])
            .await
            .unwrap(),
        0,
        "an expired message is not brought back"
    );
    assert!(
        b.stores.messages.insert(&message).await.unwrap(),
        "an expired id can be stored again"
    );
}

async fn session_state_expires_after_the_latest_arrival_or_commit(b: Backend) {
    let session = unique_session("ttl-state");
    let start = Instant::now();
    let first = now_utc();
    b.stores
        .sessions
        .record_arrival(&session, first)
        .await
        .unwrap();
    until(start, 0.6).await;
    let refreshed = Instant::now();
    let second = first + chrono::Duration::milliseconds(300);
    let cadence = b
        .stores
        .sessions
        .record_arrival(&session, second)
        .await
        .unwrap();
    assert_eq!(cadence.sample_count, 1);
    until(start, 1.3).await;
    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(
        state.last_message_at,
        Some(second),
        "the latest arrival restarted the session TTL"
    );
    assert_eq!(state.cadence.sample_count, 1);

    // A commit restarts the state's lifetime but not the gap samples'.
    let lease = lease(&b, &session).await;
    let committed = Instant::now();
    b.stores
        .commits
        .commit(
            &lease,
            &TurnCommit {
                record: record(&session, lease.fence),
                next_hint: None,
            },
        )
        .await
        .unwrap();
    sleep(TTL.saturating_sub(refreshed.elapsed()) + TTL / 4).await;
    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(state.turn_count, 1, "the commit restarted the state's TTL");
    assert_eq!(state.cadence.sample_count, 0, "the gap samples expired");

    until(committed, 1.5).await;
    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(state.turn_count, 0);
    assert_eq!(state.last_message_at, None);
}

async fn an_inbox_expires_after_its_latest_push(b: Backend) {
    let session = unique_session("ttl-inbox");
    let entry = |n: i64| InboxEntry {
        message_id: Uuid::new_v4(),
        received_at: now_utc() + chrono::Duration::milliseconds(n),
    };
    let (first, second) = (entry(0), entry(1));
    let start = Instant::now();
    b.stores.inbox.push(&session, &first).await.unwrap();
    until(start, 0.6).await;
    b.stores.inbox.push(&session, &second).await.unwrap();
    until(start, 1.3).await;
    assert_eq!(
        b.stores.inbox.drain(&session).await.unwrap(),
        [first.clone(), second],
        "the latest push restarted the inbox TTL"
    );

    let start = Instant::now();
    b.stores.inbox.push(&session, &first).await.unwrap();
    until(start, 1.5).await;
    assert_eq!(
        b.stores.inbox.wait(&session, Instant::now()).await.unwrap(),
        None
    );
    assert!(b.stores.inbox.drain(&session).await.unwrap().is_empty());
}

fn record(session: &str, fence: u64) -> TurnRecord {
    TurnRecord {
        turn_id: Uuid::new_v4(),
        session_key: session.to_owned(),
        channel: "webchat".into(),
        turn_number: 0,
        outcome: TurnOutcome::Complete,
        message_ids: Vec::new(),
        response: Some("Hello!".into()),
        segments: Vec::new(),
        error: None,
        fence,
        started_at: now_utc(),
        committed_at: now_utc(),
        side_effects: Vec::new(),
    }
}

fn failure(session: &str) -> FailureRecord {
    FailureRecord {
        turn_id: Uuid::new_v4(),
        session_key: session.to_owned(),
        message_ids: Vec::new(),
        reason: "brain exploded".into(),
        failed_step: None,
        failed_at: now_utc(),
    }
}

async fn records_markers_and_effects_expire_after_the_record_ttl(b: Backend) {
    let session = unique_session("ttl-records");
    let lease = lease(&b, &session).await;
    let turn = record(&session, lease.fence);
    let effect = SideEffect::new("tool_call", SideEffectPolicy::Irreversible);
    let failed = failure(&session);
    let start = Instant::now();
    b.stores
        .side_effects
        .record_effect(&lease, turn.turn_id, &effect)
        .await
        .unwrap();
    let commit = TurnCommit {
        record: turn.clone(),
        next_hint: None,
    };
    let receipt = b.stores.commits.commit(&lease, &commit).await.unwrap();
    assert!(receipt.first_commit);
    b.stores.audit.record_failure(&failed).await.unwrap();
    until(start, 0.5).await;
    let held = || held(&b, &session, turn.turn_id, failed.turn_id);
    assert_eq!(
        held().await,
        [1; 6],
        "everything lives until the record TTL"
    );
    until(start, 1.5).await;
    assert_eq!(
        held().await,
        [0; 6],
        "everything expired with the record TTL"
    );
}

/// How many of a turn's entries the stores hold: its record, in the session's turns, its failure record, in the
/// session's failures, its side effects, its commit marker.
async fn held(b: &Backend, session: &str, turn_id: Uuid, failure_id: Uuid) -> [usize; 6] {
    let audit = &b.stores.audit;
    let listed_failures = audit.session_failures(session).await.unwrap();
    [
        usize::from(audit.get_turn(session, turn_id).await.unwrap().is_some()),
        audit.session_turns(session).await.unwrap().len(),
        usize::from(
            audit
                .get_failure(session, failure_id)
                .await
                .unwrap()
                .is_some(),
        ),
        listed_failures.len(),
        b.stores
            .side_effects
            .effects(session, turn_id)
            .await
            .unwrap()
            .len(),
        usize::from(
            b.stores
                .commits
                .receipt(session, turn_id)
                .await
                .unwrap()
                .is_some(),
        ),
    ]
}

/// Many sessions' worth of every kind of entry: all freed once expired, without any call touching them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_stores_free_every_expired_entry() {
    let (b, memory) = memory();
    for n in 0..200 {
        let session = unique_session(&format!("ttl-bulk-{n}"));
        let message = pending(&session);
        b.stores.messages.insert(&message).await.unwrap();
        b.stores
            .sessions
            .record_arrival(&session, now_utc())
            .await
            .unwrap();
        b.stores
            .inbox
            .push(
                &session,
                &InboxEntry {
                    message_id: message.id,
                    received_at: message.received_at,
                },
            )
            .await
            .unwrap();
        let lease = b
            .mutex
            .acquire(
                &session,
                LockOptions::new(Duration::from_secs(10), Duration::from_secs(5)),
            )
            .await
            .unwrap();
        let turn = TurnRecord {
            message_ids: vec![message.id],
            ..record(&session, lease.fence)
        };
        b.stores
            .side_effects
            .record_effect(
                &lease,
                turn.turn_id,
                &SideEffect::new("tool_call", SideEffectPolicy::Irreversible),
            )
            .await
            .unwrap();
        b.stores
            .commits
            .commit(
                &lease,
                &TurnCommit {
                    record: turn,
                    next_hint: None,
                },
            )
            .await
            .unwrap();
        b.stores
            .audit
            .record_failure(&failure(&session))
            .await
            .unwrap();
        b.mutex.release(&lease).await.unwrap();
    }
    // Per session: message, state, inbox, turn record, turn index, commit marker, failure, failure index,
    // effects (the open index was emptied by the commit; one arrival leaves no gap sample).
    assert_eq!(memory.expiring_entries(), 200 * 9);
    sleep(TTL * 2).await;
    assert_eq!(memory.expiring_entries(), 0, "everything expired is freed");
}
