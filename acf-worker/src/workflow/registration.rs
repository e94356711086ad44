//! What the worker registers: the macro-declared workflow with the retries, backoff and concurrency taken from
//! configuration instead of the compile-time defaults.

use std::sync::Arc;

use acf_sdk::model::{Concurrency, ConcurrencyLimitStrategy, WorkflowConcurrency};
use acf_sdk::{Context, StepError, Workflow, WorkflowDefinition};
use futures::future::BoxFuture;

use super::{LogicalTurnWorkflow, SESSION_KEY_EXPRESSION};
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

/// [`LogicalTurnWorkflow`] registered with [`WorkflowOptions`]; dispatch goes straight to it.
#[derive(Debug, Clone)]
pub struct ConfiguredWorkflow {
    inner: Arc<LogicalTurnWorkflow>,
    options: WorkflowOptions,
}

impl ConfiguredWorkflow {
    /// `workflow` with `options`.
    pub fn new(workflow: Arc<LogicalTurnWorkflow>, options: WorkflowOptions) -> Self {
        Self {
            inner: workflow,
            options,
        }
    }

    /// The workflow.
    pub fn inner(&self) -> &Arc<LogicalTurnWorkflow> {
        &self.inner
    }

    /// The options.
    pub fn options(&self) -> &WorkflowOptions {
        &self.options
    }
}

impl Workflow for ConfiguredWorkflow {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn definition(&self) -> WorkflowDefinition {
        let mut definition = self.inner.definition();
        for task in &mut definition.tasks {
            task.retries = self.options.retries;
            task.backoff_factor = Some(self.options.backoff_factor);
            task.backoff_max_seconds = Some(self.options.backoff_max_seconds);
        }
        definition.concurrency = self.options.concurrency.as_ref().map(|c| {
            WorkflowConcurrency::Single(Concurrency::new(
                c.expression.clone(),
                c.max_runs,
                c.strategy,
            ))
        });
        definition
    }

    fn dispatch<'a>(
        &'a self,
        step: &'a str,
        ctx: Context,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        self.inner.dispatch(step, ctx)
    }
}
