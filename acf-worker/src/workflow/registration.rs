//! What the worker registers: the macro-declared workflow with the retries, backoff and concurrency taken from
//! configuration instead of the compile-time defaults, through the SDK's registration hook
//! ([`acf_sdk::Workflow::configured`]).

use acf_sdk::model::{Concurrency, ConcurrencyLimitStrategy, WorkflowConcurrency};
use acf_sdk::{Configured, Workflow, WorkflowDefinition};

use super::SESSION_KEY_EXPRESSION;
use crate::config::HatchetSettings;

/// Hatchet's delay before retry `n` is `backoff_factor ^ n` seconds, capped at the maximum.
const BACKOFF_FACTOR: f32 = 2.0;

/// The workflow-level concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyOptions {
    /// CEL key expression over `input`.
    pub expression: String,
    /// Runs allowed at once per key.
    pub max_runs: i32,
    /// What the engine does with runs beyond the limit.
    pub strategy: ConcurrencyLimitStrategy,
}

impl ConcurrencyOptions {
    /// One run at a time per session, queued runs scheduled round-robin across sessions (the default).
    pub fn per_session() -> Self {
        Self {
            expression: SESSION_KEY_EXPRESSION.to_owned(),
            max_runs: 1,
            strategy: ConcurrencyLimitStrategy::GroupRoundRobin,
        }
    }
}

/// Registration options of the logical-turn workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOptions {
    /// Retries of each step after its first attempt.
    pub retries: i32,
    /// Exponential backoff factor between attempts.
    pub backoff_factor: f32,
    /// Cap on one backoff delay, seconds.
    pub backoff_max_seconds: i32,
    /// Workflow concurrency; `None` leaves serialisation to the session mutex alone.
    pub concurrency: Option<ConcurrencyOptions>,
}

impl WorkflowOptions {
    /// `[jobs.hatchet]`: `retry_max_attempts` attempts per step, delays doubling from 2 s up to
    /// `retry_backoff_seconds`; one run at a time per session.
    pub fn from_settings(hatchet: &HatchetSettings) -> Self {
        Self {
            retries: i32::try_from(hatchet.retries()).unwrap_or(i32::MAX),
            backoff_factor: BACKOFF_FACTOR,
            backoff_max_seconds: i32::try_from(hatchet.retry_backoff_seconds).unwrap_or(i32::MAX),
            concurrency: hatchet
                .session_concurrency
                .then(ConcurrencyOptions::per_session),
        }
    }
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        Self::from_settings(&HatchetSettings::default())
    }
}

impl WorkflowOptions {
    /// Overrides the declared retries, backoff and concurrency of `definition` with these options: the hook
    /// given to [`acf_sdk::Workflow::configured`] / [`acf_sdk::WorkerBuilder::workflow_with`] at registration.
    pub fn apply(&self, definition: &mut WorkflowDefinition) {
        for task in &mut definition.tasks {
            task.retries = self.retries;
            task.backoff_factor = Some(self.backoff_factor);
            task.backoff_max_seconds = Some(self.backoff_max_seconds);
        }
        definition.concurrency = self.concurrency.as_ref().map(|c| {
            WorkflowConcurrency::Single(Concurrency::new(
                c.expression.clone(),
                c.max_runs,
                c.strategy,
            ))
        });
    }

    /// `workflow` registered with these options (see [`apply`](Self::apply)).
    pub fn configure<W: Workflow>(self, workflow: W) -> Configured<W> {
        workflow.configured(move |definition| self.apply(definition))
    }
}
