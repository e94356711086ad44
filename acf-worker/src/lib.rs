//! acf-worker: the ACF logical-turn worker (`ruche-worker`) built on acf-sdk.
pub mod brain;
pub mod cli;
pub mod config;
#[cfg(feature = "embedded")]
pub mod demo;
pub mod events;
pub mod intake;
pub mod liveness;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod mutex;
pub mod run;
pub mod stores;
pub mod telemetry;
pub mod turn_manager;
pub mod workflow;
