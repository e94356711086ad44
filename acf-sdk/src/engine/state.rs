//! The in-memory model: workflows, workers, runs, tasks, waits and subscribers, behind one lock.
//!
//! Every mutation happens through `&mut State` inside a short critical section; outbound messages go
//! through unbounded channels so nothing ever awaits while the lock is held.

use crate::engine::concurrency::{GateSpec, Gates};
use crate::engine::conditions::Wait;
use crate::engine::durable_log::DurableLog;
use crate::engine::model::WorkflowDef;
use crate::engine::timers::Timers;
use crate::proto::{AssignedAction, WorkflowEvent, WorkflowRunEvent};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

/// How many pushed events are kept for `consider_events_since` lookbacks.
const EVENT_HISTORY: usize = 10_000;

/// Finished runs kept for `GetRunDetails` and late subscribers; older ones are forgotten so a
/// long-running engine does not grow without bound.
pub(crate) const RETAINED_RUNS: usize = 50_000;

/// Liveness thresholds (Hatchet: 5 s eligibility, 30 s reassignment).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// A worker gets new work only with a heartbeat younger than this.
    pub(crate) eligibility: Duration,
    /// Running tasks of a worker silent for this long are re-queued.
    pub(crate) reassign_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            eligibility: Duration::from_secs(5),
            reassign_after: Duration::from_secs(30),
        }
    }
}

/// What a `ListenV2` stream receives.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// An action to deliver.
    Action(Box<AssignedAction>),
    /// End the stream with `UNAVAILABLE` (tests force reconnects this way).
    Close,
}

/// A registered worker.
#[derive(Debug)]
pub(crate) struct Worker {
    /// Worker name.
    pub(crate) name: String,
    /// Lower-cased action ids.
    pub(crate) actions: HashSet<String>,
    /// Capacity per slot type.
    pub(crate) slots: HashMap<String, i32>,
    /// Registered with the legacy `slots` field: one pool serves every slot type.
    pub(crate) legacy_pool: bool,
    /// Units in use per slot type.
    pub(crate) used: HashMap<String, i32>,
    /// Last heartbeat (or registration).
    pub(crate) last_heartbeat: Instant,
    /// Open `ListenV2` streams.
    pub(crate) streams: Vec<(u64, UnboundedSender<WorkerMsg>)>,
    /// Whether a stream was ever opened (heartbeats before the first stream are accepted).
    pub(crate) had_stream: bool,
    /// Set by `Unsubscribe`: no new work.
    pub(crate) paused: bool,
    /// Labels.
    pub(crate) labels: HashMap<String, crate::engine::model::LabelValue>,
    /// Round-robin tie breaker.
    pub(crate) last_assigned: u64,
    /// Whether its running tasks were already re-queued for this silence.
    pub(crate) reassigned: bool,
    /// When it registered.
    pub(crate) registered_at: SystemTime,
}

impl Worker {
    /// Whether the worker may be given new work now: not paused, listening, heartbeating within `eligibility`,
    /// and not declared lost (its tasks re-queued for silence) since its last heartbeat. The last matters when
    /// `reassign_after` is below the eligibility age: a re-queued task would otherwise go straight back to the
    /// silent worker, and nothing would re-queue it a second time before its execution timeout.
    pub(crate) fn takes_work(&self, now: Instant, eligibility: Duration) -> bool {
        !self.paused
            && !self.streams.is_empty()
            && now.saturating_duration_since(self.last_heartbeat) < eligibility
            && !self.reassigned
    }

    /// Pool key a slot type is accounted in.
    pub(crate) fn pool<'a>(&self, slot_type: &'a str) -> &'a str {
        if self.legacy_pool {
            crate::engine::model::DEFAULT_SLOT_TYPE
        } else {
            slot_type
        }
    }

    /// Free units of a slot type (`None` when the worker lacks it).
    pub(crate) fn free(&self, slot_type: &str) -> Option<i32> {
        let pool = self.pool(slot_type);
        let cap = *self.slots.get(pool)?;
        Some(cap - self.used.get(pool).copied().unwrap_or(0))
    }
}

