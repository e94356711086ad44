//! Shared helpers of the `sdk_*` tests: an embedded engine, a client for it, a worker in the background.

#![allow(dead_code)] // each test binary uses a subset

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use acf_sdk::engine::{Engine, EngineHandle};
use acf_sdk::{Client, ClientConfig, WorkerBuilder, WorkerHandle};

/// Starts an engine on a free port.
pub async fn engine() -> EngineHandle {
    Engine::builder().start().await.expect("engine starts")
}

/// A client configured from the engine's `client_env()` (plus `extra` variables).
pub fn client_with(engine: &EngineHandle, extra: &[(&str, &str)]) -> Client {
    let mut env: HashMap<String, String> = engine.client_env().into_iter().collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Client::new(ClientConfig::from_lookup(|k| env.get(k).cloned()).expect("config"))
        .expect("client")
}

/// A client for the engine.
pub fn client(engine: &EngineHandle) -> Client {
    client_with(engine, &[])
}

/// Runs the worker in the background (signals off); returns its handle and join handle.
pub fn spawn(
    builder: WorkerBuilder,
) -> (WorkerHandle, tokio::task::JoinHandle<acf_sdk::Result<()>>) {
    let worker = builder
        .handle_signals(false)
        .build()
        .expect("worker builds");
    let handle = worker.handle();
    (handle, tokio::spawn(worker.run()))
}

/// Waits until the worker is ready (registered, stream connected).
pub async fn ready(handle: &WorkerHandle) {
    eventually(Duration::from_secs(20), || async {
        handle.status().not_ready_reason().is_none()
    })
    .await;
}

/// Polls `cond` every 20 ms until it holds; panics after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < timeout,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `fut` with a generous deadline (loaded CI boxes).
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out")
}
