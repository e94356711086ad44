//! Turn commit: atomic, idempotent by turn id, fenced; audit records and the response stream.

use crate::on_every_backend;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use acf_worker::brain::ResponseSegment;
use acf_worker::models::time::now_utc;
use acf_worker::models::{AccumulationHint, TurnOutcome};
use acf_worker::mutex::{Lease, LockOptions};
use acf_worker::stores::{
    FailureRecord, MessageStatus, ResponseEntry, StoreError, StoredMessage, TurnCommit, TurnRecord,
};
use support::backends::Backend;
use support::unique_session;
use uuid::Uuid;

fn lock(ttl_ms: u64) -> LockOptions {
    LockOptions::new(Duration::from_millis(ttl_ms), Duration::from_secs(5))
}

async fn pending_messages(b: &Backend, session: &str, contents: &[&str]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for content in contents {
        let m = StoredMessage::pending(Uuid::new_v4(), session, "webchat", *content, now_utc());
        b.stores.messages.insert(&m).await.unwrap();
        ids.push(m.id);
    }
    ids
}

fn record(session: &str, ids: &[Uuid], outcome: TurnOutcome) -> TurnRecord {
    let complete = outcome == TurnOutcome::Complete;
    TurnRecord {
        turn_id: Uuid::new_v4(),
        session_key: session.to_owned(),
        channel: "webchat".into(),
        turn_number: 0,
        outcome,
        message_ids: ids.to_vec(),
        response: complete.then(|| "Hello! How can I help?".to_owned()),
        segments: if complete {
            vec![
                ResponseSegment::text("Hello! "),
                ResponseSegment::text("How can I help?"),
            ]
        } else {
            vec![]
        },
        error: (!complete).then(|| "brain exploded".to_owned()),
        fence: 0,
        started_at: now_utc(),
        committed_at: now_utc(),
        side_effects: Vec::new(),
    }
}

fn hint() -> AccumulationHint {
    AccumulationHint {
        awaiting_required_field: true,
        expected_input_type: Some("order_number".into()),
        ..Default::default()
    }
}

async fn absorb_all(b: &Backend, lease: &Lease, turn: &TurnRecord) {
    b.stores
        .messages
        .absorb(lease, turn.turn_id, &turn.message_ids)
        .await
        .unwrap();
}

async fn stream(b: &Backend) -> Vec<(String, ResponseEntry)> {
    b.stores.responses.read_after("0", 1_000).await.unwrap()
}

/// Neither a turn record nor a commit receipt exists for `turn_id`.
async fn assert_not_committed(b: &Backend, session: &str, turn_id: Uuid) {
    assert_eq!(
        b.stores.audit.get_turn(session, turn_id).await.unwrap(),
        None
    );
    assert_eq!(
        b.stores.commits.receipt(session, turn_id).await.unwrap(),
        None
    );
}

on_every_backend!(
    a_complete_commit_writes_everything_once,
    a_retried_commit_delivers_nothing_again,
    concurrent_retries_commit_exactly_once,
    a_stale_holder_cannot_commit,
    a_turn_whose_message_another_turn_closed_cannot_commit,
    a_failed_turn_marks_messages_failed_and_keeps_the_hint,
    turn_numbers_and_hints_follow_commits,
    a_commit_for_another_session_is_refused,
    the_stream_reads_incrementally,
    a_failure_record_is_kept_and_leaves_messages_pending,
    a_rerecorded_failure_replaces_the_earlier_one,
);