/// Where a run came from and where its result goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOrigin {
    /// Triggering event (id, key).
    pub(crate) event: Option<(Uuid, String)>,
    /// Matching filter payload (`triggers.filter_payload`).
    pub(crate) filter_payload: Option<Value>,
    /// Parent workflow run id (children).
    pub(crate) parent_run: Option<String>,
    /// Parent task run id (children).
    pub(crate) parent_task: Option<Uuid>,
    /// Child index.
    pub(crate) child_index: Option<i32>,
    /// Child key.
    pub(crate) child_key: Option<String>,
    /// Durable parent entry waiting for this child: (task, node id).
    pub(crate) durable_parent: Option<(Uuid, i64)>,
    /// Preferred worker (sticky).
    pub(crate) desired_worker: Option<Uuid>,
    /// Trigger-level desired worker labels (override the task's for the same key).
    pub(crate) desired_labels: Vec<crate::engine::model::DesiredLabel>,
}

/// Run status as the engine tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Waiting for a concurrency slot.
    Pending,
    /// Tasks created.
    Running,
    /// All tasks completed.
    Completed,
    /// A task failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunState {
    /// Final?
    pub(crate) fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A workflow run.
#[derive(Debug)]
pub(crate) struct Run {
    /// Run id.
    pub(crate) id: Uuid,
    /// Definition snapshot.
    pub(crate) workflow: Arc<WorkflowDef>,
    /// Decoded input (`Null` when the trigger sent none).
    pub(crate) input: Value,
    /// Additional metadata object.
    pub(crate) metadata: Value,
    /// Priority 1..3.
    pub(crate) priority: i32,
    /// Task ids by definition index.
    pub(crate) tasks: Vec<Uuid>,
    /// The on-failure task once created.
    pub(crate) on_failure: Option<Uuid>,
    /// State.
    pub(crate) state: RunState,
    /// Creation time.
    pub(crate) created: SystemTime,
    /// Origin.
    pub(crate) origin: RunOrigin,
    /// Concurrency gates still to pass, in order.
    pub(crate) pending_gates: Vec<GateSpec>,
    /// Concurrency gate keys held.
    pub(crate) held_gates: Vec<String>,
    /// Final result once finished.
    pub(crate) outcome: Option<WorkflowRunEvent>,
    /// When the run reached its final state.
    pub(crate) finished: Option<SystemTime>,
}

/// Which definition a task instantiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskRef {
    /// `WorkflowDef::tasks[i]`.
    Index(usize),
    /// `WorkflowDef::on_failure`.
    OnFailure,
}

/// Task status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskStatus {
    /// Parents not finished.
    Pending,
    /// Waiting for its conditions.
    Waiting,
    /// Waiting for a task-level concurrency slot.
    Blocked,
    /// Waiting for a retry backoff.
    Backoff,
    /// In the queue.
    Queued,
    /// Assigned to a worker.
    Running(Box<Assignment>),
    /// Durable task evicted while waiting (slot freed).
    Evicted,
    /// Done.
    Completed,
    /// Failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Skipped by a condition.
    Skipped,
}

impl TaskStatus {
    /// Final?
    pub(crate) fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

/// A task's current assignment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assignment {
    /// Worker.
    pub(crate) worker: Uuid,
    /// Slot units held (empty once released).
    pub(crate) slots: Vec<(String, i32)>,
    /// Execution deadline.
    pub(crate) timeout_at: Instant,
}

/// A task run.
#[derive(Debug)]
pub(crate) struct Task {
    /// Task run external id.
    pub(crate) id: Uuid,
    /// Run.
    pub(crate) run_id: Uuid,
    /// Definition.
    pub(crate) def: TaskRef,
    /// Readable id.
    pub(crate) readable_id: String,
    /// Action id.
    pub(crate) action: String,
    /// Current attempt (0 = first).
    pub(crate) retry_count: i32,
    /// Re-queues after lost workers.
    pub(crate) internal_retries: i32,
    /// Status: changed only through [`Task::set_status`], which keeps `generation` in step.
    status: TaskStatus,
    /// Bumped on every transition; timers carry the value they were armed with.
    generation: u64,
    /// Output once completed.
    pub(crate) output: Option<Value>,
    /// Error once failed.
    pub(crate) error: Option<String>,
    /// Satisfied condition data (`action_payload.triggers`).
    pub(crate) triggers: serde_json::Map<String, Value>,
    /// Upstream errors (on-failure task).
    pub(crate) step_run_errors: serde_json::Map<String, Value>,
    /// Durable invocation count (1-based).
    pub(crate) invocation: i32,
    /// Durable event log.
    pub(crate) durable: DurableLog,
    /// Queue ordering sequence.
    pub(crate) seq: u64,
    /// Concurrency gates still to pass.
    pub(crate) pending_gates: Vec<GateSpec>,
    /// Concurrency gate keys held.
    pub(crate) held_gates: Vec<String>,
    /// `PutLog` lines received (lines themselves go to `tracing` at debug level).
    pub(crate) log_lines: usize,
    /// Creation time.
    pub(crate) created: SystemTime,
    /// Recorded transitions (bounded), oldest first.
    pub(crate) history: Vec<crate::engine::history::TaskEventRec>,
}

