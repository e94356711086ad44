//! The client: register workflows, trigger runs and await their results, push events.

mod admin;
mod events;
mod runs;
mod stream;
mod typed;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use admin::{RunDetails, TaskRunDetail, TriggerOptions, WorkflowRunRef};
pub use events::PushOptions;
pub use typed::{Decoder, TypedWorkflowClient};

use crate::channel::Connection;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// A Hatchet client. Cheap to clone; clones share the channel and the run-result subscription.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<ClientConfig>,
    conn: Connection,
    runs: runs::RunListener,
}

impl Client {
    /// A client configured from the `HATCHET_CLIENT_*` environment.
    pub fn from_env() -> Result<Self> {
        Self::new(ClientConfig::from_env()?)
    }

    /// A client for `config` (connects lazily, on the first call).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let config = Arc::new(config);
        let conn = Connection::new(Arc::clone(&config))?;
        let runs = runs::RunListener::new(conn.dedicated());
        Ok(Self {
            inner: Arc::new(Inner { config, conn, runs }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The underlying connection (for advanced use: raw stubs with auth, gzip and limits applied).
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    pub(crate) fn unary_policy(&self) -> RetryPolicy {
        RetryPolicy::unary(
            self.inner.config.retry_max_attempts,
            self.inner.config.retry_not_found,
        )
    }
}

/// The outputs of a finished run, by task readable id.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// The workflow run id.
    pub run_id: String,
    /// Each task's output.
    pub outputs: BTreeMap<String, Value>,
}

impl RunOutput {
    /// One task's output decoded into `T`.
    pub fn step<T: DeserializeOwned>(&self, step: &str) -> Result<T> {
        let value = self
            .outputs
            .get(&step.to_lowercase())
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        Ok(serde_json::from_value(value)?)
    }

    /// Every output as one JSON object (`{task: output}`), decoded into `T`.
    pub fn all<T: DeserializeOwned>(&self) -> Result<T> {
        let map: Map<String, Value> = self.outputs.clone().into_iter().collect();
        Ok(serde_json::from_value(Value::Object(map))?)
    }
}

/// A trigger's `additional_metadata`: absent when there is none, as Python sends it.
pub(crate) fn metadata_text(metadata: &Map<String, Value>) -> Option<String> {
    (!metadata.is_empty()).then(|| crate::workflow::json_text(metadata))
}

pub(crate) fn json_object_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Object(o) if o.is_empty() => String::new(),
        v => crate::workflow::json_text(v),
    }
}

pub(crate) fn now_timestamp() -> prost_types::Timestamp {
    let now = chrono::Utc::now();
    prost_types::Timestamp {
        seconds: now.timestamp(),
        nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn encode_input(input: impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(input).map_err(Error::Json)
}
