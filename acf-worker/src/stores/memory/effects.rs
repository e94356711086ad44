//! [`SideEffectLog`] in memory.

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryStores;
use crate::models::SideEffect;
use crate::mutex::Lease;
use crate::stores::{SideEffectLog, StoreError};

#[async_trait]
impl SideEffectLog for MemoryStores {
    async fn record_effect(
        &self,
        lease: &Lease,
        turn_id: Uuid,
        effect: &SideEffect,
    ) -> Result<(), StoreError> {
        self.fenced(lease, |data| {
            data.effects
                .entry(turn_id)
                .or_default()
                .push(effect.clone());
        })
    }

    async fn effects(&self, turn_id: Uuid) -> Result<Vec<SideEffect>, StoreError> {
        Ok(self
            .data()
            .effects
            .get(&turn_id)
            .cloned()
            .unwrap_or_default())
    }
}
