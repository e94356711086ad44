//! Option types shared by workflow and task definitions (concurrency, rate limits, labels, priorities, filters).

use std::collections::BTreeMap;
use std::time::Duration;

/// What the engine does when a concurrency group is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcurrencyLimitStrategy {
    /// Cancel the running run(s) of the group in favour of the new one.
    CancelInProgress,
    /// Queue new runs and schedule groups round-robin (the common choice for "one at a time per key").
    GroupRoundRobin,
    /// Cancel the newest run when the group is full.
    CancelNewest,
}

/// A concurrency limit keyed by a CEL expression over `input`, `additional_metadata` and `workflow_run_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Concurrency {
    /// CEL expression returning the group key, e.g. `input.session_id`.
    pub expression: String,
    /// Maximum concurrent runs per group.
    pub max_runs: i32,
    /// What to do when the group is full.
    pub limit_strategy: ConcurrencyLimitStrategy,
}

impl Concurrency {
    /// A limit of `max_runs` per value of `expression`.
    pub fn new(
        expression: impl Into<String>,
        max_runs: i32,
        limit_strategy: ConcurrencyLimitStrategy,
    ) -> Self {
        Self {
            expression: expression.into(),
            max_runs,
            limit_strategy,
        }
    }

    /// A global limit, as Python's `concurrency=<int>`: expression `'constant'`, `GROUP_ROUND_ROBIN`.
    pub fn max_runs(max_runs: i32) -> Self {
        Self::new(
            "'constant'",
            max_runs,
            ConcurrencyLimitStrategy::GroupRoundRobin,
        )
    }
}

/// Workflow-level concurrency: a single expression (sent in the deprecated `concurrency` field, as Python does for a
/// single `ConcurrencyExpression` or an int) or a list (sent in `concurrency_arr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkflowConcurrency {
    /// One limit (`concurrency`).
    Single(Concurrency),
    /// Several limits (`concurrency_arr`).
    List(Vec<Concurrency>),
}

/// Window of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RateLimitDuration {
    /// Per second.
    Second,
    /// Per minute (Python's default).
    #[default]
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per week.
    Week,
    /// Per month.
    Month,
    /// Per year.
    Year,
}

/// A value that is either fixed or a CEL expression over the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrExpr {
    /// A constant.
    Int(i32),
    /// A CEL expression, e.g. `input.units`.
    Expr(String),
}

/// A task rate limit, static (key created with `PutRateLimit`) or dynamic (key computed by CEL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// The static key, or the CEL key expression when `dynamic` is set.
    pub key: String,
    /// Whether `key` is a CEL expression.
    pub dynamic: bool,
    /// Units consumed per run (default 1).
    pub units: IntOrExpr,
    /// The limit (required for dynamic keys; static keys use the value set with `PutRateLimit`).
    pub limit: Option<IntOrExpr>,
    /// The window.
    pub duration: RateLimitDuration,
}

impl RateLimit {
    /// A static key consuming `units` per run.
    pub fn fixed(key: impl Into<String>, units: i32) -> Self {
        Self {
            key: key.into(),
            dynamic: false,
            units: IntOrExpr::Int(units),
            limit: None,
            duration: RateLimitDuration::Minute,
        }
    }

    /// A dynamic key (CEL), consuming `units` per run, limited to `limit` per `duration`.
    pub fn dynamic(
        key_expr: impl Into<String>,
        units: IntOrExpr,
        limit: IntOrExpr,
        duration: RateLimitDuration,
    ) -> Self {
        Self {
            key: key_expr.into(),
            dynamic: true,
            units,
            limit: Some(limit),
            duration,
        }
    }

    /// Sets the window.
    #[must_use]
    pub fn per(mut self, duration: RateLimitDuration) -> Self {
        self.duration = duration;
        self
    }
}

/// Comparator of a desired worker label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerLabelComparator {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    GreaterThan,
    /// `>=`
    GreaterThanOrEqual,
    /// `<`
    LessThan,
    /// `<=`
    LessThanOrEqual,
}

/// A worker label value (string or integer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    /// String label.
    Str(String),
    /// Integer label.
    Int(i32),
}

impl From<&str> for LabelValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for LabelValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<i32> for LabelValue {
    fn from(v: i32) -> Self {
        Self::Int(v)
    }
}

/// A task's affinity to workers carrying a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesiredWorkerLabel {
    /// The wanted value.
    pub value: LabelValue,
    /// Hard requirement (otherwise a weighted preference).
    pub required: bool,
    /// Weight of a soft preference (engine default 100).
    pub weight: Option<i32>,
    /// How the worker's value is compared (engine default `Equal`).
    pub comparator: Option<WorkerLabelComparator>,
}

impl DesiredWorkerLabel {
    /// A soft preference for `value`.
    pub fn new(value: impl Into<LabelValue>) -> Self {
        Self {
            value: value.into(),
            required: false,
            weight: None,
            comparator: None,
        }
    }
    /// Makes it a hard requirement.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the weight.
    #[must_use]
    pub fn weight(mut self, weight: i32) -> Self {
        self.weight = Some(weight);
        self
    }
    /// Sets the comparator.
    #[must_use]
    pub fn comparator(mut self, comparator: WorkerLabelComparator) -> Self {
        self.comparator = Some(comparator);
        self
    }
}

/// Desired worker labels keyed by label name.
pub type DesiredWorkerLabels = BTreeMap<String, DesiredWorkerLabel>;

/// Sticky assignment of a workflow's tasks to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StickyStrategy {
    /// Prefer the same worker.
    Soft,
    /// Require the same worker.
    Hard,
}

/// Run priority (1..3); Python's `Priority.LOW/MEDIUM/HIGH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// 1 (default).
    #[default]
    Low = 1,
    /// 2.
    Medium = 2,
    /// 3.
    High = 3,
}

impl Priority {
    /// The wire value (1..3).
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// An event filter created with the workflow (`default_filters`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultFilter {
    /// CEL expression over the event.
    pub expression: String,
    /// Scope the filter applies to.
    pub scope: String,
    /// Payload handed to matching runs as `filter_payload` (a JSON object).
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// How idempotency keys are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdempotencyMethod {
    /// The key expires after `ttl`.
    Ttl,
    /// The key is held while a run with it is not finished.
    Status,
}

/// Workflow idempotency: triggers whose key (CEL) collides are rejected with `ALREADY_EXISTS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Idempotency {
    /// CEL expression returning the key.
    pub expression: String,
    /// How long a key is held.
    pub ttl: Duration,
    /// Release method (engine default `Ttl`).
    pub method: Option<IdempotencyMethod>,
}
