//! Concurrency groups: at most `max_runs` holders (runs or tasks) per evaluated key, decided as
//! Hatchet's in-memory concurrency index decides them.
//!
//! Every change to a group (a holder arrives or leaves) re-runs the strategy's decision over the
//! group: free places are filled from the waiting line in the strategy's order, and the strategy
//! says what happens to the holders that do not fit:
//! * `GROUP_ROUND_ROBIN` leaves them waiting (priority first, then oldest);
//! * `CANCEL_NEWEST` cancels them (running holders are never touched);
//! * `CANCEL_IN_PROGRESS` ranks newer (and higher-priority) holders first, so a newcomer evicts
//!   the oldest running holder;
//! * `CANCEL_QUEUED_EXCEPT_NEWEST` / `CANCEL_QUEUED_EXCEPT_OLDEST` keep at most `max_runs` holders
//!   waiting (the newest, or the oldest, by arrival; priority is not considered) and cancel the
//!   rest.
//!
//! The limit of a group is the one carried by its newest arrival, so a `max_runs_expression` (or a
//! re-registered tenant-scoped definition) takes effect with the next holder; a lowered limit lets
//! running holders finish, except under `CANCEL_IN_PROGRESS`, which cancels the excess. A limit of
//! 0 holds the group until a newer holder raises it.

use crate::engine::model::{ConcurrencyDef, Strategy, WorkflowDef};
use crate::engine::state::State;
use crate::engine::validation::ValidationError;
use std::cmp::{Ordering, Reverse};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// A gate a holder must pass: evaluated key plus its limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GateSpec {
    /// `"<scope>#<index>#<group key>"`, or `"tenant:<name>#<group key>"` for tenant-scoped limits.
    pub(crate) key: String,
    /// Holders allowed at once (evaluated from `max_runs_expression` when there is one).
    pub(crate) max_runs: i32,
    /// Behaviour at the limit.
    pub(crate) strategy: Strategy,
}

/// Who wants to pass a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Run id (run-level gates) or task id (task-level gates).
    pub(crate) id: Uuid,
    /// Run priority 1..3 (higher first).
    pub(crate) priority: i32,
}

/// What one change to a group decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Holders that entered (moved from the waiting line to running), in order.
    pub(crate) filled: Vec<Uuid>,
    /// Holders removed from the group that must be cancelled (evicted or dropped from the line).
    pub(crate) cancelled: Vec<Uuid>,
}

impl Decision {
    /// Whether `holder` entered.
    pub(crate) fn filled(&self, holder: Uuid) -> bool {
        self.filled.contains(&holder)
    }

    /// Whether `holder` must be cancelled.
    pub(crate) fn cancelled(&self, holder: Uuid) -> bool {
        self.cancelled.contains(&holder)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    id: Uuid,
    priority: i32,
    seq: u64,
}

#[derive(Debug)]
struct Group {
    max: i32,
    strategy: Strategy,
    running: Vec<Slot>,
    queued: Vec<Slot>,
}

/// "Better first" order of a strategy (Hatchet's comparators).
fn compare(strategy: Strategy, a: &Slot, b: &Slot) -> Ordering {
    match strategy {
        Strategy::CancelInProgress => {
            (Reverse(a.priority), Reverse(a.seq)).cmp(&(Reverse(b.priority), Reverse(b.seq)))
        }
        Strategy::CancelQueuedExceptNewest | Strategy::CancelQueuedExceptOldest => {
            a.seq.cmp(&b.seq)
        }
        Strategy::GroupRoundRobin | Strategy::CancelNewest => {
            (Reverse(a.priority), a.seq).cmp(&(Reverse(b.priority), b.seq))
        }
    }
}

impl Group {
    fn free(&self) -> usize {
        usize::try_from(self.max.max(0))
            .unwrap_or(0)
            .saturating_sub(self.running.len())
    }

