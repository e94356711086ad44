//! A worker as it is deployed, for the deployment tests (brain contract, metrics, traces, gateway events): the
//! embedded engine, the shared Redis under a unique key prefix, the settings loaded from the shipped
//! configuration with `RUCHE_*` overrides, and the brain those settings build.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acf_sdk::engine::{Engine, EngineHandle};
use acf_sdk::{Client, ClientConfig, WorkflowRunRef};
use acf_worker::brain::Brain;
use acf_worker::config::{EnvVars, Settings, load_from};
use acf_worker::intake;
use acf_worker::models::{WorkflowInput, WorkflowOutput};
use acf_worker::run::{RunningWorker, start_worker, workflow_on, workflow_with_brain};
use acf_worker::stores::Backend;
use uuid::Uuid;

/// Settings from the shipped `config/` (environment `test` is not used: it selects the memory backend) with
/// `overrides` as `RUCHE_*` variables, on the shared Redis under a unique key prefix and with short windows.
pub fn settings(overrides: &[(&str, &str)]) -> Settings {
    let prefix = format!("test-deploy-{}", Uuid::new_v4().simple());
    let mut vars: Vec<(String, String)> = vec![
        ("RUCHE_ENV".into(), "production".into()),
        ("RUCHE_STORAGE__SESSION__BACKEND".into(), "redis".into()),
        (
            "RUCHE_STORAGE__SESSION__CONNECTION_URL".into(),
            "redis://127.0.0.1:6379".into(),
        ),
        ("RUCHE_STORAGE__SESSION__KEY_PREFIX".into(), prefix),
        ("RUCHE_ACCUMULATION__MIN_WAIT_MS".into(), "50".into()),
        ("RUCHE_ACCUMULATION__MAX_WAIT_MS".into(), "50".into()),
        (
            "RUCHE_ACCUMULATION__CHANNEL_DEFAULTS".into(),
            r#"{"web": 50}"#.into(),
        ),
        (
            "RUCHE_JOBS__HATCHET__RETRY_BACKOFF_SECONDS".into(),
            "1".into(),
        ),
    ];
    vars.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    load_from(&dir, &EnvVars::new(vars))
        .expect("the shipped configuration with test overrides loads")
        .settings
}

/// An embedded engine, a client on it, the Redis backend and a running worker with the configured brain.
pub struct Deployed {
    pub engine: EngineHandle,
    pub client: Client,
    pub backend: Backend,
    pub settings: Settings,
    pub worker: Option<RunningWorker>,
    /// The worker's health server (`/metrics`), when started with one.
    pub health: Option<SocketAddr>,
}

impl Deployed {
    /// A worker with the brain `settings` configure, without a health server.
    pub async fn start(settings: Settings) -> Self {
        Self::start_with(settings, None, false).await
    }

    /// A worker answering with `brain` (the configured one when `None`), serving `/metrics` when `health`.
    pub async fn start_with(
        settings: Settings,
        brain: Option<Arc<dyn Brain>>,
        health: bool,
    ) -> Self {
        let engine = Engine::builder()
            .start()
            .await
            .expect("the embedded engine starts");
        let port = free_port();
        let mut extra = Vec::new();
        if health {
            extra = vec![
                (
                    "HATCHET_CLIENT_WORKER_HEALTHCHECK_ENABLED",
                    "true".to_owned(),
                ),
                (
                    "HATCHET_CLIENT_WORKER_HEALTHCHECK_BIND_ADDRESS",
                    "127.0.0.1".to_owned(),
                ),
                ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", port.to_string()),
            ];
        }
        let client = client_with(&engine, &extra);
        let backend = Backend::open(&settings.storage.session)
            .await
            .expect("the shared Redis at 127.0.0.1:6379");
        let workflow = match brain {
            None => workflow_on(&backend, &settings).expect("the configured brain builds"),
            Some(brain) => workflow_with_brain(&backend, &settings, brain)
                .expect("the configured events router builds"),
        };
        let worker = start_worker(&client, workflow, &settings)
            .await
            .expect("the worker registers");
        Self {
            engine,
            client,
            backend,
            settings,
            worker: Some(worker),
            health: health.then(|| SocketAddr::from(([127, 0, 0, 1], port))),
        }
    }

    /// Submits `input` as a gateway would, without waiting.
    pub async fn submit(&self, input: &WorkflowInput) -> WorkflowRunRef {
        intake::submit(
            &self.backend.stores,
            &self.client,
            input,
            self.settings.accumulation.max_message_chars,
        )
        .await
        .expect("the message is submitted")
        .run
    }

    /// `GET /metrics` on the worker's health server, retried until it answers (it binds as the worker starts).
    pub async fn scrape(&self) -> String {
        let addr = self.health.expect("started with a health server");
        let url = format!("http://{addr}/metrics");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match reqwest::get(&url).await {
                Ok(response) if response.status().is_success() => {
                    return response.text().await.expect("a /metrics body");
                }
                other if tokio::time::Instant::now() > deadline => {
                    panic!("{url} did not answer: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Submits `input` as a gateway would and waits for its run's output.
    pub async fn turn(&self, input: &WorkflowInput) -> WorkflowOutput {
        self.submit(input)
            .await
            .result()
            .await
            .expect("the run finishes")
            .step::<WorkflowOutput>("commit_and_respond")
            .expect("the run has a commit output")
    }

    pub async fn stop(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop().await.expect("the worker drains");
        }
        self.engine.shutdown().await;
    }
}

/// A client on `engine` with extra `HATCHET_CLIENT_*` settings.
pub fn client_with(engine: &EngineHandle, extra: &[(&str, String)]) -> Client {
    let mut env: HashMap<String, String> = engine.client_env().into_iter().collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    ClientConfig::from_lookup(|k| env.get(k).cloned())
        .map_err(acf_sdk::Error::from)
        .and_then(Client::new)
        .expect("a client on the embedded engine")
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// The value of one series (`name{labels}` exactly as rendered, or a bare name) in a scrape; `None` when absent.
pub fn series(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}
