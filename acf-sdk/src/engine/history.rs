//! Per-task event history (what the REST API reports as `taskEvents` and the dashboard as attempts
//! and timing). Bounded per task so a task retried forever cannot grow without limit.

use crate::engine::state::State;
use std::time::SystemTime;
use uuid::Uuid;

/// Entries kept per task; older ones are dropped first.
const MAX_HISTORY: usize = 200;

/// One recorded transition of a task, in Hatchet's `V1TaskEventType` vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct TaskEventRec {
    /// Engine-wide sequence number (the REST `id`).
    pub(crate) id: u64,
    /// Wall-clock time of the transition.
    pub(crate) at: SystemTime,
    /// `V1TaskEventType` name (`QUEUED`, `ASSIGNED`, `FINISHED`, ...).
    pub(crate) kind: &'static str,
    /// Human-readable detail (error text for failures).
    pub(crate) message: String,
    /// Worker involved, if any.
    pub(crate) worker: Option<Uuid>,
    /// Attempt number (retry count) the transition belongs to.
    pub(crate) retry_count: i32,
}

impl State {
    /// Records a transition of a task (no-op for unknown tasks).
    pub(crate) fn note(&mut self, task_id: Uuid, kind: &'static str, message: impl Into<String>) {
        let id = self.next_seq();
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let worker = match task.status() {
            crate::engine::state::TaskStatus::Running(a) => Some(a.worker),
            _ => None,
        };
        if task.history.len() >= MAX_HISTORY {
            task.history.remove(0);
        }
        task.history.push(TaskEventRec {
            id,
            at: SystemTime::now(),
            kind,
            message: message.into(),
            worker,
            retry_count: task.retry_count,
        });
    }
}