    fn fill(&mut self, n: usize, decision: &mut Decision) {
        let taken: Vec<Slot> = self.queued.drain(..n.min(self.queued.len())).collect();
        for slot in taken {
            decision.filled.push(slot.id);
            self.running.push(slot);
        }
    }

    fn decide(&mut self) -> Decision {
        let strategy = self.strategy;
        self.queued.sort_by(|a, b| compare(strategy, a, b));
        let mut decision = Decision::default();
        let max = usize::try_from(self.max.max(0)).unwrap_or(0);
        match strategy {
            Strategy::GroupRoundRobin => self.fill(self.free(), &mut decision),
            Strategy::CancelNewest => {
                self.fill(self.free(), &mut decision);
                decision
                    .cancelled
                    .extend(self.queued.drain(..).map(|s| s.id));
            }
            Strategy::CancelQueuedExceptNewest => {
                self.fill(self.free(), &mut decision);
                let excess = self.queued.len().saturating_sub(max);
                decision
                    .cancelled
                    .extend(self.queued.drain(..excess).map(|s| s.id));
            }
            Strategy::CancelQueuedExceptOldest => {
                self.fill(self.free(), &mut decision);
                if self.queued.len() > max {
                    decision
                        .cancelled
                        .extend(self.queued.drain(max..).map(|s| s.id));
                }
            }
            Strategy::CancelInProgress => {
                // Worst running holder last.
                self.running.sort_by(|a, b| compare(strategy, a, b));
                while self.running.len() > max {
                    if let Some(worst) = self.running.pop() {
                        decision.cancelled.push(worst.id);
                    }
                }
                while let Some(candidate) = self.queued.first().copied() {
                    if self.running.len() < max {
                        self.fill(1, &mut decision);
                        continue;
                    }
                    let beats_worst = self
                        .running
                        .last()
                        .is_some_and(|worst| compare(strategy, &candidate, worst).is_lt());
                    if !beats_worst {
                        decision
                            .cancelled
                            .extend(self.queued.drain(..).map(|s| s.id));
                        break;
                    }
                    if let Some(worst) = self.running.pop() {
                        decision.cancelled.push(worst.id);
                    }
                    self.fill(1, &mut decision);
                    self.running.sort_by(|a, b| compare(strategy, a, b));
                }
            }
        }
        decision
    }
}

/// All gates, keyed by [`GateSpec::key`].
#[derive(Debug, Default)]
pub(crate) struct Gates {
    groups: HashMap<String, Group>,
    seq: u64,
}

impl Gates {
    /// `holder` arrives at `spec`'s gate; the group's limit and strategy become the spec's (newest
    /// arrival wins). The holder entered when it is in [`Decision::filled`], must be cancelled when
    /// it is in [`Decision::cancelled`], and waits otherwise; other holders listed there were
    /// moved too.
    pub(crate) fn enter(&mut self, spec: &GateSpec, holder: Holder) -> Decision {
        self.seq += 1;
        let seq = self.seq;
        let group = self
            .groups
            .entry(spec.key.clone())
            .or_insert_with(|| Group {
                max: spec.max_runs,
                strategy: spec.strategy,
                running: Vec::new(),
                queued: Vec::new(),
            });
        group.max = spec.max_runs;
        group.strategy = spec.strategy;
        if group.running.iter().any(|s| s.id == holder.id) {
            return Decision {
                filled: vec![holder.id],
                cancelled: Vec::new(),
            };
        }
        if !group.queued.iter().any(|s| s.id == holder.id) {
            group.queued.push(Slot {
                id: holder.id,
                priority: holder.priority,
                seq,
            });
        }
        let decision = group.decide();
        self.prune(&spec.key);
        decision
    }

    /// `holder` leaves `gate` (running or waiting); the freed place is re-decided.
    pub(crate) fn leave(&mut self, gate: &str, holder: Uuid) -> Decision {
        let Some(group) = self.groups.get_mut(gate) else {
            return Decision::default();
        };
        let before = group.running.len() + group.queued.len();
        group.running.retain(|s| s.id != holder);
        group.queued.retain(|s| s.id != holder);
        if group.running.len() + group.queued.len() == before {
            return Decision::default();
        }
        let decision = group.decide();
        self.prune(gate);
        decision
    }