async fn a_complete_commit_writes_everything_once(b: Backend) {
    let session = unique_session("commit");
    let ids = pending_messages(&b, &session, &["hi", "I need help"]).await;
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let turn = TurnRecord {
        fence: lease.fence,
        ..record(&session, &ids, TurnOutcome::Complete)
    };
    absorb_all(&b, &lease, &turn).await;

    let receipt = b
        .stores
        .commits
        .commit(
            &lease,
            &TurnCommit {
                record: turn.clone(),
                next_hint: Some(hint()),
            },
        )
        .await
        .unwrap();
    assert!(receipt.first_commit);
    assert_eq!(receipt.turn_number, 1);
    let entry_id = receipt
        .response_entry_id
        .clone()
        .expect("a complete turn delivers a response");

    let stored = b
        .stores
        .audit
        .get_turn(&session, turn.turn_id)
        .await
        .unwrap()
        .expect("audit record");
    assert_eq!(
        stored,
        TurnRecord {
            turn_number: 1,
            ..turn.clone()
        }
    );
    assert_eq!(
        b.stores.audit.session_turns(&session).await.unwrap(),
        [stored]
    );

    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(state.turn_count, 1);
    assert_eq!(state.last_turn_id, Some(turn.turn_id));
    assert_eq!(state.last_hint, Some(hint()));

    for id in &ids {
        assert_eq!(
            b.stores.messages.status(&session, *id).await.unwrap(),
            Some(MessageStatus::Processed {
                turn_id: turn.turn_id
            })
        );
    }
    assert_eq!(b.open_count(&session).await, 0);

    let entries = stream(&b).await;
    assert_eq!(entries.len(), 1);
    let (id, entry) = &entries[0];
    assert_eq!(id, &entry_id);
    assert_eq!(entry.turn_id, turn.turn_id);
    assert_eq!(entry.session_key, session);
    assert_eq!(entry.channel, "webchat");
    assert_eq!(entry.turn_number, 1);
    assert_eq!(entry.response, "Hello! How can I help?");
    assert_eq!(entry.segments, turn.segments);
    assert_eq!(entry.message_ids, ids);
    assert_eq!(entry.committed_at, turn.committed_at);
    assert_eq!(
        b.stores
            .commits
            .receipt(&session, turn.turn_id)
            .await
            .unwrap()
            .map(|r| r.turn_number),
        Some(1)
    );
    b.mutex.release(&lease).await.unwrap();
}

async fn a_retried_commit_delivers_nothing_again(b: Backend) {
    let session = unique_session("retry");
    let ids = pending_messages(&b, &session, &["where is my order?"]).await;
    let lease = b.mutex.acquire(&session, lock(100)).await.unwrap();
    let commit = TurnCommit {
        record: record(&session, &ids, TurnOutcome::Complete),
        next_hint: None,
    };
    absorb_all(&b, &lease, &commit.record).await;
    let first = b.stores.commits.commit(&lease, &commit).await.unwrap();
    let again = b.stores.commits.commit(&lease, &commit).await.unwrap();
    assert!(!again.first_commit);
    assert_eq!(
        (again.turn_number, again.response_entry_id.clone()),
        (first.turn_number, first.response_entry_id.clone())
    );

    // Even after the lease went stale (the step was retried much later), the retry is answered, not refused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let late = b.stores.commits.commit(&lease, &commit).await.unwrap();
    assert!(!late.first_commit);
    assert_eq!(late.response_entry_id, first.response_entry_id);

    assert_eq!(
        stream(&b).await.len(),
        1,
        "exactly one response for the turn"
    );
    assert_eq!(b.stores.sessions.get(&session).await.unwrap().turn_count, 1);
    assert_eq!(
        b.stores.audit.session_turns(&session).await.unwrap().len(),
        1
    );
    b.mutex.release(&next).await.unwrap();
}

async fn concurrent_retries_commit_exactly_once(b: Backend) {
    let session = unique_session("race");
    let ids = pending_messages(&b, &session, &["one", "two"]).await;
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let commit = Arc::new(TurnCommit {
        record: record(&session, &ids, TurnOutcome::Complete),
        next_hint: None,
    });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (commits, lease, commit) = (b.stores.commits.clone(), lease.clone(), commit.clone());
        tasks.push(tokio::spawn(async move {
            commits.commit(&lease, &commit).await.unwrap()
        }));
    }
    let mut firsts = 0;
    for task in tasks {
        let receipt = task.await.unwrap();
        firsts += usize::from(receipt.first_commit);
        assert_eq!(receipt.turn_number, 1);
    }
    assert_eq!(firsts, 1);
    assert_eq!(stream(&b).await.len(), 1);
    b.mutex.release(&lease).await.unwrap();
}

