//! [`SessionStateStore`] on Redis: a hash per session (`{prefix}:state:{session_key}`: `turn_count`,
//! `last_turn_id`, `last_hint` JSON, `last_message_at`) and a capped list of recent gaps (`{prefix}:gaps:{...}`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RedisStores;
use crate::models::UserCadenceStats;
use crate::models::time::{format_timestamp, parse_timestamp};
use crate::stores::cadence::stats_from_gaps;
use crate::stores::settings::millis;
use crate::stores::{SessionState, SessionStateStore, StoreError};

fn parse_state(
    mut fields: HashMap<String, String>,
    gaps: &[u64],
) -> Result<SessionState, StoreError> {
    let turn_count = match fields.remove("turn_count") {
        Some(text) => text
            .parse()
            .map_err(|err| StoreError::corrupt("session state", format!("turn_count: {err}")))?,
        None => 0,
    };
    let last_turn_id = fields
        .remove("last_turn_id")
        .map(|text| {
            text.parse()
                .map_err(|err| StoreError::corrupt("session state", format!("last_turn_id: {err}")))
        })
        .transpose()?;
    let last_hint = fields
        .remove("last_hint")
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|err| StoreError::corrupt("session state", format!("last_hint: {err}")))
        })
        .transpose()?;
    let last_message_at = fields
        .remove("last_message_at")
        .map(|text| parse_timestamp(&text).map_err(|err| StoreError::corrupt("session state", err)))
        .transpose()?;
    Ok(SessionState {
        turn_count,
        last_turn_id,
        last_hint,
        cadence: stats_from_gaps(gaps),
        last_message_at,
    })
}

#[async_trait]
impl SessionStateStore for RedisStores {
    async fn get(&self, session_key: &str) -> Result<SessionState, StoreError> {
        let (fields, gaps): (HashMap<String, String>, Vec<u64>) = redis::pipe()
            .hgetall(self.keys.state(session_key))
            .lrange(self.keys.gaps(session_key), 0, -1)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("get session state"))?;
        parse_state(fields, &gaps)
    }

    async fn record_arrival(
        &self,
        session_key: &str,
        at: DateTime<Utc>,
    ) -> Result<UserCadenceStats, StoreError> {
        let mut invocation = self.scripts.record_arrival.prepare_invoke();
        self.stage_arrival(&mut invocation, session_key, at);
        let gaps: Vec<u64> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("record arrival"))?;
        Ok(stats_from_gaps(&gaps))
    }
}

impl RedisStores {
    /// Adds what the Lua `record_arrival` takes: KEYS state hash, gap list; ARGV arrival ms, max gap ms, max
    /// samples, session ttl ms, arrival text.
    pub(super) fn stage_arrival(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        session_key: &str,
        at: DateTime<Utc>,
    ) {
        let cadence = &self.settings.cadence;
        invocation
            .key(self.keys.state(session_key))
            .key(self.keys.gaps(session_key))
            .arg(at.timestamp_millis())
            .arg(millis(cadence.max_gap))
            .arg(cadence.max_samples.max(1))
            .arg(millis(self.settings.session_ttl))
            .arg(format_timestamp(&at));
    }
}
