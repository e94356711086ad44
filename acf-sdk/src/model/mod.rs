//! The model layer: what a workflow is, independent of transport (and its conversion to the wire request,
//! [`WorkflowDefinition::to_proto`]).

mod condition;
mod options;
mod register;
mod task;
mod workflow;

pub use condition::{Condition, ConditionAction, ConditionGroup, or};
pub use options::{
    Concurrency, ConcurrencyLimitStrategy, DefaultFilter, DesiredWorkerLabel, DesiredWorkerLabels,
    Idempotency, IdempotencyMethod, IntOrExpr, LabelValue, Priority, RateLimit, RateLimitDuration,
    StickyStrategy, WorkerLabelComparator, WorkflowConcurrency,
};
#[allow(unused_imports)] // push_condition is used by the durable listener
pub(crate) use register::{desired_label_proto, push_condition, rate_limit_duration_proto};
pub use task::{
    DEFAULT_EXECUTION_TIMEOUT, DEFAULT_SCHEDULE_TIMEOUT, DEFAULT_SLOT, DURABLE_SLOT, TaskDefinition,
};
pub use workflow::{DefinitionError, WorkflowDefinition, is_valid_name};