async fn a_stale_holder_cannot_commit(b: Backend) {
    let session = unique_session("stale");
    let ids = pending_messages(&b, &session, &["hello?"]).await;
    let stale = b.mutex.acquire(&session, lock(100)).await.unwrap();
    let commit = TurnCommit {
        record: record(&session, &ids, TurnOutcome::Complete),
        next_hint: Some(hint()),
    };
    absorb_all(&b, &stale, &commit.record).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let current = b.mutex.acquire(&session, lock(10_000)).await.unwrap();

    let err = b
        .stores
        .commits
        .commit(&stale, &commit)
        .await
        .expect_err("stale fence");
    assert!(
        matches!(&err, StoreError::StaleFence { session_key, fence } if *session_key == session && *fence == stale.fence),
        "got {err:?}"
    );
    assert!(!err.is_retryable());
    // Nothing was written.
    assert!(stream(&b).await.is_empty());
    assert_not_committed(&b, &session, commit.record.turn_id).await;
    assert_eq!(b.stores.sessions.get(&session).await.unwrap().turn_count, 0);
    assert_eq!(
        b.open_count(&session).await,
        1,
        "the message is still open for the new holder"
    );
    b.mutex.release(&current).await.unwrap();
}

async fn a_turn_whose_message_another_turn_closed_cannot_commit(b: Backend) {
    let session = unique_session("taken");
    let ids = pending_messages(&b, &session, &["first", "second"]).await;
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    // Another turn (under the same, current lease: the check is on the messages, not the fence) answers the
    // first message.
    let other = TurnCommit {
        record: TurnRecord {
            fence: lease.fence,
            ..record(&session, &ids[..1], TurnOutcome::Complete)
        },
        next_hint: None,
    };
    absorb_all(&b, &lease, &other.record).await;
    b.stores.commits.commit(&lease, &other).await.unwrap();
    let entries = stream(&b).await.len();

    let late = TurnCommit {
        record: TurnRecord {
            fence: lease.fence,
            ..record(&session, &ids, TurnOutcome::Complete)
        },
        next_hint: Some(hint()),
    };
    let err = b
        .stores
        .commits
        .commit(&lease, &late)
        .await
        .expect_err("a message of the turn is closed");
    assert!(
        matches!(&err, StoreError::TakenOver { session_key, turn_id } if *session_key == session && *turn_id == late.record.turn_id),
        "got {err:?}"
    );
    assert!(!err.is_retryable());
    // Nothing of the late turn was written: no record, no receipt, no response, no turn counted, and the second
    // message is still open for the session's next turn.
    assert_eq!(stream(&b).await.len(), entries);
    assert_not_committed(&b, &session, late.record.turn_id).await;
    assert_eq!(b.stores.sessions.get(&session).await.unwrap().turn_count, 1);
    let second = b
        .stores
        .messages
        .get(&session, ids[1])
        .await
        .unwrap()
        .unwrap();
    assert!(second.status.is_open(), "got {:?}", second.status);
    assert_eq!(b.open_count(&session).await, 1);

    // A message the store no longer has refuses the commit the same way.
    let gone = TurnCommit {
        record: TurnRecord {
            fence: lease.fence,
            ..record(&session, &[ids[1], Uuid::new_v4()], TurnOutcome::Complete)
        },
        next_hint: None,
    };
    let err = b
        .stores
        .commits
        .commit(&lease, &gone)
        .await
        .expect_err("a message is gone");
    assert!(matches!(err, StoreError::TakenOver { .. }), "got {err:?}");
    assert_eq!(b.open_count(&session).await, 1);
    b.mutex.release(&lease).await.unwrap();
}

