//! The in-memory model: workflows, workers, runs, tasks, waits and subscribers, behind one lock.
//!
//! Every mutation happens through `&mut State` inside a short critical section; outbound messages go
//! through unbounded channels so nothing ever awaits while the lock is held.

use crate::engine::concurrency::{GateSpec, Gates};
use crate::engine::conditions::Wait;
use crate::engine::durable::{DurableLog, DurableStream};
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
pub const RETAINED_RUNS: usize = 50_000;

/// Liveness thresholds (Hatchet: 5 s eligibility, 30 s reassignment).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A worker gets new work only with a heartbeat younger than this.
    pub eligibility: Duration,
    /// Running tasks of a worker silent for this long are re-queued.
    pub reassign_after: Duration,
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
pub enum WorkerMsg {
    /// An action to deliver.
    Action(Box<AssignedAction>),
    /// End the stream with `UNAVAILABLE` (tests force reconnects this way).
    Close,
}

/// A registered worker.
#[derive(Debug)]
pub struct Worker {
    /// Worker name.
    pub name: String,
    /// Lower-cased action ids.
    pub actions: HashSet<String>,
    /// Capacity per slot type.
    pub slots: HashMap<String, i32>,
    /// Registered with the legacy `slots` field: one pool serves every slot type.
    pub legacy_pool: bool,
    /// Units in use per slot type.
    pub used: HashMap<String, i32>,
    /// Last heartbeat (or registration).
    pub last_heartbeat: Instant,
    /// Open `ListenV2` streams.
    pub streams: Vec<(u64, UnboundedSender<WorkerMsg>)>,
    /// Whether a stream was ever opened (heartbeats before the first stream are accepted).
    pub had_stream: bool,
    /// Set by `Unsubscribe`: no new work.
    pub paused: bool,
    /// Labels.
    pub labels: HashMap<String, crate::engine::model::LabelValue>,
    /// Round-robin tie breaker.
    pub last_assigned: u64,
    /// Whether its running tasks were already re-queued for this silence.
    pub reassigned: bool,
    /// When it registered.
    pub registered_at: SystemTime,
}

impl Worker {
    /// Pool key a slot type is accounted in.
    pub fn pool<'a>(&self, slot_type: &'a str) -> &'a str {
        if self.legacy_pool {
            crate::engine::model::DEFAULT_SLOT_TYPE
        } else {
            slot_type
        }
    }

    /// Free units of a slot type (`None` when the worker lacks it).
    pub fn free(&self, slot_type: &str) -> Option<i32> {
        let pool = self.pool(slot_type);
        let cap = *self.slots.get(pool)?;
        Some(cap - self.used.get(pool).copied().unwrap_or(0))
    }
}

/// Where a run came from and where its result goes.
#[derive(Debug, Clone, Default)]
pub struct RunOrigin {
    /// Triggering event (id, key).
    pub event: Option<(Uuid, String)>,
    /// Matching filter payload (`triggers.filter_payload`).
    pub filter_payload: Option<Value>,
    /// Parent workflow run id (children).
    pub parent_run: Option<String>,
    /// Parent task run id (children).
    pub parent_task: Option<Uuid>,
    /// Child index.
    pub child_index: Option<i32>,
    /// Child key.
    pub child_key: Option<String>,
    /// Durable parent entry waiting for this child: (task, node id).
    pub durable_parent: Option<(Uuid, i64)>,
    /// Preferred worker (sticky).
    pub desired_worker: Option<Uuid>,
    /// Trigger-level desired worker labels (override the task's for the same key).
    pub desired_labels: Vec<crate::engine::model::DesiredLabel>,
}

