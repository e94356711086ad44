//! acf-worker's integration tests, in one binary. Each module is one area; `support` (backends, HTTP) and
//! `workflow_support` (the workflow under test) are shared.
//!
//! Run one area with a filter, e.g. `cargo test -p acf-worker --test it -- stores_commit::`.

mod deploy_support;
mod support;
mod workflow_support;

mod brain;
mod brain_contract;
mod chaos;
mod config;
mod events;
mod events_router;
mod logging;
mod models;
mod mutex;
mod mutex_heartbeat;
mod scale_out;
mod side_effects;
mod stores_backend;
mod stores_cluster;
mod stores_commit;
mod stores_faults;
mod stores_inbox;
mod stores_messages;
mod stores_ttl;
mod traces;
mod turn_manager;
mod turn_metrics;
mod worker_idle;
mod workflow;
mod workflow_cli;
mod workflow_definition;
mod workflow_lossless;
mod workflow_redis_restart;
