//! One task (step) of a workflow: its registration options, independent of transport and handler.

use std::collections::BTreeMap;
use std::time::Duration;

use super::condition::{ConditionAction, ConditionGroup};
use super::options::{Concurrency, DesiredWorkerLabel, RateLimit};

/// Python's default execution timeout (sent as `1m`).
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Python's default schedule timeout (sent as `5m`).
pub const DEFAULT_SCHEDULE_TIMEOUT: Duration = Duration::from_secs(300);
/// Slot type of normal tasks.
pub const DEFAULT_SLOT: &str = "default";
/// Slot type of durable tasks.
pub const DURABLE_SLOT: &str = "durable";

/// Registration options of one task. Build with [`TaskDefinition::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinition {
    /// Readable id: the task name, lower-cased (as Python does).
    pub name: String,
    /// Readable ids of parent tasks.
    pub parents: Vec<String>,
    /// Application retries (0 = none).
    pub retries: i32,
    /// Exponential backoff factor between retries (1..1000).
    pub backoff_factor: Option<f32>,
    /// Cap of the backoff delay in seconds (1..86400).
    pub backoff_max_seconds: Option<i32>,
    /// Execution timeout (default 60 s).
    pub execution_timeout: Duration,
    /// Schedule timeout: cancelled if not assigned within it (default 5 min).
    pub schedule_timeout: Duration,
    /// Task-level concurrency limits.
    pub concurrency: Vec<Concurrency>,
    /// Rate limits.
    pub rate_limits: Vec<RateLimit>,
    /// Desired worker labels (affinity), by label key.
    pub desired_worker_labels: BTreeMap<String, DesiredWorkerLabel>,
    /// Conditions, each group with its action (`wait_for` = queue, `skip_if`, `cancel_if`).
    pub conditions: Vec<(ConditionAction, ConditionGroup)>,
    /// Whether the task is durable (runs on durable slots and may wait durably).
    pub durable: bool,
    /// Slots consumed per slot type; `None` = `{"default":1}` or `{"durable":1}` for durable tasks.
    pub slot_requests: Option<BTreeMap<String, i32>>,
}

impl TaskDefinition {
    /// A task with Python's defaults (no parents, no retries, 60 s execution timeout, 5 min schedule timeout).
    pub fn new(name: impl AsRef<str>) -> Self {
        Self {
            name: name.as_ref().to_lowercase(),
            parents: Vec::new(),
            retries: 0,
            backoff_factor: None,
            backoff_max_seconds: None,
            execution_timeout: DEFAULT_EXECUTION_TIMEOUT,
            schedule_timeout: DEFAULT_SCHEDULE_TIMEOUT,
            concurrency: Vec::new(),
            rate_limits: Vec::new(),
            desired_worker_labels: BTreeMap::new(),
            conditions: Vec::new(),
            durable: false,
            slot_requests: None,
        }
    }

    /// Adds parents (task names; lower-cased).
    #[must_use]
    pub fn parents<S: AsRef<str>>(mut self, parents: impl IntoIterator<Item = S>) -> Self {
        self.parents
            .extend(parents.into_iter().map(|p| p.as_ref().to_lowercase()));
        self
    }

    /// Sets the number of retries.
    #[must_use]
    pub fn retries(mut self, retries: i32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets exponential backoff: delay = min(max_seconds, factor ^ retry).
    #[must_use]
    pub fn backoff(mut self, factor: f32, max_seconds: i32) -> Self {
        self.backoff_factor = Some(factor);
        self.backoff_max_seconds = Some(max_seconds);
        self
    }

    /// Sets the execution timeout.
    #[must_use]
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = timeout;
        self
    }

    /// Sets the schedule timeout.
    #[must_use]
    pub fn schedule_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_timeout = timeout;
        self
    }

    /// Adds a concurrency limit.
    #[must_use]
    pub fn concurrency(mut self, limit: Concurrency) -> Self {
        self.concurrency.push(limit);
        self
    }

    /// Adds a rate limit.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limits.push(limit);
        self
    }

    /// Adds a desired worker label.
    #[must_use]
    pub fn desired_label(mut self, key: impl Into<String>, label: DesiredWorkerLabel) -> Self {
        self.desired_worker_labels.insert(key.into(), label);
        self
    }

    /// Queues the task only once the group is satisfied (Python `wait_for`).
    #[must_use]
    pub fn wait_for(mut self, group: impl Into<ConditionGroup>) -> Self {
        self.conditions.push((ConditionAction::Queue, group.into()));
        self
    }

    /// Skips the task when the group is satisfied (Python `skip_if`).
    #[must_use]
    pub fn skip_if(mut self, group: impl Into<ConditionGroup>) -> Self {
        self.conditions.push((ConditionAction::Skip, group.into()));
        self
    }

    /// Cancels the task when the group is satisfied (Python `cancel_if`).
    #[must_use]
    pub fn cancel_if(mut self, group: impl Into<ConditionGroup>) -> Self {
        self.conditions
            .push((ConditionAction::Cancel, group.into()));
        self
    }

    /// Marks the task durable (durable slot, durable waits).
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Sets the slots consumed per slot type (e.g. `{"default": 2}` for a heavy task).
    #[must_use]
    pub fn slot_requests(mut self, requests: impl IntoIterator<Item = (String, i32)>) -> Self {
        self.slot_requests = Some(requests.into_iter().collect());
        self
    }

    /// Python's `slot_cost`: `{"default": cost}`.
    #[must_use]
    pub fn slot_cost(self, cost: i32) -> Self {
        self.slot_requests([(DEFAULT_SLOT.to_owned(), cost)])
    }

    /// The effective slot requests (Python's defaults when unset).
    pub fn effective_slot_requests(&self) -> BTreeMap<String, i32> {
        self.slot_requests.clone().unwrap_or_else(|| {
            let slot = if self.durable {
                DURABLE_SLOT
            } else {
                DEFAULT_SLOT
            };
            BTreeMap::from([(slot.to_owned(), 1)])
        })
    }
}
