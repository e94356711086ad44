//! Assignment of queued tasks to workers (action match, fresh heartbeat, open stream, free slots of
//! the requested types, priority then FIFO), the `action_payload` JSON (reference §3.5), and the
//! timer tick (execution/schedule timeouts, backoffs, sleeps, lost-worker reassignment).

use crate::engine::model::{DEFAULT_SLOT_TYPE, DesiredLabel, Sticky, label_score};
use crate::engine::ratelimit::RateCheck;
use crate::engine::state::{Assignment, State, TaskRef, TaskStatus, WorkerMsg};
use crate::engine::timers::TimerKind;
use crate::proto::{ActionType, AssignedAction};
use crate::workflow::json_text;
use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound::{Excluded, Unbounded};
use std::time::{Instant, SystemTime};
use uuid::Uuid;

/// Largest `AssignedAction` a worker accepts (Python's default receive limit is 4 MiB).
const MAX_ACTION: usize = 4 * 1024 * 1024;

/// Outcome of one assignment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assign {
    /// Sent to the worker.
    Done,
    /// No worker could take it now (stays queued).
    NoWorker,
    /// Failed instead (payload too large, bad rate-limit expression).
    Rejected,
    /// A rate-limit window is full (stays queued; other tasks may still go).
    RateLimited,
}

impl State {
    /// Slot units a task needs.
    fn slot_needs(&self, task_id: Uuid) -> Vec<(String, i32)> {
        let def = self.tasks.get(&task_id).and_then(|t| self.task_def(t));
        match def {
            Some(def) if !def.slot_requests.is_empty() => def.slot_requests.clone(),
            Some(def) if def.is_durable => vec![("durable".to_owned(), 1)],
            _ => vec![(DEFAULT_SLOT_TYPE.to_owned(), 1)],
        }
    }

    fn eligible(
        &self,
        worker_id: &Uuid,
        action: &str,
        needs: &[(String, i32)],
        now: Instant,
    ) -> bool {
        let Some(w) = self.workers.get(worker_id) else {
            return false;
        };
        w.takes_work(now, self.timing.eligibility)
            && w.actions.contains(action)
            && needs
                .iter()
                .all(|(t, u)| w.free(t).is_some_and(|f| f >= *u))
    }

