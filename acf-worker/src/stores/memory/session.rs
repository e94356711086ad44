//! [`SessionStateStore`] in memory: a session's state and its gap samples expire separately, as the Redis state
//! hash and gap list do: the state `session_ttl` after the latest arrival or commit, the gaps `session_ttl` after
//! the latest arrival.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStores;
use crate::models::UserCadenceStats;
use crate::stores::cadence::{gap_sample, stats_from_gaps};
use crate::stores::{SessionState, SessionStateStore, StoreError};

/// The cadence computed from the samples of a session (none once they expired).
fn cadence(gaps: Option<&std::collections::VecDeque<u64>>) -> UserCadenceStats {
    stats_from_gaps(&gaps.into_iter().flatten().copied().collect::<Vec<_>>())
}

#[async_trait]
impl SessionStateStore for MemoryStores {
    async fn get(&self, session_key: &str) -> Result<SessionState, StoreError> {
        let data = self.data();
        let state = data
            .states
            .get(session_key, data.now)
            .cloned()
            .unwrap_or_default();
        Ok(SessionState {
            cadence: cadence(data.gaps.get(session_key, data.now)),
            ..state
        })
    }

    async fn record_arrival(
        &self,
        session_key: &str,
        at: DateTime<Utc>,
    ) -> Result<UserCadenceStats, StoreError> {
        let settings = self.settings.cadence;
        let mut data = self.data();
        let (now, until) = (data.now, data.until(data.ttl.session));
        let state = data.states.refresh(session_key.to_owned(), now, until);
        let previous = state.last_message_at;
        // Arrivals can be recorded out of order; keep the latest one as the reference for the next gap.
        if previous.is_none_or(|previous| at >= previous) {
            state.last_message_at = Some(at);
        }
        if let Some(gap) = gap_sample(previous, at, &settings) {
            let gaps = data.gaps.refresh(session_key.to_owned(), now, until);
            gaps.push_back(gap);
            while gaps.len() > settings.max_samples.max(1) {
                gaps.pop_front();
            }
        } else {
            // Without a new sample the gap list's lifetime restarts only if it exists, as on Redis.
            data.gaps.expire(session_key, now, until);
        }
        Ok(cadence(data.gaps.get(session_key, now)))
    }
}