impl Task {
    /// A new pending task of run `run_id`.
    pub(crate) fn new(
        id: Uuid,
        run_id: Uuid,
        def: TaskRef,
        readable_id: &str,
        action: &str,
    ) -> Self {
        Self {
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
            triggers: serde_json::Map::new(),
            step_run_errors: serde_json::Map::new(),
            invocation: 1,
            durable: DurableLog::default(),
            seq: 0,
            pending_gates: Vec::new(),
            held_gates: Vec::new(),
            log_lines: 0,
            created: SystemTime::now(),
            history: Vec::new(),
        }
    }

    /// Current status.
    pub(crate) fn status(&self) -> &TaskStatus {
        &self.status
    }

    /// The generation timers armed now must carry.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The one place a task changes status: every transition bumps the generation, so a timer armed
    /// for an earlier state (schedule timeout, execution timeout, backoff) finds it stale. Returns the
    /// new generation, for the timer the new state arms.
    pub(crate) fn set_status(&mut self, status: TaskStatus) -> u64 {
        self.status = status;
        self.generation += 1;
        self.generation
    }

    /// The assignment of a running task.
    pub(crate) fn assignment_mut(&mut self) -> Option<&mut Assignment> {
        match &mut self.status {
            TaskStatus::Running(a) => Some(a),
            _ => None,
        }
    }

    /// Pushes a running task's execution deadline back by `by` (`RefreshTimeout`); the generation
    /// moves on so the timeout armed for the old deadline is ignored. Returns the new deadline and
    /// generation, or `None` when the task is not running.
    pub(crate) fn extend_deadline(&mut self, by: Duration) -> Option<(Instant, u64)> {
        let TaskStatus::Running(a) = &mut self.status else {
            return None;
        };
        a.timeout_at += by;
        let deadline = a.timeout_at;
        self.generation += 1;
        Some((deadline, self.generation))
    }
}

/// A pushed event, kept for lookbacks.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    /// Event id.
    pub(crate) id: Uuid,
    /// Key.
    pub(crate) key: String,
    /// Payload object.
    pub(crate) payload: Value,
    /// Metadata object.
    pub(crate) metadata: Value,
    /// Scope.
    pub(crate) scope: Option<String>,
    /// Receipt time.
    pub(crate) at: SystemTime,
}

/// Filter of a `SubscribeToWorkflowEvents` subscriber.
#[derive(Debug, Clone)]
pub(crate) enum EventFilter {
    /// One run.
    Run(Uuid),
    /// Runs whose metadata has this key/value.
    Meta(String, String),
}

/// A `SubscribeToWorkflowEvents` subscriber.
#[derive(Debug)]
pub(crate) struct EventSub {
    /// Filter.
    pub(crate) filter: EventFilter,
    /// Sink.
    pub(crate) tx: UnboundedSender<WorkflowEvent>,
}

