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
        let data = self.data();
        Ok(data.records.get(&turn_id, data.now).cloned())
    }

    async fn session_turns(&self, session_key: &str) -> Result<Vec<TurnRecord>, StoreError> {
        let data = self.data();
        let ids = data
            .session_turns
            .get(session_key, data.now)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| data.records.get(id, data.now))
            .cloned()
            .collect())
    }

    async fn record_failure(&self, failure: &FailureRecord) -> Result<(), StoreError> {
        let mut data = self.data();
        let until = data.until(data.ttl.record);
        let Data {
            failures,
            session_failures,
            now,
            ..
        } = &mut *data;
        let now = *now;
        if let Some(previous) = failures.get(&failure.turn_id, now)
            && let Some(ids) = session_failures.get_mut(&previous.session_key, now)
        {
            ids.retain(|id| *id != failure.turn_id);
        }
        failures.insert(failure.turn_id, failure.clone(), until);
        let ids = session_failures.refresh(failure.session_key.clone(), now, until);
        // Ids whose record expired are skipped by every read; dropping them keeps the order below well defined.
        ids.retain(|id| *id != failure.turn_id && failures.contains_key(id, now));
        // Oldest first, like the Redis index scored by `failed_at`.
        let at = ids.partition_point(|id| {
            failures
                .get(id, now)
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
        let data = self.data();
        Ok(data.failures.get(&turn_id, data.now).cloned())
    }

    async fn session_failures(&self, session_key: &str) -> Result<Vec<FailureRecord>, StoreError> {
        let data = self.data();
        let ids = data
            .session_failures
            .get(session_key, data.now)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| data.failures.get(id, data.now))
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
    let now = data.now;
    let (record_until, session_until) = (data.until(data.ttl.record), data.until(data.ttl.session));
    let state = data
        .states
        .refresh(record.session_key.clone(), now, session_until);
    state.turn_count += 1;
    state.last_turn_id = Some(record.turn_id);
    if complete {
        state.last_hint.clone_from(&commit.next_hint);
    }
    let turn_number = state.turn_count;

    data.records.insert(
        record.turn_id,
        TurnRecord {
            turn_number,
            ..record.clone()
        },
        record_until,
    );
    data.session_turns
        .refresh(record.session_key.clone(), now, record_until)
        .push(record.turn_id);

    let updated_at = now_utc();
    for id in &record.message_ids {
        if let Some(message) = data.messages.get_mut(id, now) {
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
            message.updated_at = updated_at;
        }
    }
    if let Some(open) = data.open.get_mut(&record.session_key, now) {
        open.retain(|id| !record.message_ids.contains(id));
        // Redis deletes a sorted set left empty.
        if open.is_empty() {
            data.open.remove(&record.session_key, now);
        }
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
        record_until,
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
        if let Some(receipt) = self.stored_receipt(turn_id) {
            tracing::info!(%turn_id, "turn_commit_replayed");
            return Ok(receipt);
        }
        let max_len = self.settings.response_stream_max_len;
        self.fenced(lease, |data| {
            if let Some(receipt) = data.receipts.get(&turn_id, data.now) {
                return Ok(receipt.clone());
            }
            // As on Redis: every message still open (any turn's absorption under this current lease is taken over).
            let now = data.now;
            let all_open = commit.record.message_ids.iter().all(|id| {
                data.messages
                    .get(id, now)
                    .is_some_and(|m| m.status.is_open())
            });
            if !all_open {
                return Err(StoreError::TakenOver {
                    session_key: lease.session_key.clone(),
                    turn_id,
                });
            }
            Ok(apply_commit(data, commit, max_len))
        })?
    }

    async fn receipt(
        &self,
        _session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<CommitReceipt>, StoreError> {
        Ok(self.stored_receipt(turn_id))
    }
}

impl MemoryStores {
    /// The commit marker of `turn_id`, while it lives.
    fn stored_receipt(&self, turn_id: Uuid) -> Option<CommitReceipt> {
        let data = self.data();
        data.receipts.get(&turn_id, data.now).cloned()
    }
}