    /// The task's desired labels, the trigger's overriding the task's for the same key.
    fn desired_labels(&self, task_id: Uuid) -> Vec<DesiredLabel> {
        let Some(task) = self.tasks.get(&task_id) else {
            return Vec::new();
        };
        let from_trigger = self
            .runs
            .get(&task.run_id)
            .map(|r| r.origin.desired_labels.clone())
            .unwrap_or_default();
        let mut labels: Vec<DesiredLabel> = self
            .task_def(task)
            .map(|d| {
                d.worker_labels
                    .iter()
                    .filter(|l| !from_trigger.iter().any(|t| t.key == l.key))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        labels.extend(from_trigger);
        labels
    }

    /// The only worker a task may run on (HARD sticky strategy with a desired worker).
    fn hard_sticky_worker(&self, task_id: Uuid) -> Option<Uuid> {
        let task = self.tasks.get(&task_id)?;
        let run = self.runs.get(&task.run_id)?;
        match run.workflow.sticky {
            Some(Sticky::Hard) => run.origin.desired_worker,
            _ => None,
        }
    }

    fn pick_worker(
        &self,
        task_id: Uuid,
        needs: &[(String, i32)],
        labels: &[DesiredLabel],
        now: Instant,
    ) -> Option<Uuid> {
        let task = self.tasks.get(&task_id)?;
        let run = self.runs.get(&task.run_id)?;
        // As Hatchet's scheduler: the trigger's desired worker counts only under a sticky
        // strategy, as the only candidate (HARD) or the preferred one (SOFT).
        match (run.workflow.sticky, run.origin.desired_worker) {
            (Some(Sticky::Hard), Some(d)) => {
                let fits = self.eligible(&d, &task.action, needs, now)
                    && self
                        .workers
                        .get(&d)
                        .is_some_and(|w| label_score(&w.labels, labels).is_some());
                return fits.then_some(d);
            }
            (Some(Sticky::Soft), Some(d)) if self.eligible(&d, &task.action, needs, now) => {
                return Some(d);
            }
            _ => {}
        }
        let primary = needs.first().map_or(DEFAULT_SLOT_TYPE, |(t, _)| t.as_str());
        self.workers
            .iter()
            .filter(|(id, _)| self.eligible(id, &task.action, needs, now))
            .filter_map(|(id, w)| label_score(&w.labels, labels).map(|score| (id, w, score)))
            .max_by_key(|(_, w, score)| {
                (
                    *score,
                    w.free(primary).unwrap_or(0),
                    Reverse(w.last_assigned),
                )
            })
            .map(|(id, _, _)| *id)
    }

    fn any_capacity(&self, now: Instant) -> bool {
        self.workers.values().any(|w| {
            w.takes_work(now, self.timing.eligibility)
                && w.slots
                    .iter()
                    .any(|(t, cap)| *cap > w.used.get(t).copied().unwrap_or(0))
        })
    }

    /// Assigns as many queued tasks as the workers can take.
    pub(crate) fn schedule(&mut self, now: Instant) {
        let mut cursor: Option<(Reverse<i32>, u64)> = None;
        let mut blocked: HashSet<String> = HashSet::new();
        loop {
            let next = match cursor {
                None => self.queue.iter().next(),
                Some(c) => self.queue.range((Excluded(c), Unbounded)).next(),
            }
            .map(|(k, v)| (*k, *v));
            let Some((key, task_id)) = next else { break };
            cursor = Some(key);
            let Some(action) = self.tasks.get(&task_id).map(|t| t.action.clone()) else {
                self.queue.remove(&key);
                continue;
            };
            // Tasks are blocked per action and label set: a task whose labels no worker has must
            // not hold back tasks of the same action without them.
            let labels = self.desired_labels(task_id);
            let pinned = self.hard_sticky_worker(task_id);
            let block_key = match (labels.is_empty(), pinned) {
                (true, None) => action,
                _ => format!("{action}|{labels:?}|{pinned:?}"),
            };
            if blocked.contains(&block_key) {
                continue;
            }
            let needs = self.slot_needs(task_id);
            let assigned = match self.pick_worker(task_id, &needs, &labels, now) {
                Some(worker) => match self.rate_check(task_id, now) {
                    RateCheck::Allowed => {
                        let outcome = self.assign(task_id, worker, needs, now);
                        if outcome == Assign::Done {
                            self.rate_consume(task_id, now);
                        }
                        outcome
                    }
                    RateCheck::Denied => Assign::RateLimited,
                    RateCheck::Failed(message) => {
                        self.fail_task(task_id, message, now);
                        Assign::Rejected
                    }
                },
                None => Assign::NoWorker,
            };
            if assigned == Assign::Done {
                self.queue.remove(&key);
            } else if assigned == Assign::NoWorker {
                blocked.insert(block_key);
                if !self.any_capacity(now) {
                    break;
                }
            }
        }
    }

    fn assign(
        &mut self,
        task_id: Uuid,
        worker_id: Uuid,
        needs: Vec<(String, i32)>,
        now: Instant,
    ) -> Assign {
        use prost::Message as _;
        let Some(action) = self.assigned_action(task_id, ActionType::StartStepRun) else {
            return Assign::NoWorker;
        };
        let len = action.encoded_len();
        if len > MAX_ACTION {
            // Workers cannot receive it (4 MiB client limit): fail instead of wedging the worker.
            let message = format!("Task payload of {len} bytes exceeds the 4 MiB message limit");
            self.fail_task(task_id, message, now);
            return Assign::Rejected;
        }
        let seq = self.next_seq();
        let Some(worker) = self.workers.get_mut(&worker_id) else {
            return Assign::NoWorker;
        };
        let mut msg = Some(WorkerMsg::Action(Box::new(action)));
        while let Some((_, tx)) = worker.streams.first() {
            match tx.send(msg.take().unwrap_or(WorkerMsg::Close)) {
                Ok(()) => break,
                Err(back) => {
                    msg = Some(back.0);
                    worker.streams.remove(0);
                }
            }
        }
        if msg.is_some() {
            return Assign::NoWorker;
        }
        for (slot_type, units) in &needs {
            let pool = worker.pool(slot_type).to_owned();
            *worker.used.entry(pool).or_insert(0) += units;
        }
        worker.last_assigned = seq;
        let Some(task) = self.tasks.get(&task_id) else {
            return Assign::NoWorker;
        };
        let timeout = self
            .task_def(task)
            .map_or(crate::engine::model::DEFAULT_EXECUTION_TIMEOUT, |d| {
                d.timeout
            });
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return Assign::NoWorker;
        };
        let generation = task.set_status(TaskStatus::Running(Box::new(Assignment {
            worker: worker_id,
            slots: needs,
            timeout_at: now + timeout,
        })));
        self.note(task_id, "ASSIGNED", "assigned to a worker");
        self.timers.arm(
            now + timeout,
            TimerKind::ExecTimeout {
                task: task_id,
                generation,
            },
        );
        Assign::Done
    }

    /// Tells the worker running `task_id` to cancel it.
    pub(crate) fn send_cancel(&mut self, task_id: Uuid, worker_id: Uuid) {
        let Some(action) = self.assigned_action(task_id, ActionType::CancelStepRun) else {
            return;
        };
        if let Some(worker) = self.workers.get_mut(&worker_id) {
            worker.streams.retain(|(_, tx)| !tx.is_closed());
            if let Some((_, tx)) = worker.streams.first() {
                let _ = tx.send(WorkerMsg::Action(Box::new(action)));
            }
        }
    }

    /// The `AssignedAction` for a task (START with payload, or CANCEL without).
    pub(crate) fn assigned_action(
        &self,
        task_id: Uuid,
        kind: ActionType,
    ) -> Option<AssignedAction> {
        let task = self.tasks.get(&task_id)?;
        let run = self.runs.get(&task.run_id)?;
        let def = self.task_def(task)?;
        let payload = if kind == ActionType::StartStepRun {
            self.action_payload(task_id)?
        } else {
            String::new()
        };
        Some(AssignedAction {
            tenant_id: self.tenant_id.to_string(),
            workflow_run_id: run.id.to_string(),
            get_group_key_run_id: String::new(),
            job_id: def.step_id.to_string(),
            job_name: task.readable_id.clone(),
            job_run_id: task.id.to_string(),
            task_id: def.step_id.to_string(),
            task_run_external_id: task.id.to_string(),
            action_id: task.action.clone(),
            action_type: kind as i32,
            action_payload: payload,
            task_name: task.readable_id.clone(),
            retry_count: task.retry_count,
            additional_metadata: Some(json_text(&run.metadata)),
            child_workflow_index: run.origin.child_index,
            child_workflow_key: run.origin.child_key.clone(),
            parent_workflow_run_id: run.origin.parent_run.clone(),
            priority: run.priority,
            workflow_id: Some(run.workflow.workflow_id.to_string()),
            workflow_version_id: Some(run.workflow.version_id.to_string()),
            durable_task_invocation_count: def.is_durable.then_some(task.invocation),
            triggering_event_external_id: run.origin.event.as_ref().map(|(id, _)| id.to_string()),
            triggering_event_key: run.origin.event.as_ref().map(|(_, key)| key.clone()),
            ..Default::default()
        })
    }

    /// `V1StepRunData` JSON for a task, written from borrowed parts (no copy of the run's input or of its parents'
    /// outputs); keys in sorted order, as a JSON object map would print them.
    pub(crate) fn action_payload(&self, task_id: Uuid) -> Option<String> {
        let task = self.tasks.get(&task_id)?;
        let run = self.runs.get(&task.run_id)?;
        let parent_indexes: Vec<usize> = match task.def {
            TaskRef::Index(i) => run.workflow.tasks.get(i)?.parents.clone(),
            TaskRef::OnFailure => (0..run.tasks.len()).collect(),
        };
        let mut parents = BTreeMap::new();
        let mut parent_ids = Vec::new();
        for i in parent_indexes {
            let Some(parent) = run.tasks.get(i).and_then(|id| self.tasks.get(id)) else {
                continue;
            };
            if task.def != TaskRef::OnFailure {
                parent_ids.push(parent.id.to_string());
            }
            if let (TaskStatus::Completed | TaskStatus::Skipped, Some(out @ Value::Object(_))) =
                (parent.status(), &parent.output)
            {
                parents.insert(parent.readable_id.as_str(), out);
            }
        }
        let mut triggers: BTreeMap<&str, &Value> =
            task.triggers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        triggers.insert(
            "filter_payload",
            run.origin.filter_payload.as_ref().unwrap_or(&Value::Null),
        );
        Some(json_text(&StepRunPayload {
            dag_parent_task_run_ids: (!parent_ids.is_empty()).then_some(parent_ids),
            input: &run.input,
            overrides: (),
            parents,
            step_run_errors: (!task.step_run_errors.is_empty()).then_some(&task.step_run_errors),
            triggered_by: "manual",
            triggers,
            user_data: (),
        }))
    }

    /// Fires due timers, re-queues tasks of silent workers, then schedules.
    pub(crate) fn tick(&mut self, now: Instant) {
        for timer in self.timers.due(now) {
            match timer {
                TimerKind::ExecTimeout { task, generation } => {
                    let Some(t) = self.tasks.get(&task) else {
                        continue;
                    };
                    if t.generation() != generation {
                        continue;
                    }
                    let TaskStatus::Running(a) = t.status() else {
                        continue;
                    };
                    let worker = a.worker;
                    let text = self
                        .task_def(t)
                        .map(|d| d.timeout_text.clone())
                        .unwrap_or_default();
                    tracing::warn!(%task, %worker, timeout = %text, "task_timed_out");
                    self.send_cancel(task, worker);
                    self.emit_step(
                        task,
                        crate::proto::ResourceEventType::TimedOut,
                        String::new(),
                    );
                    self.fail_attempt(task, format!("Task exceeded timeout of {text}"), false, now);
                }
                TimerKind::ScheduleTimeout { task, generation } => {
                    let Some(t) = self.tasks.get(&task) else {
                        continue;
                    };
                    if t.generation() == generation && *t.status() == TaskStatus::Queued {
                        let text = self
                            .task_def(t)
                            .map(|d| crate::duration::precise_expr(d.schedule_timeout))
                            .unwrap_or_default();
                        self.cancel_task(
                            task,
                            &format!("Task exceeded schedule timeout of {text}"),
                            now,
                        );
                    }
                }
                TimerKind::Backoff { task, generation } => {
                    if self.tasks.get(&task).is_some_and(|t| {
                        t.generation() == generation && *t.status() == TaskStatus::Backoff
                    }) {
                        self.enqueue(task, now);
                    }
                }
                TimerKind::Sleep { wait, cond } => self.fire_sleep(wait, cond, now),
            }
        }
        self.fire_schedules(SystemTime::now(), now);
        self.reassign_lost(now);
        self.schedule(now);
    }

    fn reassign_lost(&mut self, now: Instant) {
        let limit = self.timing.reassign_after;
        let lost: Vec<Uuid> = self
            .workers
            .iter_mut()
            .filter(|(_, w)| {
                !w.reassigned && now.saturating_duration_since(w.last_heartbeat) >= limit
            })
            .map(|(id, w)| {
                w.reassigned = true;
                *id
            })
            .collect();
        if lost.is_empty() {
            return;
        }
        let tasks: Vec<Uuid> = self
            .tasks
            .values()
            .filter(|t| matches!(t.status(), TaskStatus::Running(a) if lost.contains(&a.worker)))
            .map(|t| t.id)
            .collect();
        for task in tasks {
            tracing::info!(%task, "task_requeued_worker_silent");
            self.requeue_lost(task, now);
        }
    }
}

/// The `V1StepRunData` an action carries, borrowing from the engine's state. Fields in alphabetical order: the
/// text is the one a JSON object map of the same entries prints.
#[derive(serde::Serialize)]
struct StepRunPayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dag_parent_task_run_ids: Option<Vec<String>>,
    input: &'a Value,
    overrides: (),
    parents: BTreeMap<&'a str, &'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_run_errors: Option<&'a Map<String, Value>>,
    triggered_by: &'static str,
    triggers: BTreeMap<&'a str, &'a Value>,
    user_data: (),
}
