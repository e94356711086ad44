//! Turn models with the original worker's JSON shapes: [`LogicalTurn`] and its guarded lifecycle, accumulation
//! inputs, side effects, supersede decisions, and the workflow's input and output.

mod accumulation;
mod checkpoint;
mod error;
mod side_effect;
mod supersede;
pub mod time;
mod turn;
mod workflow_io;

pub use accumulation::{AccumulationHint, MessageShape, TurnLimits, UserCadenceStats};
pub use checkpoint::{PhaseArtifact, ScenarioStepRef};
pub use error::{InputError, TimestampError, TurnError};
pub use side_effect::{SideEffect, SideEffectPolicy};
pub use supersede::{SupersedeAction, SupersedeDecision, tool_idempotency_key};
pub use time::{format_timestamp, now_utc, parse_timestamp};
pub use turn::{CompletionReason, LogicalTurn, LogicalTurnStatus};
pub use workflow_io::{
    Conversation, NewMessage, TurnOutcome, ValidatedInput, WorkflowInput, WorkflowOutput,
    build_session_key,
};
