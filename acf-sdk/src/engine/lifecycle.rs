//! Run and task lifecycle: triggering, DAG progression, concurrency gates, completion, retries,
//! failure, cancellation, on-failure tasks and run finalisation.

use crate::engine::concurrency::{Admit, GateSpec};
use crate::engine::durable::DurableLog;
use crate::engine::expr;
use crate::engine::model::{ConcurrencyDef, CondAction, CondKind};
use crate::engine::state::{Run, RunOrigin, RunState, State, Task, TaskRef, TaskStatus};
use crate::engine::timers::TimerKind;
use crate::proto::{ResourceEventType, StepRunResult, WorkflowRunEvent, WorkflowRunEventType};
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Re-queues after lost workers before a task fails (Hatchet's `SERVER_MAX_INTERNAL_RETRY_COUNT`).
const MAX_INTERNAL_RETRIES: i32 = 10;

/// A validated trigger.
#[derive(Debug, Clone)]
pub struct TriggerSpec {
    /// Exact workflow name.
    pub workflow: String,
    /// Input (`Null` when none was sent).
    pub input: Value,
    /// Metadata object.
    pub metadata: Value,
    /// Priority override.
    pub priority: Option<i32>,
    /// Origin.
    pub origin: RunOrigin,
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No workflow with that name.
    #[error("workflow names not found: {0}")]
    UnknownWorkflow(String),
}

/// Converts a wall-clock time to a protobuf timestamp.
pub fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(at)
}

fn gate_specs(
    scope: &str,
    defs: &[ConcurrencyDef],
    vars: &[(&str, &Value)],
) -> Result<Vec<GateSpec>, String> {
    defs.iter()
        .enumerate()
        .map(|(i, c)| {
            expr::eval_string(&c.expression, vars)
                .map(|key| GateSpec {
                    key: format!("{scope}#{i}#{key}"),
                    max_runs: c.max_runs,
                    strategy: c.strategy,
                })
                .map_err(|e| format!("could not evaluate concurrency key: {e}"))
        })
        .collect()
}

impl State {
    /// Creates a run; it starts at once unless a concurrency gate holds it back.
    pub fn trigger(&mut self, spec: TriggerSpec, now: Instant) -> Result<Uuid, TriggerError> {
        let workflow = self
            .workflows
            .get(&spec.workflow)
            .cloned()
            .ok_or_else(|| TriggerError::UnknownWorkflow(spec.workflow.clone()))?;
        let dedupe = spec.origin.parent_task.map(|parent| {
            let key = match (&spec.origin.child_key, spec.origin.child_index) {
                (Some(k), _) => format!("key:{k}"),
                (None, Some(i)) => format!("index:{i}"),
                (None, None) => format!("fresh:{}", Uuid::new_v4()),
            };
            (parent, format!("{}/{key}", spec.workflow))
        });
        if let Some(existing) = dedupe.as_ref().and_then(|d| self.children.get(d)) {
            return Ok(*existing);
        }
        let id = Uuid::new_v4();
        let metadata = if spec.metadata.is_object() {
            spec.metadata
        } else {
            json!({})
        };
        let input_for_cel = if spec.input.is_null() {
            json!({})
        } else {
            spec.input.clone()
        };
        let run_id_value = Value::String(id.to_string());
        let gates = gate_specs(
            &format!("run:{}", workflow.name),
            &workflow.concurrency,
            &[
                ("input", &input_for_cel),
                ("additional_metadata", &metadata),
                ("workflow_run_id", &run_id_value),
            ],
        );
        let run = Run {
            id,
            priority: spec
                .priority
                .unwrap_or(workflow.default_priority)
                .clamp(1, 3),
            workflow,
            input: spec.input,
            metadata,
            tasks: Vec::new(),
            on_failure: None,
            state: RunState::Pending,
            created: SystemTime::now(),
            origin: spec.origin,
            pending_gates: gates.clone().unwrap_or_default(),
            held_gates: Vec::new(),
            outcome: None,
        };
        self.runs.insert(id, run);
        if let Some(d) = dedupe {
            self.children.insert(d, id);
        }
        match gates {
            Ok(_) => self.advance_run_gates(id, now),
            Err(message) => {
                self.create_tasks(id);
                let first = self.runs.get(&id).and_then(|r| r.tasks.first().copied());
                if let Some(task) = first.and_then(|t| self.tasks.get_mut(&t)) {
                    task.status = TaskStatus::Failed;
                    task.error = Some(message);
                }
                self.cancel_run(id, now);
            }
        }
        Ok(id)
    }

