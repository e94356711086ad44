//! Learning a user's typing cadence from the gaps between consecutive messages.

use chrono::{DateTime, Utc};

use super::settings::CadenceSettings;
use crate::models::UserCadenceStats;

/// The gap to sample between the previous and the new arrival, if it says something about typing rhythm:
/// out-of-order arrivals and pauses longer than `max_gap` are not sampled.
pub(crate) fn gap_sample(
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    settings: &CadenceSettings,
) -> Option<u64> {
    let gap = now.signed_duration_since(previous?).num_milliseconds();
    let gap = u64::try_from(gap).ok()?;
    (gap <= u64::try_from(settings.max_gap.as_millis()).unwrap_or(u64::MAX)).then_some(gap)
}

/// p50 and p95 (nearest rank) of the sampled gaps.
pub(crate) fn stats_from_gaps(gaps: &[u64]) -> UserCadenceStats {
    if gaps.is_empty() {
        return UserCadenceStats::default();
    }
    let mut sorted = gaps.to_vec();
    sorted.sort_unstable();
    UserCadenceStats {
        inter_message_p50_ms: nearest_rank(&sorted, 50),
        inter_message_p95_ms: nearest_rank(&sorted, 95),
        sample_count: sorted.len() as u64,
    }
}

fn nearest_rank(sorted: &[u64], percentile: usize) -> u64 {
    // Nearest-rank: the smallest value with at least `percentile`% of the samples at or below it.
    let rank = (percentile * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_use_nearest_rank() {
        let gaps: Vec<u64> = (1..=20).map(|i| i * 100).collect();
        let stats = stats_from_gaps(&gaps);
        assert_eq!(stats.inter_message_p50_ms, 1000);
        assert_eq!(stats.inter_message_p95_ms, 1900);
        assert_eq!(stats.sample_count, 20);
        assert_eq!(stats_from_gaps(&[700]).inter_message_p95_ms, 700);
        assert_eq!(stats_from_gaps(&[]), UserCadenceStats::default());
    }

    #[test]
    fn long_pauses_and_reordering_are_not_sampled() {
        let settings = CadenceSettings {
            max_samples: 10,
            max_gap: Duration::from_secs(30),
        };
        let t0 = DateTime::parse_from_rfc3339("2025-01-15T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = |ms| t0 + chrono::Duration::milliseconds(ms);
        assert_eq!(gap_sample(None, t0, &settings), None);
        assert_eq!(gap_sample(Some(t0), later(1_250), &settings), Some(1_250));
        assert_eq!(gap_sample(Some(t0), later(30_000), &settings), Some(30_000));
        assert_eq!(gap_sample(Some(t0), later(30_001), &settings), None);
        assert_eq!(gap_sample(Some(later(10)), t0, &settings), None);
    }
}
