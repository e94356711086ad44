//! [`MessageStore`] on Redis: one hash per message (`{prefix}:msg:{id}`) and a per-session sorted set of open
//! message ids scored by arrival (`{prefix}:open:{session_key}`).

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStores;
use crate::models::time::{format_timestamp, now_utc, parse_timestamp};
use crate::mutex::Lease;
use crate::stores::settings::millis;
use crate::stores::{InboxEntry, MessageStatus, MessageStore, StoreError, StoredMessage};

fn to_fields(message: &StoredMessage) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", message.id.to_string()),
        ("session_key", message.session_key.clone()),
        ("channel", message.channel.clone()),
        ("content", message.content.clone()),
        ("received_at", format_timestamp(&message.received_at)),
        ("status", message.status.as_str().to_owned()),
        ("updated_at", format_timestamp(&message.updated_at)),
    ];
    if let Some(turn_id) = message.status.turn_id() {
        fields.push(("turn_id", turn_id.to_string()));
    }
    if let MessageStatus::Failed { reason, .. } = &message.status {
        fields.push(("reason", reason.clone()));
    }
    fields
}

fn from_fields(mut fields: HashMap<String, String>) -> Result<StoredMessage, StoreError> {
    let mut take = |name: &'static str| {
        fields
            .remove(name)
            .ok_or_else(|| StoreError::corrupt("message", format!("missing field `{name}`")))
    };
    let id = take("id")?;
    let id: Uuid = id
        .parse()
        .map_err(|err| StoreError::corrupt("message", format!("id `{id}`: {err}")))?;
    let session_key = take("session_key")?;
    let channel = take("channel")?;
    let content = take("content")?;
    let received_at = parse_timestamp(&take("received_at")?)
        .map_err(|err| StoreError::corrupt("message", err))?;
    let updated_at =
        parse_timestamp(&take("updated_at")?).map_err(|err| StoreError::corrupt("message", err))?;
    let status = take("status")?;
    let mut turn_id = || -> Result<Uuid, StoreError> {
        let text = take("turn_id")?;
        text.parse()
            .map_err(|err| StoreError::corrupt("message", format!("turn_id `{text}`: {err}")))
    };
    let status = match status.as_str() {
        "pending" => MessageStatus::Pending,
        "absorbed" => MessageStatus::Absorbed {
            turn_id: turn_id()?,
        },
        "processed" => MessageStatus::Processed {
            turn_id: turn_id()?,
        },
        "failed" => {
            let turn_id = turn_id()?;
            MessageStatus::Failed {
                turn_id,
                reason: fields.remove("reason").unwrap_or_default(),
            }
        }
        other => {
            return Err(StoreError::corrupt(
                "message",
                format!("unknown status `{other}`"),
            ));
        }
    };
    Ok(StoredMessage {
        id,
        session_key,
        channel,
        content,
        received_at,
        status,
        updated_at,
    })
}

impl RedisStores {
    async fn load_message(
        &self,
        session_key: &str,
        id: Uuid,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let fields: HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.message(session_key, id))
            .await
            .map_err(StoreError::unavailable("get message"))?;
        if fields.is_empty() {
            Ok(None)
        } else {
            from_fields(fields).map(Some)
        }
    }
}

impl RedisStores {
    /// Adds what the Lua `insert_message` takes: KEYS message hash, open index; ARGV ttl ms, index score, id, then
    /// the hash's fields and values (to the end of the arguments).
    fn stage_message(&self, invocation: &mut redis::ScriptInvocation<'_>, message: &StoredMessage) {
        invocation
            .key(self.keys.message(&message.session_key, message.id))
            .key(self.keys.open_messages(&message.session_key))
            .arg(millis(self.settings.message_ttl))
            .arg(message.received_at.timestamp_micros())
            .arg(message.id.to_string());
        for (name, value) in to_fields(message) {
            invocation.arg(name).arg(value);
        }
    }
}

#[async_trait]
impl MessageStore for RedisStores {
    async fn accept(
        &self,
        message: &StoredMessage,
        entry: &InboxEntry,
    ) -> Result<bool, StoreError> {
        let session_key = &message.session_key;
        let entry = serde_json::to_string(entry).map_err(StoreError::encode("inbox entry"))?;
        // Each part stages its keys and arguments in the order `scripts::accept_message` reads them; the message
        // goes last, as its hash fields run to the end of the arguments.
        let mut invocation = self.scripts.accept_message.prepare_invoke();
        self.stage_arrival(&mut invocation, session_key, message.received_at);
        invocation
            .key(self.keys.inbox(session_key))
            .arg(entry)
            .arg(millis(self.settings.inbox_ttl));
        self.stage_message(&mut invocation, message);
        let stored: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("accept message"))?;
        Ok(stored == 1)
    }

    async fn insert(&self, message: &StoredMessage) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.insert_message.prepare_invoke();
        self.stage_message(&mut invocation, message);
        let stored: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("insert message"))?;
        Ok(stored == 1)
    }

    async fn get(&self, session_key: &str, id: Uuid) -> Result<Option<StoredMessage>, StoreError> {
        self.load_message(session_key, id).await
    }

    async fn open_messages(&self, session_key: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let index = self.keys.open_messages(session_key);
        let rows: Vec<(String, HashMap<String, String>)> = self
            .scripts
            .open_messages
            .key(&index)
            .arg(self.keys.message_prefix(session_key))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("list open messages"))?;
        let mut open = Vec::with_capacity(rows.len());
        let mut vanished = Vec::new();
        for (id, fields) in rows {
            id.parse::<Uuid>().map_err(|err| {
                StoreError::corrupt("open message index", format!("`{id}`: {err}"))
            })?;
            if fields.is_empty() {
                // The message hash expired before any turn took it; drop it from the index.
                vanished.push(id);
                continue;
            }
            let message = from_fields(fields)?;
            if message.status.is_open() {
                open.push(message);
            } else {
                // Stored already closed (never the case for intake); a closed message never reopens.
                vanished.push(id);
            }
        }
        if !vanished.is_empty() {
            let _: i64 = self
                .conn()
                .zrem(&index, &vanished)
                .await
                .map_err(StoreError::unavailable("list open messages"))?;
        }
        Ok(open)
    }

    async fn absorb(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut invocation = self.scripts.absorb.key(&lease.key);
        invocation.key(lease.fence_key());
        for id in ids {
            invocation.key(self.keys.message(&lease.session_key, *id));
        }
        invocation
            .arg(&lease.token)
            .arg(lease.fence)
            .arg(turn_id.to_string())
            .arg(format_timestamp(&now_utc()));
        let reply: Vec<usize> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("absorb messages"))?;
        if reply.first() != Some(&1) {
            return Err(StoreError::StaleFence {
                session_key: lease.session_key.clone(),
                fence: lease.fence,
            });
        }
        Ok(reply[1..]
            .iter()
            .filter_map(|position| ids.get(position - 1).copied())
            .collect())
    }

    async fn release_absorbed(
        &self,
        session_key: &str,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut invocation = self.scripts.release_absorbed.prepare_invoke();
        for id in ids {
            invocation.key(self.keys.message(session_key, *id));
        }
        invocation
            .arg(turn_id.to_string())
            .arg(format_timestamp(&now_utc()));
        invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::unavailable("release absorbed messages"))
    }
}