    fn advance_run_gates(&mut self, run_id: Uuid, now: Instant) {
        loop {
            let Some(run) = self.runs.get_mut(&run_id) else {
                return;
            };
            if run.state != RunState::Pending {
                return;
            }
            let Some(gate) = run.pending_gates.first().cloned() else {
                self.start_run(run_id, now);
                return;
            };
            match self
                .gates
                .enter(&gate.key, gate.max_runs, gate.strategy, run_id)
            {
                Admit::Admitted => self.pass_run_gate(run_id),
                Admit::Queued => return,
                Admit::Rejected => {
                    self.cancel_run(run_id, now);
                    return;
                }
                Admit::Evicted(victims) => {
                    self.pass_run_gate(run_id);
                    for victim in victims {
                        self.cancel_holder(victim, now);
                    }
                }
            }
        }
    }

    fn pass_run_gate(&mut self, run_id: Uuid) {
        if let Some(run) = self.runs.get_mut(&run_id)
            && !run.pending_gates.is_empty()
        {
            let gate = run.pending_gates.remove(0);
            run.held_gates.push(gate.key);
        }
    }

    /// Cancels a concurrency holder evicted by `CANCEL_IN_PROGRESS` (a run or a task).
    fn cancel_holder(&mut self, holder: Uuid, now: Instant) {
        if self.runs.contains_key(&holder) {
            self.cancel_run(holder, now);
        } else {
            self.cancel_task(
                holder,
                "Cancelled by concurrency limit (CANCEL_IN_PROGRESS)",
                now,
            );
        }
    }

    /// A holder promoted from a gate's waiting line continues with its remaining gates.
    fn promoted(&mut self, holder: Uuid, now: Instant) {
        if self.runs.contains_key(&holder) {
            self.pass_run_gate(holder);
            self.advance_run_gates(holder, now);
        } else if let Some(task) = self.tasks.get_mut(&holder) {
            if !task.pending_gates.is_empty() {
                let gate = task.pending_gates.remove(0);
                task.held_gates.push(gate.key);
            }
            self.advance_task_gates(holder, now);
        }
    }

    fn leave_gates(&mut self, held: Vec<String>, holder: Uuid, now: Instant) {
        for gate in held {
            for next in self.gates.leave(&gate, holder) {
                self.promoted(next, now);
            }
        }
    }

