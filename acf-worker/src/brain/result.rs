//! What a brain returns.

use serde::{Deserialize, Serialize};

use super::segment::ResponseSegment;
use crate::models::AccumulationHint;

/// A brain's answer to one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrainResult {
    /// The full response: the concatenation of the segments' contents.
    pub response: String,
    /// The response in deliverable parts.
    pub segments: Vec<ResponseSegment>,
    /// What the next turn's accumulation window should expect; stored with the session at commit.
    pub accumulation_hint: Option<AccumulationHint>,
    /// The brain expects the user to say more (a question was asked).
    pub expects_more_input: bool,
}

impl BrainResult {
    /// A result made of these segments; `response` is their concatenation.
    pub fn from_segments(segments: Vec<ResponseSegment>) -> Self {
        Self {
            response: segments
                .iter()
                .map(|segment| segment.content.as_str())
                .collect(),
            segments,
            accumulation_hint: None,
            expects_more_input: false,
        }
    }

    /// A single `text` segment.
    pub fn text(response: impl Into<String>) -> Self {
        Self::from_segments(vec![ResponseSegment::text(response)])
    }
}
