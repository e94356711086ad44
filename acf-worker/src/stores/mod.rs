//! Persistence behind traits: session state, messages, the session inbox, audit turn records, the response stream
//! and the fenced, idempotent turn commit. Each trait has a Redis ([`RedisStores`]) and an in-memory
//! ([`MemoryStores`]) implementation; [`Stores`] bundles one backend for the workflow.
//!
//! Fencing: every write that belongs to a turn takes the turn's [`Lease`] and is refused with
//! [`StoreError::StaleFence`] once a later holder acquired the session, checked atomically with the write.
//!
//! Message lifecycle: `pending` (stored) → `absorbed` (taken into an uncommitted turn) → `processed` or `failed`
//! (the turn committed). Pending and absorbed messages are *open*; when a run dies, the session's next lock holder
//! finds its absorbed messages still open and takes them over, so no message is lost.
//!
//! How a logical-turn run uses them:
//! 1. Intake: [`Stores::accept_message`] stores the message as pending, learns cadence from its arrival and wakes
//!    an accumulating run through the session inbox; then the run is triggered.
//! 2. After acquiring the lease: [`TurnCommitter::receipt`] tells whether this turn id already committed (a retry
//!    of a finished run). [`MessageStore::get`] on the run's own message tells whether an earlier turn already
//!    answered it (`processed`/`failed`: the run ends as absorbed).
//! 3. Accumulate: [`SessionInbox::drain`] discards stale wake-ups, [`MessageStore::open_messages`] gives the
//!    messages to take, [`SessionStateStore::get`] gives the last hint and cadence for the window, and
//!    [`SessionInbox::wait`] with a local deadline waits for more; each wake-up is checked against the message
//!    store (the inbox is only a signal). [`MessageStore::absorb`] claims messages under the lease.
//! 4. Commit: one [`TurnCommitter::commit`] writes record, state, statuses and the response entry, at most once.
//!    A run that fails in a way worth retrying later calls [`MessageStore::release_absorbed`] instead, leaving the
//!    messages pending for the next run, and [`AuditStore::record_failure`] to keep why it failed.

mod backend;
mod cadence;
mod error;
mod memory;
mod redis;
mod settings;
mod stream_fields;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::models::{SideEffect, UserCadenceStats};
use crate::mutex::Lease;

pub use self::backend::Backend;
pub use self::error::StoreError;
pub use self::memory::MemoryStores;
pub use self::redis::{
    RedisConnectOptions, RedisConnection, RedisStores, cluster_nodes, connect_redis,
};
pub use self::settings::{CadenceSettings, StoreSettings};
pub use self::types::{
    CommitReceipt, FailureRecord, InboxEntry, MessageStatus, ResponseEntry, SessionState,
    StoredMessage, TurnCommit, TurnRecord,
};