    fn create_tasks(&mut self, run_id: Uuid) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        if !run.tasks.is_empty() {
            return;
        }
        let workflow = run.workflow.clone();
        let priority = run.priority;
        let mut ids = Vec::with_capacity(workflow.tasks.len());
        for (i, def) in workflow.tasks.iter().enumerate() {
            let id = Uuid::new_v4();
            self.tasks.insert(
                id,
                new_task(
                    id,
                    run_id,
                    TaskRef::Index(i),
                    &def.readable_id,
                    &def.action,
                    priority,
                ),
            );
            ids.push(id);
        }
        if let Some(run) = self.runs.get_mut(&run_id) {
            run.tasks = ids;
        }
    }

    fn start_run(&mut self, run_id: Uuid, now: Instant) {
        self.create_tasks(run_id);
        let Some(run) = self.runs.get_mut(&run_id) else {
            return;
        };
        run.state = RunState::Running;
        let roots: Vec<Uuid> = run
            .workflow
            .tasks
            .iter()
            .zip(&run.tasks)
            .filter(|(def, _)| def.parents.is_empty())
            .map(|(_, id)| *id)
            .collect();
        for task in roots {
            self.activate_task(task, now);
        }
    }

    /// A task whose parents are done: evaluate its conditions or send it to its gates.
    fn activate_task(&mut self, task_id: Uuid, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let Some(def) = self.task_def(task).cloned() else {
            return;
        };
        let Some(run) = self.runs.get(&task.run_id) else {
            return;
        };
        if def.conditions.is_empty() {
            self.gate_task(task_id, now);
            return;
        }
        let satisfied: Vec<Option<Value>> = def
            .conditions
            .iter()
            .map(|cond| match &cond.kind {
                CondKind::ParentOverride { parent } => {
                    let output = run
                        .workflow
                        .tasks
                        .iter()
                        .position(|t| t.readable_id == *parent)
                        .and_then(|i| run.tasks.get(i))
                        .and_then(|id| self.tasks.get(id))
                        .and_then(|t| t.output.clone())
                        .unwrap_or_else(|| json!({}));
                    let input = if run.input.is_null() {
                        json!({})
                    } else {
                        run.input.clone()
                    };
                    expr::eval_bool(&cond.expression, &[("input", &input), ("output", &output)])
                        .unwrap_or(false)
                        .then_some(output)
                }
                _ => None,
            })
            .collect();
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.status = TaskStatus::Waiting;
        }
        self.create_wait(
            crate::engine::conditions::WaitOwner::Dag(task_id),
            def.conditions,
            satisfied,
            now,
        );
    }

    /// The conditions of a waiting DAG task resolved.
    pub fn dag_conditions_resolved(
        &mut self,
        task_id: Uuid,
        action: CondAction,
        triggers: Map<String, Value>,
        now: Instant,
    ) {
        if self
            .tasks
            .get(&task_id)
            .is_none_or(|t| t.status != TaskStatus::Waiting)
        {
            return;
        }
        match action {
            CondAction::Cancel => {
                self.cancel_task(task_id, "Cancelled by a cancel_if condition", now)
            }
            CondAction::Skip => self.skip_task(task_id, now),
            CondAction::Queue | CondAction::Create => {
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.triggers = triggers;
                }
                self.gate_task(task_id, now);
            }
        }
    }

    fn gate_task(&mut self, task_id: Uuid, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let Some(def) = self.task_def(task) else {
            return;
        };
        let Some(run) = self.runs.get(&task.run_id) else {
            return;
        };
        let input = if run.input.is_null() {
            json!({})
        } else {
            run.input.clone()
        };
        let run_id_value = Value::String(run.id.to_string());
        let gates = gate_specs(
            &format!("task:{}", def.step_id),
            &def.concurrency,
            &[
                ("input", &input),
                ("additional_metadata", &run.metadata),
                ("workflow_run_id", &run_id_value),
            ],
        );
        match gates {
            Ok(gates) => {
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.pending_gates = gates;
                    task.status = TaskStatus::Blocked;
                }
                self.advance_task_gates(task_id, now);
            }
            Err(message) => self.fail_task(task_id, message, now),
        }
    }

    fn advance_task_gates(&mut self, task_id: Uuid, now: Instant) {
        loop {
            let Some(task) = self.tasks.get_mut(&task_id) else {
                return;
            };
            if task.status != TaskStatus::Blocked {
                return;
            }
            let Some(gate) = task.pending_gates.first().cloned() else {
                self.enqueue(task_id, now);
                return;
            };
            match self
                .gates
                .enter(&gate.key, gate.max_runs, gate.strategy, task_id)
            {
                Admit::Admitted => {
                    if let Some(task) = self.tasks.get_mut(&task_id) {
                        let g = task.pending_gates.remove(0);
                        task.held_gates.push(g.key);
                    }
                }
                Admit::Queued => return,
                Admit::Rejected => {
                    self.cancel_task(
                        task_id,
                        "Cancelled by concurrency limit (CANCEL_NEWEST)",
                        now,
                    );
                    return;
                }
                Admit::Evicted(victims) => {
                    if let Some(task) = self.tasks.get_mut(&task_id) {
                        let g = task.pending_gates.remove(0);
                        task.held_gates.push(g.key);
                    }
                    for victim in victims {
                        self.cancel_holder(victim, now);
                    }
                }
            }
        }
    }

    /// Puts a task in the queue and arms its schedule timeout.
    pub fn enqueue(&mut self, task_id: Uuid, now: Instant) {
        let seq = self.next_seq();
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let Some(def) = self.task_def(task) else {
            return;
        };
        let schedule_timeout = def.schedule_timeout;
        let priority = self.runs.get(&task.run_id).map_or(1, |r| r.priority);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.status = TaskStatus::Queued;
        task.seq = seq;
        task.generation += 1;
        let generation = task.generation;
        self.queue
            .insert((std::cmp::Reverse(priority), seq), task_id);
        self.timers.arm(
            now + schedule_timeout,
            TimerKind::ScheduleTimeout {
                task: task_id,
                generation,
            },
        );
    }

    fn dequeue(&mut self, task_id: Uuid) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let priority = self.runs.get(&task.run_id).map_or(1, |r| r.priority);
        self.queue.remove(&(std::cmp::Reverse(priority), task.seq));
    }

    /// Frees the worker slots a running task holds (idempotent).
    pub fn release_slots(&mut self, task_id: Uuid) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let TaskStatus::Running(assignment) = &mut task.status else {
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
    pub fn complete_task(&mut self, task_id: Uuid, output: Value, now: Instant) {
        self.release_slots(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.status = TaskStatus::Completed;
        task.generation += 1;
        let payload = output.to_string();
        task.output = Some(output);
        self.emit_step(task_id, ResourceEventType::Completed, payload);
        self.task_final(task_id, now);
    }

    /// The running attempt failed: retry (with backoff) or fail for good.
    pub fn fail_attempt(
        &mut self,
        task_id: Uuid,
        error: String,
        should_not_retry: bool,
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
            self.emit_step(task_id, ResourceEventType::Failed, error.clone());
            self.fail_task(task_id, error, now);
            return;
        }
        let delay = def.backoff(task.retry_count + 1);
        let is_durable = def.is_durable;
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
            task.status = TaskStatus::Backoff;
            task.generation += 1;
            let generation = task.generation;
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
    pub fn fail_task(&mut self, task_id: Uuid, error: String, now: Instant) {
        self.release_slots(task_id);
        self.dequeue(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        if task.status.is_final() {
            return;
        }
        task.status = TaskStatus::Failed;
        task.generation += 1;
        task.error = Some(error);
        self.task_final(task_id, now);
    }

    /// A worker disappeared while running the task: re-queue without consuming an app retry.
    pub fn requeue_lost(&mut self, task_id: Uuid, now: Instant) {
        self.release_slots(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.internal_retries += 1;
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

    fn skip_task(&mut self, task_id: Uuid, now: Instant) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.status = TaskStatus::Skipped;
        task.generation += 1;
        task.output = Some(json!({ "skipped": true }));
        self.task_final(task_id, now);
    }

    /// Cancels a task (sends `CANCEL_STEP_RUN` when running).
    pub fn cancel_task(&mut self, task_id: Uuid, reason: &str, now: Instant) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        if task.status.is_final() {
            return;
        }
        if let TaskStatus::Running(assignment) = &task.status {
            let worker = assignment.worker;
            self.send_cancel(task_id, worker);
        }
        self.release_slots(task_id);
        self.dequeue(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.status = TaskStatus::Cancelled;
        task.generation += 1;
        task.error = Some(reason.to_owned());
        self.emit_step(task_id, ResourceEventType::Cancelled, reason.to_owned());
        self.task_final(task_id, now);
    }

    /// Cancels a run and every unfinished task of it.
    pub fn cancel_run(&mut self, run_id: Uuid, now: Instant) {
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
                && !t.status.is_final()
            {
                match t.status {
                    TaskStatus::Running(_) | TaskStatus::Queued => {
                        self.cancel_task(task, "Task was cancelled", now)
                    }
                    _ => {
                        t.status = TaskStatus::Cancelled;
                        t.error = Some("Task was cancelled".into());
                        t.generation += 1;
                        let held = std::mem::take(&mut t.held_gates);
                        self.drop_waits_of(task);
                        self.leave_gates(held, task, now);
                    }
                }
            }
        }
        self.check_run_finished(run_id, now);
    }

    /// Bookkeeping after a task reached a final state.
    fn task_final(&mut self, task_id: Uuid, now: Instant) {
        self.drop_waits_of(task_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let held = std::mem::take(&mut task.held_gates);
        let pending: Vec<String> = task.pending_gates.drain(..).map(|g| g.key).collect();
        let (run_id, def, status) = (task.run_id, task.def, task.status.clone());
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
                    .is_none_or(|t| t.status != TaskStatus::Pending)
                {
                    continue;
                }
                if !ok {
                    if let Some(t) = self.tasks.get_mut(&child_id) {
                        t.status = TaskStatus::Cancelled;
                        t.error = Some("Parent task did not complete".into());
                        t.generation += 1;
                    }
                    self.task_final(child_id, now);
                    continue;
                }
                let parents_done = child.parents.iter().all(|p| {
                    ids.get(*p)
                        .and_then(|id| self.tasks.get(id))
                        .is_some_and(|t| {
                            matches!(t.status, TaskStatus::Completed | TaskStatus::Skipped)
                        })
                });
                if parents_done {
                    self.activate_task(child_id, now);
                }
            }
        }
        self.check_run_finished(run_id, now);
    }

    fn check_run_finished(&mut self, run_id: Uuid, now: Instant) {
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
        if all.iter().any(|t| !t.status.is_final()) {
            return;
        }
        let main: Vec<&Task> = run
            .tasks
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .collect();
        let failed = main.iter().any(|t| t.status == TaskStatus::Failed);
        if failed && run.on_failure.is_none() && run.workflow.on_failure.is_some() {
            let mut errors = Map::new();
            for t in &main {
                if t.status == TaskStatus::Failed {
                    errors.insert(
                        t.readable_id.clone(),
                        Value::String(t.error.clone().unwrap_or_default()),
                    );
                }
            }
            let def = run.workflow.on_failure.clone();
            let priority = run.priority;
            if let Some(def) = def {
                let id = Uuid::new_v4();
                let mut task = new_task(
                    id,
                    run_id,
                    TaskRef::OnFailure,
                    &def.readable_id,
                    &def.action,
                    priority,
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
        let cancelled = main.iter().any(|t| t.status == TaskStatus::Cancelled);
        let state = if failed {
            RunState::Failed
        } else if cancelled {
            RunState::Cancelled
        } else {
            RunState::Completed
        };
        self.finalize_run(run_id, state, now);
    }

    fn finalize_run(&mut self, run_id: Uuid, state: RunState, now: Instant) {
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
                error: match t.status {
                    TaskStatus::Failed | TaskStatus::Cancelled => {
                        t.error.clone().or_else(|| Some("Task failed".into()))
                    }
                    _ => None,
                },
                output: match t.status {
                    TaskStatus::Completed | TaskStatus::Skipped => {
                        t.output.as_ref().map(Value::to_string)
                    }
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
        let held = std::mem::take(&mut run.held_gates);
        let durable_parent = run.origin.durable_parent;
        if let Some(waiters) = self.run_waiters.remove(&run_id) {
            for tx in waiters {
                let _ = tx.send(event.clone());
            }
        }
        self.emit_run_final(run_id, state);
        self.leave_gates(held, run_id, now);
        if let Some((task, node)) = durable_parent {
            let (bytes, failure) = durable_payload;
            self.complete_durable_entry(task, node, bytes, failure);
        }
    }
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

fn new_task(
    id: Uuid,
    run_id: Uuid,
    def: TaskRef,
    readable_id: &str,
    action: &str,
    _priority: i32,
) -> Task {
    Task {
        id,
        run_id,
        def,
        readable_id: readable_id.to_owned(),
        action: action.to_owned(),
        retry_count: 0,
        internal_retries: 0,
        status: TaskStatus::Pending,
        generation: 0,
        output: None,
        error: None,
        triggers: Map::new(),
        step_run_errors: Map::new(),
        invocation: 1,
        durable: DurableLog::default(),
        seq: 0,
        pending_gates: Vec::new(),
        held_gates: Vec::new(),
        log_lines: 0,
    }
}

impl State {
    /// Replays a finished task: it and its finished descendants run again, and the run reopens.
    pub fn replay_task(&mut self, task_id: Uuid, now: Instant) -> bool {
        let Some(task) = self.tasks.get(&task_id) else {
            return false;
        };
        if !task.status.is_final() {
            return false;
        }
        let (run_id, def) = (task.run_id, task.def);
        let Some(run) = self.runs.get_mut(&run_id) else {
            return false;
        };
        run.state = RunState::Running;
        run.outcome = None;
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
                t.status = TaskStatus::Pending;
                t.generation += 1;
                t.output = None;
                t.error = None;
                t.retry_count = 0;
                t.triggers = Map::new();
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
