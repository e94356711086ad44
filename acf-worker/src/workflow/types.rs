//! What the steps hand to each other. Each later step carries the lease it used, so a step that had to
//! re-acquire a lost lock passes the new lease on instead of the stale one from `acquire_mutex`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::brain::{ResponseSegment, TurnMessage};
use crate::models::{AccumulationHint, LogicalTurn};
use crate::mutex::Lease;

/// Output of `acquire_mutex`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acquired {
    /// The turn id, minted once per run here: retries of later steps reuse it, which makes the commit idempotent.
    pub turn_id: Uuid,
    /// The session the run serialises on.
    pub session_key: String,
    /// The lock the run holds; `None` when the run's message was already answered, so the run took no lock and
    /// ends `absorbed`.
    pub lease: Option<Lease>,
    /// When the lock was taken (ISO-8601 UTC).
    pub locked_at: String,
}

/// Where a run stands after `accumulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gathered {
    /// A turn is ready for the brain.
    Ready,
    /// The run's message was already answered by another turn: nothing to do.
    Absorbed,
    /// This turn id already committed (the run is being replayed): the commit's result stands.
    Committed,
}

/// Output of `accumulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accumulated {
    /// What the run does next.
    pub status: Gathered,
    /// The turn id.
    pub turn_id: Uuid,
    /// The closed turn (status `processing`), when `Ready`.
    pub turn: Option<LogicalTurn>,
    /// The turn's messages, in order.
    pub messages: Vec<TurnMessage>,
    /// The lease the step ended with (`None` when the run took no lock).
    pub lease: Option<Lease>,
    /// Milliseconds spent waiting for more messages.
    pub waited_ms: u64,
    /// The same wait in microseconds (benchmarks subtract it from a turn's latency; 0 from older workers).
    #[serde(default)]
    pub waited_us: u64,
    /// How late the window closed after its TurnManager deadline, in microseconds (0 when it closed early: the
    /// message cap, or no window at all). Benchmarks report its distribution.
    #[serde(default)]
    pub window_late_us: u64,
}

/// How the brain's part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// The brain answered.
    Complete,
    /// The brain failed for good; the turn is committed as failed.
    Failed,
    /// Nothing to run (`Absorbed` or `Committed` upstream).
    Skipped,
}

/// Output of `run_agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// How the brain's part ended.
    pub status: AgentStatus,
    /// The turn id (`accumulate`'s, which `commit_and_respond` also receives as a parent).
    pub turn_id: Uuid,
    /// The turn as the brain left it (status `complete` after a successful brain run); `None` when skipped.
    pub turn: Option<LogicalTurn>,
    /// The response text.
    pub response: Option<String>,
    /// The response segments.
    pub segments: Vec<ResponseSegment>,
    /// The brain's hint for the next window.
    pub next_hint: Option<AccumulationHint>,
    /// The brain's error, when it failed.
    pub error: Option<String>,
    /// The lease the step ended with (`None` when the run took no lock).
    pub lease: Option<Lease>,
    /// Milliseconds the brain took.
    pub brain_ms: u64,
}

/// Output of the `on_failure` handler: the failure as recorded for the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// The turn id, if the run got that far.
    pub turn_id: Option<Uuid>,
    /// The session, if the input was valid.
    pub session_key: Option<String>,
    /// The step(s) that failed and why.
    pub error: String,
    /// Whether the lock was released by this handler (false when it was not held or already gone).
    pub lock_released: bool,
    /// Messages closed as failed and delivered in the failure entry.
    pub messages_recovered: usize,
}
