//! [`SessionStateStore`] in memory.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStores;
use crate::models::UserCadenceStats;
use crate::stores::cadence::{gap_sample, stats_from_gaps};
use crate::stores::{SessionState, SessionStateStore, StoreError};

/// A session's state plus the raw gap samples its cadence is computed from.
#[derive(Debug, Default)]
pub(super) struct SessionData {
    pub(super) state: SessionState,
    gaps: VecDeque<u64>,
}

impl SessionData {
    fn cadence(&self) -> UserCadenceStats {
        stats_from_gaps(&self.gaps.iter().copied().collect::<Vec<_>>())
    }
}

#[async_trait]
impl SessionStateStore for MemoryStores {
    async fn get(&self, session_key: &str) -> Result<SessionState, StoreError> {
        let data = self.data();
        Ok(data
            .sessions
            .get(session_key)
            .map(|session| SessionState {
                cadence: session.cadence(),
                ..session.state.clone()
            })
            .unwrap_or_default())
    }

    async fn record_arrival(
        &self,
        session_key: &str,
        at: DateTime<Utc>,
    ) -> Result<UserCadenceStats, StoreError> {
        let cadence = self.settings.cadence;
        let mut data = self.data();
        let session = data.sessions.entry(session_key.to_owned()).or_default();
        let previous = session.state.last_message_at;
        if let Some(gap) = gap_sample(previous, at, &cadence) {
            session.gaps.push_back(gap);
            while session.gaps.len() > cadence.max_samples.max(1) {
                session.gaps.pop_front();
            }
        }
        // Arrivals can be recorded out of order; keep the latest one as the reference for the next gap.
        if previous.is_none_or(|previous| at >= previous) {
            session.state.last_message_at = Some(at);
        }
        Ok(session.cadence())
    }
}
