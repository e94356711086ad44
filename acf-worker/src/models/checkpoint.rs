//! Records a turn keeps for checkpoint reuse and safe superseding.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::time::{now_utc, serde_timestamp};

/// Cached output of one brain phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseArtifact {
    /// Which phase produced it.
    pub phase_number: i64,
    /// Phase name, for logs.
    pub phase_name: String,
    /// Phase-specific output.
    pub artifact_data: Map<String, Value>,
    /// When it was produced (defaults to now when missing from JSON).
    #[serde(with = "serde_timestamp", default = "now_utc")]
    pub created_at: DateTime<Utc>,
    /// Hash of the phase inputs, to validate reuse.
    #[serde(default)]
    pub input_hash: Option<String>,
}

/// A scenario step's state captured when the turn started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioStepRef {
    /// Scenario id.
    pub scenario_id: Uuid,
    /// Scenario version.
    pub scenario_version: i64,
    /// Step id.
    pub step_id: Uuid,
    /// Step name, if known.
    #[serde(default)]
    pub step_name: Option<String>,
}