    fn prune(&mut self, gate: &str) {
        if self
            .groups
            .get(gate)
            .is_some_and(|g| g.running.is_empty() && g.queued.is_empty())
        {
            self.groups.remove(gate);
        }
    }

    /// Holders currently inside `gate`.
    #[cfg(test)]
    pub(crate) fn active(&self, gate: &str) -> usize {
        self.groups.get(gate).map_or(0, |g| g.running.len())
    }

    /// Holders waiting at `gate`.
    #[cfg(test)]
    pub(crate) fn waiting(&self, gate: &str) -> usize {
        self.groups.get(gate).map_or(0, |g| g.queued.len())
    }
}

/// The tenant-scoped limit names of each chain of a workflow, in chain order: run-level limits
/// come before every task's own, since a run holds them while its tasks wait on theirs.
fn tenant_chains(workflow: &WorkflowDef) -> Vec<Vec<&str>> {
    fn names(defs: &[ConcurrencyDef]) -> Vec<&str> {
        defs.iter()
            .filter_map(|d| d.tenant_name.as_deref())
            .collect()
    }
    let run = names(&workflow.concurrency);
    workflow
        .tasks
        .iter()
        .chain(&workflow.on_failure)
        .map(|t| {
            let mut chain = run.clone();
            chain.extend(names(&t.concurrency));
            chain
        })
        .collect()
}

/// Rejects chains that order the same tenant-scoped limits differently (a holder keeps the
/// earlier limits while it waits on later ones, so opposite orders can deadlock), as Hatchet
/// does: a cycle in the precedence graph of all chains.
fn check_tenant_order<'a>(
    chains: impl Iterator<Item = Vec<&'a str>>,
) -> Result<(), (String, String)> {
    let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
    for chain in chains {
        for (i, a) in chain.iter().enumerate() {
            for b in &chain[i + 1..] {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    fn reaches<'a>(
        edges: &HashMap<&'a str, HashSet<&'a str>>,
        from: &'a str,
        to: &'a str,
        seen: &mut HashSet<&'a str>,
    ) -> bool {
        if from == to {
            return true;
        }
        if !seen.insert(from) {
            return false;
        }
        edges
            .get(from)
            .is_some_and(|next| next.iter().any(|n| reaches(edges, n, to, seen)))
    }
    for (a, next) in &edges {
        for b in next {
            if reaches(&edges, b, a, &mut HashSet::new()) {
                return Err(((*a).to_owned(), (*b).to_owned()));
            }
        }
    }
    Ok(())
}

impl State {
    /// Installs a validated workflow version: its tenant-scoped limit definitions replace the
    /// tenant's (in place, for every workflow naming them), after checking that no two chains
    /// order the same tenant-scoped limits differently.
    pub(crate) fn register_workflow(
        &mut self,
        def: Arc<WorkflowDef>,
    ) -> Result<(), ValidationError> {
        let others = self
            .workflows
            .values()
            .filter(|w| w.name != def.name)
            .flat_map(|w| tenant_chains(w));
        check_tenant_order(tenant_chains(&def).into_iter().chain(others)).map_err(|(a, b)| {
            ValidationError {
                field: "concurrency".into(),
                message: format!(
                    "tenant-scoped concurrency limits {a:?} and {b:?} are ordered differently \
                     by another chain; chains sharing tenant-scoped limits must order them \
                     consistently to avoid deadlocks"
                ),
            }
        })?;
        for c in def.concurrency.iter().chain(
            def.tasks
                .iter()
                .chain(&def.on_failure)
                .flat_map(|t| &t.concurrency),
        ) {
            if let Some(name) = &c.tenant_name {
                self.tenant_concurrency.insert(name.clone(), c.clone());
            }
        }
        self.workflows.insert(def.name.clone(), def);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_limits_must_be_ordered_consistently() {
        let ok = vec![vec!["a", "b"], vec!["b", "c"], vec!["a", "c"]];
        assert_eq!(check_tenant_order(ok.into_iter()), Ok(()));
        let direct = vec![vec!["a", "b"], vec!["b", "a"]];
        assert!(check_tenant_order(direct.into_iter()).is_err());
        let spread = vec![vec!["a", "b"], vec!["b", "c"], vec!["c", "a"]];
        assert!(check_tenant_order(spread.into_iter()).is_err());
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    fn spec(key: &str, max_runs: i32, strategy: Strategy) -> GateSpec {
        GateSpec {
            key: key.into(),
            max_runs,
            strategy,
        }
    }

    fn h(id: Uuid) -> Holder {
        Holder { id, priority: 1 }
    }

    fn filled(ids: &[Uuid]) -> Decision {
        Decision {
            filled: ids.to_vec(),
            cancelled: Vec::new(),
        }
    }

    #[test]
    fn round_robin_serializes_per_key_and_keeps_keys_independent() {
        let mut g = Gates::default();
        let r = ids(4);
        let a = spec("w#0#a", 1, Strategy::GroupRoundRobin);
        assert_eq!(g.enter(&a, h(r[0])), filled(&[r[0]]));
        assert_eq!(g.enter(&a, h(r[1])), Decision::default());
        assert_eq!(g.enter(&a, h(r[2])), Decision::default());
        let b = spec("w#0#b", 1, Strategy::GroupRoundRobin);
        assert_eq!(g.enter(&b, h(r[3])), filled(&[r[3]]));
        assert_eq!(g.leave("w#0#a", r[0]), filled(&[r[1]]));
        assert_eq!(g.active("w#0#a"), 1);
        assert_eq!(g.waiting("w#0#a"), 1);
        assert_eq!(g.leave("w#0#a", r[1]), filled(&[r[2]]));
        assert_eq!(g.leave("w#0#a", r[2]), Decision::default());
        assert_eq!(g.active("w#0#a"), 0);
    }

    #[test]
    fn round_robin_lets_higher_priority_through_first() {
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 1, Strategy::GroupRoundRobin);
        g.enter(&s, h(r[0]));
        g.enter(&s, h(r[1]));
        g.enter(
            &s,
            Holder {
                id: r[2],
                priority: 3,
            },
        );
        assert_eq!(g.leave("k", r[0]), filled(&[r[2]]));
    }

    #[test]
    fn cancel_newest_rejects_at_the_limit() {
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 2, Strategy::CancelNewest);
        assert!(g.enter(&s, h(r[0])).filled(r[0]));
        assert!(g.enter(&s, h(r[1])).filled(r[1]));
        let d = g.enter(&s, h(r[2]));
        assert_eq!(d.cancelled, vec![r[2]]);
        assert_eq!(g.active("k"), 2);
        assert_eq!(g.waiting("k"), 0);
    }

    #[test]
    fn cancel_in_progress_evicts_the_oldest() {
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 1, Strategy::CancelInProgress);
        assert_eq!(g.enter(&s, h(r[0])), filled(&[r[0]]));
        assert_eq!(
            g.enter(&s, h(r[1])),
            Decision {
                filled: vec![r[1]],
                cancelled: vec![r[0]]
            }
        );
        // The evicted holder leaving later is harmless.
        assert_eq!(g.leave("k", r[0]), Decision::default());
        assert_eq!(g.active("k"), 1);
        assert_eq!(g.enter(&s, h(r[2])).cancelled, vec![r[1]]);
    }

    #[test]
    fn cancel_queued_except_newest_keeps_the_newest_waiting() {
        // Hatchet's example: A runs, B waits, C replaces B, C runs after A.
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 1, Strategy::CancelQueuedExceptNewest);
        assert_eq!(g.enter(&s, h(r[0])), filled(&[r[0]]));
        assert_eq!(g.enter(&s, h(r[1])), Decision::default());
        assert_eq!(
            g.enter(&s, h(r[2])),
            Decision {
                filled: vec![],
                cancelled: vec![r[1]]
            }
        );
        assert_eq!(g.leave("k", r[0]), filled(&[r[2]]));
    }

    #[test]
    fn cancel_queued_except_oldest_keeps_the_oldest_waiting() {
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 1, Strategy::CancelQueuedExceptOldest);
        assert_eq!(g.enter(&s, h(r[0])), filled(&[r[0]]));
        assert_eq!(g.enter(&s, h(r[1])), Decision::default());
        assert_eq!(g.enter(&s, h(r[2])).cancelled, vec![r[2]]);
        assert_eq!(g.leave("k", r[0]), filled(&[r[1]]));
    }

    #[test]
    fn cancel_queued_keeps_max_runs_running_plus_max_runs_waiting() {
        for strategy in [
            Strategy::CancelQueuedExceptNewest,
            Strategy::CancelQueuedExceptOldest,
        ] {
            let mut g = Gates::default();
            let s = spec("k", 2, strategy);
            let r = ids(8);
            let mut cancelled = Vec::new();
            for id in &r {
                cancelled.extend(g.enter(&s, h(*id)).cancelled);
            }
            assert_eq!((g.active("k"), g.waiting("k")), (2, 2), "{strategy:?}");
            assert_eq!(cancelled.len(), 4, "{strategy:?}");
            let survivors: Vec<Uuid> = if strategy == Strategy::CancelQueuedExceptNewest {
                r[6..].to_vec()
            } else {
                r[2..4].to_vec()
            };
            assert!(
                survivors.iter().all(|s| !cancelled.contains(s)),
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn newest_arrival_sets_the_limit() {
        let mut g = Gates::default();
        let r = ids(4);
        // Limit 1 at first: the second waits.
        assert!(
            g.enter(&spec("k", 1, Strategy::GroupRoundRobin), h(r[0]))
                .filled(r[0])
        );
        assert_eq!(
            g.enter(&spec("k", 1, Strategy::GroupRoundRobin), h(r[1])),
            Decision::default()
        );
        // A newcomer raising the limit to 3 lets itself and the waiting one in.
        let d = g.enter(&spec("k", 3, Strategy::GroupRoundRobin), h(r[2]));
        assert_eq!(d.filled, vec![r[1], r[2]]);
        // Lowering to 0 holds the group: running holders finish, nobody new enters.
        assert_eq!(
            g.enter(&spec("k", 0, Strategy::GroupRoundRobin), h(r[3])),
            Decision::default()
        );
        assert_eq!(g.leave("k", r[0]), Decision::default());
        assert_eq!(g.waiting("k"), 1);
    }

    #[test]
    fn lowered_limit_cancels_excess_runners_under_cancel_in_progress() {
        let mut g = Gates::default();
        let r = ids(3);
        let wide = spec("k", 2, Strategy::CancelInProgress);
        g.enter(&wide, h(r[0]));
        g.enter(&wide, h(r[1]));
        let d = g.enter(&spec("k", 1, Strategy::CancelInProgress), h(r[2]));
        assert_eq!(d.filled, vec![r[2]]);
        let mut cancelled = d.cancelled;
        cancelled.sort();
        let mut expected = vec![r[0], r[1]];
        expected.sort();
        assert_eq!(cancelled, expected);
    }

    #[test]
    fn leaving_while_waiting_drops_the_place_in_line() {
        let mut g = Gates::default();
        let r = ids(3);
        let s = spec("k", 1, Strategy::GroupRoundRobin);
        g.enter(&s, h(r[0]));
        g.enter(&s, h(r[1]));
        g.enter(&s, h(r[2]));
        assert_eq!(g.leave("k", r[1]), Decision::default());
        assert_eq!(g.leave("k", r[0]), filled(&[r[2]]));
    }
}
