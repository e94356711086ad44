//! [`TurnCommitter`] on Redis: one Lua script checks the commit marker (`{prefix}:commit:{turn_id}`), then the
//! fence, then writes state, record, message statuses and the response entry together. On a Redis Cluster the
//! response stream is in another slot than the session: the script leaves the entry in the session's outbox and
//! [`RedisStores::flush_outbox`] moves it to the stream, once per turn, right after (or, should the committer
//! stop in between, at the next `commit` or `receipt` of the turn, which a retried step always makes).

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStores;
use crate::models::TurnOutcome;
use crate::models::time::{format_timestamp, now_utc};
use crate::mutex::KeyLayout;
use crate::mutex::Lease;
use crate::stores::settings::millis;
use crate::stores::stream_fields;
use crate::stores::{CommitReceipt, StoreError, TurnCommit, TurnCommitter};

/// Parses the marker `{turn_number}|{entry id or empty}`.
fn parse_marker(marker: &str, first_commit: bool) -> Result<CommitReceipt, StoreError> {
    let (number, entry) = marker
        .split_once('|')
        .ok_or_else(|| StoreError::corrupt("commit marker", format!("`{marker}`")))?;
    Ok(CommitReceipt {
        turn_number: number
            .parse()
            .map_err(|err| StoreError::corrupt("commit marker", format!("`{marker}`: {err}")))?,
        response_entry_id: (!entry.is_empty()).then(|| entry.to_owned()),
        first_commit,
    })
}

#[async_trait]
impl TurnCommitter for RedisStores {
    async fn commit(
        &self,
        lease: &Lease,
        commit: &TurnCommit,
    ) -> Result<CommitReceipt, StoreError> {
        let record = &commit.record;
        crate::stores::check_commit_matches_lease(lease, commit)?;
        let complete = record.outcome == TurnOutcome::Complete;
        let record_json =
            serde_json::to_string(record).map_err(StoreError::encode("turn record"))?;
        let (hint_mode, hint_json) = match (&commit.next_hint, complete) {
            (_, false) => ("keep", String::new()),
            (None, true) => ("clear", String::new()),
            (Some(hint), true) => (
                "set",
                serde_json::to_string(hint).map_err(StoreError::encode("accumulation hint"))?,
            ),
        };
        let entry = commit.response_entry();
        let (message_status, reason) = if complete {
            ("processed", String::new())
        } else {
            ("failed", record.error.clone().unwrap_or_default())
        };

        let session_key = &record.session_key;
        let cluster = self.keys.layout == KeyLayout::Cluster;
        let mut invocation = self.scripts.commit.key(&lease.key);
        invocation
            .key(lease.fence_key())
            .key(self.keys.commit(session_key, record.turn_id))
            .key(self.keys.state(session_key))
            .key(self.keys.turn(session_key, record.turn_id))
            .key(self.keys.session_turns(session_key))
            .key(self.keys.open_messages(session_key));
        if cluster {
            invocation.key(self.keys.outbox(session_key, record.turn_id));
        } else {
            invocation.key(self.keys.response_stream());
        }
        for id in &record.message_ids {
            invocation.key(self.keys.message(session_key, *id));
        }
        invocation
            .arg(&lease.token)
            .arg(lease.fence)
            .arg(record.turn_id.to_string())
            .arg(record_json)
            .arg(message_status)
            .arg(reason)
            .arg(format_timestamp(&now_utc()))
            .arg(hint_mode)
            .arg(hint_json)
            .arg(millis(self.settings.record_ttl))
            .arg(millis(self.settings.session_ttl))
            .arg(self.settings.response_stream_max_len)
            .arg(match (&entry, cluster) {
                (None, _) => "0",
                (Some(_), false) => "1",
                (Some(_), true) => "2",
            });
        if let Some(entry) = &entry {
            for (name, value) in stream_fields::body_fields(entry)? {
                invocation.arg(name).arg(value);
            }
        }
        let (code, marker): (i64, String) = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("commit turn"))?;
        let mut receipt = match code {
            1 => parse_marker(&marker, true)?,
            0 => {
                tracing::info!(turn_id = %record.turn_id, "turn_commit_replayed");
                parse_marker(&marker, false)?
            }
            -2 => {
                return Err(StoreError::TakenOver {
                    session_key: lease.session_key.clone(),
                    turn_id: record.turn_id,
                });
            }
            _ => {
                return Err(StoreError::StaleFence {
                    session_key: lease.session_key.clone(),
                    fence: lease.fence,
                });
            }
        };
        if cluster && receipt.response_entry_id.is_none() {
            receipt.response_entry_id = self.flush_outbox(session_key, record.turn_id).await?;
        }
        Ok(receipt)
    }

    async fn receipt(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<CommitReceipt>, StoreError> {
        let marker: Option<String> = self
            .conn()
            .get(self.keys.commit(session_key, turn_id))
            .await
            .map_err(StoreError::unavailable("commit receipt"))?;
        let Some(mut receipt) = marker
            .map(|marker| parse_marker(&marker, false))
            .transpose()?
        else {
            return Ok(None);
        };
        if self.keys.layout == KeyLayout::Cluster && receipt.response_entry_id.is_none() {
            receipt.response_entry_id = self.flush_outbox(session_key, turn_id).await?;
        }
        Ok(Some(receipt))
    }
}

impl RedisStores {
    /// Cluster only: moves a committed turn's response entry from the session's outbox to the stream (once: a
    /// marker in the stream's slot remembers the entry id) and records the entry id in the commit marker.
    /// Returns the entry id, or `None` when the outbox is empty (no response, or already moved).
    async fn flush_outbox(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<String>, StoreError> {
        let outbox = self.keys.outbox(session_key, turn_id);
        let mut fields: HashMap<String, String> = self
            .conn()
            .hgetall(&outbox)
            .await
            .map_err(StoreError::unavailable("publish response"))?;
        let Some(turn_number) = fields.remove("turn_number") else {
            return Ok(None);
        };
        let mut publish = self.scripts.publish_outbox.key(self.keys.response_stream());
        publish
            .key(self.keys.sent(turn_id))
            .arg(millis(self.settings.record_ttl))
            .arg(self.settings.response_stream_max_len)
            .arg(turn_id.to_string())
            .arg(turn_number);
        for (name, value) in &fields {
            publish.arg(name).arg(value);
        }
        let entry_id: String = publish
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("publish response"))?;
        let _: String = self
            .scripts
            .finish_outbox
            .key(self.keys.commit(session_key, turn_id))
            .key(&outbox)
            .arg(&entry_id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("publish response"))?;
        Ok(Some(entry_id))
    }
}
