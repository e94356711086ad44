//! Task and run outcomes: completion, retries with backoff, failure, cancellation, on-failure
//! tasks, run finalisation (results to subscribers and durable parents) and replays.

use crate::engine::lifecycle::timestamp;
use crate::engine::state::{RunState, State, Task, TaskRef, TaskStatus};
use crate::engine::timers::TimerKind;
use crate::proto::{ResourceEventType, StepRunResult, WorkflowRunEvent, WorkflowRunEventType};
use crate::workflow::json_text;
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Re-queues after lost workers before a task fails (Hatchet's `SERVER_MAX_INTERNAL_RETRY_COUNT`).
const MAX_INTERNAL_RETRIES: i32 = 10;

impl State {
    /// Frees the worker slots a running task holds (idempotent).
    pub(crate) fn release_slots(&mut self, task_id: Uuid) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let Some(assignment) = task.assignment_mut() else {
            return;
        };
        let slots = std::mem::take(&mut assignment.slots);
        if let Some(worker) = self.workers.get_mut(&assignment.worker) {
            for (slot_type, units) in slots {
                let pool = worker.pool(&slot_type).to_owned();
                let used = worker.used.entry(pool).or_insert(0);
                *used = (*used - units).max(0);
            }
        }
    }

    /// The worker reported success for the running attempt.
    pub(crate) fn complete_task(&mut self, task_id: Uuid, output: Value, now: Instant) {
        self.release_slots(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.set_status(TaskStatus::Completed);
        // Written out only for a subscriber to the run's events (most runs have none).
        let payload = if self.event_subs.is_empty() {
            String::new()
        } else {
            json_text(&output)
        };
        task.output = Some(output);
        self.note(task_id, "FINISHED", "task completed");
        self.emit_step(task_id, ResourceEventType::Completed, payload);
        self.task_final(task_id, now);
    }

    /// The running attempt failed: retry (with backoff) or fail for good.
    pub(crate) fn fail_attempt(
        &mut self,
        task_id: Uuid,
        error: String,
        should_not_retry: bool,
        now: Instant,
    ) {
        self.fail_attempt_after(task_id, error, should_not_retry, None, now);
    }

    /// Like [`Self::fail_attempt`], with the worker's requested retry delay (`retry_after_ms`)
    /// replacing the backoff when the task is retried.
    pub(crate) fn fail_attempt_after(
        &mut self,
        task_id: Uuid,
        error: String,
        should_not_retry: bool,
        retry_after: Option<std::time::Duration>,
        now: Instant,
    ) {
        self.release_slots(task_id);
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let Some(def) = self.task_def(task) else {
            return;
        };
        let retries = def.retries;
        if should_not_retry || task.retry_count >= retries {
            self.note(task_id, "FAILED", error.clone());
            self.emit_step(task_id, ResourceEventType::Failed, error.clone());
            self.fail_task(task_id, error, now);
            return;
        }
        let delay = retry_after.unwrap_or_else(|| def.backoff(task.retry_count + 1));
        let is_durable = def.is_durable;
        self.note(task_id, "RETRYING", error.clone());
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.retry_count += 1;
        if is_durable {
            task.invocation += 1;
        }
        task.error = Some(error.clone());
        self.emit_step(task_id, ResourceEventType::Failed, error);
        if delay.is_zero() {
            self.enqueue(task_id, now);
        } else if let Some(task) = self.tasks.get_mut(&task_id) {
            let generation = task.set_status(TaskStatus::Backoff);
            self.timers.arm(
                now + delay,
                TimerKind::Backoff {
                    task: task_id,
                    generation,
                },
            );
        }
    }

    /// The task failed for good.
    pub(crate) fn fail_task(&mut self, task_id: Uuid, error: String, now: Instant) {
        self.release_slots(task_id);
        self.dequeue(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if task.status().is_final() {
            return;
        }
        let logged = task.history.last().is_some_and(|e| e.kind == "FAILED");
        task.set_status(TaskStatus::Failed);
        task.error = Some(error.clone());
        if !logged {
            self.note(task_id, "FAILED", error);
        }
        self.task_final(task_id, now);
    }

    /// A worker disappeared while running the task: re-queue without consuming an app retry.
    pub(crate) fn requeue_lost(&mut self, task_id: Uuid, now: Instant) {
        self.release_slots(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.internal_retries += 1;
        self.note(task_id, "REASSIGNED", "worker lost; task re-queued");
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if task.internal_retries > MAX_INTERNAL_RETRIES {
            self.fail_task(
                task_id,
                "Task was reassigned too many times after losing its worker".into(),
                now,
            );
            return;
        }
        task.invocation += 1;
        self.enqueue(task_id, now);
    }

    pub(crate) fn skip_task(&mut self, task_id: Uuid, now: Instant) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.set_status(TaskStatus::Skipped);
        task.output = Some(json!({ "skipped": true }));
        self.note(task_id, "SKIPPED", "task skipped by a condition");
        self.task_final(task_id, now);
    }

    /// Cancels a task (sends `CANCEL_STEP_RUN` when running).
    pub(crate) fn cancel_task(&mut self, task_id: Uuid, reason: &str, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        if task.status().is_final() {
            return;
        }
        if let TaskStatus::Running(assignment) = task.status() {
            let worker = assignment.worker;
            self.send_cancel(task_id, worker);
        }
        self.release_slots(task_id);
        self.dequeue(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.set_status(TaskStatus::Cancelled);
        task.error = Some(reason.to_owned());
        self.note(task_id, "CANCELLED", reason);
        self.emit_step(task_id, ResourceEventType::Cancelled, reason.to_owned());
        self.task_final(task_id, now);
    }

    /// Cancels a run and every unfinished task of it.
    pub(crate) fn cancel_run(&mut self, run_id: Uuid, now: Instant) {
        let Some(run) = self.runs.get_mut(&run_id) else {
            return;
        };
        if run.state.is_final() {
            return;
        }
        let pending: Vec<String> = run.pending_gates.drain(..).map(|g| g.key).collect();
        if run.state == RunState::Pending {
            run.state = RunState::Running;
            self.leave_gates(pending, run_id, now);
            self.create_tasks(run_id);
        } else {
            self.leave_gates(pending, run_id, now);
        }
        let tasks: Vec<Uuid> = self
            .runs
            .get(&run_id)
            .map(|r| r.tasks.iter().copied().chain(r.on_failure).collect())
            .unwrap_or_default();
        for task in tasks {
            if let Some(t) = self.tasks.get_mut(&task)
                && !t.status().is_final()
            {
                match t.status() {
                    TaskStatus::Running(_) | TaskStatus::Queued => {
                        self.cancel_task(task, "Task was cancelled", now)
                    }
                    _ => {
                        t.set_status(TaskStatus::Cancelled);
                        t.error = Some("Task was cancelled".into());
                        let held = std::mem::take(&mut t.held_gates);
                        self.note(task, "CANCELLED", "Task was cancelled");
                        self.drop_waits_of(task);
                        self.leave_gates(held, task, now);
                    }
                }
            }
        }
        self.check_run_finished(run_id, now);
    }

    /// Bookkeeping after a task reached a final state.
    pub(crate) fn task_final(&mut self, task_id: Uuid, now: Instant) {
        self.drop_waits_of(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let held = std::mem::take(&mut task.held_gates);
        let pending: Vec<String> = task.pending_gates.drain(..).map(|g| g.key).collect();
        let (run_id, def, status) = (task.run_id, task.def, task.status().clone());
        self.leave_gates(held.into_iter().chain(pending).collect(), task_id, now);
        if let TaskRef::Index(index) = def
            && let Some(run) = self.runs.get(&run_id)
        {
            let workflow = run.workflow.clone();
            let ids = run.tasks.clone();
            let ok = matches!(status, TaskStatus::Completed | TaskStatus::Skipped);
            for (j, child) in workflow.tasks.iter().enumerate() {
                if !child.parents.contains(&index) {
                    continue;
                }
                let Some(child_id) = ids.get(j).copied() else {
                    continue;
                };
                if self
                    .tasks
                    .get(&child_id)
                    .is_none_or(|t| *t.status() != TaskStatus::Pending)
                {
                    continue;
                }
                if !ok {
                    if let Some(t) = self.tasks.get_mut(&child_id) {
                        t.set_status(TaskStatus::Cancelled);
                        t.error = Some("Parent task did not complete".into());
                    }
                    self.task_final(child_id, now);
                    continue;
                }
                let parents_done = child.parents.iter().all(|p| {
                    ids.get(*p)
                        .and_then(|id| self.tasks.get(id))
                        .is_some_and(|t| {
                            matches!(t.status(), TaskStatus::Completed | TaskStatus::Skipped)
                        })
                });
                if parents_done {
                    self.activate_task(child_id, now);
                }
            }
        }
        self.check_run_finished(run_id, now);
    }

    pub(crate) fn check_run_finished(&mut self, run_id: Uuid, now: Instant) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        if run.state != RunState::Running {
            return;
        }
        let all: Vec<&Task> = run
            .tasks
            .iter()
            .chain(&run.on_failure)
            .filter_map(|id| self.tasks.get(id))
            .collect();
        if all.iter().any(|t| !t.status().is_final()) {
            return;
        }
        let main: Vec<&Task> = run
            .tasks
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .collect();
        let failed = main.iter().any(|t| *t.status() == TaskStatus::Failed);
        if failed && run.on_failure.is_none() && run.workflow.on_failure.is_some() {
            let mut errors = Map::new();
            for t in &main {
                if *t.status() == TaskStatus::Failed {
                    errors.insert(
                        t.readable_id.clone(),
                        Value::String(t.error.clone().unwrap_or_default()),
                    );
                }
            }
            let def = run.workflow.on_failure.clone();
            if let Some(def) = def {
                let id = Uuid::new_v4();
                let mut task = Task::new(
                    id,
                    run_id,
                    TaskRef::OnFailure,
                    &def.readable_id,
                    &def.action,
                );
                task.step_run_errors = errors;
                self.tasks.insert(id, task);
                if let Some(run) = self.runs.get_mut(&run_id) {
                    run.on_failure = Some(id);
                }
                self.activate_task(id, now);
                return;
            }
        }
        let cancelled = main.iter().any(|t| *t.status() == TaskStatus::Cancelled);
        let state = if failed {
            RunState::Failed
        } else if cancelled {
            RunState::Cancelled
        } else {
            RunState::Completed
        };
        self.finalize_run(run_id, state, now);
    }

    pub(crate) fn finalize_run(&mut self, run_id: Uuid, state: RunState, now: Instant) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        let at = SystemTime::now();
        let results: Vec<StepRunResult> = run
            .tasks
            .iter()
            .chain(&run.on_failure)
            .filter_map(|id| self.tasks.get(id))
            .map(|t| StepRunResult {
                task_run_external_id: t.id.to_string(),
                task_name: t.readable_id.clone(),
                job_run_id: t.id.to_string(),
                error: match t.status() {
                    TaskStatus::Failed | TaskStatus::Cancelled => {
                        t.error.clone().or_else(|| Some("Task failed".into()))
                    }
                    _ => None,
                },
                output: match t.status() {
                    TaskStatus::Completed | TaskStatus::Skipped => t.output.as_ref().map(json_text),
                    _ => None,
                },
            })
            .collect();
        let durable_payload = child_result(&results);
        let event = WorkflowRunEvent {
            workflow_run_id: run_id.to_string(),
            event_type: WorkflowRunEventType::Finished as i32,
            event_timestamp: Some(timestamp(at)),
            results,
        };
        let Some(run) = self.runs.get_mut(&run_id) else {
            return;
        };
        run.state = state;
        run.outcome = Some(event.clone());
        run.finished = Some(at);
        let held = std::mem::take(&mut run.held_gates);
        let durable_parent = run.origin.durable_parent;
        if let Some(waiters) = self.run_waiters.remove(&run_id) {
            for tx in waiters {
                let _ = tx.send(fit_for_stream(&event));
            }
        }
        self.emit_run_final(run_id, state);
        self.leave_gates(held, run_id, now);
        if let Some((task, node)) = durable_parent {
            let (bytes, failure) = durable_payload;
            self.complete_durable_entry(task, node, bytes, failure);
        }
        self.retain_finished(run_id);
    }
}

/// Largest `WorkflowRunEvent` sent on `SubscribeToWorkflowRuns` (clients receive at most 4 MiB).
const MAX_RUN_EVENT: usize = 4 * 1024 * 1024 - 1024;

/// Shrinks a run result to fit the clients' message limit as Hatchet does: oversized errors are
/// replaced by a fixed text first, then all results are dropped (clients fall back to
/// `GetRunDetails`).
pub(crate) fn fit_for_stream(event: &WorkflowRunEvent) -> WorkflowRunEvent {
    use prost::Message as _;
    let mut event = event.clone();
    if event.encoded_len() <= MAX_RUN_EVENT {
        return event;
    }
    for result in &mut event.results {
        if result.error.as_ref().is_some_and(|e| e.len() > 1024) {
            result.error = Some("Error is too large to send over the Hatchet stream.".into());
        }
    }
    if event.encoded_len() > MAX_RUN_EVENT {
        event.results.clear();
    }
    event
}

/// The payload a durable parent receives for a finished child: `{task: output}` or the first error.
fn child_result(results: &[StepRunResult]) -> (Vec<u8>, Option<String>) {
    if let Some(error) = results.iter().find_map(|r| r.error.clone()) {
        return (Vec::new(), Some(error));
    }
    let mut out = Map::new();
    for r in results {
        let value = r
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_else(|| json!({}));
        out.insert(r.task_name.clone(), value);
    }
    (
        serde_json::to_vec(&Value::Object(out)).unwrap_or_default(),
        None,
    )
}

impl State {
    /// Replays a finished task: it and its finished descendants run again, and the run reopens.
    pub(crate) fn replay_task(&mut self, task_id: Uuid, now: Instant) -> bool {
        let Some(task) = self.tasks.get(&task_id) else {
            return false;
        };
        if !task.status().is_final() {
            return false;
        }
        let (run_id, def) = (task.run_id, task.def);
        let Some(run) = self.runs.get_mut(&run_id) else {
            return false;
        };
        run.state = RunState::Running;
        run.outcome = None;
        run.finished = None;
        let workflow = run.workflow.clone();
        let ids = run.tasks.clone();
        let TaskRef::Index(root) = def else {
            return false;
        };
        // Collect the task and every descendant.
        let mut reset = vec![root];
        let mut i = 0;
        while i < reset.len() {
            let current = reset[i];
            for (j, t) in workflow.tasks.iter().enumerate() {
                if t.parents.contains(&current) && !reset.contains(&j) {
                    reset.push(j);
                }
            }
            i += 1;
        }
        for index in &reset {
            if let Some(t) = ids.get(*index).and_then(|id| self.tasks.get_mut(id)) {
                t.set_status(TaskStatus::Pending);
                t.output = None;
                t.error = None;
                t.retry_count = 0;
                t.triggers = Map::new();
            }
            if let Some(id) = ids.get(*index).copied() {
                self.note(id, "RETRIED_BY_USER", "task replayed");
            }
        }
        if let Some(run) = self.runs.get_mut(&run_id)
            && let Some(on_failure) = run.on_failure.take()
        {
            self.tasks.remove(&on_failure);
        }
        self.activate_task(task_id, now);
        true
    }
}
