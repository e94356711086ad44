//! [`PendingIndex`] on Redis: a sorted set of sessions scored by due time (`{prefix}:due`), a hash of their
//! routing JSON (`{prefix}:due:routes`) and the data epoch (`{prefix}:epoch`). None of them expires: a due entry
//! lives until a sweep finds its session with nothing open.
//!
//! On a Redis Cluster the index is one key set in its own slot (`{{prefix}}:due`, `{{prefix}}:due:routes`,
//! `{{prefix}}:due:versions`), touched only by scripts on that slot. Settling must look at the session's open
//! messages, in the session's slot, so it cannot be one script: it reads the session's version (bumped by every
//! `mark_due`), checks the open messages, then removes the entry only if the version is unchanged. A message
//! stored after the check is marked due after being stored, so it either bumps the version first (the entry
//! stays) or re-adds the entry after its removal: no open message is left out of the index.

use crate::mutex::KeyLayout;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::RedisStores;
use crate::stores::{DueSession, PendingIndex, StoreError};

/// KEYS: due, routes. ARGV: now ms, next ms, limit. Returns session, route ('' when none) pairs.
pub(super) const CLAIM_DUE: &str = r"
local sessions = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, session in ipairs(sessions) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], session)
  table.insert(out, session)
  table.insert(out, redis.call('HGET', KEYS[2], session) or '')
end
return out
";

/// KEYS: due, routes, open index. ARGV: session. Removes the session when nothing is open. Returns 1 or 0.
pub(super) const SETTLE: &str = r"
if redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
";

/// Cluster only. KEYS: due, routes, versions. ARGV: due ms, session, route, keep earlier (`1`/`0`).
pub(super) const MARK_DUE: &str = r"
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[1], ARGV[2])
else
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return 1
";

/// Cluster only. KEYS: due, routes, versions. ARGV: session, version seen before checking the open messages
/// (`0` when none). Removes the session if its version is unchanged. Returns 1 or 0.
pub(super) const SETTLE_VERSIONED: &str = r"
if (redis.call('HGET', KEYS[3], ARGV[1]) or '0') ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
";

/// KEYS: epoch. ARGV: candidate. Returns the stored epoch.
pub(super) const EPOCH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

#[async_trait]
impl PendingIndex for RedisStores {
    async fn mark_due(
        &self,
        session_key: &str,
        route: &str,
        due_at_ms: i64,
        keep_earlier: bool,
    ) -> Result<(), StoreError> {
        if self.keys.layout == KeyLayout::Cluster {
            let _: i64 = self
                .scripts
                .mark_due
                .key(self.keys.due())
                .key(self.keys.due_routes())
                .key(self.keys.due_versions())
                .arg(due_at_ms)
                .arg(session_key)
                .arg(route)
                .arg(if keep_earlier { "1" } else { "0" })
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::unavailable("mark session due"))?;
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let zadd = pipe.cmd("ZADD").arg(self.keys.due());
        if keep_earlier {
            // `LT` adds a new member and only ever moves an existing one earlier.
            zadd.arg("LT");
        }
        let _: () = zadd
            .arg(due_at_ms)
            .arg(session_key)
            .ignore()
            .hset(self.keys.due_routes(), session_key, route)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("mark session due"))?;
        Ok(())
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        next_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        let flat: Vec<String> = self
            .scripts
            .claim_due
            .key(self.keys.due())
            .key(self.keys.due_routes())
            .arg(now_ms)
            .arg(next_ms)
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("claim due sessions"))?;
        Ok(flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [session, route] => Some(DueSession {
                    session_key: session.clone(),
                    route: (!route.is_empty()).then(|| route.clone()),
                }),
                _ => None,
            })
            .collect())
    }

    async fn settle(&self, session_key: &str) -> Result<bool, StoreError> {
        if self.keys.layout == KeyLayout::Cluster {
            return self.settle_across_slots(session_key).await;
        }
        let removed: i64 = self
            .scripts
            .settle
            .key(self.keys.due())
            .key(self.keys.due_routes())
            .key(self.keys.open_messages(session_key))
            .arg(session_key)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("settle due session"))?;
        Ok(removed == 1)
    }

    async fn due_at(&self, session_key: &str) -> Result<Option<i64>, StoreError> {
        let score: Option<f64> = self
            .conn()
            .zscore(self.keys.due(), session_key)
            .await
            .map_err(StoreError::unavailable("read due time"))?;
        #[allow(clippy::cast_possible_truncation)] // scores are whole milliseconds
        Ok(score.map(|s| s as i64))
    }

    async fn epoch(&self, candidate: &str) -> Result<String, StoreError> {
        self.scripts
            .epoch
            .key(self.keys.epoch())
            .arg(candidate)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("data epoch"))
    }
}

impl RedisStores {
    /// Cluster settle (see the module docs): version, open messages, conditional removal.
    async fn settle_across_slots(&self, session_key: &str) -> Result<bool, StoreError> {
        let version: Option<String> = self
            .conn()
            .hget(self.keys.due_versions(), session_key)
            .await
            .map_err(StoreError::unavailable("settle due session"))?;
        let open: u64 = self
            .conn()
            .zcard(self.keys.open_messages(session_key))
            .await
            .map_err(StoreError::unavailable("settle due session"))?;
        if open > 0 {
            return Ok(false);
        }
        let removed: i64 = self
            .scripts
            .settle_versioned
            .key(self.keys.due())
            .key(self.keys.due_routes())
            .key(self.keys.due_versions())
            .arg(session_key)
            .arg(version.as_deref().unwrap_or("0"))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("settle due session"))?;
        Ok(removed == 1)
    }
}