async fn a_failed_turn_marks_messages_failed_and_keeps_the_hint(b: Backend) {
    let session = unique_session("failed");
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let first_ids = pending_messages(&b, &session, &["what's my order number?"]).await;
    let first = TurnCommit {
        record: record(&session, &first_ids, TurnOutcome::Complete),
        next_hint: Some(hint()),
    };
    b.stores.commits.commit(&lease, &first).await.unwrap();

    let ids = pending_messages(&b, &session, &["it's 42"]).await;
    let failed = TurnCommit {
        record: record(&session, &ids, TurnOutcome::Failed),
        next_hint: None,
    };
    let receipt = b.stores.commits.commit(&lease, &failed).await.unwrap();
    assert_eq!(receipt.turn_number, 2);
    let entry_id = receipt
        .response_entry_id
        .clone()
        .expect("a failed turn delivers a failure entry");
    let entries = b.stores.responses.read_after("0", 10_000).await.unwrap();
    let (_, entry) = entries
        .iter()
        .find(|(id, _)| *id == entry_id)
        .expect("the failure entry is on the stream");
    assert_eq!(entry.status, TurnOutcome::Failed);
    assert_eq!(entry.response, "");
    assert_eq!(entry.message_ids, ids);
    assert_eq!(entry.error.as_deref(), Some("brain exploded"));
    assert_eq!(
        b.stores.messages.status(&session, ids[0]).await.unwrap(),
        Some(MessageStatus::Failed {
            turn_id: failed.record.turn_id,
            reason: "brain exploded".into()
        })
    );
    let state = b.stores.sessions.get(&session).await.unwrap();
    assert_eq!(state.turn_count, 2);
    assert_eq!(
        state.last_hint,
        Some(hint()),
        "a failed turn leaves the previous hint"
    );
    let record = b
        .stores
        .audit
        .get_turn(&session, failed.record.turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.outcome, record.error.as_deref()),
        (TurnOutcome::Failed, Some("brain exploded"))
    );
    assert_eq!(
        stream(&b).await.len(),
        2,
        "the answer and the failure entry"
    );
    b.mutex.release(&lease).await.unwrap();
}

