//! Every store trait in process memory, for the embedded default, the demo and tests.
//!
//! Same semantics as the Redis stores, including fencing (through the [`MemoryLockTable`] shared with a
//! [`crate::mutex::MemorySessionMutex`]) and commit idempotency. TTLs do not apply: data lives as long as the
//! process, which is what a single-process run needs.

mod effects;
mod messages;
mod pending;
mod records;
mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::settings::StoreSettings;
use super::{
    CommitReceipt, FailureRecord, InboxEntry, SessionInbox, StoreError, StoredMessage, TurnRecord,
};
use crate::mutex::{Lease, MemoryLockTable};

/// In-memory stores. Clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStores {
    table: Arc<MemoryLockTable>,
    settings: StoreSettings,
    data: Arc<Mutex<Data>>,
    /// Woken on every inbox push; waiters re-check their own session.
    inbox_pushed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Data {
    messages: HashMap<Uuid, StoredMessage>,
    /// Per session, ids of open messages in arrival order.
    open: HashMap<String, Vec<Uuid>>,
    sessions: HashMap<String, session::SessionData>,
    inboxes: HashMap<String, VecDeque<InboxEntry>>,
    records: HashMap<Uuid, TurnRecord>,
    session_turns: HashMap<String, Vec<Uuid>>,
    receipts: HashMap<Uuid, CommitReceipt>,
    failures: HashMap<Uuid, FailureRecord>,
    /// Per session, ids of failure records, oldest first.
    session_failures: HashMap<String, Vec<Uuid>>,
    stream: records::Stream,
    /// The liveness index: session → (due time ms, routing JSON).
    due: HashMap<String, (i64, String)>,
    /// The data epoch.
    epoch: Option<String>,
    /// Side effects of turns in progress, by turn id.
    effects: HashMap<Uuid, Vec<crate::models::SideEffect>>,
    /// The events stream: (id, event), oldest first, trimmed to the length asked by the last append.
    events: VecDeque<(String, crate::events::AcfEvent)>,
    /// Sequence of the last event id handed out.
    events_seq: u64,
}

impl MemoryStores {
    /// Stores fenced by `table` (the one the [`crate::mutex::MemorySessionMutex`] uses).
    pub fn new(table: Arc<MemoryLockTable>, settings: StoreSettings) -> Self {
        Self {
            table,
            settings,
            data: Arc::default(),
            inbox_pushed: Arc::new(Notify::new()),
        }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        // Every update below completes without panicking midway, so a poisoned lock still guards consistent data.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` on the data only if `lease` is current, atomically with respect to lock acquisitions.
    fn fenced<R>(
        &self,
        lease: &Lease,
        write: impl FnOnce(&mut Data) -> R,
    ) -> Result<R, StoreError> {
        self.table
            .with_current(lease, || write(&mut self.data()))
            .ok_or_else(|| StoreError::StaleFence {
                session_key: lease.session_key.clone(),
                fence: lease.fence,
            })
    }
}

#[async_trait]
impl SessionInbox for MemoryStores {
    async fn push(&self, session_key: &str, entry: &InboxEntry) -> Result<(), StoreError> {
        self.data()
            .inboxes
            .entry(session_key.to_owned())
            .or_default()
            .push_back(entry.clone());
        self.inbox_pushed.notify_waiters();
        Ok(())
    }

    async fn wait(
        &self,
        session_key: &str,
        deadline: Instant,
    ) -> Result<Option<InboxEntry>, StoreError> {
        loop {
            // Register for the wake-up before looking, so a push between the look and the wait is not missed.
            let pushed = self.inbox_pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            if let Some(entry) = self
                .data()
                .inboxes
                .get_mut(session_key)
                .and_then(VecDeque::pop_front)
            {
                return Ok(Some(entry));
            }
            if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn drain(&self, session_key: &str) -> Result<Vec<InboxEntry>, StoreError> {
        Ok(self
            .data()
            .inboxes
            .remove(session_key)
            .map(Vec::from)
            .unwrap_or_default())
    }
}

/// Stream entry ids in Redis's `{ms}-{seq}` form, strictly increasing.
fn next_stream_id(last: &mut (u64, u64)) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    *last = if now > last.0 {
        (now, 0)
    } else {
        (last.0, last.1 + 1)
    };
    format!("{}-{}", last.0, last.1)
}

fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_increase_strictly() {
        let mut last = (0, 0);
        let a = parse_stream_id(&next_stream_id(&mut last)).unwrap();
        let b = parse_stream_id(&next_stream_id(&mut last)).unwrap();
        assert!(b > a);
        assert_eq!(parse_stream_id("0"), Some((0, 0)));
        assert_eq!(parse_stream_id("17-3"), Some((17, 3)));
        assert_eq!(parse_stream_id("x"), None);
    }
}
