//! Concurrency groups: at most `max_runs` holders (runs or tasks) per evaluated key.
//!
//! `GROUP_ROUND_ROBIN` queues newcomers per key (FIFO within a key; keys are independent, so a busy
//! key never delays another); `CANCEL_IN_PROGRESS` evicts the oldest holders; `CANCEL_NEWEST`
//! rejects the newcomer.

use crate::engine::model::Strategy;
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Result of trying to enter a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Holder entered.
    Admitted,
    /// Holder waits its turn.
    Queued,
    /// Holder must be cancelled (`CANCEL_NEWEST`).
    Rejected,
    /// Holder entered after these older holders were evicted (`CANCEL_IN_PROGRESS`); cancel them.
    Evicted(Vec<Uuid>),
}

/// A gate a holder must pass: evaluated key plus its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    /// `"<scope>#<index>#<group key>"`.
    pub key: String,
    /// Holders allowed at once.
    pub max_runs: i32,
    /// Behaviour at the limit.
    pub strategy: Strategy,
}

#[derive(Debug)]
struct Group {
    max: usize,
    active: Vec<Uuid>,
    waiting: VecDeque<Uuid>,
}

/// All gates, keyed by `"<scope>#<index>#<group key>"`.
#[derive(Debug, Default)]
pub struct Gates {
    groups: HashMap<String, Group>,
}

impl Gates {
    /// Tries to enter `gate`.
    pub fn enter(&mut self, gate: &str, max_runs: i32, strategy: Strategy, holder: Uuid) -> Admit {
        let max = usize::try_from(max_runs.max(1)).unwrap_or(1);
        let group = self.groups.entry(gate.to_owned()).or_insert_with(|| Group {
            max,
            active: Vec::new(),
            waiting: VecDeque::new(),
        });
        if group.active.contains(&holder) {
            return Admit::Admitted;
        }
        if group.active.len() < group.max && group.waiting.is_empty() {
            group.active.push(holder);
            return Admit::Admitted;
        }
        match strategy {
            Strategy::GroupRoundRobin => {
                if !group.waiting.contains(&holder) {
                    group.waiting.push_back(holder);
                }
                Admit::Queued
            }
            Strategy::CancelNewest => Admit::Rejected,
            Strategy::CancelInProgress => {
                let excess = (group.active.len() + 1).saturating_sub(group.max);
                let evicted: Vec<Uuid> = group
                    .active
                    .drain(..excess.min(group.active.len()))
                    .collect();
                group.active.push(holder);
                Admit::Evicted(evicted)
            }
        }
    }

    /// Leaves `gate`; returns the waiting holders promoted into the freed places (already active).
    pub fn leave(&mut self, gate: &str, holder: Uuid) -> Vec<Uuid> {
        let Some(group) = self.groups.get_mut(gate) else {
            return Vec::new();
        };
        group.active.retain(|h| *h != holder);
        group.waiting.retain(|h| *h != holder);
        let mut promoted = Vec::new();
        while group.active.len() < group.max {
            let Some(next) = group.waiting.pop_front() else {
                break;
            };
            group.active.push(next);
            promoted.push(next);
        }
        if group.active.is_empty() && group.waiting.is_empty() {
            self.groups.remove(gate);
        }
        promoted
    }

    /// Holders currently inside `gate`.
    pub fn active(&self, gate: &str) -> usize {
        self.groups.get(gate).map_or(0, |g| g.active.len())
    }

    /// Holders waiting at `gate`.
    pub fn waiting(&self, gate: &str) -> usize {
        self.groups.get(gate).map_or(0, |g| g.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn round_robin_serializes_per_key_and_keeps_keys_independent() {
        let mut g = Gates::default();
        let r = ids(4);
        assert_eq!(
            g.enter("w#0#a", 1, Strategy::GroupRoundRobin, r[0]),
            Admit::Admitted
        );
        assert_eq!(
            g.enter("w#0#a", 1, Strategy::GroupRoundRobin, r[1]),
            Admit::Queued
        );
        assert_eq!(
            g.enter("w#0#a", 1, Strategy::GroupRoundRobin, r[2]),
            Admit::Queued
        );
        assert_eq!(
            g.enter("w#0#b", 1, Strategy::GroupRoundRobin, r[3]),
            Admit::Admitted
        );
        assert_eq!(g.leave("w#0#a", r[0]), vec![r[1]]);
        assert_eq!(g.active("w#0#a"), 1);
        assert_eq!(g.waiting("w#0#a"), 1);
        assert_eq!(g.leave("w#0#a", r[1]), vec![r[2]]);
        assert_eq!(g.leave("w#0#a", r[2]), Vec::<Uuid>::new());
        assert_eq!(g.active("w#0#a"), 0);
    }

    #[test]
    fn cancel_newest_rejects_at_the_limit() {
        let mut g = Gates::default();
        let r = ids(3);
        assert_eq!(
            g.enter("k", 2, Strategy::CancelNewest, r[0]),
            Admit::Admitted
        );
        assert_eq!(
            g.enter("k", 2, Strategy::CancelNewest, r[1]),
            Admit::Admitted
        );
        assert_eq!(
            g.enter("k", 2, Strategy::CancelNewest, r[2]),
            Admit::Rejected
        );
        assert_eq!(g.active("k"), 2);
    }

    #[test]
    fn cancel_in_progress_evicts_the_oldest() {
        let mut g = Gates::default();
        let r = ids(3);
        assert_eq!(
            g.enter("k", 1, Strategy::CancelInProgress, r[0]),
            Admit::Admitted
        );
        assert_eq!(
            g.enter("k", 1, Strategy::CancelInProgress, r[1]),
            Admit::Evicted(vec![r[0]])
        );
        // The evicted holder leaving later is harmless.
        assert!(g.leave("k", r[0]).is_empty());
        assert_eq!(g.active("k"), 1);
        assert_eq!(
            g.enter("k", 1, Strategy::CancelInProgress, r[2]),
            Admit::Evicted(vec![r[1]])
        );
    }

    #[test]
    fn leaving_while_waiting_drops_the_place_in_line() {
        let mut g = Gates::default();
        let r = ids(3);
        g.enter("k", 1, Strategy::GroupRoundRobin, r[0]);
        g.enter("k", 1, Strategy::GroupRoundRobin, r[1]);
        g.enter("k", 1, Strategy::GroupRoundRobin, r[2]);
        assert!(g.leave("k", r[1]).is_empty());
        assert_eq!(g.leave("k", r[0]), vec![r[2]]);
    }
}
