//! The agent brain: what answers a logical turn.
//!
//! A [`Brain`] receives a [`TurnContext`] (the turn, its messages, the session and channel, a live
//! `has_pending_messages` query and `emit_event`) and returns a [`BrainResult`]. Built-ins: [`EchoBrain`]
//! (deterministic, the default) and [`HttpBrain`] (delegates to an HTTP endpoint; contract on the type).

mod build;
mod context;
mod echo;
mod error;
mod http;
mod result;
mod segment;

use async_trait::async_trait;

pub use self::build::from_settings;
pub use self::context::{
    EventBuffer, EventEmitter, LogEvents, NoPendingMessages, PendingMessages, StorePendingMessages,
    TurnContext, TurnMessage,
};
pub use self::echo::EchoBrain;
pub use self::error::BrainError;
pub use self::http::{HttpBrain, HttpBrainConfig, RESERVED_HEADERS};
pub use self::result::BrainResult;
pub use self::segment::ResponseSegment;

/// Answers logical turns.
#[async_trait]
pub trait Brain: Send + Sync {
    /// A short name for logs (`echo`, `http`).
    fn name(&self) -> &str;

    /// Produces the turn's response.
    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError>;
}
