//! [`AuditStore`] and [`ResponseSink`] on Redis. A turn record is a hash (`{prefix}:turn:{turn_id}`: `record`
//! JSON and the `turn_number` the commit assigned); a session's turns are a sorted set scored by turn number
//! (`{prefix}:turns:{session_key}`). A failure record is a JSON string (`{prefix}:failure:{turn_id}`); a session's
//! failures are a sorted set of turn ids scored by `failed_at` in milliseconds (`{prefix}:failures:{session_key}`).
//! Both kinds of record and their indexes expire after the record TTL. Responses go to the stream
//! `{prefix}:{response_stream}`. (Key names on a Redis Cluster: see `Keys` in `stores::settings`.)

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStores;
use crate::stores::settings::millis;
use crate::stores::stream_fields;
use crate::stores::{
    AuditStore, FailureRecord, ResponseEntry, ResponseSink, StoreError, TurnRecord,
};

fn parse_failure(json: &str) -> Result<FailureRecord, StoreError> {
    serde_json::from_str(json).map_err(|err| StoreError::corrupt("failure record", err))
}

fn parse_record(mut fields: HashMap<String, String>) -> Result<Option<TurnRecord>, StoreError> {
    let Some(json) = fields.remove("record") else {
        return Ok(None);
    };
    let mut record: TurnRecord =
        serde_json::from_str(&json).map_err(|err| StoreError::corrupt("turn record", err))?;
    if let Some(number) = fields.remove("turn_number") {
        record.turn_number = number
            .parse()
            .map_err(|err| StoreError::corrupt("turn record", format!("turn_number: {err}")))?;
    }
    Ok(Some(record))
}

/// `XRANGE` rows: `[id, [field, value, ...]]`.
type StreamRows = Vec<(String, Vec<String>)>;

impl RedisStores {
    /// Up to `count` entries of the stream `key` with ids greater than `after_id` (`"0"` reads from the start),
    /// oldest first, each as its id and fields.
    pub(super) async fn read_stream(
        &self,
        key: &str,
        after_id: &str,
        count: usize,
        operation: &'static str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        // `(id` makes the start exclusive (Redis 6.2+); "0" is not a valid exclusive start, and means "from the start".
        let start = if after_id == "0" || after_id == "0-0" {
            "-".to_owned()
        } else {
            format!("({after_id}")
        };
        let rows: StreamRows = redis::cmd("XRANGE")
            .arg(key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable(operation))?;
        Ok(rows
            .into_iter()
            .map(|(id, flat)| {
                let fields = flat
                    .chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                (id, fields)
            })
            .collect())
    }
}

#[async_trait]
impl AuditStore for RedisStores {
    async fn get_turn(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let fields: HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.turn(session_key, turn_id))
            .await
            .map_err(StoreError::unavailable("get turn record"))?;
        parse_record(fields)
    }

    async fn session_turns(&self, session_key: &str) -> Result<Vec<TurnRecord>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrange(self.keys.session_turns(session_key), 0, -1)
            .await
            .map_err(StoreError::unavailable("list session turns"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            let id: Uuid = id.parse().map_err(|err| {
                StoreError::corrupt("session turn index", format!("`{id}`: {err}"))
            })?;
            pipe.hgetall(self.keys.turn(session_key, id));
        }
        let rows: Vec<HashMap<String, String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("list session turns"))?;
        let mut records = Vec::with_capacity(rows.len());
        for fields in rows {
            records.extend(parse_record(fields)?);
        }
        Ok(records)
    }

    async fn record_failure(&self, failure: &FailureRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(failure).map_err(StoreError::encode("failure record"))?;
        let ttl_ms = millis(self.settings.record_ttl);
        let index = self.keys.session_failures(&failure.session_key);
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.keys.failure(&failure.session_key, failure.turn_id))
            .arg(json)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .zadd(
                &index,
                failure.turn_id.to_string(),
                failure.failed_at.timestamp_millis(),
            )
            .ignore()
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(ttl_ms)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("record failure"))?;
        Ok(())
    }

    async fn get_failure(
        &self,
        session_key: &str,
        turn_id: Uuid,
    ) -> Result<Option<FailureRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .get(self.keys.failure(session_key, turn_id))
            .await
            .map_err(StoreError::unavailable("get failure record"))?;
        json.as_deref().map(parse_failure).transpose()
    }

    async fn session_failures(&self, session_key: &str) -> Result<Vec<FailureRecord>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrange(self.keys.session_failures(session_key), 0, -1)
            .await
            .map_err(StoreError::unavailable("list session failures"))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            let id: Uuid = id.parse().map_err(|err| {
                StoreError::corrupt("session failure index", format!("`{id}`: {err}"))
            })?;
            pipe.get(self.keys.failure(session_key, id));
        }
        let rows: Vec<Option<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("list session failures"))?;
        // A record that expired before its index entry is skipped.
        rows.iter()
            .flatten()
            .map(|json| parse_failure(json))
            .collect()
    }
}

#[async_trait]
impl ResponseSink for RedisStores {
    async fn publish(&self, entry: &ResponseEntry) -> Result<String, StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(self.keys.response_stream())
            .arg("MAXLEN")
            .arg("~")
            .arg(self.settings.response_stream_max_len)
            .arg("*");
        for (name, value) in stream_fields::all_fields(entry)? {
            cmd.arg(name).arg(value);
        }
        cmd.query_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("publish response"))
    }

    async fn read_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, ResponseEntry)>, StoreError> {
        let key = self.keys.response_stream();
        let rows = self
            .read_stream(key, after_id, count, "read responses")
            .await?;
        rows.into_iter()
            .map(|(id, fields)| Ok((id, stream_fields::parse(&fields)?)))
            .collect()
    }
}
