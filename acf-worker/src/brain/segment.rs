//! A deliverable part of a response.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One part of a response (a channel may send each as its own message), with the original's JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseSegment {
    /// The text.
    pub content: String,
    /// Kind of part; `text` unless the brain says otherwise.
    #[serde(default = "text")]
    pub segment_type: String,
    /// Free-form data for the channel.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

fn text() -> String {
    "text".to_owned()
}

impl ResponseSegment {
    /// A plain `text` segment.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            segment_type: text(),
            metadata: Map::new(),
        }
    }
}
