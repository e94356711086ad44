//! Read-side questions and bulk operations shared by the gRPC `AdminService` and the REST API:
//! run/task status in Hatchet's vocabulary, run filters, and cancel/replay of ids.

use crate::engine::state::{RunState, State, TaskStatus};
use crate::proto::v1::RunStatus;
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// A task's status as Hatchet reports it.
pub(crate) fn task_status(status: &TaskStatus) -> RunStatus {
    match status {
        TaskStatus::Running(_) => RunStatus::Running,
        TaskStatus::Evicted => RunStatus::Evicted,
        TaskStatus::Completed | TaskStatus::Skipped => RunStatus::Completed,
        TaskStatus::Failed => RunStatus::Failed,
        TaskStatus::Cancelled => RunStatus::Cancelled,
        _ => RunStatus::Queued,
    }
}

/// Which runs a bulk operation or a list selects (every present criterion must hold).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFilter {
    /// Created at or after.
    pub(crate) since: Option<SystemTime>,
    /// Created at or before.
    pub(crate) until: Option<SystemTime>,
    /// Workflow ids (any of).
    pub(crate) workflow_ids: Vec<String>,
    /// `key:value` metadata pairs (all of).
    pub(crate) additional_metadata: Vec<String>,
    /// Status names (any of, case-insensitive).
    pub(crate) statuses: Vec<String>,
}

impl State {
    /// A run's status as Hatchet reports it (`QUEUED` until a task started).
    pub(crate) fn run_status(&self, run_id: Uuid) -> Option<RunStatus> {
        let run = self.runs.get(&run_id)?;
        Some(match run.state {
            RunState::Completed => RunStatus::Completed,
            RunState::Failed => RunStatus::Failed,
            RunState::Cancelled => RunStatus::Cancelled,
            RunState::Pending => RunStatus::Queued,
            RunState::Running => {
                let started = run
                    .tasks
                    .iter()
                    .filter_map(|id| self.tasks.get(id))
                    .any(|t| {
                        matches!(t.status(), TaskStatus::Running(_) | TaskStatus::Evicted)
                            || t.status().is_final()
                    });
                if started {
                    RunStatus::Running
                } else {
                    RunStatus::Queued
                }
            }
        })
    }

    /// Whether a run passes a filter.
    pub(crate) fn run_matches(&self, run_id: Uuid, filter: &RunFilter) -> bool {
        let Some(r) = self.runs.get(&run_id) else {
            return false;
        };
        filter.since.is_none_or(|s| r.created >= s)
            && filter.until.is_none_or(|u| r.created <= u)
            && (filter.workflow_ids.is_empty()
                || filter
                    .workflow_ids
                    .contains(&r.workflow.workflow_id.to_string()))
            && filter.additional_metadata.iter().all(|kv| {
                let (k, v) = kv.split_once(':').unwrap_or((kv.as_str(), ""));
                r.metadata
                    .get(k)
                    .is_some_and(|m| crate::engine::notify::json_matches_text(m, v))
            })
            && (filter.statuses.is_empty()
                || self.run_status(r.id).is_some_and(|s| {
                    filter
                        .statuses
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(s.as_str_name()))
                }))
    }

    /// Ids of the runs passing a filter.
    pub(crate) fn filtered_runs(&self, filter: &RunFilter) -> Vec<Uuid> {
        self.runs
            .keys()
            .filter(|id| self.run_matches(**id, filter))
            .copied()
            .collect()
    }

    /// Cancels runs (by run id) or tasks (by task id); returns the ids of the tasks cancelled.
    pub(crate) fn cancel_ids(&mut self, targets: &[Uuid], now: Instant) -> Vec<String> {
        let mut cancelled = Vec::new();
        for &id in targets {
            let tasks: Vec<Uuid> = match self.runs.get(&id) {
                Some(run) => run.tasks.iter().chain(&run.on_failure).copied().collect(),
                None => vec![id],
            };
            let live: Vec<Uuid> = tasks
                .into_iter()
                .filter(|t| self.tasks.get(t).is_some_and(|t| !t.status().is_final()))
                .collect();
            if self.runs.contains_key(&id) {
                self.cancel_run(id, now);
            } else {
                for t in &live {
                    self.cancel_task(*t, "Task was cancelled", now);
                }
            }
            cancelled.extend(live.into_iter().map(|t| t.to_string()));
        }
        cancelled
    }

    /// Replays runs (their first unsuccessful task, or their first task) or tasks; returns the
    /// ids of the tasks replayed.
    pub(crate) fn replay_ids(&mut self, targets: &[Uuid], now: Instant) -> Vec<String> {
        let mut replayed = Vec::new();
        for &id in targets {
            let task = match self.runs.get(&id) {
                Some(run) => run
                    .tasks
                    .iter()
                    .find(|t| {
                        self.tasks.get(t).is_some_and(|t| {
                            matches!(t.status(), TaskStatus::Failed | TaskStatus::Cancelled)
                        })
                    })
                    .or_else(|| run.tasks.first())
                    .copied(),
                None => Some(id),
            };
            if let Some(task) = task
                && self.replay_task(task, now)
            {
                replayed.push(task.to_string());
            }
        }
        replayed
    }
}
