//! acf-worker: the ACF logical-turn worker (`ruche-worker`) built on acf-sdk.
pub mod events;
pub mod models;
pub mod brain;
pub mod mutex;
pub mod stores;
pub mod turn_manager;
pub mod config;
pub mod logging;
pub mod workflow;
pub mod intake;
pub mod run;
pub mod demo;
pub mod cli;
