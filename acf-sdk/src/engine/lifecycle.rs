//! Run and task start-up: triggering (with child dedupe), run- and task-level concurrency gates,
//! DAG activation (conditions or queue) and the queue itself. Outcomes live in `completion`.

use crate::engine::concurrency::{Decision, GateSpec, Holder};
use crate::engine::expr;
use crate::engine::model::{ConcurrencyDef, CondAction, CondKind};
use crate::engine::state::{Run, RunOrigin, RunState, State, Task, TaskRef, TaskStatus};
use crate::engine::timers::TimerKind;
use serde_json::{Map, Value, json};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// A validated trigger.
#[derive(Debug, Clone)]
pub(crate) struct TriggerSpec {
    /// Exact workflow name.
    pub(crate) workflow: String,
    /// Input (`Null` when none was sent).
    pub(crate) input: Value,
    /// Metadata object.
    pub(crate) metadata: Value,
    /// Priority override.
    pub(crate) priority: Option<i32>,
    /// Origin.
    pub(crate) origin: RunOrigin,
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TriggerError {
    /// No workflow with that name.
    #[error("workflow names not found: {0}")]
    UnknownWorkflow(String),
    /// The workflow's idempotency key could not be computed.
    #[error("Invalid request: idempotency.expression: {0}")]
    IdempotencyKey(String),
    /// An earlier run still holds the trigger's idempotency key.
    #[error("idempotency key collision")]
    IdempotencyCollision {
        /// The run holding the key.
        existing: Uuid,
        /// The id the refused run would have had.
        colliding: Uuid,
    },
}

/// Converts a wall-clock time to a protobuf timestamp.
pub(crate) fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(at)
}