/// Raw user messages and their status.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a message (normally `pending`). Returns false, changing nothing, if the id is already stored, so a
    /// re-delivered message is accepted once.
    async fn insert(&self, message: &StoredMessage) -> Result<bool, StoreError>;

    /// A new message's intake in one step (one atomic round trip on Redis): stores it as [`MessageStore::insert`]
    /// does, records its arrival for cadence learning ([`SessionStateStore::record_arrival`]) and pushes `entry`
    /// to the session's inbox ([`SessionInbox::push`]). Returns false, changing nothing, when the id was stored
    /// already, so a re-delivered message is never counted or signalled twice.
    async fn accept(&self, message: &StoredMessage, entry: &InboxEntry)
    -> Result<bool, StoreError>;

    /// One message of `session_key` by id. The session is part of the message's address (a Redis Cluster keeps a
    /// session's keys in one slot); single-node Redis and memory find the message by id alone.
    async fn get(&self, session_key: &str, id: Uuid) -> Result<Option<StoredMessage>, StoreError>;

    /// The status of one message of `session_key` (addressed as for [`MessageStore::get`]); `None` when the
    /// message is not stored.
    async fn status(
        &self,
        session_key: &str,
        id: Uuid,
    ) -> Result<Option<MessageStatus>, StoreError> {
        Ok(self
            .get(session_key, id)
            .await?
            .map(|message| message.status))
    }

    /// The session's open messages (pending, or absorbed by a turn that has not committed), oldest first.
    async fn open_messages(&self, session_key: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// Marks open messages as absorbed by `turn_id`, if `lease` is current. Returns the ids actually absorbed, in
    /// the given order; unknown, processed and failed messages are skipped.
    async fn absorb(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Puts messages that `turn_id` absorbed back to pending (after a failed run). Messages absorbed by another
    /// turn, or already closed, are left alone. Returns how many changed. The messages are `session_key`'s.
    async fn release_absorbed(
        &self,
        session_key: &str,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<usize, StoreError>;
}

/// Per-session state: turn counter, last hint, learned cadence.
#[async_trait]
pub trait SessionStateStore: Send + Sync {
    /// The session's state (the default for an unknown session).
    async fn get(&self, session_key: &str) -> Result<SessionState, StoreError>;

    /// Records a message arrival and learns from the gap to the previous one. Returns the updated cadence.
    async fn record_arrival(
        &self,
        session_key: &str,
        at: DateTime<Utc>,
    ) -> Result<UserCadenceStats, StoreError>;
}

/// Wakes a session's accumulating run when a message arrives.
#[async_trait]
pub trait SessionInbox: Send + Sync {
    /// Appends an entry to the session's inbox.
    async fn push(&self, session_key: &str, entry: &InboxEntry) -> Result<(), StoreError>;

    /// Takes the oldest entry, waiting for one until `deadline` (timed locally: it returns within a few
    /// milliseconds of the deadline). `None` means the deadline passed with the inbox empty.
    async fn wait(
        &self,
        session_key: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Option<InboxEntry>, StoreError>;

    /// Takes every entry currently queued, without waiting.
    async fn drain(&self, session_key: &str) -> Result<Vec<InboxEntry>, StoreError>;
}

/// Audit records: committed turns (written by [`TurnCommitter::commit`]) and runs that failed for good without
/// committing (written by the workflow's `on_failure` through [`AuditStore::record_failure`]). Both live for the
/// record TTL.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// One turn's record (a turn of `session_key`, as for [`MessageStore::get`]).
    async fn get_turn(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<TurnRecord>, StoreError>;

    /// The session's committed turns, in commit order.
    async fn session_turns(&self, session_key: &str) -> Result<Vec<TurnRecord>, StoreError>;

    /// Records a run that failed for good. Not fenced (the failing run may no longer hold the lock) and changes
    /// no message status: the messages stay open for the session's next run. Recording the same turn id again
    /// replaces the earlier record, so a retried `on_failure` leaves one record.
    async fn record_failure(&self, failure: &FailureRecord) -> Result<(), StoreError>;

    /// The failure record of `turn_id` (a turn of `session_key`), if any.
    async fn get_failure(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<FailureRecord>, StoreError>;

    /// The session's failure records, oldest first (by `failed_at`).
    async fn session_failures(&self, session_key: &str) -> Result<Vec<FailureRecord>, StoreError>;
}

/// The stream of responses a channel gateway consumes (Redis: `XREAD`/`XREADGROUP` on `{prefix}:responses`;
/// field list on [`ResponseEntry`]).
#[async_trait]
pub trait ResponseSink: Send + Sync {
    /// Appends an entry outside a turn commit (commits append their own). Returns the entry id.
    async fn publish(&self, entry: &ResponseEntry) -> Result<String, StoreError>;

    /// Up to `count` entries with ids greater than `after_id` (`"0"` reads from the start), oldest first.
    async fn read_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, ResponseEntry)>, StoreError>;
}

/// The turn's final write: audit record, session state, message statuses and response, all at once.
#[async_trait]
pub trait TurnCommitter: Send + Sync {
    /// Commits the turn if `lease` is current, at most once per turn id: a retry returns the first commit's
    /// receipt with `first_commit: false` and delivers nothing again, even after the lease went stale.
    /// A complete turn with a response appends one entry to the response stream; its messages become
    /// `processed`. A failed turn marks its messages `failed` with the record's error and keeps the last hint.
    /// Every message of the turn must still be open (pending, or absorbed by any turn: the current lease takes
    /// them over); one closed by another turn or gone refuses the commit with [`StoreError::TakenOver`], writing
    /// nothing. The check and the commit are one atomic step (one round trip on Redis).
    async fn commit(&self, lease: &Lease, commit: &TurnCommit)
    -> Result<CommitReceipt, StoreError>;

    /// The receipt of an earlier commit of `turn_id` (a turn of `session_key`), if any. On a Redis Cluster, a
    /// commit whose response entry is not on the stream yet (its committer stopped in between) is published first.
    async fn receipt(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<CommitReceipt>, StoreError>;
}

/// A session that a liveness sweep claimed (see [`PendingIndex::claim_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSession {
    /// The session.
    pub session_key: String,
    /// The routing JSON recorded with [`PendingIndex::mark_due`], if it survived.
    pub route: Option<String>,
}

/// The liveness index: sessions whose messages may still need a run, each with the time a sweep should look at
/// it. Intake and every run mark their session due a grace period ahead; a run that leaves its message open marks
/// it due at once; a sweep claims due sessions (one sweeper at a time per session), re-triggers a run for an open
/// message, and removes sessions with nothing open. The store's data epoch lives here too.
#[async_trait]
pub trait PendingIndex: Send + Sync {
    /// Makes a sweep look at `session_key` at `due_at_ms` (Unix ms). With `keep_earlier`, an earlier due time
    /// stands (a hand-on must not be postponed); without, the due time is replaced (a run that starts working on
    /// the session postpones the sweep by a grace period). `route` is the routing part of a trigger payload
    /// (JSON), kept for the sweep to build a run's input.
    async fn mark_due(
        &self,
        session_key: &str,
        route: &str,
        due_at_ms: i64,
        keep_earlier: bool,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` sessions due at `now_ms`: each is re-scored to `next_ms` in the same atomic step, so
    /// concurrent sweepers never claim one session twice within `next_ms - now_ms`.
    async fn claim_due(
        &self,
        now_ms: i64,
        next_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError>;

    /// Removes `session_key` from the index when it has no open message (checked atomically). True if removed.
    async fn settle(&self, session_key: &str) -> Result<bool, StoreError>;

    /// The due time of `session_key`, if indexed.
    async fn due_at(&self, session_key: &str) -> Result<Option<i64>, StoreError>;

    /// The store's data epoch: stores `candidate` when no epoch is stored, and returns the stored value. A value
    /// other than the one a worker saw before means the store lost its data.
    async fn epoch(&self, candidate: &str) -> Result<String, StoreError>;
}

/// The side effects a turn executed, recorded as they happen so that a retried attempt of the same turn sees
/// them (and the turn record keeps them at commit).
#[async_trait]
pub trait SideEffectLog: Send + Sync {
    /// Appends `effect` to the effects of `turn_id`, only while `lease` is current ([`StoreError::StaleFence`]
    /// otherwise).
    async fn record_effect(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        effect: &SideEffect,
    ) -> Result<(), StoreError>;

    /// The effects recorded for `turn_id`, a turn of `session_key`, oldest first.
    async fn effects(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Vec<SideEffect>, StoreError>;
}

/// The events stream (`{key_prefix}:events` on Redis), where the `redis_stream` sink appends routed ACF events
/// for gateways and analytics. Field layout: see the README ("Events").
#[async_trait]
pub trait EventStream: Send + Sync {
    /// Appends `event`, trimming the stream to its last `max_len` entries. Returns the entry id.
    async fn append_event(
        &self,
        event: &crate::events::AcfEvent,
        max_len: u64,
    ) -> Result<String, StoreError>;

    /// Up to `count` events with ids greater than `after_id` (`"0"` reads from the start), oldest first.
    async fn read_events_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, crate::events::AcfEvent)>, StoreError>;
}

/// One backend's stores, as the workflow uses them.
#[derive(Clone)]
pub struct Stores {
    /// Messages.
    pub messages: Arc<dyn MessageStore>,
    /// Session state.
    pub sessions: Arc<dyn SessionStateStore>,
    /// Session inboxes.
    pub inbox: Arc<dyn SessionInbox>,
    /// Turn records.
    pub audit: Arc<dyn AuditStore>,
    /// Response stream.
    pub responses: Arc<dyn ResponseSink>,
    /// Turn commits.
    pub commits: Arc<dyn TurnCommitter>,
    /// The liveness index and the data epoch.
    pub pending: Arc<dyn PendingIndex>,
    /// Side effects of turns in progress.
    pub side_effects: Arc<dyn SideEffectLog>,
    /// The events stream.
    pub events: Arc<dyn EventStream>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// Intake of one message: stores it as pending, records its arrival for cadence learning and wakes the
    /// session's accumulating run. Returns false, doing nothing else, when the message id was already stored
    /// (a re-delivery), so a message is never counted or signalled twice.
    pub async fn accept_message(&self, message: &StoredMessage) -> Result<bool, StoreError> {
        let entry = InboxEntry {
            message_id: message.id,
            received_at: message.received_at,
        };
        self.messages.accept(message, &entry).await
    }

    /// In-memory stores fenced by `mutex`'s lock table.
    pub fn memory(mutex: &crate::mutex::MemorySessionMutex, settings: StoreSettings) -> Self {
        Self::from_backend(Arc::new(MemoryStores::new(mutex.table(), settings)))
    }

    /// All stores backed by one implementation.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: MessageStore
            + SessionStateStore
            + SessionInbox
            + AuditStore
            + ResponseSink
            + TurnCommitter
            + PendingIndex
            + SideEffectLog
            + EventStream
            + 'static,
    {
        Self {
            messages: backend.clone(),
            sessions: backend.clone(),
            inbox: backend.clone(),
            audit: backend.clone(),
            responses: backend.clone(),
            commits: backend.clone(),
            pending: backend.clone(),
            side_effects: backend.clone(),
            events: backend,
        }
    }
}

/// A commit must be for the session its lease covers, or the fence check would guard the wrong session.
fn check_commit_matches_lease(lease: &Lease, commit: &TurnCommit) -> Result<(), StoreError> {
    if lease.session_key == commit.record.session_key {
        Ok(())
    } else {
        Err(StoreError::InvalidRequest(format!(
            "commit of turn {} is for session `{}` but the lease covers `{}`",
            commit.record.turn_id, commit.record.session_key, lease.session_key
        )))
    }
}
