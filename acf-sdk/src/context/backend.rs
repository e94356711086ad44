//! What a [`Context`](super::Context) needs from its environment: the worker's engine connection, or the
//! in-process test recorder. Kept object-safe so the context stays a cheap, cloneable handle.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::RunInfo;
use crate::error::Result;
use crate::model::ConditionGroup;

/// Log level accepted by `PutLog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// `DEBUG`
    Debug,
    /// `INFO`
    Info,
    /// `WARN`
    Warn,
    /// `ERROR`
    Error,
}

impl LogLevel {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

/// The outcome of a durable wait: which condition fired and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitResult {
    /// The `readable_data_key` of the satisfied condition (e.g. the event key, or `sleep:10s`).
    pub key: String,
    /// Its first data item: the event payload, or `{"sleep_duration": ...}` for a sleep.
    pub data: serde_json::Value,
    /// Every satisfied condition's data, as the engine reported it (`{"CREATE": {key: [data...]}}`).
    pub raw: serde_json::Value,
}

/// Engine-backed operations of a step.
pub(crate) trait StepBackend: Send + Sync + 'static {
    fn log<'a>(
        &'a self,
        info: &'a RunInfo,
        message: String,
        level: LogLevel,
    ) -> BoxFuture<'a, Result<()>>;
    fn put_stream<'a>(
        &'a self,
        info: &'a RunInfo,
        data: Vec<u8>,
        index: i64,
    ) -> BoxFuture<'a, Result<()>>;
    fn refresh_timeout<'a>(
        &'a self,
        info: &'a RunInfo,
        by: Duration,
    ) -> BoxFuture<'a, Result<DateTime<Utc>>>;
    fn release_slot<'a>(&'a self, info: &'a RunInfo) -> BoxFuture<'a, Result<()>>;
    /// Registers a durable wait (`wait_seq` numbers the waits of this invocation, for replay-stable keys) and
    /// resolves when the engine reports it satisfied.
    fn wait_for<'a>(
        &'a self,
        info: &'a RunInfo,
        groups: Vec<ConditionGroup>,
        wait_seq: u32,
    ) -> BoxFuture<'a, Result<WaitResult>>;
    /// Pushes an event (used by `Context::push_event`, which tags it with the source run).
    fn push_event<'a>(
        &'a self,
        info: &'a RunInfo,
        key: String,
        payload: serde_json::Value,
        scope: Option<String>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Triggers a child run of this step (parent ids and `child_index` already set in `options`).
    fn trigger_child<'a>(
        &'a self,
        workflow: String,
        input: serde_json::Value,
        options: crate::client::TriggerOptions,
    ) -> BoxFuture<'a, Result<crate::client::WorkflowRunRef>>;
}

/// Decodes the durable completion payload `{"CREATE": {"<key>": [<data>, ...]}}` into the first fired condition.
pub(crate) fn decode_wait_payload(raw: serde_json::Value) -> WaitResult {
    let first = raw
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v.as_object())
        .and_then(|o| o.iter().next())
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_array()
                    .and_then(|a| a.first())
                    .cloned()
                    .unwrap_or_else(|| v.clone()),
            )
        });
    let (key, data) = first.unwrap_or_default();
    WaitResult { key, data, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_event_and_sleep_outcomes() {
        let r = decode_wait_payload(serde_json::json!({"CREATE": {"msg": [{"text": "hi"}]}}));
        assert_eq!(r.key, "msg");
        assert_eq!(r.data, serde_json::json!({"text": "hi"}));
        let r = decode_wait_payload(
            serde_json::json!({"CREATE": {"sleep:5s": [{"sleep_duration": "5s"}]}}),
        );
        assert_eq!(r.key, "sleep:5s");
    }
}
