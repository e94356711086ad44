//! acf-sdk: a wire-exact Hatchet client and worker runtime, with an embedded Hatchet-compatible engine
//! behind the `engine` feature.
//!
//! Layers (dependencies point downwards):
//! * **model** — [`model`], [`Workflow`], [`WorkflowBuilder`]: what a workflow is, and its registration request;
//! * **runtime** — [`Context`], the worker;
//! * **connection / clients** — [`config`], the channel and the trigger/event clients;
//! * **wire** — [`proto`], generated from Hatchet's contracts.

#[cfg(feature = "engine")]
pub mod engine;
pub mod proto;

#[doc(hidden)]
pub mod __private;
pub mod channel;
pub mod client;
pub mod config;
pub mod context;
pub mod duration;
mod durable;
pub mod error;
pub mod log_layer;
pub mod model;
pub mod namespace;
pub mod retry;
mod sdk_error;
pub mod testing;
pub mod worker;
pub mod workflow;

pub use client::{Client, PushOptions, RunOutput, TriggerOptions, TypedWorkflowClient, WorkflowRunRef};
pub use config::ClientConfig;
pub use context::{Context, LogLevel, RunInfo, WaitResult};
pub use error::{ResultExt, StepError, StepErrorKind};
pub use model::{Condition, ConditionGroup, TaskDefinition, WorkflowDefinition};
pub use sdk_error::{Error, Result};
pub use worker::{Worker, WorkerBuilder, WorkerHandle, WorkerStatus};
pub use workflow::{FnWorkflow, Workflow, WorkflowBuilder};

#[doc(inline)]
pub use acf_macros::{on_failure, step, workflow};
