//! [`PendingIndex`] in memory.

use async_trait::async_trait;

use super::MemoryStores;
use crate::stores::{DueSession, PendingIndex, StoreError};

#[async_trait]
impl PendingIndex for MemoryStores {
    async fn mark_due(
        &self,
        session_key: &str,
        route: &str,
        due_at_ms: i64,
        keep_earlier: bool,
    ) -> Result<(), StoreError> {
        let mut data = self.data();
        let entry = data
            .due
            .entry(session_key.to_owned())
            .or_insert((due_at_ms, String::new()));
        entry.0 = if keep_earlier {
            entry.0.min(due_at_ms)
        } else {
            due_at_ms
        };
        route.clone_into(&mut entry.1);
        Ok(())
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        next_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueSession>, StoreError> {
        let mut data = self.data();
        let mut due: Vec<(i64, String)> = data
            .due
            .iter()
            .filter(|(_, (at, _))| *at <= now_ms)
            .map(|(session, (at, _))| (*at, session.clone()))
            .collect();
        due.sort();
        due.truncate(limit);
        Ok(due
            .into_iter()
            .filter_map(|(_, session)| {
                let entry = data.due.get_mut(&session)?;
                entry.0 = next_ms;
                Some(DueSession {
                    route: (!entry.1.is_empty()).then(|| entry.1.clone()),
                    session_key: session,
                })
            })
            .collect())
    }

    async fn settle(&self, session_key: &str) -> Result<bool, StoreError> {
        let mut data = self.data();
        let now = data.now;
        let open = data.open.get(session_key, now).is_some_and(|ids| {
            ids.iter().any(|id| {
                data.messages
                    .get(id, now)
                    .is_some_and(|m| m.status.is_open())
            })
        });
        Ok(!open && data.due.remove(session_key).is_some())
    }

    async fn due_at(&self, session_key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.data().due.get(session_key).map(|(at, _)| *at))
    }

    async fn epoch(&self, candidate: &str) -> Result<String, StoreError> {
        Ok(self
            .data()
            .epoch
            .get_or_insert_with(|| candidate.to_owned())
            .clone())
    }
}
