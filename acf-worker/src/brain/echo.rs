//! The deterministic default brain.

use async_trait::async_trait;

use super::{Brain, BrainError, BrainResult, TurnContext};

/// Answers every turn with its messages echoed back, so a run's output is predictable.
///
/// Exact output: one `text` segment whose content is `Echo: ` followed by the turn's message contents in order,
/// joined by ` / ` (e.g. `Echo: hi / I need help / order 123`); `response` is the same text. No accumulation hint,
/// `expects_more_input = false`. A turn without message contents answers `Echo: `.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoBrain;

#[async_trait]
impl Brain for EchoBrain {
    fn name(&self) -> &str {
        "echo"
    }

    async fn think(&self, ctx: &TurnContext) -> Result<BrainResult, BrainError> {
        let contents: Vec<&str> = ctx
            .messages()
            .iter()
            .map(|message| message.content.as_str())
            .collect();
        Ok(BrainResult::text(format!("Echo: {}", contents.join(" / "))))
    }
}
