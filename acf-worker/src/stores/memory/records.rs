//! [`AuditStore`], [`ResponseSink`] and [`TurnCommitter`] in memory.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Data, MemoryStores, next_stream_id, parse_stream_id};
use crate::models::TurnOutcome;
use crate::models::time::now_utc;
use crate::mutex::Lease;
use crate::stores::{
    AuditStore, CommitReceipt, FailureRecord, MessageStatus, ResponseEntry, ResponseSink,
    StoreError, TurnCommit, TurnCommitter, TurnRecord,
};

/// The response stream: entries with their ids, capped like `XADD MAXLEN`.
#[derive(Debug, Default)]
pub(super) struct Stream {
    entries: std::collections::VecDeque<(String, ResponseEntry)>,
    last_id: (u64, u64),
}

impl Stream {
    fn append(&mut self, entry: ResponseEntry, max_len: u64) -> String {
        let id = next_stream_id(&mut self.last_id);
        self.entries.push_back((id.clone(), entry));
        while self.entries.len() as u64 > max_len.max(1) {
            self.entries.pop_front();
        }
        id
    }
}

#[async_trait]
impl AuditStore for MemoryStores {
    async fn get_turn(
        &self,
        _session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<TurnRecord>, StoreError> {
        Ok(self.data().records.get(&turn_id).cloned())
    }

    async fn session_turns(&self, session_key: &str) -> Result<Vec<TurnRecord>, StoreError> {
        let data = self.data();
        let ids = data
            .session_turns
            .get(session_key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| data.records.get(id))
            .cloned()
            .collect())
    }

    async fn record_failure(&self, failure: &FailureRecord) -> Result<(), StoreError> {
        let mut data = self.data();
        let Data {
            failures,
            session_failures,
            ..
        } = &mut *data;
        if let Some(previous) = failures.insert(failure.turn_id, failure.clone())
            && let Some(ids) = session_failures.get_mut(&previous.session_key)
        {
            ids.retain(|id| *id != failure.turn_id);
        }
        let ids = session_failures
            .entry(failure.session_key.clone())
            .or_default();
        // Oldest first, like the Redis index scored by `failed_at`.
        let at = ids.partition_point(|id| {
            failures
                .get(id)
                .is_some_and(|other| other.failed_at <= failure.failed_at)
        });
        ids.insert(at, failure.turn_id);
        Ok(())
    }

    async fn get_failure(
        &self,
        _session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<FailureRecord>, StoreError> {
        Ok(self.data().failures.get(&turn_id).cloned())
    }

    async fn session_failures(&self, session_key: &str) -> Result<Vec<FailureRecord>, StoreError> {
        let data = self.data();
        let ids = data
            .session_failures
            .get(session_key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| data.failures.get(id))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl ResponseSink for MemoryStores {
    async fn publish(&self, entry: &ResponseEntry) -> Result<String, StoreError> {
        let max_len = self.settings.response_stream_max_len;
        Ok(self.data().stream.append(entry.clone(), max_len))
    }

    async fn read_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, ResponseEntry)>, StoreError> {
        let after = parse_stream_id(after_id).ok_or_else(|| {
            StoreError::InvalidRequest(format!("`{after_id}` is not a stream entry id"))
        })?;
        let data = self.data();
        Ok(data
            .stream
            .entries
            .iter()
            .filter(|(id, _)| parse_stream_id(id).is_some_and(|id| id > after))
            .take(count)
            .cloned()
            .collect())
    }
}

fn apply_commit(data: &mut Data, commit: &TurnCommit, max_len: u64) -> CommitReceipt {
    let record = &commit.record;
    let complete = record.outcome == TurnOutcome::Complete;
    let session = data.sessions.entry(record.session_key.clone()).or_default();
    session.state.turn_count += 1;
    session.state.last_turn_id = Some(record.turn_id);
    if complete {
        session.state.last_hint.clone_from(&commit.next_hint);
    }
    let turn_number = session.state.turn_count;

    data.records.insert(
        record.turn_id,
        TurnRecord {
            turn_number,
            ..record.clone()
        },
    );
    data.session_turns
        .entry(record.session_key.clone())
        .or_default()
        .push(record.turn_id);

    let now = now_utc();
    for id in &record.message_ids {
        if let Some(message) = data.messages.get_mut(id) {
            message.status = if complete {
                MessageStatus::Processed {
                    turn_id: record.turn_id,
                }
            } else {
                MessageStatus::Failed {
                    turn_id: record.turn_id,
                    reason: record.error.clone().unwrap_or_default(),
                }
            };
            message.updated_at = now;
        }
    }
    if let Some(open) = data.open.get_mut(&record.session_key) {
        open.retain(|id| !record.message_ids.contains(id));
    }

    let response_entry_id = commit.response_entry().map(|entry| {
        data.stream.append(
            ResponseEntry {
                turn_number,
                ..entry
            },
            max_len,
        )
    });
    let receipt = CommitReceipt {
        turn_number,
        response_entry_id,
        first_commit: true,
    };
    data.receipts.insert(
        record.turn_id,
        CommitReceipt {
            first_commit: false,
            ..receipt.clone()
        },
    );
    receipt
}

#[async_trait]
impl TurnCommitter for MemoryStores {
    async fn commit(
        &self,
        lease: &Lease,
        commit: &TurnCommit,
    ) -> Result<CommitReceipt, StoreError> {
        crate::stores::check_commit_matches_lease(lease, commit)?;
        let turn_id = commit.record.turn_id;
        // A replay is answered before the fence check: the first commit already happened under a current lease.
        if let Some(receipt) = self.data().receipts.get(&turn_id).cloned() {
            tracing::info!(%turn_id, "turn_commit_replayed");
            return Ok(receipt);
        }
        let max_len = self.settings.response_stream_max_len;
        self.fenced(lease, |data| match data.receipts.get(&turn_id) {
            Some(receipt) => receipt.clone(),
            None => apply_commit(data, commit, max_len),
        })
    }

    async fn receipt(
        &self,
        _session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<CommitReceipt>, StoreError> {
        Ok(self.data().receipts.get(&turn_id).cloned())
    }
}
