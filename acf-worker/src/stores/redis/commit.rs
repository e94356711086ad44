//! [`TurnCommitter`] on Redis: one Lua script checks the commit marker (`{prefix}:commit:{turn_id}`), then the
//! fence, then writes state, record, message statuses and the response entry together.

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStores;
use crate::models::TurnOutcome;
use crate::models::time::{format_timestamp, now_utc};
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

        let mut invocation = self.scripts.commit.key(&lease.key);
        invocation
            .key(lease.fence_key())
            .key(self.keys.commit(record.turn_id))
            .key(self.keys.state(&record.session_key))
            .key(self.keys.turn(record.turn_id))
            .key(self.keys.session_turns(&record.session_key))
            .key(self.keys.open_messages(&record.session_key))
            .key(self.keys.response_stream());
        for id in &record.message_ids {
            invocation.key(self.keys.message(*id));
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
            .arg(if entry.is_some() { "1" } else { "0" });
        if let Some(entry) = &entry {
            for (name, value) in stream_fields::body_fields(entry)? {
                invocation.arg(name).arg(value);
            }
        }
        let (code, marker): (i64, String) = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("commit turn"))?;
        match code {
            1 => parse_marker(&marker, true),
            0 => {
                tracing::info!(turn_id = %record.turn_id, "turn_commit_replayed");
                parse_marker(&marker, false)
            }
            _ => Err(StoreError::StaleFence {
                session_key: lease.session_key.clone(),
                fence: lease.fence,
            }),
        }
    }

    async fn receipt(&self, turn_id: Uuid) -> Result<Option<CommitReceipt>, StoreError> {
        let marker: Option<String> = self
            .conn()
            .get(self.keys.commit(turn_id))
            .await
            .map_err(StoreError::unavailable("commit receipt"))?;
        marker
            .map(|marker| parse_marker(&marker, false))
            .transpose()
    }
}