/// Run status as the engine tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
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
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A workflow run.
#[derive(Debug)]
pub struct Run {
    /// Run id.
    pub id: Uuid,
    /// Definition snapshot.
    pub workflow: Arc<WorkflowDef>,
    /// Decoded input (`Null` when the trigger sent none).
    pub input: Value,
    /// Additional metadata object.
    pub metadata: Value,
    /// Priority 1..3.
    pub priority: i32,
    /// Task ids by definition index.
    pub tasks: Vec<Uuid>,
    /// The on-failure task once created.
    pub on_failure: Option<Uuid>,
    /// State.
    pub state: RunState,
    /// Creation time.
    pub created: SystemTime,
    /// Origin.
    pub origin: RunOrigin,
    /// Concurrency gates still to pass, in order.
    pub pending_gates: Vec<GateSpec>,
    /// Concurrency gate keys held.
    pub held_gates: Vec<String>,
    /// Final result once finished.
    pub outcome: Option<WorkflowRunEvent>,
    /// When the run reached its final state.
    pub finished: Option<SystemTime>,
}

/// Which definition a task instantiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskRef {
    /// `WorkflowDef::tasks[i]`.
    Index(usize),
    /// `WorkflowDef::on_failure`.
    OnFailure,
}

/// Task status.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
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
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Skipped
        )
    }
}

/// A task's current assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Worker.
    pub worker: Uuid,
    /// Slot units held (empty once released).
    pub slots: Vec<(String, i32)>,
    /// Execution deadline.
    pub timeout_at: Instant,
}

/// A task run.
#[derive(Debug)]
pub struct Task {
    /// Task run external id.
    pub id: Uuid,
    /// Run.
    pub run_id: Uuid,
    /// Definition.
    pub def: TaskRef,
    /// Readable id.
    pub readable_id: String,
    /// Action id.
    pub action: String,
    /// Current attempt (0 = first).
    pub retry_count: i32,
    /// Re-queues after lost workers.
    pub internal_retries: i32,
    /// Status.
    pub status: TaskStatus,
    /// Bumped on every transition; timers carry the value they were armed with.
    pub generation: u64,
    /// Output once completed.
    pub output: Option<Value>,
    /// Error once failed.
    pub error: Option<String>,
    /// Satisfied condition data (`action_payload.triggers`).
    pub triggers: serde_json::Map<String, Value>,
    /// Upstream errors (on-failure task).
    pub step_run_errors: serde_json::Map<String, Value>,
    /// Durable invocation count (1-based).
    pub invocation: i32,
    /// Durable event log.
    pub durable: DurableLog,
    /// Queue ordering sequence.
    pub seq: u64,
    /// Concurrency gates still to pass.
    pub pending_gates: Vec<GateSpec>,
    /// Concurrency gate keys held.
    pub held_gates: Vec<String>,
    /// `PutLog` lines received (lines themselves go to `tracing` at debug level).
    pub log_lines: usize,
    /// Creation time.
    pub created: SystemTime,
    /// Recorded transitions (bounded), oldest first.
    pub history: Vec<crate::engine::history::TaskEventRec>,
}

/// A pushed event, kept for lookbacks.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Event id.
    pub id: Uuid,
    /// Key.
    pub key: String,
    /// Payload object.
    pub payload: Value,
    /// Metadata object.
    pub metadata: Value,
    /// Scope.
    pub scope: Option<String>,
    /// Receipt time.
    pub at: SystemTime,
}

/// Filter of a `SubscribeToWorkflowEvents` subscriber.
#[derive(Debug, Clone)]
pub enum EventFilter {
    /// One run.
    Run(Uuid),
    /// Runs whose metadata has this key/value.
    Meta(String, String),
}

/// A `SubscribeToWorkflowEvents` subscriber.
#[derive(Debug)]
pub struct EventSub {
    /// Filter.
    pub filter: EventFilter,
    /// Sink.
    pub tx: UnboundedSender<WorkflowEvent>,
}