/// The whole engine state.
#[derive(Debug)]
pub(crate) struct State {
    /// Tenant id.
    pub(crate) tenant_id: Uuid,
    /// Liveness thresholds.
    pub(crate) timing: Timing,
    /// Latest definition per workflow name.
    pub(crate) workflows: HashMap<String, Arc<WorkflowDef>>,
    /// Workers.
    pub(crate) workers: HashMap<Uuid, Worker>,
    /// Runs.
    pub(crate) runs: HashMap<Uuid, Run>,
    /// Tasks.
    pub(crate) tasks: HashMap<Uuid, Task>,
    /// Queued tasks by (priority desc, arrival).
    pub(crate) queue: BTreeMap<(Reverse<i32>, u64), Uuid>,
    /// Timers.
    pub(crate) timers: Timers,
    /// Recent events.
    pub(crate) events: VecDeque<StoredEvent>,
    /// Pending condition waits.
    pub(crate) waits: HashMap<Uuid, Wait>,
    /// Concurrency groups.
    pub(crate) gates: Gates,
    /// Current definitions of tenant-scoped concurrency limits by name (last registration wins).
    pub(crate) tenant_concurrency: HashMap<String, crate::engine::model::ConcurrencyDef>,
    /// `SubscribeToWorkflowRuns` waiters per run.
    pub(crate) run_waiters: HashMap<Uuid, Vec<UnboundedSender<WorkflowRunEvent>>>,
    /// `SubscribeToWorkflowEvents` subscribers.
    pub(crate) event_subs: Vec<EventSub>,
    /// Durable streams, legacy listeners and the legacy results they wait for.
    pub(crate) durable: crate::engine::durable_log::DurableChannels,
    /// Child runs by (parent task, index/key) for dedupe.
    pub(crate) children: HashMap<(Uuid, String), Uuid>,
    /// Idempotency keys held by runs, per workflow.
    pub(crate) idempotency: crate::engine::idempotency::Holds,
    /// Finished runs, oldest first (bounded by [`RETAINED_RUNS`]).
    pub(crate) finished: VecDeque<Uuid>,
    /// Rate limits: declared limits and usage.
    pub(crate) rate_limits: crate::engine::ratelimit::RateLimits,
    /// How many finished runs are kept (default [`RETAINED_RUNS`]).
    pub(crate) retained_runs: usize,
    /// One-off scheduled runs (REST `scheduled`, gRPC `ScheduleWorkflow`), by id.
    pub(crate) scheduled: BTreeMap<Uuid, crate::engine::schedules::ScheduledRun>,
    /// Cron schedules (REST-created and declared by `PutWorkflow`), by id.
    pub(crate) crons: BTreeMap<Uuid, crate::engine::schedules::CronSchedule>,
    /// Event filters created through the REST API, by id.
    pub(crate) api_filters: BTreeMap<Uuid, crate::engine::schedules::ApiFilter>,
    seq: u64,
}

impl State {
    /// Empty state.
    pub(crate) fn new(tenant_id: Uuid, timing: Timing) -> Self {
        Self {
            tenant_id,
            timing,
            workflows: HashMap::new(),
            workers: HashMap::new(),
            runs: HashMap::new(),
            tasks: HashMap::new(),
            queue: BTreeMap::new(),
            timers: Timers::default(),
            events: VecDeque::new(),
            waits: HashMap::new(),
            gates: Gates::default(),
            tenant_concurrency: HashMap::new(),
            run_waiters: HashMap::new(),
            event_subs: Vec::new(),
            durable: Default::default(),
            children: HashMap::new(),
            idempotency: crate::engine::idempotency::Holds::default(),
            finished: VecDeque::new(),
            rate_limits: Default::default(),
            retained_runs: RETAINED_RUNS,
            scheduled: BTreeMap::new(),
            crons: BTreeMap::new(),
            api_filters: BTreeMap::new(),
            seq: 0,
        }
    }

    /// A fresh monotonically increasing number.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Remembers an event for lookbacks, dropping the oldest beyond the history size.
    pub(crate) fn remember_event(&mut self, event: StoredEvent) {
        if self.events.len() >= EVENT_HISTORY {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The same state keeping at most `runs` finished runs.
    pub(crate) fn retaining(mut self, runs: usize) -> Self {
        self.retained_runs = runs;
        self
    }

    /// Records a finished run and forgets the oldest finished runs beyond `retained_runs`.
    pub(crate) fn retain_finished(&mut self, run_id: Uuid) {
        self.finished.push_back(run_id);
        while self.finished.len() > self.retained_runs {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            // A replayed run is running again: keep it.
            if self.runs.get(&old).is_some_and(|r| !r.state.is_final()) {
                continue;
            }
            if let Some(run) = self.runs.remove(&old) {
                for task in run.tasks.iter().chain(&run.on_failure) {
                    self.tasks.remove(task);
                }
                self.children.retain(|_, child| *child != old);
                self.run_waiters.remove(&old);
            }
        }
    }

    /// The definition a task instantiates.
    pub(crate) fn task_def(&self, task: &Task) -> Option<&crate::engine::model::TaskDef> {
        let run = self.runs.get(&task.run_id)?;
        match task.def {
            TaskRef::Index(i) => run.workflow.tasks.get(i),
            TaskRef::OnFailure => run.workflow.on_failure.as_ref(),
        }
    }
}
