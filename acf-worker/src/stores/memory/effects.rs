//! [`SideEffectLog`] and [`EventStream`] in memory.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStores;
use crate::events::AcfEvent;
use crate::models::SideEffect;
use crate::mutex::Lease;
use crate::stores::{EventStream, SideEffectLog, StoreError};

#[async_trait]
impl SideEffectLog for MemoryStores {
    async fn record_effect(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        effect: &SideEffect,
    ) -> Result<(), StoreError> {
        self.fenced(lease, |data| {
            let (now, until) = (data.now, data.until(data.ttl.record));
            data.effects
                .refresh(turn_id, now, until)
                .push(effect.clone());
        })
    }

    async fn effects(
        &self,
        _session_key: &str,
        turn_id: Uuid,
    ) -> Result<Vec<SideEffect>, StoreError> {
        let data = self.data();
        Ok(data
            .effects
            .get(&turn_id, data.now)
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl EventStream for MemoryStores {
    async fn append_event(&self, event: &AcfEvent, max_len: u64) -> Result<String, StoreError> {
        let mut data = self.data();
        data.events_seq += 1;
        let id = format!("{}-0", data.events_seq);
        data.events.push_back((id.clone(), event.clone()));
        let keep = usize::try_from(max_len).unwrap_or(usize::MAX);
        while data.events.len() > keep {
            data.events.pop_front();
        }
        Ok(id)
    }

    async fn read_events_after(
        &self,
        after_id: &str,
        count: usize,
    ) -> Result<Vec<(String, AcfEvent)>, StoreError> {
        let after = sequence(after_id)?;
        Ok(self
            .data()
            .events
            .iter()
            .filter(|(id, _)| sequence(id).is_ok_and(|seq| seq > after))
            .take(count)
            .cloned()
            .collect())
    }
}

/// The sequence number of a memory stream id (`"{seq}-0"`, or `"0"`).
fn sequence(id: &str) -> Result<u64, StoreError> {
    id.split('-')
        .next()
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| StoreError::corrupt("event stream id", format!("`{id}` is not `<n>-0`")))
}
