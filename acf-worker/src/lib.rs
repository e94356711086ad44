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

/// The process's allocator (feature `mimalloc`, on by default): a turn makes many small, short-lived allocations
/// across the runtime's threads, where glibc's malloc spends its time in arena locks and consolidation. Built
/// without transparent huge pages (`no_thp`): a huge page's first touch stalls the allocation that makes it.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
