//! Runnable examples for acf-sdk live in `examples/examples/`; this library holds what they share: starting
//! the embedded engine and a client for it, so every example runs self-contained with `cargo run --example`.

use std::collections::HashMap;

use acf_sdk::config::ConfigError;
use acf_sdk::engine::{Engine, EngineHandle};
use acf_sdk::{Client, ClientConfig};

/// Starts an embedded engine on a free port and returns it with a client configured for it (the same
/// `HATCHET_CLIENT_*` variables a real deployment would set).
pub async fn local_engine() -> Result<(EngineHandle, Client), Box<dyn std::error::Error>> {
    let engine = Engine::builder().start().await?;
    let config = client_config(&engine)?;
    Ok((engine, Client::new(config)?))
}

/// The client configuration for `engine`, read from the `HATCHET_CLIENT_*` variables it hands out, for an
/// example that tunes it before building its client.
pub fn client_config(engine: &EngineHandle) -> Result<ClientConfig, ConfigError> {
    let env: HashMap<String, String> = engine.client_env().into_iter().collect();
    ClientConfig::from_lookup(|k| env.get(k).cloned())
}

pub mod macro_dag;
pub mod macro_durable_wait;