impl State {
    /// Creates a run; it starts at once unless a concurrency gate holds it back.
    pub(crate) fn trigger(
        &mut self,
        spec: TriggerSpec,
        now: Instant,
    ) -> Result<Uuid, TriggerError> {
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
        if let Some(rule) = &workflow.idempotency {
            let key = expr::eval_string(
                &rule.expression,
                &[
                    ("input", &input_for_cel),
                    ("additional_metadata", &metadata),
                ],
            )
            .map_err(|e| TriggerError::IdempotencyKey(e.to_string()))?;
            let runs = &self.runs;
            self.idempotency
                .claim(&workflow.name, key, rule, id, now, |run| {
                    runs.get(&run).map(|r| r.state)
                })
                .map_err(|existing| TriggerError::IdempotencyCollision {
                    existing,
                    colliding: id,
                })?;
        }
        let run_id_value = Value::String(id.to_string());
        let gates = self.gate_specs(
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
            finished: None,
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
                    task.set_status(TaskStatus::Failed);
                    task.error = Some(message);
                }
                self.cancel_run(id, now);
            }
        }
        Ok(id)
    }

    fn advance_run_gates(&mut self, run_id: Uuid, now: Instant) {
        loop {
            let Some(run) = self.runs.get(&run_id) else {
                return;
            };
            if run.state != RunState::Pending {
                return;
            }
            let Some(gate) = run.pending_gates.first().cloned() else {
                self.start_run(run_id, now);
                return;
            };
            let holder = Holder {
                id: run_id,
                priority: run.priority,
            };
            let decision = self.gates.enter(&gate, holder);
            let admitted = decision.filled(run_id);
            let rejected = decision.cancelled(run_id);
            if admitted {
                self.pass_run_gate(run_id);
            }
            self.apply_decision(decision, run_id, now);
            if rejected {
                self.cancel_run(run_id, now);
            }
            if !admitted {
                return;
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

    fn pass_task_gate(&mut self, task_id: Uuid) {
        if let Some(task) = self.tasks.get_mut(&task_id)
            && !task.pending_gates.is_empty()
        {
            let gate = task.pending_gates.remove(0);
            task.held_gates.push(gate.key);
        }
    }

    /// Carries out what a gate decided for holders other than `except` (whose caller handles it).
    fn apply_decision(&mut self, decision: Decision, except: Uuid, now: Instant) {
        for holder in decision.filled {
            if holder != except {
                self.promoted(holder, now);
            }
        }
        for holder in decision.cancelled {
            if holder != except {
                self.cancel_holder(holder, now);
            }
        }
    }

    /// Cancels a holder a gate evicted or dropped from its line (a run or a task).
    fn cancel_holder(&mut self, holder: Uuid, now: Instant) {
        if self.runs.contains_key(&holder) {
            self.cancel_run(holder, now);
        } else {
            self.cancel_task(holder, "Cancelled by concurrency limit", now);
        }
    }

    /// A holder let in from a gate's waiting line continues with its remaining gates.
    fn promoted(&mut self, holder: Uuid, now: Instant) {
        if self.runs.contains_key(&holder) {
            self.pass_run_gate(holder);
            self.advance_run_gates(holder, now);
        } else if self.tasks.contains_key(&holder) {
            self.pass_task_gate(holder);
            self.advance_task_gates(holder, now);
        }
    }

    pub(crate) fn leave_gates(&mut self, held: Vec<String>, holder: Uuid, now: Instant) {
        for gate in held {
            let decision = self.gates.leave(&gate, holder);
            self.apply_decision(decision, holder, now);
        }
    }

    /// Evaluates a chain of limits for one holder; tenant-scoped entries use the tenant's current
    /// definition of their name. `Err` is the failure message of the run or task.
    fn gate_specs(
        &self,
        scope: &str,
        defs: &[ConcurrencyDef],
        vars: &[(&str, &Value)],
    ) -> Result<Vec<GateSpec>, String> {
        defs.iter()
            .enumerate()
            .map(|(i, def)| {
                let (def, prefix) = match &def.tenant_name {
                    Some(name) => (
                        self.tenant_concurrency.get(name).unwrap_or(def),
                        format!("tenant:{name}"),
                    ),
                    None => (def, format!("{scope}#{i}")),
                };
                let key = expr::eval_string(&def.expression, vars)
                    .map_err(|e| format!("could not evaluate concurrency key: {e}"))?;
                let max_runs = match &def.max_runs_expression {
                    Some(e) => expr::eval_max_runs(e, vars)
                        .map_err(|e| format!("could not evaluate concurrency max runs: {e}"))?,
                    None => def.max_runs,
                };
                Ok(GateSpec {
                    key: format!("{prefix}#{key}"),
                    max_runs,
                    strategy: def.strategy,
                })
            })
            .collect()
    }

    pub(crate) fn create_tasks(&mut self, run_id: Uuid) {
        let Some(run) = self.runs.get(&run_id) else {
            return;
        };
        if !run.tasks.is_empty() {
            return;
        }
        let workflow = run.workflow.clone();
        let mut ids = Vec::with_capacity(workflow.tasks.len());
        for (i, def) in workflow.tasks.iter().enumerate() {
            let id = Uuid::new_v4();
            self.tasks.insert(
                id,
                Task::new(id, run_id, TaskRef::Index(i), &def.readable_id, &def.action),
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
    pub(crate) fn activate_task(&mut self, task_id: Uuid, now: Instant) {
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
            task.set_status(TaskStatus::Waiting);
        }
        self.create_wait(
            crate::engine::conditions::WaitOwner::Dag(task_id),
            def.conditions,
            satisfied,
            now,
        );
    }

    /// The conditions of a waiting DAG task resolved.
    pub(crate) fn dag_conditions_resolved(
        &mut self,
        task_id: Uuid,
        action: CondAction,
        triggers: Map<String, Value>,
        now: Instant,
    ) {
        if self
            .tasks
            .get(&task_id)
            .is_none_or(|t| *t.status() != TaskStatus::Waiting)
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
        let gates = self.gate_specs(
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
                    task.set_status(TaskStatus::Blocked);
                }
                self.advance_task_gates(task_id, now);
            }
            Err(message) => self.fail_task(task_id, message, now),
        }
    }

    fn advance_task_gates(&mut self, task_id: Uuid, now: Instant) {
        loop {
            let Some(task) = self.tasks.get(&task_id) else {
                return;
            };
            if *task.status() != TaskStatus::Blocked {
                return;
            }
            let Some(gate) = task.pending_gates.first().cloned() else {
                self.enqueue(task_id, now);
                return;
            };
            let holder = Holder {
                id: task_id,
                priority: self.runs.get(&task.run_id).map_or(1, |r| r.priority),
            };
            let decision = self.gates.enter(&gate, holder);
            let admitted = decision.filled(task_id);
            let rejected = decision.cancelled(task_id);
            if admitted {
                self.pass_task_gate(task_id);
            }
            self.apply_decision(decision, task_id, now);
            if rejected {
                self.cancel_task(task_id, "Cancelled by concurrency limit", now);
            }
            if !admitted {
                return;
            }
        }
    }

    /// Puts a task in the queue and arms its schedule timeout.
    pub(crate) fn enqueue(&mut self, task_id: Uuid, now: Instant) {
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
        let generation = task.set_status(TaskStatus::Queued);
        task.seq = seq;
        self.queue
            .insert((std::cmp::Reverse(priority), seq), task_id);
        self.note(task_id, "QUEUED", "task queued");
        self.timers.arm(
            now + schedule_timeout,
            TimerKind::ScheduleTimeout {
                task: task_id,
                generation,
            },
        );
    }

    pub(crate) fn dequeue(&mut self, task_id: Uuid) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let priority = self.runs.get(&task.run_id).map_or(1, |r| r.priority);
        self.queue.remove(&(std::cmp::Reverse(priority), task.seq));
    }
}