async fn turn_numbers_and_hints_follow_commits(b: Backend) {
    let session = unique_session("numbers");
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let mut turn_ids = Vec::new();
    for (i, next_hint) in [Some(hint()), None, Some(hint())].into_iter().enumerate() {
        let ids = pending_messages(&b, &session, &["msg"]).await;
        let commit = TurnCommit {
            record: record(&session, &ids, TurnOutcome::Complete),
            next_hint: next_hint.clone(),
        };
        turn_ids.push(commit.record.turn_id);
        assert_eq!(
            b.stores
                .commits
                .commit(&lease, &commit)
                .await
                .unwrap()
                .turn_number,
            i as u64 + 1
        );
        assert_eq!(
            b.stores.sessions.get(&session).await.unwrap().last_hint,
            next_hint,
            "a complete turn sets or clears the hint"
        );
    }
    let turns = b.stores.audit.session_turns(&session).await.unwrap();
    assert_eq!(
        turns.iter().map(|t| t.turn_id).collect::<Vec<_>>(),
        turn_ids
    );
    assert_eq!(
        turns.iter().map(|t| t.turn_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let numbers: Vec<u64> = stream(&b)
        .await
        .iter()
        .map(|(_, e)| e.turn_number)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    b.mutex.release(&lease).await.unwrap();
}

async fn a_commit_for_another_session_is_refused(b: Backend) {
    let session = unique_session("mine");
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let other = unique_session("theirs");
    let commit = TurnCommit {
        record: record(&other, &[], TurnOutcome::Complete),
        next_hint: None,
    };
    assert!(matches!(
        b.stores.commits.commit(&lease, &commit).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(stream(&b).await.is_empty());
    b.mutex.release(&lease).await.unwrap();
}

async fn the_stream_reads_incrementally(b: Backend) {
    let session = unique_session("stream");
    let mut ids = Vec::new();
    for n in 1..=3 {
        let entry = ResponseEntry {
            turn_id: Uuid::new_v4(),
            session_key: session.clone(),
            channel: "sms".into(),
            turn_number: n,
            status: TurnOutcome::Complete,
            response: format!("reply {n}"),
            segments: vec![ResponseSegment::text(format!("reply {n}"))],
            message_ids: vec![Uuid::new_v4()],
            error: None,
            committed_at: now_utc(),
        };
        ids.push(b.stores.responses.publish(&entry).await.unwrap());
    }
    let first_two = b.stores.responses.read_after("0", 2).await.unwrap();
    assert_eq!(
        first_two
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        ids[..2]
    );
    let rest = b
        .stores
        .responses
        .read_after(&first_two[1].0, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.response, "reply 3");
    assert!(
        b.stores
            .responses
            .read_after(&ids[2], 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn failure(session: &str, ids: &[Uuid], reason: &str, at_ms: i64) -> FailureRecord {
    FailureRecord {
        turn_id: Uuid::new_v4(),
        session_key: session.to_owned(),
        message_ids: ids.to_vec(),
        reason: reason.to_owned(),
        failed_step: Some("run_agent".to_owned()),
        failed_at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
    }
}

async fn a_failure_record_is_kept_and_leaves_messages_pending(b: Backend) {
    let session = unique_session("failure");
    let other = unique_session("failure-other");
    let ids = pending_messages(&b, &session, &["are you there?", "hello?"]).await;
    let lease = b.mutex.acquire(&session, lock(10_000)).await.unwrap();
    let turn_id = Uuid::new_v4();
    b.stores
        .messages
        .absorb(&lease, turn_id, &ids)
        .await
        .unwrap();
    assert_eq!(
        b.stores
            .messages
            .release_absorbed(&session, turn_id, &ids)
            .await
            .unwrap(),
        2
    );

    let now_ms = now_utc().timestamp_millis();
    let later = FailureRecord {
        turn_id,
        ..failure(&session, &ids, "run_agent: brain_failed: timed out", now_ms)
    };
    let earlier = failure(
        &session,
        &[],
        "accumulate: store unavailable",
        now_ms - 5_000,
    );
    b.stores.audit.record_failure(&later).await.unwrap();
    b.stores.audit.record_failure(&earlier).await.unwrap();

    assert_eq!(
        b.stores.audit.get_failure(&session, turn_id).await.unwrap(),
        Some(later.clone())
    );
    assert_eq!(
        b.stores.audit.session_failures(&session).await.unwrap(),
        vec![earlier.clone(), later.clone()],
        "oldest first"
    );
    assert!(
        b.stores
            .audit
            .session_failures(&other)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.stores
            .audit
            .get_failure(&session, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );
    // A failure is not a committed turn: no turn record, no receipt, no response.
    assert_eq!(
        b.stores.audit.get_turn(&session, turn_id).await.unwrap(),
        None
    );
    assert!(
        b.stores
            .audit
            .session_turns(&session)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.stores.commits.receipt(&session, turn_id).await.unwrap(),
        None
    );
    assert!(
        stream(&b)
            .await
            .iter()
            .all(|(_, e)| e.session_key != session)
    );
    // The messages stay recoverable for the session's next run.
    let open = b.stores.messages.open_messages(&session).await.unwrap();
    assert_eq!(open.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert!(open.iter().all(|m| m.status == MessageStatus::Pending));
    b.mutex.release(&lease).await.unwrap();
}

async fn a_rerecorded_failure_replaces_the_earlier_one(b: Backend) {
    let session = unique_session("failure-again");
    let now_ms = now_utc().timestamp_millis();
    let first = failure(&session, &[], "run_agent: first", now_ms - 1_000);
    let neighbour = failure(&session, &[], "run_agent: neighbour", now_ms - 500);
    b.stores.audit.record_failure(&first).await.unwrap();
    b.stores.audit.record_failure(&neighbour).await.unwrap();
    let again = FailureRecord {
        reason: "run_agent: second".to_owned(),
        failed_at: chrono::DateTime::from_timestamp_millis(now_ms).unwrap(),
        ..first.clone()
    };
    b.stores.audit.record_failure(&again).await.unwrap();
    assert_eq!(
        b.stores
            .audit
            .get_failure(&session, first.turn_id)
            .await
            .unwrap(),
        Some(again.clone())
    );
    assert_eq!(
        b.stores.audit.session_failures(&session).await.unwrap(),
        vec![neighbour, again],
        "one record per turn, ordered by its latest failure time"
    );
}

#[tokio::test]
async fn redis_failure_records_use_the_prefix_and_expire_with_the_record_ttl() {
    let settings = acf_worker::stores::StoreSettings {
        record_ttl: Duration::from_secs(90),
        ..support::backends::unique_settings()
    };
    let b = support::backends::redis_at(support::SHARED_REDIS_URL, settings.clone()).await;
    let session = unique_session("failure-ttl");
    let record = failure(
        &session,
        &[],
        "run_agent: boom",
        now_utc().timestamp_millis(),
    );
    b.stores.audit.record_failure(&record).await.unwrap();
    let client = redis::Client::open(support::SHARED_REDIS_URL).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    for key in [
        format!("{}:failure:{}", settings.key_prefix, record.turn_id),
        format!("{}:failures:{session}", settings.key_prefix),
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(ttl > 80_000 && ttl <= 90_000, "TTL {ttl} ms at `{key}`");
    }
}
