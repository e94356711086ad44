//! Deadline bookkeeping. A background loop calls [`State::tick`](crate::engine::state::State) every
//! few milliseconds; entries carry the task generation they were armed for, so a timer whose task
//! has moved on is simply ignored when it fires (no cancellation bookkeeping needed).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;
use uuid::Uuid;

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The running attempt exceeded its execution timeout.
    ExecTimeout {
        /// Task.
        task: Uuid,
        /// Generation armed for.
        generation: u64,
    },
    /// The task was not assigned within its schedule timeout.
    ScheduleTimeout {
        /// Task.
        task: Uuid,
        /// Generation armed for.
        generation: u64,
    },
    /// A retry backoff ended.
    Backoff {
        /// Task.
        task: Uuid,
        /// Generation armed for.
        generation: u64,
    },
    /// A sleep condition elapsed.
    Sleep {
        /// Wait.
        wait: Uuid,
        /// Condition index in the wait.
        cond: usize,
    },
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest deadline on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Timers {
    /// Arms a timer.
    pub(crate) fn arm(&mut self, at: Instant, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            kind,
        });
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<TimerKind> {
        let mut out = Vec::new();
        while self.heap.peek().is_some_and(|e| e.at <= now) {
            if let Some(e) = self.heap.pop() {
                out.push(e.kind);
            }
        }
        out
    }

    /// The next deadline, if any.
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Armed timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// No timers armed.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        let now = Instant::now();
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        t.arm(
            now + Duration::from_millis(30),
            TimerKind::Backoff {
                task: a,
                generation: 1,
            },
        );
        t.arm(
            now + Duration::from_millis(10),
            TimerKind::Backoff {
                task: b,
                generation: 2,
            },
        );
        t.arm(
            now + Duration::from_secs(60),
            TimerKind::Sleep { wait: a, cond: 0 },
        );
        assert!(t.due(now).is_empty());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        let fired = t.due(now + Duration::from_millis(40));
        assert_eq!(
            fired,
            vec![
                TimerKind::Backoff {
                    task: b,
                    generation: 2
                },
                TimerKind::Backoff {
                    task: a,
                    generation: 1
                }
            ]
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn equal_deadlines_keep_arming_order() {
        let mut t = Timers::default();
        let now = Instant::now();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            t.arm(
                now,
                TimerKind::ScheduleTimeout {
                    task: *id,
                    generation: 0,
                },
            );
        }
        let fired: Vec<Uuid> = t
            .due(now)
            .into_iter()
            .map(|k| match k {
                TimerKind::ScheduleTimeout { task, .. } => task,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(fired, ids);
        assert!(t.is_empty());
    }
}
