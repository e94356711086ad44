//! [`SideEffectLog`] on Redis: one list of JSON side effects per turn (`{prefix}:turn_effects:{turn_id}`, on a
//! cluster `{prefix}:turn_effects:{{session_key}}:{turn_id}` in the session's slot; expiring
//! after the record TTL), appended under the lease's fence. [`EventStream`]: the stream `{prefix}:events`.

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStores;
use crate::events::AcfEvent;
use crate::models::SideEffect;
use crate::mutex::{FENCE_GUARD_LUA, Lease};
use crate::stores::settings::millis;
use crate::stores::stream_fields;
use crate::stores::{EventStream, SideEffectLog, StoreError};

/// KEYS: lock, fence, effects list. ARGV: token, fence, effect JSON, ttl ms. Returns 1 when appended, 0 for a
/// stale lease.
pub(super) fn record_effect() -> String {
    format!(
        "{FENCE_GUARD_LUA}{}",
        r"
if not fence_is_current() then
  return 0
end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 1
"
    )
}

#[async_trait]
impl SideEffectLog for RedisStores {
    async fn record_effect(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        effect: &SideEffect,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(effect).map_err(StoreError::encode("side effect"))?;
        let appended: i64 = self
            .scripts
            .record_effect
            .key(&lease.key)
            .key(lease.fence_key())
            .key(self.keys.turn_effects(&lease.session_key, turn_id))
            .arg(&lease.token)
            .arg(lease.fence)
            .arg(json)
            .arg(millis(self.settings.record_ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("record side effect"))?;
        if appended == 1 {
            Ok(())
        } else {
            Err(StoreError::StaleFence {
                session_key: lease.session_key.clone(),
                fence: lease.fence,
            })
        }
    }

    async fn effects(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Vec<SideEffect>, StoreError> {
        let raw: Vec<String> = self
            .conn()
            .lrange(self.keys.turn_effects(session_key, turn_id), 0, -1)
            .await
            .map_err(StoreError::unavailable("read side effects"))?;
        raw.iter()
            .map(|json| {
                serde_json::from_str(json).map_err(|err| StoreError::corrupt("side effect", err))
            })
            .collect()
    }
}

#[async_trait]
impl EventStream for RedisStores {
    async fn append_event(&self, event: &AcfEvent, max_len: u64) -> Result<String, StoreError> {
        let mut cmd = redis::cmd("XADD");
        // Exact trimming: the stream is a bounded window readers can rely on, and events are small.
        cmd.arg(self.keys.events_stream())
            .arg("MAXLEN")
            .arg(max_len)
            .arg("*");
        for (name, value) in stream_fields::event_fields(event)? {
            cmd.arg(name).arg(value);
        }
        cmd.query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("append event"))
    }

    async fn read_events_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, AcfEvent)>, StoreError> {
        let key = self.keys.events_stream();
        let rows = self
            .read_stream(&key, after_id, count, "read events")
            .await?;
        rows.into_iter()
            .map(|(id, fields)| Ok((id, stream_fields::parse_event(&fields)?)))
            .collect()
    }
}
