//! Redis stores when the server goes away and comes back, on a private `redis-server`.

use crate::support;

use std::future::Future;
use std::time::Duration;

use acf_worker::models::time::now_utc;
use acf_worker::mutex::LockOptions;
use acf_worker::stores::{InboxEntry, StoreError, StoredMessage};
use support::backends::{redis_at, unique_settings};
use support::{RedisServer, unique_session};
use tokio::time::Instant;
use uuid::Uuid;

fn message(session: &str) -> StoredMessage {
    StoredMessage::pending(Uuid::new_v4(), session, "sms", "hello", now_utc())
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, operation: &str) {
    match result {
        Err(err @ StoreError::Unavailable { .. }) => {
            assert!(err.is_retryable());
            assert!(
                err.to_string().contains(operation),
                "`{err}` should name `{operation}`"
            );
        }
        other => panic!("expected Unavailable for {operation}, got {other:?}"),
    }
}

/// Retries `attempt` until it stops failing with `Unavailable` (the connection is re-established in the background).
async fn eventually<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(StoreError::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("store did not recover: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_fail_clearly_while_redis_is_down_and_recover_after_a_restart() {
    let mut server = RedisServer::start();
    let b = redis_at(&server.url(), unique_settings()).await;
    let session = unique_session("restart");
    let before = message(&session);
    assert!(b.stores.messages.insert(&before).await.unwrap());
    let lease = b
        .mutex
        .acquire(
            &session,
            LockOptions::new(Duration::from_secs(10), Duration::ZERO),
        )
        .await
        .unwrap();

    server.stop();
    assert_unavailable(
        b.stores.messages.insert(&message(&session)).await,
        "insert message",
    );
    assert_unavailable(
        b.stores.messages.open_messages(&session).await,
        "list open messages",
    );
    assert_unavailable(
        b.stores.sessions.record_arrival(&session, now_utc()).await,
        "record arrival",
    );
    let entry = InboxEntry {
        message_id: before.id,
        received_at: now_utc(),
    };
    assert_unavailable(b.stores.inbox.push(&session, &entry).await, "inbox push");
    assert_unavailable(
        b.stores
            .inbox
            .wait(&session, Instant::now() + Duration::from_millis(300))
            .await,
        "inbox wait",
    );
    let commit = support::answer_commit(&lease, Uuid::new_v4(), "sms", &[before.id], "hi");
    assert_unavailable(
        b.stores.commits.commit(&lease, &commit).await,
        "commit turn",
    );

    server.restart();
    // The server kept nothing (persistence is off): the stores reconnect and work on the empty data set.
    let after = message(&session);
    assert!(eventually(|| b.stores.messages.insert(&after)).await);
    let open = eventually(|| b.stores.messages.open_messages(&session)).await;
    assert_eq!(open.iter().map(|m| m.id).collect::<Vec<_>>(), [after.id]);
    eventually(|| b.stores.inbox.push(&session, &entry)).await;
    let got = eventually(|| {
        b.stores
            .inbox
            .wait(&session, Instant::now() + Duration::from_secs(2))
    })
    .await;
    assert_eq!(got, Some(entry));
    // The old lease's fence vanished with the data, so it no longer matches: a holder from before the restart
    // cannot write into the new server's state.
    let err = b
        .stores
        .commits
        .commit(&lease, &commit)
        .await
        .expect_err("fence lost with the restart");
    assert!(matches!(err, StoreError::StaleFence { .. }), "got {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_gets_an_error_when_redis_dies_not_a_hang() {
    let mut server = RedisServer::start();
    let b = redis_at(&server.url(), unique_settings()).await;
    let session = unique_session("dies");
    let inbox = b.stores.inbox.clone();
    let waiting_session = session.clone();
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        inbox
            .wait(&waiting_session, Instant::now() + Duration::from_secs(5))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    let result = waiter.await.unwrap();
    assert_unavailable(result, "inbox wait");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the wait should fail when the connection drops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_heals_and_dead_idle_connections_are_replaced() {
    let mut server = RedisServer::start();
    let b = redis_at(&server.url(), unique_settings()).await;
    let session = unique_session("outage");
    // Leave an idle blocking connection in the pool: a timed-out wait returns it once the server answers.
    let short = Instant::now() + Duration::from_millis(50);
    assert_eq!(b.stores.inbox.wait(&session, short).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(600)).await;

    server.stop();
    // Longer than the shared connection's reconnection attempts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.restart();

    let entry = InboxEntry {
        message_id: Uuid::new_v4(),
        received_at: now_utc(),
    };
    eventually(|| b.stores.inbox.push(&session, &entry)).await;
    // The pooled connection died with the old server; the wait replaces it instead of failing.
    let got = b
        .stores
        .inbox
        .wait(&session, Instant::now() + Duration::from_secs(2))
        .await
        .expect("a dead idle connection is replaced transparently");
    assert_eq!(got, Some(entry));
    let lease = b
        .mutex
        .acquire(
            &session,
            LockOptions::new(Duration::from_secs(5), Duration::ZERO),
        )
        .await
        .expect("the mutex works again");
    b.mutex.release(&lease).await.unwrap();
}
