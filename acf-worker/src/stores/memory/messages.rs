//! [`MessageStore`] in memory.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStores;
use crate::models::time::now_utc;
use crate::mutex::Lease;
use crate::stores::{
    InboxEntry, MessageStatus, MessageStore, SessionInbox, SessionStateStore, StoreError,
    StoredMessage,
};

#[async_trait]
impl MessageStore for MemoryStores {
    async fn accept(
        &self,
        message: &StoredMessage,
        entry: &InboxEntry,
    ) -> Result<bool, StoreError> {
        if !self.insert(message).await? {
            return Ok(false);
        }
        self.record_arrival(&message.session_key, message.received_at)
            .await?;
        self.push(&message.session_key, entry).await?;
        Ok(true)
    }

    async fn insert(&self, message: &StoredMessage) -> Result<bool, StoreError> {
        let mut guard = self.data();
        let data = &mut *guard;
        let (now, until) = (data.now, data.until(data.ttl.message));
        if data.messages.contains_key(&message.id, now) {
            return Ok(false);
        }
        data.messages.insert(message.id, message.clone(), until);
        if message.status.is_open() {
            let open = data.open.refresh(message.session_key.clone(), now, until);
            open.push(message.id);
            // Same order as Redis's sorted set: arrival time, then id.
            let messages = &data.messages;
            open.sort_by_key(|id| (messages.get(id, now).map(|m| m.received_at), *id));
        }
        Ok(true)
    }

    async fn get(&self, _session_key: &str, id: Uuid) -> Result<Option<StoredMessage>, StoreError> {
        let data = self.data();
        Ok(data.messages.get(&id, data.now).cloned())
    }

    async fn open_messages(&self, session_key: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let data = self.data();
        let ids = data
            .open
            .get(session_key, data.now)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(ids
            .iter()
            .filter_map(|id| data.messages.get(id, data.now))
            .filter(|m| m.status.is_open())
            .cloned()
            .collect())
    }

    async fn absorb(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        let now = now_utc();
        self.fenced(lease, |data| {
            let mut absorbed = Vec::new();
            for id in ids {
                if let Some(message) = data
                    .messages
                    .get_mut(id, data.now)
                    .filter(|m| m.status.is_open())
                {
                    message.status = MessageStatus::Absorbed { turn_id };
                    message.updated_at = now;
                    absorbed.push(*id);
                }
            }
            absorbed
        })
    }

    async fn release_absorbed(
        &self,
        _session_key: &str,
        turn_id: Uuid,
        ids: &[Uuid],
    ) -> Result<usize, StoreError> {
        let updated_at = now_utc();
        let mut data = self.data();
        let now = data.now;
        let mut released = 0;
        for id in ids {
            if let Some(message) = data.messages.get_mut(id, now)
                && message.status == (MessageStatus::Absorbed { turn_id })
            {
                message.status = MessageStatus::Pending;
                message.updated_at = updated_at;
                released += 1;
            }
        }
        Ok(released)
    }
}
