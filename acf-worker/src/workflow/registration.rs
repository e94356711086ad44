//! What the worker registers: the macro-declared workflow, adjusted only where the operator configured
//! `[jobs.hatchet]` otherwise, through the SDK's registration hook ([`acf_sdk::Workflow::configured`]).
//!
//! Precedence: a value set in configuration (any layer: `default.toml`, the environment file, `RUCHE_*`) wins
//! over the `#[step]`/`#[workflow]` declaration; a value left unset keeps the declaration. So editing
//! `#[step(retries = ...)]` changes what registers unless the deployment pins `retry_max_attempts`.

use acf_sdk::model::{Concurrency, ConcurrencyLimitStrategy, WorkflowConcurrency};
use acf_sdk::{Configured, Workflow, WorkflowDefinition};

use super::SESSION_KEY_EXPRESSION;
use crate::config::HatchetSettings;

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
    /// One run at a time per session, queued runs scheduled round-robin across sessions (what the workflow
    /// declares).
    pub fn per_session() -> Self {
        Self {
            expression: SESSION_KEY_EXPRESSION.to_owned(),
            max_runs: 1,
            strategy: ConcurrencyLimitStrategy::GroupRoundRobin,
        }
    }
}

/// A configured replacement of the workflow's declared concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcurrencyOverride {
    /// No workflow concurrency: the session mutex alone serialises a session's runs.
    Off,
    /// This limit instead of the declared one.
    Limit(ConcurrencyOptions),
}

/// The registration overrides of the logical-turn workflow: each `None` keeps what the macros declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowOptions {
    /// Retries of each step after its first attempt.
    pub retries: Option<i32>,
    /// Cap on one backoff delay, seconds (the declared `backoff_factor` stays).
    pub backoff_max_seconds: Option<i32>,
    /// Workflow concurrency.
    pub concurrency: Option<ConcurrencyOverride>,
}

impl WorkflowOptions {
    /// The `[jobs.hatchet]` values that are set: `retry_max_attempts` attempts per step, delays capped at
    /// `retry_backoff_seconds`, `session_concurrency` on (one run at a time per session) or off.
    pub fn from_settings(hatchet: &HatchetSettings) -> Self {
        Self {
            retries: hatchet
                .retries()
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
            backoff_max_seconds: hatchet
                .retry_backoff_seconds
                .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            concurrency: hatchet.session_concurrency.map(|on| {
                if on {
                    ConcurrencyOverride::Limit(ConcurrencyOptions::per_session())
                } else {
                    ConcurrencyOverride::Off
                }
            }),
        }
    }

    /// Overrides what is set in `definition`'s steps (not the on-failure handler, which keeps its declaration)
    /// and concurrency; the hook given to [`acf_sdk::Workflow::configured`] at registration.
    pub fn apply(&self, definition: &mut WorkflowDefinition) {
        for task in &mut definition.tasks {
            if let Some(retries) = self.retries {
                task.retries = retries;
            }
            if let Some(max) = self.backoff_max_seconds {
                task.backoff_max_seconds = Some(max);
            }
        }
        match &self.concurrency {
            None => {}
            Some(ConcurrencyOverride::Off) => definition.concurrency = None,
            Some(ConcurrencyOverride::Limit(c)) => {
                definition.concurrency = Some(WorkflowConcurrency::Single(Concurrency::new(
                    c.expression.clone(),
                    c.max_runs,
                    c.strategy,
                )));
            }
        }
    }

    /// `workflow` as registered with these overrides (see [`apply`](Self::apply)).
    pub fn configure<W: Workflow>(self, workflow: W) -> Configured<W> {
        workflow.configured(move |definition| self.apply(definition))
    }
}