/// The whole engine state.
#[derive(Debug)]
pub struct State {
    /// Tenant id.
    pub tenant_id: Uuid,
    /// Liveness thresholds.
    pub timing: Timing,
    /// Latest definition per workflow name.
    pub workflows: HashMap<String, Arc<WorkflowDef>>,
    /// Workers.
    pub workers: HashMap<Uuid, Worker>,
    /// Runs.
    pub runs: HashMap<Uuid, Run>,
    /// Tasks.
    pub tasks: HashMap<Uuid, Task>,
    /// Queued tasks by (priority desc, arrival).
    pub queue: BTreeMap<(Reverse<i32>, u64), Uuid>,
    /// Timers.
    pub timers: Timers,
    /// Recent events.
    pub events: VecDeque<StoredEvent>,
    /// Pending condition waits.
    pub waits: HashMap<Uuid, Wait>,
    /// Concurrency groups.
    pub gates: Gates,
    /// Current definitions of tenant-scoped concurrency limits by name (last registration wins).
    pub tenant_concurrency: HashMap<String, crate::engine::model::ConcurrencyDef>,
    /// `SubscribeToWorkflowRuns` waiters per run.
    pub run_waiters: HashMap<Uuid, Vec<UnboundedSender<WorkflowRunEvent>>>,
    /// `SubscribeToWorkflowEvents` subscribers.
    pub event_subs: Vec<EventSub>,
    /// Open durable streams.
    pub durable_streams: HashMap<u64, DurableStream>,
    /// Legacy durable results by (task, signal key).
    pub legacy_results: HashMap<(Uuid, String), Vec<u8>>,
    /// Legacy durable listeners: stream id → sink and awaited keys.
    pub legacy_listeners: HashMap<u64, crate::engine::durable::LegacyListener>,
    /// Child runs by (parent task, index/key) for dedupe.
    pub children: HashMap<(Uuid, String), Uuid>,
    /// Idempotency keys held by runs, per workflow.
    pub idempotency: crate::engine::idempotency::Holds,
    /// Finished runs, oldest first (bounded by [`RETAINED_RUNS`]).
    pub finished: VecDeque<Uuid>,
    /// Static rate limits from `PutRateLimit`: key → (units per window, window).
    pub static_limits: HashMap<String, (i64, Duration)>,
    /// Rate-limit usage per key.
    pub buckets: HashMap<String, crate::engine::ratelimit::Bucket>,
    /// How many finished runs are kept (default [`RETAINED_RUNS`]).
    pub retained_runs: usize,
    /// One-off scheduled runs (REST `scheduled`, gRPC `ScheduleWorkflow`), by id.
    pub scheduled: BTreeMap<Uuid, crate::engine::schedules::ScheduledRun>,
    /// Cron schedules (REST-created and declared by `PutWorkflow`), by id.
    pub crons: BTreeMap<Uuid, crate::engine::schedules::CronSchedule>,
    /// Event filters created through the REST API, by id.
    pub api_filters: BTreeMap<Uuid, crate::engine::schedules::ApiFilter>,
    seq: u64,
}

impl State {
    /// Empty state.
    pub fn new(tenant_id: Uuid, timing: Timing) -> Self {
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
            durable_streams: HashMap::new(),
            legacy_results: HashMap::new(),
            legacy_listeners: HashMap::new(),
            children: HashMap::new(),
            idempotency: crate::engine::idempotency::Holds::default(),
            finished: VecDeque::new(),
            static_limits: HashMap::new(),
            buckets: HashMap::new(),
            retained_runs: RETAINED_RUNS,
            scheduled: BTreeMap::new(),
            crons: BTreeMap::new(),
            api_filters: BTreeMap::new(),
            seq: 0,
        }
    }

    /// A fresh monotonically increasing number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Remembers an event for lookbacks, dropping the oldest beyond the history size.
    pub fn remember_event(&mut self, event: StoredEvent) {
        if self.events.len() >= EVENT_HISTORY {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Records a finished run and forgets the oldest finished runs beyond `retained_runs`.
    pub fn retain_finished(&mut self, run_id: Uuid) {
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
    pub fn task_def(&self, task: &Task) -> Option<&crate::engine::model::TaskDef> {
        let run = self.runs.get(&task.run_id)?;
        match task.def {
            TaskRef::Index(i) => run.workflow.tasks.get(i),
            TaskRef::OnFailure => run.workflow.on_failure.as_ref(),
        }
    }
}
