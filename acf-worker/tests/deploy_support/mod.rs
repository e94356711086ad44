//! A worker as it is deployed, for the deployment tests (brain contract, metrics, traces, gateway events): the
//! embedded engine, the shared Redis under a unique key prefix, the settings loaded from the shipped
//! configuration with `RUCHE_*` overrides, and the brain those settings build.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::Path;

use acf_sdk::engine::{Engine, EngineHandle};
use acf_sdk::{Client, ClientConfig};
use acf_worker::config::{EnvVars, Settings, load_from};
use acf_worker::intake;
use acf_worker::models::{WorkflowInput, WorkflowOutput};
use acf_worker::run::{RunningWorker, start_worker, workflow_on};
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
}

impl Deployed {
    pub async fn start(settings: Settings) -> Self {
        let engine = Engine::builder()
            .start()
            .await
            .expect("the embedded engine starts");
        let client = client_for(&engine);
        let backend = Backend::open(&settings.storage.session)
            .await
            .expect("the shared Redis at 127.0.0.1:6379");
        let workflow = workflow_on(&backend, &settings).expect("the configured brain builds");
        let worker = start_worker(&client, workflow, &settings)
            .await
            .expect("the worker registers");
        Self {
            engine,
            client,
            backend,
            settings,
            worker: Some(worker),
        }
    }

    /// Submits `input` as a gateway would and waits for its run's output.
    pub async fn turn(&self, input: &WorkflowInput) -> WorkflowOutput {
        let submitted = intake::submit(
            &self.backend.stores,
            &self.client,
            input,
            self.settings.accumulation.max_message_chars,
        )
        .await
        .expect("the message is submitted");
        submitted
            .run
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

/// A client on `engine`.
pub fn client_for(engine: &EngineHandle) -> Client {
    let env: HashMap<String, String> = engine.client_env().into_iter().collect();
    ClientConfig::from_lookup(|k| env.get(k).cloned())
        .map_err(acf_sdk::Error::from)
        .and_then(Client::new)
        .expect("a client on the embedded engine")
}

/// One conversation's ids, unique per call, on channel `web`.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub tenant_id: Uuid,
    pub agent_id: Uuid,
    pub interlocutor_id: Uuid,
}

impl Conversation {
    pub fn new() -> Self {
        Self {
            tenant_id: Uuid::new_v4(),
            agent_id: Uuid::new_v4(),
            interlocutor_id: Uuid::new_v4(),
        }
    }

    pub fn message(&self, content: &str) -> WorkflowInput {
        WorkflowInput {
            tenant_id: self.tenant_id.to_string(),
            agent_id: self.agent_id.to_string(),
            interlocutor_id: self.interlocutor_id.to_string(),
            channel: "web".to_owned(),
            message_id: Uuid::new_v4().to_string(),
            message_content: content.to_owned(),
            session_key: None,
        }
    }

    pub fn session_key(&self) -> String {
        self.message("").session_key()
    }
}
